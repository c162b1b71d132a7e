// hsm-daemon/src/nonce: GCM invocation counters (durability, group commit, thresholds,
// refusal at the limit) and the caller-IV rule.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const writes = vi.hoisted(() => ({ n: 0 }));
vi.mock('../../../hsm-daemon/src/store/atomic-file.js', async (orig) => {
  const real = await orig<typeof import('../../../hsm-daemon/src/store/atomic-file.js')>();
  return {
    ...real,
    replaceFileDurably: async (target: string, content: Buffer | string) => {
      writes.n++;
      return real.replaceFileDurably(target, content);
    },
  };
});

import { GcmCounters, GcmNonceGuard, defaultBlockSize, keyId, severityOf, type ThresholdEvent } from '../../../hsm-daemon/src/nonce/index.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { failureDelayMs, AttemptGate } from '../../../hsm-daemon/src/token/lockout.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-nonce-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(tmp, `d${n++}`);
const counters = (dataDir: string, limit = 20, blockSize?: number, thresholds = [50, 75, 90, 95]) => {
  const c = new GcmCounters({ dataDir, limit, thresholds, blockSize });
  c.load();
  return c;
};
const onDisk = (c: GcmCounters, key: string) =>
  (JSON.parse(readFileSync(c.path, 'utf8')) as { keys: Record<string, { reserved: number }> }).keys[key]?.reserved;

async function rvOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CkError) return e.rv;
    throw e;
  }
  return CKR.OK;
}

describe('GCM counters', () => {
  it('counts each invocation and refuses at the limit with CKR_KEY_FUNCTION_NOT_PERMITTED', async () => {
    const c = counters(freshDir(), 5);
    for (let i = 0; i < 5; i++) expect(await c.take('k', true)).toBe(i);
    expect(await rvOf(c.take('k', true))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(c.usage('k')).toMatchObject({ used: 5, limit: 5, percent: 100 });
    // other keys are independent
    expect(await c.take('other', true)).toBe(0);
  });

  it('is durable before take() resolves, and a restart resumes exactly (block 1)', async () => {
    const dir = freshDir();
    const c = counters(dir, 20);
    for (let i = 0; i < 7; i++) {
      await c.take('k', true);
      expect(onDisk(c, 'k')).toBeGreaterThanOrEqual(i + 1);
    }
    const again = counters(dir, 20);
    expect(again.usage('k')?.used).toBe(7);
    expect(await again.take('k', true)).toBe(7);
  });

  it('reserves blocks: after a crash the counter jumps ahead, never back', async () => {
    const dir = freshDir();
    const c = counters(dir, 1000, 10);
    for (let i = 0; i < 3; i++) await c.take('k', true);
    expect(onDisk(c, 'k')).toBe(10);
    const afterCrash = counters(dir, 1000, 10);
    expect(await afterCrash.take('k', true)).toBe(10);
    expect(onDisk(afterCrash, 'k')).toBe(20);
    const again = counters(dir, 1000, 10);
    expect(await again.take('k', true)).toBe(20);
  });

  it('block size: exact for low limits, 65,536 for 2^32', () => {
    expect(defaultBlockSize(20)).toBe(1);
    expect(defaultBlockSize(100_000)).toBe(24);
    expect(defaultBlockSize(2 ** 32)).toBe(65536);
  });

  it('concurrent encryptions get distinct numbers and share writes (group commit)', async () => {
    const dir = freshDir();
    const c = counters(dir, 10_000, 1);
    const before = writes.n;
    const got = await Promise.all(Array.from({ length: 300 }, () => c.take('k', true)));
    expect(new Set(got).size).toBe(300);
    expect(Math.max(...got)).toBe(299);
    expect(writes.n - before).toBeLessThan(10);
    expect(onDisk(c, 'k')).toBe(300);
    expect(counters(dir, 10_000, 1).usage('k')?.used).toBe(300);
  });

  it('session keys are counted in memory only', async () => {
    const dir = freshDir();
    const c = counters(dir, 3);
    const before = writes.n;
    for (let i = 0; i < 3; i++) await c.take('s', false);
    expect(writes.n).toBe(before);
    expect(await rvOf(c.take('s', false))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    c.forgetSessionKey('s');
    expect(c.usage('s')).toBeUndefined();
  });

  it('raises each threshold once: 50% info, 75%/90% ticket, 95% page, 100% exhausted', async () => {
    const dir = freshDir();
    const c = counters(dir, 20);
    const seen: Array<[string, ThresholdEvent]> = [];
    c.on('threshold', (e) => seen.push(['threshold', e]));
    c.on('exhausted', (e) => seen.push(['exhausted', e]));
    for (let i = 0; i < 20; i++) await c.take('k', true);
    expect(seen.map(([k, e]) => [k, e.percent, e.used, e.severity])).toEqual([
      ['threshold', 50, 10, 'info'],
      ['threshold', 75, 15, 'ticket'],
      ['threshold', 90, 18, 'ticket'],
      ['threshold', 95, 19, 'page'],
      ['exhausted', 100, 20, 'page'],
    ]);
    // a restart does not repeat them
    const again = counters(dir, 20);
    const later: unknown[] = [];
    again.on('threshold', (e) => later.push(e));
    again.on('exhausted', (e) => later.push(e));
    expect(await rvOf(again.take('k', true))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(later).toEqual([]);
  });

  it('a jump over several thresholds announces the highest one', async () => {
    const dir = freshDir();
    const c = counters(dir, 100, 80);
    await c.take('k', true); // reserves 80
    const seen: number[] = [];
    const again = counters(dir, 100, 80);
    again.on('threshold', (e) => seen.push(e.percent));
    await again.take('k', true);
    expect(seen).toEqual([75]);
  });

  it('severity mapping follows seed 003', () => {
    expect([severityOf(50), severityOf(75), severityOf(90), severityOf(95)]).toEqual(['info', 'ticket', 'ticket', 'page']);
  });

  it('refuses to start on a damaged counter file rather than reset it', async () => {
    const dir = freshDir();
    const c = counters(dir, 20);
    await c.take('k', true);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(c.path, '{not json');
    expect(() => counters(dir, 20)).toThrow(/not valid JSON/);
  });
});

describe('GCM guard: caller IVs', () => {
  const key = (isToken: boolean) => ({ uid: `u${n++}`, slotId: 0, isToken });
  const mech = (iv: Buffer) => ({ type: CKM.AES_GCM, param: { kind: 'gcm' as const, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } });

  it('reject_reuse refuses a repeated (key, IV) with CKR_MECHANISM_PARAM_INVALID', async () => {
    const g = new GcmNonceGuard({ dataDir: freshDir(), limit: 100, thresholds: [], callerIv: 'reject_reuse' });
    const k = key(false);
    await g.admit(k, mech(Buffer.alloc(12, 1)));
    expect(await rvOf(g.admit(k, mech(Buffer.alloc(12, 1))))).toBe(CKR.MECHANISM_PARAM_INVALID);
    await g.admit(k, mech(Buffer.alloc(12, 2)));
    await g.admit(key(false), mech(Buffer.alloc(12, 1))); // another key may use it
    // concurrent inits with one IV: exactly one passes
    const k2 = key(true);
    const rvs = await Promise.all([1, 2, 3].map(() => rvOf(g.admit(k2, mech(Buffer.alloc(12, 9))))));
    expect(rvs.filter((r) => r === CKR.OK)).toHaveLength(1);
  });

  it('accept counts a repeated IV and reports it', async () => {
    const g = new GcmNonceGuard({ dataDir: freshDir(), limit: 100, thresholds: [], callerIv: 'accept' });
    const reuse: unknown[] = [];
    g.on('iv_reuse', (e) => reuse.push(e));
    const k = key(true);
    await g.admit(k, mech(Buffer.alloc(12, 1)));
    await g.admit(k, mech(Buffer.alloc(12, 1)));
    expect(reuse).toHaveLength(1);
    expect(g.counters.usage(`slot-0/${k.uid}`)?.used).toBe(2);
  });
});

describe('GCM guard: token-generated IVs (caller_iv = "generate")', () => {
  const key = (isToken: boolean) => ({ uid: `g${n++}`, slotId: 1, isToken });
  const mech = (iv: Buffer) => ({ type: CKM.AES_GCM, param: { kind: 'gcm' as const, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } });

  it('builds fixed field || invocation counter from the durable counter, and says callerIv = false', async () => {
    const dir = freshDir();
    const g = new GcmNonceGuard({ dataDir: dir, limit: 1000, thresholds: [], callerIv: 'generate', blockSize: 10 });
    const k = key(true);
    const ivs: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await g.admit(k, mech(Buffer.alloc(12)), true);
      expect(r.callerIv).toBe(false);
      ivs.push(r.iv!);
    }
    expect(ivs.map((iv) => iv.readBigUInt64BE(4))).toEqual([0n, 1n, 2n]);
    expect(new Set(ivs.map((iv) => iv.subarray(0, 4).toString('hex'))).size).toBe(1);
    expect(ivs[0]).toEqual(GcmNonceGuard.generatedIv(k, 0));
    // another key object (a copy of the same value included) gets another fixed field
    expect(GcmNonceGuard.generatedIv(key(true), 0).subarray(0, 4)).not.toEqual(ivs[0]!.subarray(0, 4));
    // a restart resumes at the reservation: the next IV is past every earlier one
    const g2 = new GcmNonceGuard({ dataDir: dir, limit: 1000, thresholds: [], callerIv: 'generate', blockSize: 10 });
    g2.load();
    expect((await g2.admit(k, mech(Buffer.alloc(12)), true)).iv!.readBigUInt64BE(4)).toBe(10n);
  });

  it('refuses caller IVs, other IV lengths and modules that cannot take the IV back', async () => {
    const g = new GcmNonceGuard({ dataDir: freshDir(), limit: 1000, thresholds: [], callerIv: 'generate' });
    const k = key(false);
    expect(await rvOf(g.admit(k, mech(Buffer.alloc(12, 1)), true))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(await rvOf(g.admit(k, mech(Buffer.alloc(16)), true))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(await rvOf(g.admit(k, mech(Buffer.alloc(12)), false))).toBe(CKR.MECHANISM_PARAM_INVALID);
    expect(g.counters.usage(`slot-1/${k.uid}`)).toBeUndefined(); // nothing counted
  });

  it('caller IVs under "accept" report callerIv = true and no IV', async () => {
    const g = new GcmNonceGuard({ dataDir: freshDir(), limit: 1000, thresholds: [], callerIv: 'accept' });
    const k = key(false);
    expect(await g.admit(k, mech(Buffer.alloc(12, 3)), true)).toEqual({ iv: null, callerIv: true, key: keyId(k), used: 1, limit: 1000 });
    // the count this admission reached (the call's audit entry carries it as gcm_used)
    expect((await g.admit(k, mech(Buffer.alloc(12, 4)), true)).used).toBe(2);
    expect(g.usageOf(k)).toEqual({ key: keyId(k), used: 2, limit: 1000 });
  });
});

describe('GCM counters of keys that are gone', () => {
  it('forget drops token-key counters from memory and from the file; forgetSlot drops a slot', async () => {
    const dir = freshDir();
    const g = new GcmNonceGuard({ dataDir: dir, limit: 100, thresholds: [], callerIv: 'accept', blockSize: 1 });
    const a = { uid: 'a', slotId: 0, isToken: true };
    const b = { uid: 'b', slotId: 0, isToken: true };
    const c = { uid: 'c', slotId: 1, isToken: true };
    const s = { uid: 's', slotId: 1, isToken: false };
    for (const k of [a, b, c, s]) await g.admit(k, { type: CKM.AES_GCM, param: { kind: 'gcm', iv: Buffer.alloc(12, 1), ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } });
    await g.forget(a);
    await g.forget(s);
    expect(onDisk(g.counters, 'slot-0/a')).toBeUndefined();
    expect(onDisk(g.counters, 'slot-0/b')).toBe(1);
    expect(g.counters.usage('slot-1/s')).toBeUndefined();
    await g.forgetSlot(0);
    expect(onDisk(g.counters, 'slot-0/b')).toBeUndefined();
    expect(onDisk(g.counters, 'slot-1/c')).toBe(1);
    expect(g.counters.all().map((u) => u.key)).toEqual(['slot-1/c']);
  });
});

describe('PIN lockout helpers', () => {
  it('delay doubles per failure up to the cap', () => {
    const d = { baseMs: 100, capMs: 1000 };
    expect([0, 1, 2, 3, 4, 5, 60].map((f) => failureDelayMs(f, d))).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
    expect(failureDelayMs(5, { baseMs: 0, capMs: 1000 })).toBe(0);
  });

  it('the attempt gate never lets parallel guesses overshoot the threshold', async () => {
    const gate = new AttemptGate();
    let failed = 0;
    const max = 3;
    const admitted: number[] = [];
    const guess = async (i: number) => {
      if (!(await gate.enter(() => failed, max))) return 'locked';
      admitted.push(i);
      await new Promise((r) => setTimeout(r, 5));
      failed++;
      gate.leave();
      return 'wrong';
    };
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => guess(i)));
    expect(admitted).toHaveLength(3);
    expect(out.filter((o) => o === 'locked')).toHaveLength(7);
  });
});
