// Persistence of the learned baselines (anomaly/store.ts): a round trip keeps what was
// learned (a restored client is warm at once), the file is 0600 and holds no labels, and
// bad or incompatible files are refused or partly dropped as documented.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { Detector, type Finding, type Observation } from '../../../hsm-daemon/src/anomaly/detector.js';
import type { AnomalySettings } from '../../../hsm-daemon/src/anomaly/baseline.js';
import { BaselineStore, baselinesPath, restore, serialize } from '../../../hsm-daemon/src/anomaly/store.js';

const SETTINGS: AnomalySettings = {
  bucketSeconds: 60,
  warmupBuckets: 3,
  halfLifeBuckets: 100,
  rateSigma: 4,
  rateFloor: 8,
  rateLow: true,
  rateLowMinCalls: 10,
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

  it('loads a version-1 file (no open incidents) as written by the first release', () => {
    const v1 = {
      version: 1,
      bucket_seconds: 60,
      saved_at: '2025-01-06T09:05:00.000Z',
      clients: [
        {
          uid: 1000,
          exe: '/usr/bin/signer',
          first_seen: T0 + 1000,
          last_seen: T0 + 4 * MIN + 1009,
          rate: { n: 5, mean: 10, var: 0 },
          fail: { n: 5, mean: 0, var: 0 },
          mechanisms: [[CKM.ECDSA_SHA256, T0 + 4 * MIN + 1009]],
          hours: [0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
          keys: [{ id: 'slot-0/aaaa', first_seen: T0 + 1000, last_seen: T0 + 4 * MIN + 1009, rate: { n: 5, mean: 10, var: 0 }, fail: { n: 5, mean: 0, var: 0 }, mechanisms: [[CKM.ECDSA_SHA256, T0 + 4 * MIN + 1009]] }],
        },
      ],
    };
    const d = new Detector(SETTINGS);
    expect(restore(d, v1 as never, T0 + 6 * MIN)).toBe('1 client baseline(s) loaded');
    expect(d.openDedupKeys()).toEqual([]);
    const j = serialize(d, 0);
    expect(j.version).toBe(2);
    expect(j.clients[0]!.open).toBeUndefined(); // written only when an incident is open
    expect({ ...j, version: 1 }).toEqual({ ...v1, saved_at: new Date(0).toISOString() });
  });

  describe('open incidents', () => {
    /** A learned client whose burst (40 calls, band ≤ 18) opened rate_high for it and its key. */
    function bursting(): { d: Detector; raised: Finding[] } {
      const d = learned();
      for (let i = 0; i < 40; i++) d.observe(call(T0 + 5 * MIN + 1000 + i));
      const raised = d.tick(T0 + 6 * MIN);
      expect(raised.map((f) => [f.action, f.kind])).toEqual([
        ['trigger', 'rate_high'],
        ['trigger', 'rate_high'],
      ]);
      return { d, raised };
    }
    const restart = (j: unknown, at: number) => {
      const d = new Detector(SETTINGS);
      const note = restore(d, JSON.parse(JSON.stringify(j)), at);
      return { d, note };
    };

    it('survive a restart: a continuing deviation does not raise again, a bucket back in band resolves it', () => {
      const { d, raised } = bursting();
      const j = serialize(d);
      expect(j.clients[0]!.open).toEqual(['rate_high']);
      expect(j.clients[0]!.keys[0]!.open).toEqual(['rate_high']);
      const resumed = T0 + 6 * MIN + 30_000;
      const { d: d2, note } = restart(j, resumed);
      expect(note).toBe('1 client baseline(s) loaded, 2 open incident(s)');
      expect(d2.openDedupKeys()).toEqual(raised.map((f) => f.dedupKey));
      // the bucket the restart cut in two, and the client's first bucket after its reconnect:
      // few calls in them do not show the burst ended
      const out: Finding[] = [];
      for (let i = 0; i < 5; i++) out.push(...d2.observe(call(resumed + 1000 + i)));
      out.push(...d2.tick(T0 + 7 * MIN));
      const again = restart(j, resumed).d;
      for (let i = 0; i < 5; i++) out.push(...again.observe(call(T0 + 7 * MIN + 1000 + i)));
      out.push(...again.tick(T0 + 8 * MIN));
      // the burst goes on after the restart: still one incident, no second trigger
      for (let i = 0; i < 40; i++) out.push(...d2.observe(call(T0 + 7 * MIN + 1000 + i)));
      out.push(...d2.tick(T0 + 8 * MIN));
      expect(out).toEqual([]);
      expect(d2.raised.rate_high).toBe(0);
      // back in band: both incidents resolved, under the dedup keys raised before the restart
      for (let i = 0; i < 10; i++) d2.observe(call(T0 + 8 * MIN + 1000 + i));
      const res = d2.tick(T0 + 9 * MIN);
      expect(res.map((f) => [f.action, f.kind, f.dedupKey])).toEqual(raised.map((f) => ['resolve', 'rate_high', f.dedupKey]));
      expect(res[0]!.deviation).toMatch(/^10 calls in the 60 s bucket from .*, within the band ≤ \d+\.\d$/);
      expect(serialize(d2).clients[0]!.open).toBeUndefined();
    });

    it('a client that does not come back after the restart is resolved as idle after 10 buckets', () => {
      const { d } = bursting();
      const resumed = T0 + 20 * MIN; // down for 14 minutes: not idleness
      const { d: d2 } = restart(serialize(d), resumed);
      expect(d2.tick(resumed + 9 * MIN)).toEqual([]);
      const res = d2.tick(resumed + 10 * MIN);
      expect(res.map((f) => [f.action, f.kind])).toEqual([
        ['resolve', 'rate_high'],
        ['resolve', 'rate_high'],
      ]);
      expect(res[0]!.deviation).toBe(`no calls in the 10 buckets of 60 s after the restart at ${new Date(resumed).toISOString()}`);
    });

    it('are dropped with the rates of another bucket length; unknown kinds are ignored', () => {
      const { d } = bursting();
      const j = serialize(d);
      const other = new Detector({ ...SETTINGS, bucketSeconds: 10 });
      restore(other, j, T0 + 7 * MIN);
      expect(other.openDedupKeys()).toEqual([]);
      j.clients[0]!.open = ['rate_high', 'something_newer' as never];
      const { d: d2 } = restart(j, T0 + 7 * MIN);
      expect(d2.openDedupKeys()).toHaveLength(2);
      (j.clients[0] as { open: unknown }).open = 'rate_high';
      expect(() => restart(j, T0 + 7 * MIN)).toThrow('malformed open incidents');
    });
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
