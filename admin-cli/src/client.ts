// craton-hsm-admin's side of the admin socket (docs/admin.md): one connection per
// command, one JSON request line, one JSON response line.
import net from 'node:net';
import { ADMIN_ERRORS, MAX_LINE_BYTES, type AdminCommand, type AdminResponse } from '../../hsm-daemon/src/admin/protocol.js';

/** Exit codes shared by every admin command (docs/admin.md "Exit codes"). */
export const EXIT = {
  OK: 0,
  /** The daemon answered: the operation failed or was refused (wrong PIN, sessions open, peer refused …). */
  FAILED: 1,
  /** Bad command line, configuration, PIN source or request. */
  USAGE: 2,
  /** The admin socket does not answer (daemon down, wrong path, timeout). */
  UNREACHABLE: 3,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The daemon's error code (CKR_… or a protocol code), when it answered. */
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface CallOptions {
  /** Whole request, connect to response (ms). PIN checks can be slow (PBKDF2, lockout delay). */
  timeoutMs?: number;
}

/** Sends one request; resolves with its result, rejects with a CliError. */
export function adminCall(socketPath: string, cmd: AdminCommand, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: socketPath });
    // Chunks of the response line so far (joined once: a backup response is many MiB).
    const parts: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err: CliError | null, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new CliError(`admin socket ${socketPath}: no answer within ${timeoutMs} ms`, EXIT.UNREACHABLE)),
      timeoutMs,
    );
    s.once('connect', () => {
      s.write(JSON.stringify({ id: 1, cmd, args }) + '\n');
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EACCES' || e.code === 'EPERM') {
        finish(new CliError(`admin socket ${socketPath}: permission denied (root or the daemon's user only)`, EXIT.FAILED, 'EACCES'));
      } else {
        finish(new CliError(`admin socket ${socketPath}: daemon unreachable (${e.code ?? e.message})`, EXIT.UNREACHABLE, e.code));
      }
    });
    s.on('data', (chunk: Buffer) => {
      const nlInChunk = chunk.indexOf(0x0a);
      parts.push(nlInChunk < 0 ? chunk : chunk.subarray(0, nlInChunk));
      received += nlInChunk < 0 ? chunk.length : nlInChunk;
      if (nlInChunk < 0) {
        if (received > MAX_LINE_BYTES) finish(new CliError('admin socket: response too long', EXIT.FAILED));
        return;
      }
      let r: AdminResponse;
      try {
        r = JSON.parse(Buffer.concat(parts).toString('utf8')) as AdminResponse;
      } catch {
        finish(new CliError('admin socket: the daemon sent something that is not JSON', EXIT.FAILED));
        return;
      }
      if (r.ok) return finish(null, r.result);
      const code = r.error?.code ?? 'UNKNOWN';
      const exit = code === ADMIN_ERRORS.BAD_REQUEST ? EXIT.USAGE : EXIT.FAILED;
      finish(new CliError(r.error?.message ?? code, exit, code));
    });
    s.once('close', () => finish(new CliError(`admin socket ${socketPath}: the daemon closed the connection without answering`, EXIT.UNREACHABLE)));
  });
}
