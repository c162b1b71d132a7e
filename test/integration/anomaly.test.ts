// Usage-anomaly detection end to end (docs/anomaly.md): this process loads the real module
// (pkcs11js → libcraton_hsm.so → craton-hsmd), keeps a steady pattern (SHA-256 digests and
// ECDSA signatures with key A, once per 1-second bucket) through the warm-up, then deviates:
// a never-used key B, a never-used mechanism, a burst far above the band, a run of failing
// calls. Each must reach the webhook sink as an explained alert, the audit log as a
// UsageAnomaly entry and the metrics counter. After a restart the learned state is back:
// a deviation alerts at once, with no second warm-up. Alerts are polled for; no assertion
// depends on how fast anything runs (buckets close by the calls' own timestamps).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { startMetricsDaemon, type Daemon } from '../helpers/daemon.js';
import { initTokenAndLogin, loadModule, rvOf, type LoadedModule, type PKCS11 } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const BUCKET_MS = 1000;

interface Hook {
  path: string;
  body: Record<string, any>;
}
const hooks: Hook[] = [];
let receiver: http.Server;
let hookBase: string;

async function anomalyDaemon(hookPath: string, dataDir?: string): Promise<{ d: Daemon; metricsUrl: string }> {
  const { d, url } = await startMetricsDaemon({
    slots: 1,
    dataDir,
    extraToml: [
      '[security]',
      'failed_login_delay_base_ms = 0',
      '[anomaly]',
      'bucket_seconds = 1',
      'warmup_buckets = 4',
      'half_life_buckets = 50',
      'rate_sigma = 4.0',
      'rate_floor = 40',
      'failure_ratio = 0.5',
      'min_failures = 10',
      'save_interval_seconds = 3600', // only the shutdown save: the restart tests it
      '[alerts.webhook]',
      `url = "${hookBase}${hookPath}"`,
      '',
    ].join('\n'),
  });
  return { d, metricsUrl: url };
}

async function waitFor<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; webhook got:\n${hooks.map((h) => `${h.path} ${h.body.event_action} ${h.body.kind}: ${h.body.summary}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const alertOf = (hookPath: string, kind: string, match: (b: Record<string, any>) => boolean = () => true) => () =>
  hooks.find((h) => h.path === hookPath && h.body.event_action === 'trigger' && h.body.kind === kind && match(h.body))?.body;

/** Sleeps into the next bucket, so each round of the pattern is one active bucket. */
async function nextBucket(): Promise<void> {
  await new Promise((r) => setTimeout(r, BUCKET_MS - (Date.now() % BUCKET_MS) + 20));
}

function digest(p11: PKCS11, s: Buffer, mechanism = CKM.SHA256): void {
  p11.C_DigestInit(s, { mechanism });
  p11.C_Digest(s, Buffer.from('steady'), Buffer.alloc(64));
}

function sign(p11: PKCS11, s: Buffer, key: Buffer): void {
  p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, key);
  p11.C_Sign(s, Buffer.from('steady'), Buffer.alloc(64));
}

function ecKey(p11: PKCS11, s: Buffer, label: string): Buffer {
  return p11.C_GenerateKeyPair(
    s,
    { mechanism: CKM.EC_KEY_PAIR_GEN },
    [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: true }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: label }],
    [{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: label }],
  ).privateKey;
}

function auditEntries(d: Daemon): Array<Record<string, any>> {
  return readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', body: JSON.parse(data || '{}') });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

describe('usage-anomaly detection through the real module', () => {
  let d: Daemon;
  let metricsUrl: string;
  let m: LoadedModule | undefined;
  let p11: PKCS11;
  let s: Buffer;
  let keyA: Buffer;
  let keyB: Buffer;
  let keyBId = '';

  beforeAll(async () => {
    ({ d, metricsUrl } = await anomalyDaemon('/first'));
    m = loadModule(d.socketPath);
    p11 = m.p11;
    ({ session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'anomaly' }));
    keyA = ecKey(p11, s, 'anomaly-key-a');
    keyB = ecKey(p11, s, 'anomaly-key-b'); // made, never used: creating is not using
    // the learned pattern: 8 active buckets of 3 digests + 1 signature with key A
    for (let b = 0; b < 8; b++) {
      await nextBucket();
      for (let i = 0; i < 3; i++) digest(p11, s);
      sign(p11, s, keyA);
    }
    await nextBucket();
  }, 120_000);
  afterAll(async () => {
    m?.close();
    await d?.stop();
  });

  it('learned the pattern quietly: no anomaly alert during warm-up and steady use', async () => {
    digest(p11, s);
    sign(p11, s, keyA);
    expect(hooks.filter((h) => String(h.body.kind).startsWith('anomaly_'))).toEqual([]);
  });

  it('a never-used key: new_key names the key and the keys used before', async () => {
    sign(p11, s, keyB);
    const a = await waitFor('new_key alert', alertOf('/first', 'anomaly_new_key'));
    expect(a.severity).toBe('warning');
    expect(a.action).toBe('ticket');
    expect(a.details.anomaly).toBe('new_key');
    expect(a.details.key.label).toBe('anomaly-key-b');
    expect(a.details.key.id).toMatch(/^slot-0\/\S+$/);
    keyBId = a.details.key.id;
    expect(a.details.client.uid).toBe(process.getuid!());
    expect(a.details.baseline.keys_used).toHaveLength(1);
    expect(a.details.baseline.keys_used[0]).not.toBe(keyBId);
    expect(a.summary).toMatch(/^usage anomaly new_key from uid \d+ \S+: first use of key slot-0\/\S+ \(label "anomaly-key-b"\) \(C_SignInit\); in \d+ learned buckets it used 1 other key\(s\): slot-0\/\S+$/);
  });

  it('a never-used mechanism: new_mechanism names it and the learned ones', async () => {
    digest(p11, s, CKM.SHA384);
    const a = await waitFor('new_mechanism alert', alertOf('/first', 'anomaly_new_mechanism', (b) => b.details.mechanism === 'CKM_SHA384'));
    expect(a.details.explanation).toMatch(/^first use of CKM_SHA384 by this client \(C_DigestInit, CKR_OK\); in \d+ learned buckets it used: /);
    expect(a.details.baseline.mechanisms_used).toEqual(expect.arrayContaining(['CKM_SHA256', 'CKM_ECDSA_SHA256']));
    expect(a.details.baseline.mechanisms_used).not.toContain('CKM_SHA384');
  });

  it('a burst far above the band: rate_high says how many σ above the learned mean', async () => {
    await nextBucket();
    for (let i = 0; i < 1000; i++) digest(p11, s);
    const a = await waitFor('rate_high alert', alertOf('/first', 'anomaly_rate_high', (b) => b.details.baseline.scope === 'client'));
    expect(a.details.explanation).toMatch(/^\d+ calls in the 1 s bucket from \S+Z, \d+\.\d σ above the learned mean of \d+\.\d calls per bucket \(σ \d+\.\d.*band ≤ \d+\.\d, \d+ buckets learned\)$/);
    expect(a.details.observed.calls).toBeGreaterThan(a.details.baseline.band_upper);
    expect(a.details.observed.sigmas_above).toBeGreaterThan(4);
    // the burst ended: the incident resolves once a bucket is back in band (or idle)
    await waitFor('rate_high resolve', () => hooks.find((h) => h.path === '/first' && h.body.event_action === 'resolve' && h.body.dedup_key === a.dedup_key));
  });

  it('a run of failing calls: failure_spike pages with the CK_RVs', async () => {
    await nextBucket();
    const bogus = Buffer.from([0x39, 0x30, 0, 0, 0, 0, 0, 0]); // handle 12345
    for (let i = 0; i < 30; i++) expect(rvOf(() => p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, bogus))).toBe(CKR.KEY_HANDLE_INVALID);
    const a = await waitFor('failure_spike alert', alertOf('/first', 'anomaly_failure_spike'));
    expect(a.severity).toBe('critical');
    expect(a.action).toBe('page');
    expect(a.details.observed.top_rvs[0]).toEqual({ rv: 'CKR_KEY_HANDLE_INVALID', count: expect.any(Number) });
    expect(a.details.observed.top_rvs[0].count).toBeGreaterThanOrEqual(10);
    expect(a.details.explanation).toMatch(/^\d+ of \d+ calls failed \(\d+\.\d%\) in the 1 s bucket from \S+, \d+\.\d points above the learned failure ratio of \d+\.\d% \(threshold \+50\.0 points\); most frequent: CKR_KEY_HANDLE_INVALID ×\d+/);
  });

  it('every anomaly is a UsageAnomaly audit entry and counted in /metrics', async () => {
    const entries = await waitFor('audit entries', () => {
      const es = auditEntries(d).filter((e) => e.operation === 'UsageAnomaly');
      return es.length >= 4 ? es : undefined;
    });
    const kinds = new Set(entries.map((e) => e.details.anomaly));
    for (const k of ['new_key', 'new_mechanism', 'rate_high', 'failure_spike']) expect(kinds).toContain(k);
    const rate = entries.find((e) => e.details.anomaly === 'rate_high')!;
    expect(rate.details.explanation).toContain('σ above the learned mean');
    expect(auditEntries(d).some((e) => e.operation === 'UsageAnomalyResolved' && e.details.anomaly === 'rate_high')).toBe(true);

    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const value = (kind: string) => Number(new RegExp(`^craton_hsm_anomaly_alerts_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
    expect(value('new_key')).toBeGreaterThanOrEqual(1);
    expect(value('new_mechanism')).toBeGreaterThanOrEqual(1);
    expect(value('rate_high')).toBeGreaterThanOrEqual(1);
    expect(value('failure_spike')).toBe(1);
    expect(text).toMatch(/^craton_hsm_anomaly_clients_tracked\{state="warm"\} [1-9]/m);
  });

  it('persists what it learned: after a restart a deviation alerts at once, learned use does not', async () => {
    m!.close();
    m = undefined;
    await d.stop();
    const file = path.join(d.dataDir, 'anomaly', 'baselines.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = readFileSync(file, 'utf8');
    expect(saved).toContain(keyBId);
    expect(saved).not.toContain('anomaly-key-b'); // labels are not kept
    // no PIN among the values (a digits-only PIN can turn up inside a hash or a number by chance)
    expect((saved.match(/"(?:[^"\\]|\\.)*"/g) ?? []).filter((v) => !/^"[0-9a-fA-F]*"$/.test(v) && v.includes(USER_PIN))).toEqual([]);

    const second = await anomalyDaemon('/second', d.dataDir);
    d = second.d;
    m = loadModule(d.socketPath);
    p11 = m.p11;
    const slot = p11.C_GetSlotList(true)[0]!;
    s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.USER, USER_PIN);
    digest(p11, s); // learned before the restart
    digest(p11, s, CKM.SHA512); // never used
    const a = await waitFor('new_mechanism after restart', alertOf('/second', 'anomaly_new_mechanism', (b) => b.details.mechanism === 'CKM_SHA512'));
    expect(a.details.baseline.mechanisms_used).toEqual(expect.arrayContaining(['CKM_SHA256', 'CKM_SHA384', 'CKM_ECDSA_SHA256']));
    // one sink delivers in order: nothing about the learned SHA-256 came before it
    expect(hooks.filter((h) => h.path === '/second' && h.body.kind === 'anomaly_new_mechanism').map((h) => h.body.details.mechanism)).toEqual(['CKM_SHA512']);
    expect(d.stderr()).toMatch(/anomaly: 1 client baseline\(s\) loaded/);
  });
});

// A busier steady pattern (30 digests + 1 signature per bucket, about 62 calls) so the band
// has a lower edge worth judging (rate_floor = 10: σ ≥ 2.5), then: a lull between active
// buckets (rate_low), failures concentrated on one key (failure_spike naming it), and a
// burst that spans a restart (one page, resolved by the restarted daemon).
describe('rate_low, per-key failures and incidents across a restart, through the real module', () => {
  let d: Daemon;
  let m: LoadedModule | undefined;
  let p11: PKCS11;
  let s: Buffer;
  let keyA: Buffer;

  const lowDaemon = (hookPath: string, dataDir?: string) =>
    startMetricsDaemon({
      slots: 1,
      dataDir,
      extraToml: [
        '[anomaly]',
        'bucket_seconds = 1',
        'warmup_buckets = 4',
        'half_life_buckets = 50',
        'rate_sigma = 4.0',
        'rate_floor = 10',
        'rate_low_min_calls = 10',
        'failure_ratio = 0.5',
        'min_failures = 10',
        'unusual_hour = false',
        'save_interval_seconds = 3600',
        '[alerts.webhook]',
        `url = "${hookBase}${hookPath}"`,
        '',
      ].join('\n'),
    }).then((x) => x.d);

  function steady(): void {
    for (let i = 0; i < 30; i++) digest(p11, s);
    sign(p11, s, keyA);
  }

  beforeAll(async () => {
    d = await lowDaemon('/low');
    m = loadModule(d.socketPath);
    p11 = m.p11;
    // the setup calls share a bucket with the first round, so no near-empty first bucket
    // inflates the learned σ (the first buckets are a plain average)
    await nextBucket();
    ({ session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'anomaly-low' }));
    keyA = ecKey(p11, s, 'low-key-a');
    steady();
    for (let b = 0; b < 12; b++) {
      await nextBucket();
      steady();
    }
  }, 120_000);
  afterAll(async () => {
    m?.close();
    await d?.stop();
  });

  it('an active bucket with far fewer calls: rate_low says how many σ below the learned mean', async () => {
    await nextBucket();
    steady();
    await nextBucket();
    for (let i = 0; i < 3; i++) digest(p11, s); // the lull: 6 calls
    await nextBucket();
    steady(); // active again: the lull was not the end of a run
    const a = await waitFor('rate_low alert', alertOf('/low', 'anomaly_rate_low', (b) => b.details.baseline.scope === 'client'));
    expect(a.severity).toBe('warning');
    expect(a.action).toBe('ticket');
    expect(a.details.explanation).toMatch(
      /^\d+ calls in the 1 s bucket from \S+Z, \d+\.\d σ below the learned mean of \d+\.\d calls per bucket \(σ \d+\.\d.*band ≥ \d+\.\d, \d+ buckets learned\); the client was active in the buckets before and after it$/,
    );
    expect(a.details.observed.calls).toBeLessThan(a.details.baseline.band_lower);
    expect(a.details.baseline.band_lower).toBeGreaterThanOrEqual(10);
    expect(a.details.observed.sigmas_below).toBeGreaterThan(4);
    await waitFor('rate_low resolve', () => hooks.find((h) => h.path === '/low' && h.body.event_action === 'resolve' && h.body.dedup_key === a.dedup_key));
    expect(auditEntries(d).some((e) => e.operation === 'UsageAnomaly' && e.details.anomaly === 'rate_low' && e.details.explanation.includes('σ below'))).toBe(true);
  });

  it('failures concentrated on one key: failure_spike names the key', async () => {
    await nextBucket();
    // the private key has no CKA_VERIFY: its use is refused, call after call
    for (let i = 0; i < 30; i++) expect(rvOf(() => p11.C_VerifyInit(s, { mechanism: CKM.ECDSA_SHA256 }, keyA))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    const a = await waitFor('failure_spike naming the key', alertOf('/low', 'anomaly_failure_spike'));
    expect(a.action).toBe('page');
    expect(a.details.key.label).toBe('low-key-a');
    expect(a.details.key.id).toMatch(/^slot-0\/\S+$/);
    expect(a.details.observed.key_failures).toEqual({ key: a.details.key.id, failures: expect.any(Number) });
    expect(a.details.explanation).toMatch(/most frequent: CKR_KEY_FUNCTION_NOT_PERMITTED ×\d+; \d+ of the \d+ failures with key slot-0\/\S+ \(label "low-key-a"\)$/);
    expect(a.details.explanation).toContain(`failures with key ${a.details.key.id} `);
  });

  it('a burst that goes on across a restart pages once and is resolved by the restarted daemon', async () => {
    let trigger: Record<string, any> | undefined;
    // burst until the page arrives, and keep the client busy up to the stop: an idle bucket
    // before the save would (rightly) resolve it
    for (let round = 0; !trigger; round++) {
      if (round > 60) throw new Error('no rate_high page after 60 burst rounds');
      for (let i = 0; i < 500; i++) digest(p11, s);
      await new Promise((r) => setTimeout(r, 50));
      trigger = alertOf('/low', 'anomaly_rate_high', (b) => b.details.baseline.scope === 'client')();
    }
    for (let i = 0; i < 200; i++) digest(p11, s);
    m!.close();
    m = undefined;
    await d.stop();
    const saved = JSON.parse(readFileSync(path.join(d.dataDir, 'anomaly', 'baselines.json'), 'utf8'));
    expect(saved.version).toBe(2);
    expect(saved.clients.some((c: { open?: string[] }) => c.open?.includes('rate_high'))).toBe(true);
    const resolvedRate = () => auditEntries(d).filter((e) => e.operation === 'UsageAnomalyResolved' && e.details.anomaly === 'rate_high').length;
    const resolvedBefore = resolvedRate();

    d = await lowDaemon('/low2', d.dataDir);
    expect(d.stderr()).toMatch(/anomaly: \d+ client baseline\(s\) loaded, \d+ open incident\(s\)/);
    m = loadModule(d.socketPath);
    p11 = m.p11;
    s = p11.C_OpenSession(p11.C_GetSlotList(true)[0]!, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.USER, USER_PIN);
    p11.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.LABEL, value: 'low-key-a' }]);
    keyA = p11.C_FindObjects(s, 1)[0]!;
    p11.C_FindObjectsFinal(s);
    // The burst goes on, filling three whole buckets: a burst that ended early in a bucket
    // (a slow machine) would leave a short bucket, which rightly reads as the burst's end.
    const burstUntil = (Math.floor(Date.now() / BUCKET_MS) + 3) * BUCKET_MS;
    while (Date.now() < burstUntil) for (let i = 0; i < 25; i++) digest(p11, s);
    for (let b = 0; b < 3; b++) {
      steady(); // back to normal
      await nextBucket();
    }
    const resolved = await waitFor('rate_high resolved after the restart', () =>
      hooks.find((h) => h.path === '/low2' && h.body.event_action === 'resolve' && h.body.dedup_key === trigger!.dedup_key),
    );
    expect(resolved.body.kind).toBe('anomaly_rate_high');
    // one sink delivers in order: no second page for the same burst came before it
    expect(hooks.filter((h) => h.path === '/low2' && h.body.event_action === 'trigger' && h.body.kind === 'anomaly_rate_high')).toEqual([]);
    expect(resolvedRate()).toBeGreaterThan(resolvedBefore);
  });
});
