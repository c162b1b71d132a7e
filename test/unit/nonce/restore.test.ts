// GCM counters on restore (nonce/counters.ts raise, restore marks; guard.ts IV epoch): counters
// only move forward, survive a restart with their epoch, keys the backup did not count start
// at the gap, and a restored key's generated IVs use a fixed field of their own.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKM } from '../../../hsm-daemon/src/pkcs11/index.js';
import { GcmCounters, GcmNonceGuard } from '../../../hsm-daemon/src/nonce/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-nonce-restore-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const settings = (dataDir: string) => ({ dataDir, limit: 1_000_000, thresholds: [50], blockSize: 10 });
const EPOCH_A = '0123456789abcdef';
const EPOCH_B = 'fedcba9876543210';

describe('restore marks', () => {
  it('raise: max(current, mark), never back; the epoch and the slot mark survive a restart', async () => {
    const dir = path.join(tmp, `d${n++}`);
    const c = new GcmCounters(settings(dir));
    c.load();
    for (let i = 0; i < 5; i++) await c.take('slot-0/used', true);
    const r = await c.raise('slot-0/', { epoch: EPOCH_A, start: 1000 }, [
      { key: 'slot-0/used', atLeast: 3, alerted: 0 }, // already past: stays
      { key: 'slot-0/new', atLeast: 1010, alerted: 0 },
    ]);
    expect(r).toEqual([
      { key: 'slot-0/used', before: 5, after: 10 }, // the durable reservation mark (block of 10)
      { key: 'slot-0/new', before: 0, after: 1010 },
    ]);
    const again = new GcmCounters(settings(dir));
    again.load();
    expect(again.usage('slot-0/new')!.used).toBe(1010);
    expect(again.epochOf('slot-0/new')).toBe(EPOCH_A);
    // a token key of the restored slot that the backup did not count starts at the gap
    expect(await again.take('slot-0/never-counted', true)).toBe(1000);
    expect(again.epochOf('slot-0/never-counted')).toBe(EPOCH_A);
    // other slots, and session keys, are untouched
    expect(await again.take('slot-1/x', true)).toBe(0);
    expect(await again.take('slot-0/session', false)).toBe(0);
    // C_InitToken on the slot drops the mark
    const g = new GcmNonceGuard({ ...settings(dir), callerIv: 'generate' });
    g.load();
    await g.forgetSlot(0);
    expect(await g.counters.take('slot-0/fresh', true)).toBe(0);
  });

  it('a restored key generates IVs under its own fixed field', async () => {
    const key = { uid: 'k', slotId: 0, isToken: true };
    const plain = GcmNonceGuard.generatedIv(key, 7);
    const a = GcmNonceGuard.generatedIv(key, 7, EPOCH_A);
    const b = GcmNonceGuard.generatedIv(key, 7, EPOCH_B);
    expect(a.subarray(4)).toEqual(plain.subarray(4)); // same invocation field
    expect(new Set([plain, a, b].map((iv) => iv.subarray(0, 4).toString('hex'))).size).toBe(3);

    const dir = path.join(tmp, `d${n++}`);
    const g = new GcmNonceGuard({ ...settings(dir), callerIv: 'generate' });
    g.load();
    await g.counters.raise('slot-0/', { epoch: EPOCH_A, start: 100 }, [{ key: 'slot-0/k', atLeast: 50, alerted: 0 }]);
    const mech = { type: CKM.AES_GCM, param: { kind: 'gcm', iv: Buffer.alloc(12), aad: Buffer.alloc(0), tagBits: 128 } } as never;
    const { iv } = await g.admit(key, mech, true);
    expect(iv).toEqual(GcmNonceGuard.generatedIv(key, 50, EPOCH_A));
  });
});
