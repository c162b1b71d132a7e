// The admin socket protocol (docs/admin.md): newline-delimited JSON over a Unix socket.
// One request per line, one response line per request, in order. Shared by the daemon's
// admin server and craton-hsm-admin, so both agree on names and limits.

/** Longest request or response line accepted, newline excluded. Sized for token backups
 * (token.backup / token.restore carry the encrypted file, base64; docs/backup.md "Size").
 * Only authenticated peers (root or the daemon's uid, SO_PEERCRED, checked before the
 * first byte is read) can make the daemon buffer this much. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Protocol revision, reported by `status` and checked by nothing yet. */
export const ADMIN_PROTOCOL_VERSION = 1;

export const ADMIN_COMMANDS = [
  'status',
  'selftest',
  'token.info',
  'token.init',
  'key.list',
  'key.delete',
  'key.import',
  'pin.change',
  'pin.reset',
  'audit.rotate',
  'evidence.sign',
  'token.backup',
  'token.restore',
] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export interface AdminRequest {
  /** Echoed in the response; the client's choice (an integer is customary). */
  id: number | string;
  cmd: AdminCommand;
  args?: Record<string, unknown>;
}

export interface AdminErrorBody {
  /** A CK_RV symbol (CKR_PIN_INCORRECT, …) or one of the protocol codes below. */
  code: string;
  message: string;
}

/** Protocol-level error codes (not PKCS#11 return values). */
export const ADMIN_ERRORS = {
  /** The peer is neither root nor the daemon's user (SO_PEERCRED). */
  PEER_REFUSED: 'PEER_REFUSED',
  /** Not JSON, unknown command, a missing or ill-typed argument. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** A line longer than MAX_LINE_BYTES; the connection is closed after it. */
  LINE_TOO_LONG: 'LINE_TOO_LONG',
  /** Anything else (a daemon bug); details are in the daemon's log. */
  INTERNAL: 'INTERNAL',
} as const;

export type AdminResponse =
  | { id: number | string | null; ok: true; result: unknown }
  | { id: number | string | null; ok: false; error: AdminErrorBody };
