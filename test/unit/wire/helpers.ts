// A minimal protocol-v1 client for the wire-layer tests: frames requests the way the
// C module does and parses replies.
import { connect, type Socket } from 'node:net';

export interface ReplyFrame {
  requestId: number;
  callId: number;
  flags: number;
  rv: bigint;
  payload: Buffer;
}

export function requestFrame(requestId: number, callId: number, payload: Buffer = Buffer.alloc(0), flags = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32BE(8 + payload.length, 0);
  h.writeUInt32BE(requestId, 4);
  h.writeUInt16BE(callId, 8);
  h.writeUInt16BE(flags, 10);
  return Buffer.concat([h, payload]);
}

export function helloPayload(opts: { version?: number; ulongSize?: number; order?: number; token?: Buffer } = {}): Buffer {
  const token = opts.token ?? Buffer.alloc(0);
  const b = Buffer.alloc(4 + 1 + 1 + 4 + token.length);
  b.writeUInt32BE(opts.version ?? 1, 0);
  b[4] = opts.ulongSize ?? 8;
  b[5] = opts.order ?? 1;
  b.writeUInt32BE(token.length, 6);
  token.copy(b, 10);
  return b;
}

export function parseHelloReply(p: Buffer): { version: number; token: Buffer; instanceId: bigint; maxFrame: number } {
  const version = p.readUInt32BE(0);
  const n = p.readUInt32BE(4);
  const token = p.subarray(8, 8 + n);
  const instanceId = p.readBigUInt64BE(8 + n);
  const maxFrame = p.readUInt32BE(16 + n);
  if (p.length !== 20 + n) throw new Error('bad HELLO reply length');
  return { version, token, instanceId, maxFrame };
}

/** A connection that collects reply frames and notices when the daemon closes it. */
export class TestClient {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private replies: ReplyFrame[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  private ready: Promise<void>;

  constructor(path: string) {
    this.socket = connect(path);
    this.socket.on('error', () => undefined);
    this.ready = new Promise((resolve) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('close', () => resolve());
    });
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        if (this.buf.length < 4) break;
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + len) break;
        const f = this.buf.subarray(0, 4 + len);
        this.buf = this.buf.subarray(4 + len);
        this.replies.push({
          requestId: f.readUInt32BE(4),
          callId: f.readUInt16BE(8),
          flags: f.readUInt16BE(10),
          rv: f.readBigUInt64BE(12),
          payload: Buffer.from(f.subarray(20)),
        });
      }
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async connected(): Promise<void> {
    await this.ready;
  }

  send(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** The next reply, or null once the daemon closed the connection. */
  async next(timeoutMs = 5000): Promise<ReplyFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.shift();
      if (r) return r;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a reply');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async call(requestId: number, callId: number, payload?: Buffer): Promise<ReplyFrame | null> {
    this.send(requestFrame(requestId, callId, payload));
    return this.next();
  }

  async hello(opts?: Parameters<typeof helloPayload>[0]): Promise<ReplyFrame | null> {
    return this.call(0, 0, helloPayload(opts));
  }

  /** Resolves when the daemon has closed the connection (or after timeoutMs: false). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.replies = [];
    }
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
