// Throws random and mutated byte streams at a live wire server and checks, after each
// batch, that a well-formed client is still served and nothing escaped as an exception.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { CKA, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { encodeTemplate, Writer } from '../../../hsm-daemon/src/wire/codec.js';
import { startWireServer, type WireServer } from '../../../hsm-daemon/src/wire/server.js';
import { helloPayload, requestFrame, TestClient } from './helpers.js';
import { CALL, TestHandler } from './testHandler.js';

const LIMITS: Config['limits'] = {
  max_frame_bytes: 8192,
  max_connections_per_app: 4,
  max_sessions_per_app: 10,
  max_objects_per_token: 10,
  max_session_objects_per_app: 10,
  frame_timeout_ms: 150,
};
const L = { ulongSize: 8 as const, littleEndian: true };

// Deterministic PRNG so that a failure can be replayed with the same seed.
let seed = Number(process.env['WIRE_FUZZ_SEED'] ?? 0x5eed);
function rnd(n: number): number {
  // xorshift32
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;
const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd(256)));

/** Payloads that decode, to be mutated into ones that almost do. */
function validCall(): [number, Buffer] {
  switch (rnd(5)) {
    case 0:
      return [CALL.getSlotList, Buffer.of(1)];
    case 1:
      return [
        CALL.createObject,
        Buffer.concat([
          new Writer(L).ulong(1).finish(),
          encodeTemplate(
            [
              { type: CKA.LABEL, value: randomBytes(rnd(20)) },
              { type: CKA.CLASS, value: randomBytes(8) },
              { type: CKA.WRAP_TEMPLATE, value: Buffer.alloc(0), nested: [{ type: CKA.TOKEN, value: Buffer.of(1) }] },
            ],
            L,
          ),
        ]),
      ];
    case 2: {
      const gcm = new Writer(L).bytes(randomBytes(12)).ulong(96).bytes(randomBytes(rnd(8))).ulong(128).finish();
      return [CALL.encryptInit, new Writer(L).ulong(1).ulong(CKM.AES_GCM).u8(2).bytes(gcm).ulong(2).finish()];
    }
    case 3:
      return [CALL.getAttributeValue, new Writer(L).ulong(1).ulong(2).ulongList([CKA.CLASS, CKA.WRAP_TEMPLATE, CKA.VALUE]).finish()];
    default:
      return [CALL.generateRandom, new Writer(L).ulong(1).ulong(rnd(64)).finish()];
  }
}

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (rnd(4)) {
    case 0:
      if (out.length) out[rnd(out.length)] ^= 1 << rnd(8);
      return out;
    case 1:
      return out.subarray(0, rnd(out.length + 1));
    case 2:
      return Buffer.concat([out, randomBytes(1 + rnd(8))]);
    default:
      if (out.length >= 4) out.writeUInt32BE(0xffffff00 + rnd(256), rnd(out.length - 3));
      return out;
  }
}

/** One hostile connection's byte stream. */
function hostileStream(): { bytes: Buffer; thenClose: boolean; frames: number } {
  const parts: Buffer[] = [];
  const kind = rnd(8);
  if (kind === 0) return { bytes: randomBytes(rnd(64)), thenClose: rnd(2) === 0, frames: 1 };
  if (kind === 1) {
    // HELLO variants, possibly broken
    const h = requestFrame(rnd(10), 0, helloPayload({ version: pick([1, 1, 2]), ulongSize: pick([4, 8, 8, 3]), order: pick([1, 2, 0]) }));
    return { bytes: rnd(2) ? mutate(h) : h, thenClose: rnd(2) === 0, frames: 1 };
  }
  if (kind === 2) {
    // oversized or undersized length fields
    const len = pick([0, 3, 7, LIMITS.max_frame_bytes + 1, 0xffffffff]);
    const f = Buffer.alloc(12 + rnd(16));
    f.writeUInt32BE(len, 0);
    return { bytes: f, thenClose: false, frames: 1 };
  }
  parts.push(requestFrame(0, 0, helloPayload({ ulongSize: pick([4, 8]) })));
  const n = 1 + rnd(12);
  for (let i = 0; i < n; i++) {
    const [callId, payload] = validCall();
    const r = rnd(10);
    if (r < 4) parts.push(requestFrame(i + 1, callId, payload));
    else if (r < 7) parts.push(requestFrame(i + 1, callId, mutate(payload)));
    else if (r < 8) parts.push(requestFrame(i + 1, rnd(0x10000), payload, rnd(3) === 0 ? rnd(0x10000) : 0));
    else if (r < 9) parts.push(mutate(requestFrame(i + 1, callId, payload)));
    else parts.push(randomBytes(rnd(40)));
  }
  let bytes = Buffer.concat(parts);
  // half a frame at the end, left to the timeout or to an abrupt close
  if (rnd(3) === 0) bytes = bytes.subarray(0, rnd(bytes.length + 1));
  if (rnd(4) === 0) bytes = Buffer.concat([bytes, requestFrame(99, CALL.getSlotList, Buffer.of(0)).subarray(0, 1 + rnd(12))]);
  return { bytes, thenClose: rnd(3) === 0, frames: parts.length };
}

describe('wire server fuzz', () => {
  let dir: string;
  let path: string;
  let server: WireServer;
  const handler = new TestHandler();
  const escaped: unknown[] = [];
  const onError = (e: unknown) => escaped.push(e);
  let created = 0;

  beforeAll(async () => {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    dir = mkdtempSync(join(tmpdir(), 'craton-fuzz-'));
    path = join(dir, 'fuzz.sock');
    const log = (_level: string, msg: string) => {
      if (msg.includes('new application')) created++;
    };
    server = await startWireServer({ socketPath: path, limits: LIMITS, handler, instanceId: 7n, log });
  });
  afterAll(async () => {
    await server.close();
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    rmSync(dir, { recursive: true, force: true });
  });

  async function healthy(): Promise<void> {
    const c = new TestClient(path);
    try {
      expect((await c.hello())!.rv).toBe(BigInt(CKR.OK));
      const r = await c.call(1, CALL.getSlotList, Buffer.of(1));
      expect(r!.rv).toBe(BigInt(CKR.OK));
    } finally {
      c.destroy();
    }
  }

  it('survives thousands of hostile frames', async () => {
    const BATCHES = 25;
    const CONNS = 60;
    let frames = 0;
    const started = Date.now();
    for (let b = 0; b < BATCHES; b++) {
      const clients = Array.from({ length: CONNS }, () => {
        const c = new TestClient(path);
        const s = hostileStream();
        frames += s.frames;
        // in random slices, as a real socket might deliver them
        let off = 0;
        while (off < s.bytes.length) {
          const n = 1 + rnd(200);
          c.send(s.bytes.subarray(off, off + n));
          off += n;
        }
        if (s.thenClose) setTimeout(() => c.destroy(), rnd(20));
        return c;
      });
      // long enough for the frame timeout to close the idle half-frames
      await new Promise((r) => setTimeout(r, LIMITS.frame_timeout_ms + 100));
      await healthy();
      for (const c of clients) c.destroy();
      expect(escaped).toEqual([]);
      expect(handler.violations).toEqual([]);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(server.connectionCount()).toBe(0);
    // every application that was started has ended, exactly once
    expect(handler.ended.length).toBe(created);
    expect(escaped).toEqual([]);
    expect(handler.violations).toEqual([]);
    console.log(`fuzz: ${frames} frames, ${handler.calls} handler calls, ${handler.ended.length} applications ended`);
    expect(frames).toBeGreaterThan(2000);
    expect(handler.calls).toBeGreaterThan(100);
  });
});
