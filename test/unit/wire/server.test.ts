import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { Writer } from '../../../hsm-daemon/src/wire/codec.js';
import { startWireServer, type WireServer } from '../../../hsm-daemon/src/wire/server.js';
import { helloPayload, parseHelloReply, requestFrame, TestClient } from './helpers.js';
import { CALL, TestHandler } from './testHandler.js';

const LIMITS: Config['limits'] = {
  max_frame_bytes: 64 * 1024,
  max_connections_per_app: 3,
  max_sessions_per_app: 10,
  max_objects_per_token: 10,
  max_session_objects_per_app: 10,
  frame_timeout_ms: 300,
};
const INSTANCE = 0x1122334455667788n;
const ok = BigInt(CKR.OK);

let dir: string;
let path: string;
let server: WireServer;
let handler: TestHandler;
let logs: string[];
const clients: TestClient[] = [];

function client(): TestClient {
  const c = new TestClient(path);
  clients.push(c);
  return c;
}
const u8 = (v: number) => Buffer.of(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'craton-wire-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(limits = LIMITS): Promise<void> {
  handler = new TestHandler();
  logs = [];
  path = join(dir, 'sub', `s${Math.random().toString(36).slice(2)}.sock`);
  server = await startWireServer({ socketPath: path, limits, handler, instanceId: INSTANCE, log: (lvl, m) => logs.push(`${lvl} ${m}`) });
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  expect(handler.violations).toEqual([]);
});

describe('HELLO', () => {
  it('starts an application and announces the limits', async () => {
    await start();
    const c = client();
    const r = await c.hello();
    expect(r!.rv).toBe(ok);
    const h = parseHelloReply(r!.payload);
    expect(h).toMatchObject({ version: 1, instanceId: INSTANCE, maxFrame: LIMITS.max_frame_bytes });
    expect(h.token.length).toBe(16);
    const s = await c.call(7, CALL.getSlotList, u8(1));
    expect(s).toMatchObject({ requestId: 7, callId: CALL.getSlotList, flags: 0, rv: ok });
    expect(s!.payload).toEqual(new Writer({ ulongSize: 8, littleEndian: true }).ulongList([0, 1]).finish());
    expect(statSync(path).mode & 0o777).toBe(0o660);
  });

  it('speaks protocol versions 1 and 2 and answers in the client\'s version', async () => {
    await start();
    const r2 = await client().hello({ version: 2 });
    expect(r2!.rv).toBe(ok);
    const h2 = parseHelloReply(r2!.payload);
    expect(h2.version).toBe(2);
    // joining a version-2 application with another version is refused like a layout change
    expect((await client().hello({ version: 1, token: h2.token }))!.rv).toBe(BigInt(CKR.GENERAL_ERROR));
    expect((await client().hello({ version: 2, token: h2.token }))!.rv).toBe(ok);
  });

  it('closes a connection whose first frame is not HELLO', async () => {
    await start();
    const c = client();
    c.send(requestFrame(1, CALL.getSlotList, u8(1)));
    expect(await c.waitClosed()).toBe(true);
    expect(logs.some((l) => l.includes('not HELLO'))).toBe(true);
  });

  it('answers CKR_DEVICE_ERROR for unsupported versions and layouts', async () => {
    await start();
    const c = client();
    expect((await c.hello({ version: 3 }))!.rv).toBe(BigInt(CKR.DEVICE_ERROR));
    expect((await c.hello({ version: 0 }))!.rv).toBe(BigInt(CKR.DEVICE_ERROR));
    // a future version's HELLO may be longer: still answered, not a protocol error
    c.send(requestFrame(0, 0, Buffer.concat([helloPayload({ version: 3 }), Buffer.alloc(9)])));
    expect((await c.next())!.rv).toBe(BigInt(CKR.DEVICE_ERROR));
    expect((await c.hello({ ulongSize: 2 }))!.rv).toBe(BigInt(CKR.DEVICE_ERROR));
    expect((await c.hello({ order: 3 }))!.rv).toBe(BigInt(CKR.DEVICE_ERROR));
    // the module may then retry on the same connection
    expect((await c.hello({ ulongSize: 4 }))!.rv).toBe(ok);
  });

  it('joins an application by token, enforces max_connections_per_app, rejects unknown tokens', async () => {
    await start();
    const first = parseHelloReply((await client().hello())!.payload);
    for (let i = 1; i < LIMITS.max_connections_per_app; i++) {
      const r = await client().hello({ token: first.token });
      expect(r!.rv).toBe(ok);
      expect(parseHelloReply(r!.payload).token).toEqual(first.token);
    }
    expect((await client().hello({ token: first.token }))!.rv).toBe(BigInt(CKR.DEVICE_MEMORY));
    expect((await client().hello({ token: Buffer.alloc(16, 1) }))!.rv).toBe(BigInt(CKR.GENERAL_ERROR));
    expect((await client().hello({ token: Buffer.alloc(5) }))!.rv).toBe(BigInt(CKR.GENERAL_ERROR));
  });

  it('refuses a token presented by another process', async () => {
    await start();
    const token = parseHelloReply((await client().hello())!.payload).token;
    const script = join(dir, 'foreign.cjs');
    writeFileSync(
      script,
      `const net = require('net');
       const tok = Buffer.from(process.argv[3], 'hex');
       const p = Buffer.alloc(10 + tok.length); p.writeUInt32BE(1, 0); p[4] = 8; p[5] = 1; p.writeUInt32BE(tok.length, 6); tok.copy(p, 10);
       const h = Buffer.alloc(12); h.writeUInt32BE(8 + p.length, 0);
       const s = net.connect(process.argv[2], () => s.write(Buffer.concat([h, p])));
       s.on('data', (d) => { console.log(d.readBigUInt64BE(12).toString()); s.destroy(); });`,
    );
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [script, path, token.toString('hex')], (e, stdout) => (e ? reject(e) : resolve(stdout.trim()))),
    );
    expect(out).toBe(String(CKR.GENERAL_ERROR));
    expect(logs.some((l) => l.includes('refused'))).toBe(true);
  });
});

describe('application lifecycle', () => {
  it('C_Finalize ends the application once; later calls get CKR_CRYPTOKI_NOT_INITIALIZED', async () => {
    await start();
    const a = client();
    const token = parseHelloReply((await a.hello())!.payload).token;
    const b = client();
    expect((await b.hello({ token }))!.rv).toBe(ok);
    expect((await a.call(1, CALL.finalize))!.rv).toBe(ok);
    expect(handler.ended.length).toBe(1);
    expect((await b.call(2, CALL.getSlotList, u8(0)))!.rv).toBe(BigInt(CKR.CRYPTOKI_NOT_INITIALIZED));
    expect((await client().hello({ token }))!.rv).toBe(BigInt(CKR.GENERAL_ERROR));
    a.destroy();
    b.destroy();
    await sleep(50);
    expect(handler.ended.length).toBe(1);
  });

  it('the last connection closing ends the application, after its in-flight call', async () => {
    await start();
    handler.slowMs = 200;
    const a = client();
    const token = parseHelloReply((await a.hello())!.payload).token;
    const b = client();
    await b.hello({ token });
    a.destroy();
    await sleep(30);
    expect(handler.ended).toEqual([]);
    b.send(requestFrame(3, CALL.seedRandom, new Writer({ ulongSize: 8, littleEndian: true }).ulong(1).bytes(Buffer.from('seed')).finish()));
    await sleep(30);
    b.destroy(); // dies mid-call
    await sleep(50);
    expect(handler.ended).toEqual([]); // the call is still running
    await sleep(250);
    expect(handler.ended.length).toBe(1);
    expect(server.connectionCount()).toBe(0);
  });

  it('serves connections concurrently', async () => {
    await start();
    handler.slowMs = 1500;
    const a = client();
    const token = parseHelloReply((await a.hello())!.payload).token;
    const b = client();
    await b.hello({ token });
    a.send(requestFrame(1, CALL.seedRandom, new Writer({ ulongSize: 8, littleEndian: true }).ulong(1).bytes(Buffer.alloc(1)).finish()));
    // b's call is answered while a's slow call is still running: order, not timing.
    const order: string[] = [];
    const slow = a.next().then((r) => (order.push('a'), r));
    expect((await b.call(2, CALL.getSlotList, u8(0)))!.rv).toBe(ok);
    order.push('b');
    expect((await slow)!.rv).toBe(ok);
    expect(order).toEqual(['b', 'a']);
  });

  it('reassembles a large frame sent in small pieces', async () => {
    await start();
    const a = client();
    await a.hello();
    const f = requestFrame(5, CALL.seedRandom, new Writer({ ulongSize: 8, littleEndian: true }).ulong(1).bytes(Buffer.alloc(60_000, 3)).finish());
    for (let off = 0; off < f.length; off += 997) {
      a.send(f.subarray(off, off + 997));
      if (off % 10 === 0) await sleep(1);
    }
    expect(await a.next()).toMatchObject({ requestId: 5, rv: ok });
  });

  it('processes pipelined requests one at a time, in order', async () => {
    await start();
    const a = client();
    await a.hello();
    a.send(Buffer.concat([1, 2, 3, 4].map((i) => requestFrame(i, CALL.getSlotList, u8(0)))));
    for (const i of [1, 2, 3, 4]) expect((await a.next())!.requestId).toBe(i);
  });
});

describe('protocol errors close only the offending connection', () => {
  const cases: Array<[string, () => Buffer]> = [
    ['oversized length', () => Buffer.of(0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0)],
    ['length below the header', () => Buffer.of(0, 0, 0, 4, 0, 0, 0, 0)],
    ['non-zero flags', () => requestFrame(1, CALL.getSlotList, u8(0), 1)],
    ['unknown call id', () => requestFrame(1, 69, Buffer.alloc(0))],
    ['second HELLO', () => requestFrame(1, 0, helloPayload())],
    ['trailing bytes', () => requestFrame(1, CALL.getSlotList, Buffer.of(0, 0))],
    ['short payload', () => requestFrame(1, CALL.getSlotList)],
    ['bad form-2 payload', () => requestFrame(1, CALL.encryptInit, new Writer({ ulongSize: 8, littleEndian: true }).ulong(1).ulong(0x1087).u8(2).bytes(Buffer.of(1)).ulong(5).finish())],
  ];
  for (const [what, frame] of cases) {
    it(what, async () => {
      await start();
      const bystander = client();
      await bystander.hello();
      const c = client();
      expect((await c.hello())!.rv).toBe(ok);
      c.send(frame());
      expect(await c.waitClosed()).toBe(true);
      expect((await bystander.call(9, CALL.getSlotList, u8(0)))!.rv).toBe(ok);
    });
  }

  it('a partial frame left idle is closed after frame_timeout_ms', async () => {
    await start();
    const c = client();
    await c.hello();
    c.send(requestFrame(1, CALL.getSlotList, u8(0)).subarray(0, 6));
    const t0 = Date.now();
    expect(await c.waitClosed(3000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(logs.some((l) => l.includes('partial frame idle'))).toBe(true);
  });

  it('a connection that never says HELLO is closed', async () => {
    await start();
    const c = client();
    await c.connected();
    expect(await c.waitClosed(3000)).toBe(true);
  });

  it('a reply larger than max_frame becomes CKR_DEVICE_MEMORY', async () => {
    await start();
    const c = client();
    await c.hello();
    const req = new Writer({ ulongSize: 8, littleEndian: true }).ulong(1).ulong(LIMITS.max_frame_bytes).finish();
    const r = await c.call(4, CALL.generateRandom, req);
    expect(r).toMatchObject({ rv: BigInt(CKR.DEVICE_MEMORY), payload: Buffer.alloc(0) });
  });
});

describe('socket path', () => {
  it('replaces a stale socket and refuses a live one or a regular file', async () => {
    await start();
    const live = path;
    await expect(
      startWireServer({ socketPath: live, limits: LIMITS, handler, instanceId: 1n, log: () => undefined }),
    ).rejects.toThrow(/already serving/);
    await server.close();

    // a stale socket file: its daemon was killed, so nobody unlinked it
    const stale = join(dir, 'stale.sock');
    await new Promise<void>((resolve) =>
      execFile(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], () => resolve()),
    );
    expect(statSync(stale).isSocket()).toBe(true);
    server = await startWireServer({ socketPath: stale, limits: LIMITS, handler, instanceId: 1n, log: () => undefined });
    path = stale;
    expect((await client().hello())!.rv).toBe(ok);

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'x');
    await expect(startWireServer({ socketPath: file, limits: LIMITS, handler, instanceId: 1n, log: () => undefined })).rejects.toThrow(/not a socket/);
  });
});
