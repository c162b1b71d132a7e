// Persistence of the learned baselines (anomaly/store.ts): a round trip keeps what was
// learned (a restored client is warm at once), the file is 0600 and holds no labels, and
// bad or incompatible files are refused or partly dropped as documented.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { Detector, type Observation } from '../../../hsm-daemon/src/anomaly/detector.js';
import type { AnomalySettings } from '../../../hsm-daemon/src/anomaly/baseline.js';
import { BaselineStore, baselinesPath, restore, serialize } from '../../../hsm-daemon/src/anomaly/store.js';

const SETTINGS: AnomalySettings = {
  bucketSeconds: 60,
  warmupBuckets: 3,
  halfLifeBuckets: 100,
  rateSigma: 4,
  rateFloor: 8,
  failureRatio: 0.5,
  minFailures: 5,
  newMechanism: true,
  newKey: true,
  unusualHour: true,
  maxClients: 10,
  maxKeysPerClient: 10,
};
const T0 = Date.UTC(2025, 0, 6, 9, 0, 0);
const MIN = 60_000;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const call = (at: number, over: Partial<Observation> = {}): Observation => ({
  at,
  uid: 1000,
  exe: '/usr/bin/signer',
  fn: 'C_Sign',
  rv: CKR.OK,
  mechanism: CKM.ECDSA_SHA256,
  key: { id: 'slot-0/aaaa', label: () => 'secret-project-label' },
  ...over,
});

function learned(settings = SETTINGS): Detector {
  const d = new Detector(settings);
  for (let b = 0; b < 5; b++) for (let i = 0; i < 10; i++) d.observe(call(T0 + b * MIN + 1000 + i));
  d.tick(T0 + 5 * MIN);
  return d;
}

describe('baselines persistence', () => {
  it('round-trips through the file: same JSON, warm at once, new key still reported', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-anomaly-'));
    dirs.push(dir);
    const d = learned();
    const store = new BaselineStore(baselinesPath(dir), d);
    await Promise.all([store.save(), store.save()]);
    const file = baselinesPath(dir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('secret-project-label');

    const d2 = new Detector(SETTINGS);
    expect(new BaselineStore(file, d2).load()).toBe('1 client baseline(s) loaded');
    expect(serialize(d2, 0)).toEqual(serialize(d, 0));
    const c = [...d2.clients.values()][0]!;
    expect(c.rate).toEqual({ n: 5, mean: 10, var: 0 });
    expect(c.hours[9]).toBe(5);
    // no warm-up after the restore: a deviation right away is reported
    const f = d2.observe(call(T0 + 6 * MIN, { key: { id: 'slot-0/bbbb' } }));
    expect(f.map((x) => x.kind)).toEqual(['new_key']);
    // and what was learned is not new
    expect(d2.observe(call(T0 + 6 * MIN + 1))).toEqual([]);
  });

  it('a missing file is no baselines', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-anomaly-'));
    dirs.push(dir);
    expect(new BaselineStore(baselinesPath(dir), new Detector(SETTINGS)).load()).toBeNull();
  });

  it('drops rates learned with another bucket length, keeps keys and mechanisms', () => {
    const j = serialize(learned());
    const d = new Detector({ ...SETTINGS, bucketSeconds: 10 });
    expect(restore(d, j)).toBe('1 client baseline(s) loaded (rates dropped: learned with bucket_seconds = 60, now 10)');
    const c = [...d.clients.values()][0]!;
    expect(c.rate.n).toBe(0);
    expect([...c.keys.keys()]).toEqual(['slot-0/aaaa']);
    expect([...c.mechanisms.keys()]).toEqual([CKM.ECDSA_SHA256]);
  });

  it('keeps at most max_clients and max_keys_per_client', () => {
    const d = new Detector({ ...SETTINGS, maxClients: 50 });
    for (let uid = 0; uid < 20; uid++) for (let k = 0; k < 5; k++) d.observe(call(T0 + uid * 10 + k, { uid, key: { id: `slot-0/k${k}` } }));
    const small = new Detector({ ...SETTINGS, maxClients: 4, maxKeysPerClient: 2 });
    restore(small, serialize(d));
    expect(small.clients.size).toBe(4);
    for (const c of small.clients.values()) expect(c.keys.size).toBe(2);
  });

  it('refuses a malformed or foreign file with a reason', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-anomaly-'));
    dirs.push(dir);
    const file = path.join(dir, 'b.json');
    writeFileSync(file, '{"version":99,"clients":[]}');
    expect(() => new BaselineStore(file, new Detector(SETTINGS)).load()).toThrow('unsupported baselines version 99');
    writeFileSync(file, JSON.stringify({ version: 1, bucket_seconds: 60, clients: [{ uid: 'x' }] }));
    expect(() => new BaselineStore(file, new Detector(SETTINGS)).load()).toThrow('malformed client');
    writeFileSync(file, '{not json');
    expect(() => new BaselineStore(file, new Detector(SETTINGS)).load()).toThrow(SyntaxError);
  });
});
