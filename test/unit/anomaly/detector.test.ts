// The detector on a scripted timeline: what it learns during warm-up, and the exact
// explanation of each finding (anomaly/detector.ts). Time comes from the observations.
import { describe, expect, it } from 'vitest';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { Detector, type Finding, type Observation } from '../../../hsm-daemon/src/anomaly/detector.js';
import type { AnomalySettings } from '../../../hsm-daemon/src/anomaly/baseline.js';

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
  maxClients: 3,
  maxKeysPerClient: 2,
};
const T0 = Date.UTC(2025, 0, 6, 9, 0, 0); // Monday 09:00 UTC
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

const APP = { uid: 1000, exe: '/usr/bin/signer' };
const KEY_A = { id: 'slot-0/aaaa', label: () => 'key-a' };
const KEY_B = { id: 'slot-0/bbbb', label: () => 'key-b' };

function call(at: number, over: Partial<Observation> = {}): Observation {
  return { at, ...APP, fn: 'C_Sign', rv: CKR.OK, mechanism: CKM.ECDSA_SHA256, key: KEY_A, ...over };
}

/** `n` sign calls spread over the bucket starting at `start`; returns every finding. */
function bucket(d: Detector, start: number, n: number, over: Partial<Observation> = {}): Finding[] {
  const out: Finding[] = [];
  for (let i = 0; i < n; i++) out.push(...d.observe(call(start + 1000 + i * 100, over)));
  return out;
}

function warmDetector(settings: Partial<AnomalySettings> = {}, buckets = 5, perBucket = 10): Detector {
  const d = new Detector({ ...SETTINGS, ...settings });
  for (let b = 0; b < buckets; b++) expect(bucket(d, T0 + b * MIN, perBucket)).toEqual([]);
  return d;
}

describe('warm-up', () => {
  it('only learns until warmup_buckets buckets closed, then reports', () => {
    const d = new Detector(SETTINGS);
    expect(bucket(d, T0, 10)).toEqual([]);
    // new key and mechanism inside warm-up: learned, not reported
    expect(d.observe(call(T0 + MIN + 1000, { key: KEY_B, mechanism: CKM.ECDSA }))).toEqual([]);
    expect(bucket(d, T0 + MIN, 9)).toEqual([]);
    expect(bucket(d, T0 + 2 * MIN, 10)).toEqual([]);
    const c = [...d.clients.values()][0]!;
    expect(c.rate.n).toBe(2);
    // the first call of the 4th bucket closes the 3rd: warm, so a new key is reported
    const f = d.observe(call(T0 + 3 * MIN + 1000, { key: { id: 'slot-0/cccc', label: () => 'key-c' } }));
    expect(c.rate.n).toBe(3);
    expect(f).toHaveLength(1);
    expect(f[0]!.kind).toBe('new_key');
  });
});

describe('findings', () => {
  it('new_key names the key, its label and the keys the client used', () => {
    const d = warmDetector();
    const [f, ...rest] = d.observe(call(T0 + 5 * MIN + 1000, { fn: 'C_SignInit', key: KEY_B }));
    expect(rest).toEqual([]);
    expect(f!.action).toBe('trigger');
    expect(f!.kind).toBe('new_key');
    expect(f!.severity).toBe('warning');
    expect(f!.client).toEqual({ uid: 1000, exe: '/usr/bin/signer', id: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(f!.key).toEqual({ id: 'slot-0/bbbb', label: 'key-b' });
    expect(f!.deviation).toBe('first use of key slot-0/bbbb (label "key-b") (C_SignInit); in 5 learned buckets it used 1 other key(s): slot-0/aaaa');
    expect(f!.summary).toBe(`usage anomaly new_key from uid 1000 /usr/bin/signer: ${f!.deviation}`);
    expect(f!.dedupKey).toBe(`anomaly_new_key:${f!.client.id}:slot-0/bbbb`);
    expect(f!.baseline).toEqual({ keys_used: ['slot-0/aaaa'], buckets_learned: 5 });
    // learned: the second use is normal
    expect(d.observe(call(T0 + 5 * MIN + 2000, { key: KEY_B }))).toEqual([]);
    expect(d.raised.new_key).toBe(1);
  });

  it('new_mechanism for the client, and for a key that never used it', () => {
    const d = warmDetector();
    const [f] = d.observe(call(T0 + 5 * MIN + 1000, { fn: 'C_DigestInit', mechanism: CKM.SHA384, key: undefined }));
    expect(f!.kind).toBe('new_mechanism');
    expect(f!.mechanism).toBe('CKM_SHA384');
    expect(f!.deviation).toBe('first use of CKM_SHA384 by this client (C_DigestInit, CKR_OK); in 5 learned buckets it used: CKM_ECDSA_SHA256');
    expect(f!.baseline).toEqual({ scope: 'client', mechanisms_used: ['CKM_ECDSA_SHA256'], buckets_learned: 5 });
    expect(f!.dedupKey).toBe(`anomaly_new_mechanism:${f!.client.id}:CKM_SHA384`);
    // the client knows SHA-384 now; key A has never been used with it
    const [g, ...rest] = d.observe(call(T0 + 5 * MIN + 2000, { fn: 'C_SignInit', mechanism: CKM.SHA384 }));
    expect(rest).toEqual([]);
    expect(g!.kind).toBe('new_mechanism');
    expect(g!.key).toEqual({ id: 'slot-0/aaaa', label: 'key-a' });
    expect(g!.deviation).toBe('first use of CKM_SHA384 with key slot-0/aaaa by this client (C_SignInit); in 5 learned buckets the key was used with: CKM_ECDSA_SHA256');
    expect(g!.baseline).toMatchObject({ scope: 'key' });
  });

  it('rate_high says how many σ above which mean, and resolves back in band', () => {
    const d = warmDetector();
    expect(bucket(d, T0 + 5 * MIN, 30)).toEqual([]); // judged when the bucket closes
    const out = d.observe(call(T0 + 6 * MIN + 1000));
    const client = out.find((f) => f.kind === 'rate_high' && !f.key)!;
    expect(client.severity).toBe('critical'); // 10 σ ≥ 2 × rate_sigma
    expect(client.deviation).toBe(
      `30 calls in the 60 s bucket from ${iso(T0 + 5 * MIN)}, 10.0 σ above the learned mean of 10.0 calls per bucket (σ 2.0 = floor 8/4, learned σ 0.0, band ≤ 18.0, 5 buckets learned)`,
    );
    expect(client.baseline).toEqual({ scope: 'client', mean: 10, sigma: 0, sigma_used: 2, band_upper: 18, buckets_learned: 5, bucket_seconds: 60 });
    expect(client.observed).toEqual({ calls: 30, sigmas_above: 10, bucket_start: iso(T0 + 5 * MIN) });
    // the same key carried the burst: its own baseline says so too
    const perKey = out.find((f) => f.kind === 'rate_high' && f.key)!;
    expect(perKey.key).toEqual({ id: 'slot-0/aaaa' });
    expect(perKey.deviation).toMatch(/^30 calls with key slot-0\/aaaa in the 60 s bucket/);
    // the burst is learned at the band's edge, not at 30
    const c = [...d.clients.values()][0]!;
    expect(c.rate.mean).toBeCloseTo(10 + (18 - 10) / 6, 9);
    // still high in the next bucket: no repeat while the incident is open
    expect(bucket(d, T0 + 6 * MIN, 29).filter((f) => f.kind === 'rate_high')).toEqual([]);
    expect(d.observe(call(T0 + 7 * MIN + 1000)).filter((f) => f.kind === 'rate_high')).toEqual([]);
    // a normal bucket resolves both incidents
    bucket(d, T0 + 7 * MIN, 9);
    const res = d.observe(call(T0 + 8 * MIN + 1000));
    expect(res.map((f) => [f.action, f.kind, f.dedupKey])).toEqual([
      ['resolve', 'rate_high', `anomaly_rate_high:${c.id}`],
      ['resolve', 'rate_high', `anomaly_rate_high:${c.id}:slot-0/aaaa`],
    ]);
    expect(res[0]!.deviation).toMatch(/^10 calls in the 60 s bucket from .*, within the band ≤ \d+\.\d$/);
    expect(d.raised.rate_high).toBe(2);
  });

  it('a burst under warning distance is a warning', () => {
    const d = warmDetector();
    bucket(d, T0 + 5 * MIN, 20); // (20 - 10) / 2 = 5 σ: above 4, under 8
    const f = d.observe(call(T0 + 6 * MIN + 1000)).find((x) => x.kind === 'rate_high' && !x.key)!;
    expect(f.severity).toBe('warning');
    expect(f.observed).toMatchObject({ sigmas_above: 5 });
  });

  it('failure_spike once per incident, with the CK_RVs, and resolves on a clean bucket', () => {
    const d = warmDetector();
    const start = T0 + 5 * MIN;
    bucket(d, start, 2);
    const seen: Finding[] = [];
    for (let i = 0; i < 8; i++) seen.push(...d.observe(call(start + 5000 + i * 10, { fn: 'C_Login', rv: CKR.PIN_INCORRECT, mechanism: undefined, key: undefined })));
    expect(seen).toHaveLength(1);
    const f = seen[0]!;
    expect(f.kind).toBe('failure_spike');
    expect(f.severity).toBe('critical');
    expect(f.deviation).toBe(
      `5 of 7 calls failed (71.4%) in the 60 s bucket from ${iso(start)}, 71.4 points above the learned failure ratio of 0.0% (threshold +50.0 points); most frequent: CKR_PIN_INCORRECT ×5`,
    );
    expect(f.observed).toEqual({ failures: 5, calls: 7, failure_ratio: 0.714, top_rvs: [{ rv: 'CKR_PIN_INCORRECT', count: 5 }] });
    bucket(d, start + MIN, 10);
    const res = d.observe(call(start + 2 * MIN + 1000));
    expect(res.map((x) => [x.action, x.kind])).toEqual([['resolve', 'failure_spike']]);
    // the spike bucket was not learned as normal
    expect([...d.clients.values()][0]!.fail.mean).toBe(0);
  });

  it('normal answers (length queries, sensitive attributes) are not failures', () => {
    const d = warmDetector();
    for (let i = 0; i < 20; i++) expect(d.observe(call(T0 + 5 * MIN + 1000 + i, { rv: CKR.BUFFER_TOO_SMALL }))).toEqual([]);
    for (let i = 0; i < 20; i++) expect(d.observe(call(T0 + 5 * MIN + 2000 + i, { fn: 'C_GetAttributeValue', rv: CKR.ATTRIBUTE_SENSITIVE, mechanism: undefined, key: undefined }))).toEqual([]);
  });

  it('unusual_hour after a day of history, naming the active hours', () => {
    const d = warmDetector();
    const DAY = 24 * 3600_000;
    bucket(d, T0 + DAY, 10);
    expect(bucket(d, T0 + DAY + 10 * MIN, 10)).toEqual([]);
    const at = T0 + 2 * DAY - 6 * 3600_000; // day 2, 03:00 UTC
    const out = d.observe(call(at));
    const f = out.find((x) => x.kind === 'unusual_hour')!;
    expect(f.severity).toBe('warning');
    expect(f.deviation).toBe(`active at 03:00–03:59 UTC (C_Sign), an hour with no activity in 7 learned buckets since ${iso(T0 + 1000)}; active hours (UTC): 09`);
    expect(f.dedupKey).toBe(`anomaly_unusual_hour:${f.client.id}:03`);
    // once per bucket, and not at all when switched off
    expect(d.observe(call(at + 10)).filter((x) => x.kind === 'unusual_hour')).toEqual([]);
    const off = warmDetector({ unusualHour: false });
    bucket(off, T0 + DAY, 10);
    expect(off.observe(call(at)).filter((x) => x.kind === 'unusual_hour')).toEqual([]);
  });

  it('an idle client resolves its open incidents on tick', () => {
    const d = warmDetector();
    bucket(d, T0 + 5 * MIN, 40);
    expect(d.tick(T0 + 6 * MIN).filter((f) => f.action === 'trigger' && f.kind === 'rate_high')).toHaveLength(2);
    expect(d.tick(T0 + 6 * MIN + 30_000)).toEqual([]);
    const res = d.tick(T0 + 7 * MIN);
    expect(res.map((f) => [f.action, f.kind])).toEqual([
      ['resolve', 'rate_high'],
      ['resolve', 'rate_high'],
    ]);
    expect(res[0]!.deviation).toBe(`no calls in the 60 s bucket after ${iso(T0 + 6 * MIN)}`);
  });

  it('toggles switch new_key and new_mechanism off', () => {
    const d = warmDetector({ newKey: false, newMechanism: false });
    expect(d.observe(call(T0 + 5 * MIN + 1000, { key: KEY_B, mechanism: CKM.ECDSA }))).toEqual([]);
  });
});

describe('rate_low', () => {
  // 40 calls per bucket: band 40 ± 4 × 2 (σ = floor 8/4), lower edge 32 ≥ rate_low_min_calls 10
  const busy = () => warmDetector({}, 5, 40);

  it('reports an active bucket below the band once the next bucket is active, learns it at the edge, resolves in band', () => {
    const d = busy();
    expect(bucket(d, T0 + 5 * MIN, 20)).toEqual([]); // judged when it closes …
    const c = [...d.clients.values()][0]!;
    expect(d.tick(T0 + 6 * MIN)).toEqual([]); // … and reported only when the client is active again
    const out = d.observe(call(T0 + 6 * MIN + 1000));
    expect(out.map((f) => [f.action, f.kind, f.key?.id])).toEqual([
      ['trigger', 'rate_low', undefined],
      ['trigger', 'rate_low', 'slot-0/aaaa'],
    ]);
    const f = out[0]!;
    expect(f.severity).toBe('warning');
    expect(f.deviation).toBe(
      `20 calls in the 60 s bucket from ${iso(T0 + 5 * MIN)}, 10.0 σ below the learned mean of 40.0 calls per bucket (σ 2.0 = floor 8/4, learned σ 0.0, band ≥ 32.0, 5 buckets learned); the client was active in the buckets before and after it`,
    );
    expect(f.summary).toBe(`usage anomaly rate_low from uid 1000 /usr/bin/signer: ${f.deviation}`);
    expect(f.dedupKey).toBe(`anomaly_rate_low:${c.id}`);
    expect(f.baseline).toEqual({ scope: 'client', mean: 40, sigma: 0, sigma_used: 2, band_lower: 32, buckets_learned: 5, bucket_seconds: 60 });
    expect(f.observed).toEqual({ calls: 20, sigmas_below: 10, bucket_start: iso(T0 + 5 * MIN) });
    expect(out[1]!.deviation).toMatch(/^20 calls with key slot-0\/aaaa in the 60 s bucket .* σ below .*; the key was used in the buckets before and after it$/);
    // learned at the band's lower edge, not at 20
    expect(c.rate.mean).toBeCloseTo(40 - (40 - 32) / 6, 9);
    // the lull goes on (each low bucket learned at the edge widens the band, as bursts do): no repeat while open
    bucket(d, T0 + 6 * MIN, 9);
    expect(bucket(d, T0 + 7 * MIN, 10).filter((x) => x.kind === 'rate_low')).toEqual([]);
    // back in band: both resolved
    bucket(d, T0 + 8 * MIN, 40);
    const res = d.observe(call(T0 + 9 * MIN + 1000));
    expect(res.map((x) => [x.action, x.kind, x.dedupKey])).toEqual([
      ['resolve', 'rate_low', `anomaly_rate_low:${c.id}`],
      ['resolve', 'rate_low', `anomaly_rate_low:${c.id}:slot-0/aaaa`],
    ]);
    expect(res[0]!.deviation).toMatch(/^40 calls in the 60 s bucket from .*, within the band ≥ \d+\.\d$/);
    expect(d.raised.rate_low).toBe(2);
  });

  it('never counts idle time: idle buckets, a run cut short and a run starting late are not low', () => {
    const d = busy();
    const all: Finding[] = [];
    // a run that ends 5 calls into a bucket, then 3 idle buckets (ticks), then a late start
    all.push(...bucket(d, T0 + 5 * MIN, 5));
    for (let t = 6; t <= 9; t++) all.push(...d.tick(T0 + t * MIN));
    all.push(...bucket(d, T0 + 9 * MIN, 3)); // first bucket of a new run: cut short
    all.push(...bucket(d, T0 + 10 * MIN, 40));
    all.push(...d.observe(call(T0 + 11 * MIN + 1000)));
    expect(all).toEqual([]);
    expect([...d.clients.values()][0]!.lowPending).toBeNull();
  });

  it('never for a low-volume client, and not when switched off', () => {
    const low = warmDetector(); // 10 per bucket: lower edge 10 − 8 = 2 < 10
    bucket(low, T0 + 5 * MIN, 1);
    bucket(low, T0 + 6 * MIN, 10);
    expect(low.observe(call(T0 + 7 * MIN + 1000))).toEqual([]);
    const off = warmDetector({ rateLow: false }, 5, 40);
    bucket(off, T0 + 5 * MIN, 5);
    bucket(off, T0 + 6 * MIN, 40);
    expect(off.observe(call(T0 + 7 * MIN + 1000))).toEqual([]);
    // a higher rate_low_min_calls silences the busy client too
    const strict = warmDetector({ rateLowMinCalls: 33 }, 5, 40);
    bucket(strict, T0 + 5 * MIN, 5);
    expect(strict.observe(call(T0 + 6 * MIN + 1000))).toEqual([]);
  });
});

describe('failure_spike per key', () => {
  const refused = (at: number) => call(at, { fn: 'C_SignInit', rv: CKR.KEY_FUNCTION_NOT_PERMITTED });

  it("the client's spike names the key the failures concentrate on", () => {
    const d = warmDetector();
    const start = T0 + 5 * MIN;
    bucket(d, start, 2);
    const seen: Finding[] = [];
    for (let i = 0; i < 8; i++) seen.push(...d.observe(refused(start + 5000 + i * 10)));
    expect(seen).toHaveLength(1); // one page: the key's own incident is not raised beside it
    const f = seen[0]!;
    expect(f.kind).toBe('failure_spike');
    expect(f.dedupKey).toBe(`anomaly_failure_spike:${f.client.id}`);
    expect(f.key).toEqual({ id: 'slot-0/aaaa', label: 'key-a' });
    expect(f.deviation).toBe(
      `5 of 7 calls failed (71.4%) in the 60 s bucket from ${iso(start)}, 71.4 points above the learned failure ratio of 0.0% (threshold +50.0 points); most frequent: CKR_KEY_FUNCTION_NOT_PERMITTED ×5; 5 of the 5 failures with key slot-0/aaaa (label "key-a")`,
    );
    expect(f.observed).toMatchObject({ key_failures: { key: 'slot-0/aaaa', failures: 5 } });
    expect(f.baseline).toMatchObject({ scope: 'client' });
  });

  it("one key failing against its own baseline while the client's other calls dilute the ratio", () => {
    const d = new Detector(SETTINGS);
    const digest = (at: number) => call(at, { fn: 'C_Digest', mechanism: CKM.SHA256, key: undefined });
    const round = (start: number, signs: number, failing = 0): Finding[] => {
      const out: Finding[] = [];
      for (let i = 0; i < 30; i++) out.push(...d.observe(digest(start + 1000 + i)));
      for (let i = 0; i < signs; i++) out.push(...d.observe(call(start + 2000 + i)));
      for (let i = 0; i < failing; i++) out.push(...d.observe(refused(start + 3000 + i)));
      return out;
    };
    for (let b = 0; b < 5; b++) expect(round(T0 + b * MIN, 10)).toEqual([]);
    const start = T0 + 5 * MIN;
    const seen = round(start, 4, 6); // client: 6 of 40 failed (15%); key A: 6 of 10
    expect(seen).toHaveLength(1);
    const f = seen[0]!;
    expect(f.kind).toBe('failure_spike');
    expect(f.severity).toBe('critical');
    expect(f.key).toEqual({ id: 'slot-0/aaaa', label: 'key-a' });
    expect(f.dedupKey).toBe(`anomaly_failure_spike:${f.client.id}:slot-0/aaaa`);
    expect(f.deviation).toBe(
      `5 of 9 calls with key slot-0/aaaa (label "key-a") failed (55.6%) in the 60 s bucket from ${iso(start)}, 55.6 points above the key's learned failure ratio of 0.0% (threshold +50.0 points); most frequent: CKR_KEY_FUNCTION_NOT_PERMITTED ×5`,
    );
    expect(f.baseline).toEqual({ scope: 'key', failure_ratio: 0, buckets_learned: 5, threshold_points: 0.5, min_failures: 5 });
    // the spike bucket closes as a spike (still open); the next clean one resolves the key's incident
    expect(round(start + MIN, 10)).toEqual([]);
    const res = round(start + 2 * MIN, 10);
    expect(res.map((x) => [x.action, x.kind, x.dedupKey])).toEqual([['resolve', 'failure_spike', f.dedupKey]]);
    expect(res[0]!.deviation).toBe(`0 of 10 calls with key slot-0/aaaa failed in the bucket from ${iso(start + MIN)}, back within the failure threshold`);
  });
});

describe('bounded state', () => {
  it('evicts the least recently seen client and key', () => {
    const d = new Detector(SETTINGS);
    for (let uid = 1; uid <= 3; uid++) d.observe(call(T0 + uid, { uid }));
    d.observe(call(T0 + 10, { uid: 1 })); // uid 1 seen again: uid 2 is now the oldest
    d.observe(call(T0 + 20, { uid: 4 }));
    expect([...d.clients.values()].map((c) => c.uid).sort()).toEqual([1, 3, 4]);

    const c = [...d.clients.values()].find((x) => x.uid === 1)!;
    d.observe(call(T0 + 30, { uid: 1, key: KEY_B }));
    d.observe(call(T0 + 40, { uid: 1, key: KEY_A }));
    d.observe(call(T0 + 50, { uid: 1, key: { id: 'slot-1/cccc' } }));
    expect([...c.keys.keys()].sort()).toEqual(['slot-0/aaaa', 'slot-1/cccc']);
  });

  it('tells clients apart by uid and executable', () => {
    const d = new Detector({ ...SETTINGS, maxClients: 10 });
    d.observe(call(T0, { uid: 1000, exe: '/usr/bin/a' }));
    d.observe(call(T0, { uid: 1000, exe: '/usr/bin/b' }));
    d.observe(call(T0, { uid: 1001, exe: '/usr/bin/a' }));
    d.observe(call(T0, { uid: 1001, exe: null }));
    expect(d.clients.size).toBe(4);
    expect(new Set([...d.clients.values()].map((c) => c.id)).size).toBe(4);
  });
});
