// The daemon's Unix socket: connections, HELLO, applications and the request loop
// (protocol.md "Design choices", "Framing", "HELLO"). Whatever a peer sends, the worst
// outcome is that its own connection is closed after one log line: every callback here
// catches, and no promise is left without a rejection handler.
import { randomBytes } from 'node:crypto';
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Config } from '../config/types.js';
import { CKR, FUNCTIONS } from '../pkcs11/constants.generated.js';
import { callIdOf, functionName } from '../pkcs11/names.js';
import { Reader, Writer } from './codec.js';
import type { AppContext, CallHandler, ClientIdentity, ClientLayout, Reply } from './contract.js';
import { ProtocolError } from './errors.js';
import { FrameParser, replyHeader, replyLength, type Frame } from './framing.js';
import { loadPeerCred, peerIdentity } from './peercred.js';
import { errMsg, prepareSocketPath } from '../net/unix-socket.js';

/** The newest wire protocol version; PROTOCOL_VERSIONS are all accepted in HELLO. Version 2 =
 * version 1 + the generated GCM IV in the C_EncryptInit reply (protocol.md). */
export const PROTOCOL_VERSION = 2;
export const PROTOCOL_VERSIONS: readonly number[] = [1, 2];
export const HELLO_CALL_ID = 0;
const TOKEN_BYTES = 16;
const BYTE_ORDER_LITTLE = 1;
const BYTE_ORDER_BIG = 2;
const C_FINALIZE = callIdOf('C_Finalize');
const SOCKET_MODE = 0o660;
const SOCKET_DIR_MODE = 0o750;
const EMPTY = Buffer.alloc(0);
// Layout used only to decode HELLO itself, which contains no native-layout values.
const HELLO_LAYOUT: ClientLayout = { ulongSize: 8, littleEndian: true };

export type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface WireServerOptions {
  socketPath: string;
  limits: Config['limits'];
  handler: CallHandler;
  instanceId: bigint;
  log: LogFn;
}

export interface WireServer {
  close(): Promise<void>;
  connectionCount(): number;
}

interface App {
  readonly ctx: AppContext;
  readonly tokenHex: string;
  readonly token: Buffer;
  readonly conns: Set<Conn>;
  ended: boolean;
}

interface Conn {
  readonly id: number;
  readonly socket: Socket;
  readonly parser: FrameParser;
  peer: ClientIdentity | null;
  app: App | null;
  busy: boolean;
  closed: boolean;
  helloTimer: NodeJS.Timeout | null;
  idleTimer: NodeJS.Timeout | null;
}



export async function startWireServer(opts: WireServerOptions): Promise<WireServer> {
  const { socketPath, limits, handler, instanceId, log } = opts;
  if (instanceId < 0n || instanceId > 0xffffffffffffffffn) throw new RangeError('instanceId must fit in a u64');
  // Fail before binding: without SO_PEERCRED, application tokens could be replayed by anyone.
  loadPeerCred();
  await prepareSocketPath(socketPath, SOCKET_DIR_MODE, 'daemon.socket_path');

  const maxFrame = limits.max_frame_bytes;
  const apps = new Map<string, App>();
  const conns = new Set<Conn>();
  let nextConnId = 1;
  let nextAppId = 1;
  let closing = false;

  const who = (c: Conn): string => `connection ${c.id}${c.peer ? ` (pid ${c.peer.pid}${c.peer.exe ? ` ${c.peer.exe}` : ''})` : ''}`;

  function clearTimers(c: Conn): void {
    if (c.helloTimer) clearTimeout(c.helloTimer);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.helloTimer = c.idleTimer = null;
  }

  function drop(c: Conn, level: 'warn' | 'debug', why: string): void {
    if (c.closed) return;
    log(level, `wire: ${who(c)}: ${why}; closing that connection`);
    c.socket.destroy();
  }

  function endApp(app: App): void {
    if (app.ended) return;
    app.ended = true;
    apps.delete(app.tokenHex);
    try {
      handler.appEnded(app.ctx);
    } catch (e) {
      log('error', `wire: appEnded for application ${app.ctx.id} threw: ${errMsg(e)} (dispatcher bug)`);
    }
  }

  /** Leaves the application once no call of this connection is in flight, so that the
   * handler never sees a call for an application it was told has ended. */
  function detach(c: Conn): void {
    const app = c.app;
    if (!app) return;
    app.conns.delete(c);
    if (app.conns.size === 0) endApp(app);
  }

  function armIdleTimer(c: Conn): void {
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = null;
    if (c.closed || c.busy || c.parser.buffered === 0) return;
    c.idleTimer = setTimeout(() => drop(c, 'warn', `partial frame idle for ${limits.frame_timeout_ms} ms`), limits.frame_timeout_ms);
    c.idleTimer.unref();
  }

  async function send(c: Conn, frame: Frame, rv: number, payload: Buffer): Promise<void> {
    const s = c.socket;
    if (c.closed || s.destroyed || !s.writable) return;
    s.cork();
    s.write(replyHeader(frame.requestId, frame.callId, rv, payload.length));
    const more = payload.length === 0 || s.write(payload);
    s.uncork();
    // Do not read the next request until a large reply has left: bounds what a client
    // that never reads can make us buffer.
    if (!more && !s.destroyed && s.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.on('drain', done);
        s.on('close', done);
      });
    }
  }

  function hello(c: Conn, payload: Buffer): Reply {
    const r = new Reader(payload, HELLO_LAYOUT);
    const version = r.u32();
    // Checked before the rest is decoded: another version's HELLO may carry other fields.
    if (!PROTOCOL_VERSIONS.includes(version)) {
      log('warn', `wire: ${who(c)}: HELLO for protocol version ${version}, this daemon speaks ${PROTOCOL_VERSIONS.join(' and ')}; install a matching libcraton_hsm.so`);
      return { rv: CKR.DEVICE_ERROR };
    }
    const ulongSize = r.u8();
    const order = r.u8();
    const token = r.bytes();
    r.end();
    if ((ulongSize !== 4 && ulongSize !== 8) || (order !== BYTE_ORDER_LITTLE && order !== BYTE_ORDER_BIG)) {
      log('warn', `wire: ${who(c)}: HELLO declares sizeof(CK_ULONG) ${ulongSize}, byte order ${order}; unsupported platform`);
      return { rv: CKR.DEVICE_ERROR };
    }
    const layout: ClientLayout = { ulongSize, littleEndian: order === BYTE_ORDER_LITTLE };
    const peer = c.peer!;
    let app: App;
    if (token.length === 0) {
      const tok = randomBytes(TOKEN_BYTES);
      const id = (nextAppId++).toString(16).padStart(8, '0');
      app = { ctx: { id, peer, layout, protocol: version }, token: tok, tokenHex: tok.toString('hex'), conns: new Set(), ended: false };
      apps.set(app.tokenHex, app);
      log('debug', `wire: ${who(c)}: new application ${id} (uid ${peer.uid})`);
    } else {
      const found = token.length === TOKEN_BYTES ? apps.get(token.toString('hex')) : undefined;
      if (!found || found.ended) {
        log('debug', `wire: ${who(c)}: HELLO names an unknown or ended application; the module starts a new one`);
        return { rv: CKR.GENERAL_ERROR };
      }
      if (found.ctx.peer.pid !== peer.pid) {
        log('warn', `wire: ${who(c)}: HELLO presents the token of application ${found.ctx.id} of pid ${found.ctx.peer.pid}; refused (a token is valid only in its own process)`);
        return { rv: CKR.GENERAL_ERROR };
      }
      if (found.ctx.layout.ulongSize !== layout.ulongSize || found.ctx.layout.littleEndian !== layout.littleEndian || (found.ctx.protocol ?? 1) !== version) {
        log('warn', `wire: ${who(c)}: HELLO layout or protocol version differs from application ${found.ctx.id}'s; refused`);
        return { rv: CKR.GENERAL_ERROR };
      }
      if (found.conns.size >= limits.max_connections_per_app) {
        log('warn', `wire: ${who(c)}: application ${found.ctx.id} already has ${found.conns.size} connections (limits.max_connections_per_app); refused`);
        return { rv: CKR.DEVICE_MEMORY };
      }
      app = found;
    }
    app.conns.add(c);
    c.app = app;
    if (c.helloTimer) clearTimeout(c.helloTimer);
    c.helloTimer = null;
    const w = new Writer(layout).u32(version).bytes(app.token).ulong(instanceId).u32(maxFrame);
    return { rv: CKR.OK, payload: w.finish() };
  }

  async function callHandler(c: Conn, app: App, frame: Frame): Promise<Reply> {
    const layout = app.ctx.layout;
    const reader = new Reader(frame.payload, layout);
    let reply: Reply;
    try {
      reply = await handler.handle(app.ctx, frame.callId, reader, () => new Writer(layout));
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      log('error', `wire: ${who(c)}: ${functionName(frame.callId)} handler threw ${errMsg(e)} (dispatcher bug); answered CKR_GENERAL_ERROR`);
      return { rv: CKR.GENERAL_ERROR };
    }
    const rv = (reply as Partial<Reply> | undefined)?.rv;
    const payload = reply?.payload ?? EMPTY;
    if (typeof rv !== 'number' || !Number.isSafeInteger(rv) || rv < 0 || !Buffer.isBuffer(payload)) {
      log('error', `wire: ${who(c)}: ${functionName(frame.callId)} handler returned a malformed reply (dispatcher bug); answered CKR_GENERAL_ERROR`);
      return { rv: CKR.GENERAL_ERROR };
    }
    return { rv, payload };
  }

  async function processFrame(c: Conn, frame: Frame): Promise<void> {
    if (frame.flags !== 0) throw new ProtocolError(`frame flags 0x${frame.flags.toString(16)} (must be 0 in protocol version 1)`);
    const app = c.app;
    if (!app) {
      if (frame.callId !== HELLO_CALL_ID) throw new ProtocolError(`first frame is call ${frame.callId}, not HELLO`);
      const reply = hello(c, frame.payload);
      await send(c, frame, reply.rv, reply.payload ?? EMPTY);
      return;
    }
    if (frame.callId === HELLO_CALL_ID) throw new ProtocolError('second HELLO on an established connection');
    if (frame.callId > FUNCTIONS.length) throw new ProtocolError(`unknown call id ${frame.callId}`);
    if (app.ended) {
      // After C_Finalize the module opens new connections for a new application.
      await send(c, frame, CKR.CRYPTOKI_NOT_INITIALIZED, EMPTY);
      return;
    }
    let { rv, payload } = await callHandler(c, app, frame);
    if (frame.callId === C_FINALIZE && rv === CKR.OK) endApp(app);
    if (c.closed) return; // the client is gone: nobody to answer
    if (replyLength(payload!.length) > maxFrame) {
      log('error', `wire: ${who(c)}: ${functionName(frame.callId)} reply of ${payload!.length} bytes exceeds max_frame ${maxFrame}; answered CKR_DEVICE_MEMORY`);
      rv = CKR.DEVICE_MEMORY;
      payload = EMPTY;
    }
    await send(c, frame, rv, payload!);
  }

  function pump(c: Conn): void {
    // A destroyed socket may still await its 'close' event: process nothing more from it.
    if (c.closed || c.busy || !c.peer || c.socket.destroyed) return;
    let frame: Frame | null;
    try {
      frame = c.parser.next();
    } catch (e) {
      drop(c, 'warn', errMsg(e));
      return;
    }
    if (!frame) {
      armIdleTimer(c);
      return;
    }
    c.busy = true;
    armIdleTimer(c);
    c.socket.pause();
    processFrame(c, frame)
      .catch((e: unknown) => {
        if (e instanceof ProtocolError) drop(c, 'warn', e.message);
        else {
          log('error', `wire: ${who(c)}: unexpected failure serving call ${frame!.callId}: ${errMsg(e)}`);
          c.socket.destroy();
        }
      })
      .finally(() => {
        c.busy = false;
        if (c.closed) detach(c);
        else if (!c.socket.destroyed) {
          c.socket.resume();
          pump(c);
        }
        // else: the pending 'close' event detaches it
      })
      .catch((e: unknown) => log('error', `wire: ${who(c)}: ${errMsg(e)}`));
  }

  function onConnection(socket: Socket): void {
    const c: Conn = {
      id: nextConnId++,
      socket,
      parser: new FrameParser(maxFrame),
      peer: null,
      app: null,
      busy: false,
      closed: false,
      helloTimer: null,
      idleTimer: null,
    };
    conns.add(c);
    socket.on('error', (e: NodeJS.ErrnoException) => log('debug', `wire: ${who(c)}: socket error ${e.code ?? errMsg(e)}`));
    socket.on('close', () => {
      try {
        c.closed = true;
        clearTimers(c);
        if (c.parser.buffered > 0) log('debug', `wire: ${who(c)}: closed by the client in the middle of a frame`);
        c.parser.clear();
        conns.delete(c);
        if (!c.busy) detach(c);
      } catch (e) {
        log('error', `wire: ${who(c)}: cleanup failed: ${errMsg(e)}`);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        if (c.closed) return;
        c.parser.push(chunk);
        pump(c);
      } catch (e) {
        drop(c, 'warn', errMsg(e));
      }
    });
    c.helloTimer = setTimeout(() => drop(c, 'warn', `no HELLO within ${limits.frame_timeout_ms} ms`), limits.frame_timeout_ms);
    c.helloTimer.unref();
    if (closing) {
      socket.destroy();
      return;
    }
    peerIdentity(socket)
      .then((peer) => {
        c.peer = peer;
        pump(c);
      })
      .catch((e: unknown) => drop(c, 'warn', `cannot identify the peer: ${errMsg(e)}`));
  }

  const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => {
    try {
      onConnection(socket);
    } catch (e) {
      log('error', `wire: cannot set up a new connection: ${errMsg(e)}`);
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new Error(`cannot listen on ${socketPath}: ${errMsg(e)}`));
    server.once('error', onError);
    // The socket must never exist with wider permissions, even for an instant.
    let oldMask: number | null = null;
    try {
      oldMask = process.umask(0o117);
    } catch {
      // umask is unavailable in worker threads; the chmod below still applies.
    }
    try {
      server.listen(socketPath, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (oldMask !== null) process.umask(oldMask);
    }
  });
  server.on('error', (e) => log('error', `wire: socket ${socketPath}: ${errMsg(e)}`));
  await chmod(socketPath, SOCKET_MODE);
  log('info', `wire: listening on ${socketPath} (max_frame ${maxFrame})`);

  return {
    connectionCount: () => conns.size,
    async close(): Promise<void> {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) c.socket.destroy();
      await closed;
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
