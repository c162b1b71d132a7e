// The admin socket (docs/admin.md): a Unix socket, mode 0600 and owned by the daemon's
// user, speaking newline-delimited JSON. Every connection is checked with SO_PEERCRED:
// only root and the daemon's own uid are served, whatever the file mode says. Every
// command except the read-only ones (status, token.info) writes one audit entry carrying
// the admin's pid, uid and executable, before its response is sent.
//
// main.ts wiring (after startWireServer, and close() in stop() before audit.close()):
//   const adminServer = await startAdminServer({ config, core, audit, safety, log, connections: () => server.connectionCount() });
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { CKR } from '../pkcs11/index.js';
import { rvName } from '../pkcs11/names.js';
import { CkError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { HsmCore } from '../dispatch/core.js';
import type { AuditLog } from '../audit/index.js';
import { sanitize } from '../audit/index.js';
import type { Json } from '../audit/canonical.js';
import type { Safety } from '../selftest/index.js';
import type { ClientIdentity } from '../wire/contract.js';
import { loadPeerCred, peerIdentity } from '../wire/peercred.js';
import * as cmds from './commands.js';
import { keyImport, keyImportAuditDetails } from './key-import.js';
import { evidenceSign } from './evidence-sign.js';
import { backupAuditDetails, tokenBackup, tokenRestore } from './backup.js';
import { ADMIN_COMMANDS, ADMIN_ERRORS, MAX_LINE_BYTES, type AdminCommand, type AdminResponse } from './protocol.js';
import { errMsg, prepareSocketPath } from '../net/unix-socket.js';
import { daemonReadiness } from '../metrics/index.js';

export type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface AdminServerOptions {
  config: Config;
  core: HsmCore;
  /** The daemon's audit log (attachAudit); admin actions are recorded in it. */
  audit: AuditLog;
  safety: Pick<Safety, 'report' | 'rerunSelfTests'>;
  log: LogFn;
  /** Open PKCS#11 connections, for `status` (e.g. () => server.connectionCount()). */
  connections?: () => number;
  /** Default: config.daemon.admin_socket_path. */
  socketPath?: string;
  /** Uids served besides root; default: the daemon's own uid. */
  allowedUids?: number[];
  /** Idle connections are closed after this long (ms); default 60 s. */
  idleTimeoutMs?: number;
}

export interface AdminServer {
  readonly path: string;
  close(): Promise<void>;
}

const SOCKET_MODE = 0o600;
const DIR_MODE = 0o700;

/** Operation names in the audit log, per command. */
const AUDIT_OPERATION: Record<AdminCommand, string | null> = {
  status: null,
  'token.info': null,
  selftest: 'AdminSelfTest',
  'token.init': 'AdminTokenInit',
  'key.list': 'AdminKeyList',
  'key.delete': 'AdminKeyDelete',
  'key.import': 'AdminKeyImport',
  'pin.change': 'AdminPinChange',
  'pin.reset': 'AdminPinReset',
  'audit.rotate': 'AdminAuditRotate',
  'evidence.sign': 'AdminEvidenceSign',
  'token.backup': 'AdminTokenBackup',
  'token.restore': 'AdminTokenRestore',
};

/** Commands refused while the audit log cannot be written and [audit] fail_closed is set. */
const NEEDS_AUDIT = new Set<AdminCommand>(['token.init', 'key.list', 'key.delete', 'key.import', 'pin.change', 'pin.reset', 'evidence.sign', 'token.backup', 'token.restore']);



/** Binds with umask 0177 so the socket is never reachable by others, even briefly. */
function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const old = process.umask(0o177);
    try {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { config, core, audit, log } = opts;
  const socketPath = opts.socketPath ?? config.daemon.admin_socket_path;
  const ownUid = process.getuid?.() ?? 0;
  const allowed = new Set([0, ...(opts.allowedUids ?? [ownUid])]);
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  loadPeerCred(); // fail before binding: without SO_PEERCRED the uid check is impossible

  const ctx: cmds.AdminContext = {
    config,
    core,
    selfTest: opts.safety.report,
    rerunSelfTests: () => opts.safety.rerunSelfTests(),
    audit: audit.writer ? audit : null,
    connections: opts.connections,
    readiness: () => daemonReadiness({ audit, safety: opts.safety }),
    evidenceSigner: () => audit.writer?.opts.signer ?? null,
    startedAt: new Date(),
  };

  /** One audit entry for an admin action, as the admin (not the daemon) did it. Resolves
   * once it is on disk; rejects if it could not be written. */
  const record = async (operation: string, peer: ClientIdentity, rv: number, details: Record<string, unknown>): Promise<void> => {
    const w = audit.writer;
    if (!w) return; // log_level = "none"
    await w.append({
      timestamp: w.now(),
      session_handle: 0,
      operation,
      key_id: null,
      result: rv === CKR.OK ? { Success: null } : { Failure: rvName(rv) },
      pid: peer.pid,
      uid: peer.uid,
      exe: peer.exe,
      mechanism: null,
      fips_approved: null,
      details: sanitize({ ...details, via: 'admin-socket' }) as Record<string, Json>,
    });
  };

  /** What an action's audit entry says about it (never a PIN: only which PINs were given). */
  const auditDetails = (cmd: AdminCommand, args: Record<string, unknown>, result: unknown): Record<string, unknown> => {
    const d: Record<string, unknown> = {};
    for (const k of ['slot', 'uid', 'label', 'role']) if (args[k] !== undefined) d[k] = args[k];
    // Which credentials came with the request (names only; sanitize() would redact a key named *pin*).
    const given = Object.keys(args).filter((k) => k.endsWith('_pin'));
    if (given.length) d.credentials = given.map((k) => k.replace(/_pin$/, ''));
    const r = result as Record<string, unknown> | null;
    if (r && cmd === 'key.list') d.listed = (r.slots as Array<{ objects: unknown[] }>).reduce((n, s) => n + s.objects.length, 0);
    if (r && cmd === 'key.delete') {
      const del = r.deleted as { class: string; key_type: string | null; handle: number; id: string };
      Object.assign(d, { class: del.class, key_type: del.key_type, handle: del.handle, id: del.id });
    }
    if (r && cmd === 'pin.reset') Object.assign(d, { failed_before: r.failed_before, was_locked: r.was_locked, init_user: r.user_pin_set });
    if (r && cmd === 'selftest') Object.assign(d, { passed: r.passed, failed: r.failed });
    if (r && cmd === 'token.init') Object.assign(d, { reinitialized: r.reinitialized, destroyed_objects: r.destroyed_objects });
    if (cmd === 'key.import') Object.assign(d, keyImportAuditDetails(args, r));
    if (cmd === 'evidence.sign') Object.assign(d, { digest: args.digest, key_id: r?.key_id ?? null, signed_at: r?.signed_at ?? null });
    if (cmd === 'token.backup' || cmd === 'token.restore') Object.assign(d, backupAuditDetails(cmd, args, r));
    return d;
  };

  const run = async (cmd: AdminCommand, args: Record<string, unknown>, pid: number): Promise<unknown> => {
    switch (cmd) {
      case 'status':
        return cmds.status(ctx);
      case 'token.info':
        return cmds.tokenInfo(ctx, args);
      case 'selftest':
        return cmds.selftest(ctx);
      case 'token.init':
        return cmds.tokenInit(ctx, args, pid);
      case 'key.list':
        return cmds.keyList(ctx, args, pid);
      case 'key.delete':
        return cmds.keyDelete(ctx, args, pid);
      case 'key.import':
        return keyImport(ctx, args, pid);
      case 'pin.change':
        return cmds.pinChange(ctx, args, pid);
      case 'pin.reset':
        return cmds.pinReset(ctx, args, pid);
      case 'audit.rotate':
        return cmds.auditRotate(ctx);
      case 'evidence.sign':
        return evidenceSign(ctx, args);
      case 'token.backup':
        return tokenBackup(ctx, args, pid);
      case 'token.restore':
        return tokenRestore(ctx, audit, args, pid);
    }
  };

  const handle = async (line: string, peer: ClientIdentity): Promise<AdminResponse> => {
    let id: number | string | null = null;
    let req: { id?: unknown; cmd?: unknown; args?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new Error('not an object');
    } catch (e) {
      return { id, ok: false, error: { code: ADMIN_ERRORS.BAD_REQUEST, message: `request is not a JSON object: ${errMsg(e)}` } };
    }
    if (typeof req.id === 'number' || typeof req.id === 'string') id = req.id;
    const cmd = req.cmd as AdminCommand;
    if (typeof req.cmd !== 'string' || !ADMIN_COMMANDS.includes(cmd)) {
      return { id, ok: false, error: { code: ADMIN_ERRORS.BAD_REQUEST, message: `unknown command ${JSON.stringify(req.cmd)} (${ADMIN_COMMANDS.join(', ')})` } };
    }
    const args = (req.args ?? {}) as Record<string, unknown>;
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      return { id, ok: false, error: { code: ADMIN_ERRORS.BAD_REQUEST, message: 'args must be an object' } };
    }
    const op = AUDIT_OPERATION[cmd];

    let result: unknown;
    let rv: number = CKR.OK;
    let error: { code: string; message: string } | null = null;
    /** Which control refused the command (audit details.refused_by, as on call entries). */
    let refusedBy: string | undefined;
    try {
      if (op && NEEDS_AUDIT.has(cmd) && config.audit.fail_closed && audit.writer && !audit.healthy()) {
        throw new CkError(CKR.DEVICE_ERROR, 'the audit log cannot be written (fail_closed); nothing was done');
      }
      result = await run(cmd, args, peer.pid);
    } catch (e) {
      if (e instanceof CkError) {
        rv = e.rv;
        error = { code: rvName(e.rv), message: e.message };
        refusedBy = e.refusal ?? (e.rv === CKR.PIN_LOCKED ? 'lockout' : undefined);
      } else if (e instanceof cmds.BadRequest) {
        rv = CKR.ARGUMENTS_BAD;
        error = { code: ADMIN_ERRORS.BAD_REQUEST, message: e.message };
      } else {
        rv = CKR.GENERAL_ERROR;
        error = { code: ADMIN_ERRORS.INTERNAL, message: 'internal error; see the daemon log' };
        log('error', `admin: ${cmd} from pid ${peer.pid} failed: ${errMsg(e)}`);
      }
    }
    if (op) {
      try {
        await record(op, peer, rv, { ...auditDetails(cmd, args, error ? null : result), ...(refusedBy ? { refused_by: refusedBy } : {}) });
      } catch (e) {
        log('error', `admin: ${op} by pid ${peer.pid} uid ${peer.uid} not recorded in the audit log: ${errMsg(e)}`);
        if (!error) {
          return {
            id,
            ok: false,
            error: { code: rvName(CKR.DEVICE_ERROR), message: `${cmd} was done, but its audit entry could not be written: ${errMsg(e)}` },
          };
        }
      }
    }
    if (error) return { id, ok: false, error };
    log('info', `admin: ${cmd} by pid ${peer.pid} uid ${peer.uid}${peer.exe ? ` (${peer.exe})` : ''}`);
    return { id, ok: true, result };
  };

  const conns = new Set<Socket>();

  const serve = async (socket: Socket): Promise<void> => {
    let peer: ClientIdentity;
    try {
      peer = await peerIdentity(socket);
    } catch (e) {
      log('warn', `admin: cannot read the peer's credentials (${errMsg(e)}); closing`);
      socket.destroy();
      return;
    }
    const send = (r: AdminResponse) => {
      if (!socket.destroyed) socket.write(JSON.stringify(r) + '\n');
    };
    if (!allowed.has(peer.uid)) {
      log('warn', `admin: refused pid ${peer.pid} uid ${peer.uid}${peer.exe ? ` (${peer.exe})` : ''}: only root and uid ${ownUid} are served`);
      await record('AdminRefused', peer, CKR.FUNCTION_REJECTED, { reason: 'peer uid not allowed', gid: peer.gid }).catch((e: unknown) =>
        log('error', `admin: AdminRefused not recorded in the audit log: ${errMsg(e)}`),
      );
      send({ id: null, ok: false, error: { code: ADMIN_ERRORS.PEER_REFUSED, message: `uid ${peer.uid} may not use the admin socket (root or uid ${ownUid} only)` } });
      socket.end();
      return;
    }

    // The part of the current line received so far, as chunks: a line of many MiB (a
    // backup) is joined once, not copied again for every chunk that arrives.
    let parts: Buffer[] = [];
    let partBytes = 0;
    let refused = false;
    let queue: Promise<void> = Promise.resolve();
    let busy = 0;
    socket.setTimeout(idleMs, () => {
      if (busy === 0) socket.destroy();
    });
    const tooLong = () => {
      refused = true;
      send({ id: null, ok: false, error: { code: ADMIN_ERRORS.LINE_TOO_LONG, message: `request line longer than ${MAX_LINE_BYTES} bytes` } });
      socket.end();
      socket.pause();
      parts = [];
      partBytes = 0;
    };
    socket.on('data', (chunk: Buffer) => {
      if (refused) return;
      let start = 0;
      let nl: number;
      while ((nl = chunk.indexOf(0x0a, start)) >= 0) {
        const piece = chunk.subarray(start, nl);
        const whole = parts.length ? Buffer.concat([...parts, piece]) : piece;
        parts = [];
        partBytes = 0;
        start = nl + 1;
        if (whole.length > MAX_LINE_BYTES) return tooLong();
        const line = whole.toString('utf8').replace(/\r$/, '');
        if (line.trim() === '') continue;
        busy++;
        queue = queue
          .then(() => handle(line, peer))
          .then(send, (e: unknown) => {
            log('error', `admin: request handling failed: ${errMsg(e)}`);
            send({ id: null, ok: false, error: { code: ADMIN_ERRORS.INTERNAL, message: 'internal error; see the daemon log' } });
          })
          .finally(() => busy--);
      }
      if (start < chunk.length) {
        parts.push(chunk.subarray(start));
        partBytes += chunk.length - start;
        if (partBytes > MAX_LINE_BYTES) tooLong();
      }
    });
  };

  const server = createServer((socket) => {
    conns.add(socket);
    socket.on('close', () => conns.delete(socket));
    socket.on('error', (e) => log('debug', `admin: connection error: ${errMsg(e)}`));
    serve(socket).catch((e: unknown) => {
      log('error', `admin: connection failed: ${errMsg(e)}`);
      socket.destroy();
    });
  });
  server.on('error', (e) => log('error', `admin: socket error: ${errMsg(e)}`));

  await prepareSocketPath(socketPath, DIR_MODE, 'daemon.admin_socket_path');
  await listen(server, socketPath);
  await chmod(socketPath, SOCKET_MODE);
  log('info', `admin socket listening on ${socketPath} (mode 0600; root and uid ${ownUid} only)`);

  let closed = false;
  return {
    path: socketPath,
    async close() {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of conns) s.destroy();
      await done;
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
