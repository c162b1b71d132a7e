// Compares each call, and each closed bucket, with what was learned for its client and
// key, and says what left which baseline and by how much. Time comes only from the
// observations and tick(now), so tests drive it without a clock: a bucket closes when a
// later call (or a tick) falls past its end.
import { createHash } from 'node:crypto';
import { CKR, mechanismName, rvName } from '../pkcs11/index.js';
import { alphaFromHalfLife, band, sigmasAbove, sigmasBelow } from './ewma.js';
import {
  anyOpen,
  bucketStart,
  INCIDENT_KINDS,
  isWarm,
  learnBucket,
  leastRecent,
  newClient,
  newSeries,
  type AnomalySettings,
  type Bucket,
  type ClientBaseline,
  type IncidentKind,
  type Series,
} from './baseline.js';

export type AnomalyKind = 'new_key' | 'new_mechanism' | 'rate_high' | 'rate_low' | 'failure_spike' | 'unusual_hour';
export const ANOMALY_KINDS: readonly AnomalyKind[] = ['new_key', 'new_mechanism', 'rate_high', 'rate_low', 'failure_spike', 'unusual_hour'];

/** One completed call as the detector sees it (anomaly/identity.ts builds it). */
export interface Observation {
  /** Milliseconds since the epoch. */
  at: number;
  uid: number;
  exe: string | null;
  fn: string;
  rv: number;
  mechanism?: number;
  /** The token key the call used (not one it created). */
  key?: { id: string; label?: () => string | undefined };
}

export interface Finding {
  action: 'trigger' | 'resolve';
  kind: AnomalyKind;
  severity: 'critical' | 'warning' | 'info';
  client: { uid: number; exe: string | null; id: string };
  key?: { id: string; label?: string };
  mechanism?: string;
  call?: string;
  /** ISO time of the call or of the bucket's start. */
  at: string;
  /** The learned values the observation was compared with. */
  baseline: Record<string, unknown>;
  observed: Record<string, unknown>;
  /** Which baseline was left and by how much, in one sentence. */
  deviation: string;
  /** One line for the alert: kind, client, deviation. */
  summary: string;
  /** Starts with the alert kind (anomaly_<kind>), as alerts/ resolve() expects. */
  dedupKey: string;
}

/** Results that are normal answers, not failures: length queries, attributes a caller may
 * not read, a second login by the same application. */
const BENIGN = new Set<number>([CKR.OK, CKR.BUFFER_TOO_SMALL, CKR.ATTRIBUTE_SENSITIVE, CKR.ATTRIBUTE_TYPE_INVALID, CKR.USER_ALREADY_LOGGED_IN]);

const DAY_MS = 24 * 3600_000;
/** After a restart the downtime and the client's reconnect are not idleness: an incident
 * restored from the baselines file waits this many buckets for the client to come back
 * before it is resolved as idle. */
export const RESTORED_IDLE_BUCKETS = 10;
const LIST_MAX = 8;

interface CountedBucket extends Bucket {
  spikeRaised?: boolean;
  hourChecked?: boolean;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const fmt = (x: number): string => x.toFixed(1);
const iso = (ms: number): string => new Date(ms).toISOString();
const list = (xs: string[]): string => (xs.length === 0 ? 'none' : xs.length > LIST_MAX ? `${xs.slice(0, LIST_MAX).join(', ')} and ${xs.length - LIST_MAX} more` : xs.join(', '));
const clientName = (c: ClientBaseline): string => `uid ${c.uid} ${c.exe ?? '(executable unknown)'}`;

export function clientId(uid: number, exe: string | null): string {
  return createHash('sha256').update(`${uid}\0${exe ?? ''}`).digest('hex').slice(0, 12);
}

/** The key of Detector.clients. */
export const clientKey = (uid: number, exe: string | null): string => `${uid}\0${exe ?? ''}`;

export class Detector {
  readonly clients = new Map<string, ClientBaseline>();
  /** uid → exe → client: the per-call lookup without building a string. */
  private readonly byUid = new Map<number, Map<string | null, ClientBaseline>>();
  /** Triggers emitted per kind since start (the metrics counter). */
  readonly raised: Record<AnomalyKind, number> = { new_key: 0, new_mechanism: 0, rate_high: 0, rate_low: 0, failure_spike: 0, unusual_hour: 0 };
  /** When saved baselines were restored (ms; 0: never). Each series' first bucket after it
   * is cut short, and idleness is measured from it (store.ts sets it). */
  resumedAt = 0;
  private readonly alpha: number;
  private readonly bucketMs: number;

  constructor(readonly settings: AnomalySettings) {
    this.alpha = alphaFromHalfLife(settings.halfLifeBuckets);
    this.bucketMs = settings.bucketSeconds * 1000;
  }

  /** Learns one call and returns what it deviates in (empty during warm-up). */
  observe(o: Observation): Finding[] {
    const s = this.settings;
    const out: Finding[] = [];
    const c = this.client(o.uid, o.exe, o.at);
    this.roll(c, c, undefined, o.at, out);
    this.confirmLow(c, o.at, out);
    const warm = isWarm(c, s);
    c.lastSeen = o.at;

    let ks: Series | undefined;
    if (o.key) {
      ks = c.keys.get(o.key.id);
      if (!ks) {
        if (warm && s.newKey) out.push(this.newKey(c, o));
        ks = newSeries(o.at);
        c.keys.set(o.key.id, ks);
        if (c.keys.size > s.maxKeysPerClient) c.keys.delete(leastRecent(c.keys)!);
      } else {
        this.roll(c, ks, o.key.id, o.at, out);
        this.confirmLow(ks, o.at, out);
      }
      ks.lastSeen = o.at;
    }

    if (o.mechanism !== undefined) {
      const m = o.mechanism;
      if (!c.mechanisms.has(m)) {
        if (warm && s.newMechanism) out.push(this.newMechanism(c, undefined, o));
      } else if (ks && o.key && warm && s.newMechanism && isWarm(ks, s) && !ks.mechanisms.has(m)) {
        out.push(this.newMechanism(c, ks, o));
      }
      c.mechanisms.set(m, o.at);
      ks?.mechanisms.set(m, o.at);
    }

    const failed = !BENIGN.has(o.rv);
    const cb = this.count(c, o, failed);
    const kb = ks ? this.count(ks, o, failed) : undefined;

    if (warm && s.unusualHour && !cb.hourChecked) {
      cb.hourChecked = true;
      const hour = new Date(o.at).getUTCHours();
      if (o.at - c.firstSeen >= DAY_MS && c.hours[hour] === 0) out.push(this.unusualHour(c, o, hour));
    }
    if (warm && failed && !c.open.failure_spike && !cb.spikeRaised && this.isSpike(c, cb)) {
      cb.spikeRaised = true;
      c.open.failure_spike = true;
      out.push(this.failureSpike(c, undefined, cb, o));
    }
    // One key failing against its own learned ratio while the client as a whole does not
    // spike (its other calls dilute the ratio). While the client's incident is open, that
    // alert already names the key the failures concentrate on: no second page.
    if (warm && failed && ks && kb && isWarm(ks, s) && !c.open.failure_spike && !ks.open.failure_spike && !kb.spikeRaised && this.isSpike(ks, kb)) {
      kb.spikeRaised = true;
      ks.open.failure_spike = true;
      out.push(this.failureSpike(c, ks, kb, o));
    }
    return this.tally(out);
  }

  /** Closes every bucket that ended by `now` and resolves incidents of idle clients. */
  tick(now: number): Finding[] {
    const out: Finding[] = [];
    for (const c of this.clients.values()) {
      this.roll(c, c, undefined, now, out);
      for (const [id, ks] of c.keys) this.roll(c, ks, id, now, out);
    }
    return this.tally(out);
  }

  private tally(out: Finding[]): Finding[] {
    for (const f of out) if (f.action === 'trigger') this.raised[f.kind]++;
    return out;
  }

  private client(uid: number, exe: string | null, now: number): ClientBaseline {
    const c = this.byUid.get(uid)?.get(exe);
    if (c) return c;
    const n = newClient(uid, exe, clientId(uid, exe), now);
    this.add(n);
    if (this.clients.size > this.settings.maxClients) this.forget(leastRecent(this.clients)!);
    return n;
  }

  /** Adds a client baseline (store.ts restores through this). */
  add(c: ClientBaseline): void {
    this.clients.set(clientKey(c.uid, c.exe), c);
    let m = this.byUid.get(c.uid);
    if (!m) this.byUid.set(c.uid, (m = new Map()));
    m.set(c.exe, c);
  }

  private forget(key: string): void {
    const c = this.clients.get(key);
    if (!c) return;
    this.clients.delete(key);
    const m = this.byUid.get(c.uid);
    m?.delete(c.exe);
    if (m?.size === 0) this.byUid.delete(c.uid);
  }

  /** Forgets every client (a baselines file that could not be read). */
  clear(): void {
    this.clients.clear();
    this.byUid.clear();
  }

  private count(series: Series, o: Observation, failed: boolean): CountedBucket {
    let b = series.bucket as CountedBucket | null;
    if (!b) {
      b = { start: bucketStart(o.at, this.bucketMs), calls: 0, failures: 0, rvs: new Map() };
      series.bucket = b;
    }
    b.calls++;
    if (failed) {
      b.failures++;
      b.rvs.set(o.rv, (b.rvs.get(o.rv) ?? 0) + 1);
    }
    return b;
  }

  /** Reports a bucket judged below the band once the series is active in the next bucket. */
  private confirmLow(series: Series, at: number, out: Finding[]): void {
    const p = series.lowPending;
    if (!p) return;
    const next = p.start + this.bucketMs;
    const cur = bucketStart(at, this.bucketMs);
    if (cur < next) return;
    series.lowPending = null;
    if (cur === next && !series.open.rate_low) {
      series.open.rate_low = true;
      out.push(p.finding);
    }
  }

  /** Dedup keys of the incidents open now (index.ts hands the restored ones to alerts/). */
  openDedupKeys(): string[] {
    const out: string[] = [];
    for (const c of this.clients.values()) {
      for (const k of INCIDENT_KINDS) if (c.open[k]) out.push(`anomaly_${k}:${c.id}`);
      for (const [id, ks] of c.keys) for (const k of INCIDENT_KINDS) if (ks.open[k]) out.push(`anomaly_${k}:${c.id}:${id}`);
    }
    return out;
  }

  private isSpike(series: Series, b: Bucket): boolean {
    return b.failures >= this.settings.minFailures && b.failures / b.calls - series.fail.mean >= this.settings.failureRatio;
  }

  /** Closes the series' bucket once `now` is past its end: judges its rate against the band
   * learned so far, then learns it. A series with open incidents and no bucket for a whole
   * bucket length is idle, which is back in band (idleness is never an anomaly). */
  private roll(c: ClientBaseline, series: Series, keyId: string | undefined, now: number, out: Finding[]): void {
    const b = series.bucket as CountedBucket | null;
    const s = this.settings;
    if (!b) {
      if (series.lowPending && now >= series.lowPending.start + 2 * this.bucketMs) series.lowPending = null;
      if (!anyOpen(series)) return;
      const restored = series.lastClosedEnd < this.resumedAt;
      if (now < (restored ? this.resumedAt + RESTORED_IDLE_BUCKETS * this.bucketMs : series.lastClosedEnd + this.bucketMs)) return;
      const why = restored
        ? `no calls in the ${RESTORED_IDLE_BUCKETS} buckets of ${s.bucketSeconds} s after the restart at ${iso(this.resumedAt)}`
        : `no calls in the ${s.bucketSeconds} s bucket after ${iso(series.lastClosedEnd)}`;
      for (const k of INCIDENT_KINDS) {
        if (!series.open[k]) continue;
        series.open[k] = false;
        out.push(this.resolved(c, k, keyId, why, now));
      }
      return;
    }
    if (now < b.start + this.bucketMs) return;
    series.bucket = null;
    const prevActive = series.lastClosedEnd === b.start;
    // The series' first bucket after a restart is cut short by the restart and the client's
    // reconnect: it can show a burst, a spike or enough calls, never that a burst or a spike ended.
    const partial = series.lastClosedEnd < this.resumedAt;
    series.lastClosedEnd = b.start + this.bucketMs;
    const warm = isWarm(c, s) && isWarm(series, s);
    const rb = band(series.rate, s.rateSigma, s.rateFloor);
    const high = warm && b.calls > rb.upper;
    if (high && !series.open.rate_high) {
      series.open.rate_high = true;
      out.push(this.rateFinding('high', c, series, keyId, b, rb));
    } else if (!high && series.open.rate_high && !partial) {
      series.open.rate_high = false;
      out.push(this.resolved(c, 'rate_high', keyId, `${b.calls} calls in the ${s.bucketSeconds} s bucket from ${iso(b.start)}, within the band ≤ ${fmt(rb.upper)}`, now));
    }
    // Below the band only where the band's lower edge says many calls are normal, and only
    // between two active buckets (confirmLow): a run's first and last buckets are cut short.
    const low = warm && s.rateLow && rb.lower >= s.rateLowMinCalls && b.calls < rb.lower;
    if (low && !series.open.rate_low && prevActive) {
      series.lowPending = { start: b.start, finding: this.rateFinding('low', c, series, keyId, b, rb) };
    } else if (!low && series.open.rate_low) {
      series.open.rate_low = false;
      out.push(this.resolved(c, 'rate_low', keyId, `${b.calls} calls in the ${s.bucketSeconds} s bucket from ${iso(b.start)}, within the band ≥ ${fmt(rb.lower)}`, now));
    }
    const spike = warm && this.isSpike(series, b);
    if (series.open.failure_spike && !spike && !partial) {
      series.open.failure_spike = false;
      out.push(
        this.resolved(c, 'failure_spike', keyId, `${b.failures} of ${b.calls} calls${keyId ? ` with key ${keyId}` : ''} failed in the bucket from ${iso(b.start)}, back within the failure threshold`, now),
      );
    }
    learnBucket(series, b, this.alpha, low ? rb.lower : 0, warm ? rb.upper : Infinity, !spike);
    if (series === c) c.hours[new Date(b.start).getUTCHours()]!++;
  }

  // ---- findings

  private base(c: ClientBaseline, kind: AnomalyKind, severity: Finding['severity'], at: number, dedupTail: string, deviation: string): Finding {
    const client = { uid: c.uid, exe: c.exe, id: c.id };
    return {
      action: 'trigger',
      kind,
      severity,
      client,
      at: iso(at),
      baseline: {},
      observed: {},
      deviation,
      summary: `usage anomaly ${kind} from ${clientName(c)}: ${deviation}`,
      dedupKey: `anomaly_${kind}:${c.id}${dedupTail}`,
    };
  }

  private newKey(c: ClientBaseline, o: Observation): Finding {
    const id = o.key!.id;
    const label = o.key!.label?.();
    const known = [...c.keys.keys()];
    const deviation = `first use of key ${id}${label !== undefined ? ` (label ${JSON.stringify(label)})` : ''} (${o.fn}); in ${c.rate.n} learned buckets it used ${known.length} other key(s): ${list(known)}`;
    const f = this.base(c, 'new_key', 'warning', o.at, `:${id}`, deviation);
    f.key = { id, label };
    f.call = o.fn;
    if (o.mechanism !== undefined) f.mechanism = mechanismName(o.mechanism);
    f.baseline = { keys_used: known.slice(0, 64), buckets_learned: c.rate.n };
    f.observed = { key: id, call: o.fn, rv: rvName(o.rv) };
    return f;
  }

  private newMechanism(c: ClientBaseline, ks: Series | undefined, o: Observation): Finding {
    const m = mechanismName(o.mechanism!);
    const learnedFrom = ks ?? c;
    const known = [...learnedFrom.mechanisms.keys()].map(mechanismName);
    const keyId = ks ? o.key!.id : o.key?.id;
    const deviation = ks
      ? `first use of ${m} with key ${keyId} by this client (${o.fn}); in ${ks.rate.n} learned buckets the key was used with: ${list(known)}`
      : `first use of ${m} by this client (${o.fn}, ${rvName(o.rv)}); in ${c.rate.n} learned buckets it used: ${list(known)}`;
    const f = this.base(c, 'new_mechanism', 'warning', o.at, `${ks ? `:${keyId}` : ''}:${m}`, deviation);
    f.mechanism = m;
    f.call = o.fn;
    if (keyId !== undefined) f.key = { id: keyId, label: o.key?.label?.() };
    f.baseline = { scope: ks ? 'key' : 'client', mechanisms_used: known.slice(0, 64), buckets_learned: learnedFrom.rate.n };
    f.observed = { mechanism: m, call: o.fn, rv: rvName(o.rv) };
    return f;
  }

  /** A bucket outside the learned band, above or below, with its distance in σ. */
  private rateFinding(dir: 'high' | 'low', c: ClientBaseline, series: Series, keyId: string | undefined, b: Bucket, rb: ReturnType<typeof band>): Finding {
    const s = this.settings;
    const high = dir === 'high';
    const z = high ? sigmasAbove(rb, b.calls) : sigmasBelow(rb, b.calls);
    const edge = high ? `band ≤ ${fmt(rb.upper)}` : `band ≥ ${fmt(rb.lower)}`;
    const deviation =
      `${b.calls} calls${keyId ? ` with key ${keyId}` : ''} in the ${s.bucketSeconds} s bucket from ${iso(b.start)}, ${fmt(z)} σ ${high ? 'above' : 'below'} the learned mean of ` +
      `${fmt(rb.mean)} calls per bucket (σ ${fmt(rb.sigmaEff)}${rb.sigmaEff > rb.sigma ? ` = floor ${s.rateFloor}/${s.rateSigma}, learned σ ${fmt(rb.sigma)}` : ''}, ${edge}, ${series.rate.n} buckets learned)` +
      (high ? '' : `; ${keyId ? 'the key was used' : 'the client was active'} in the buckets before and after it`);
    // Twice the alerting distance above is no longer a busy minute but a different workload.
    const severity = high && z >= 2 * s.rateSigma ? 'critical' : 'warning';
    const f = this.base(c, high ? 'rate_high' : 'rate_low', severity, b.start, keyId ? `:${keyId}` : '', deviation);
    if (keyId) f.key = { id: keyId };
    f.baseline = {
      scope: keyId ? 'key' : 'client',
      mean: round(rb.mean),
      sigma: round(rb.sigma),
      sigma_used: round(rb.sigmaEff),
      ...(high ? { band_upper: round(rb.upper) } : { band_lower: round(rb.lower) }),
      buckets_learned: series.rate.n,
      bucket_seconds: s.bucketSeconds,
    };
    f.observed = high ? { calls: b.calls, sigmas_above: round(z), bucket_start: iso(b.start) } : { calls: b.calls, sigmas_below: round(z), bucket_start: iso(b.start) };
    return f;
  }

  /** The client's failure spike (`ks` undefined), or one key's against its own baseline. */
  private failureSpike(c: ClientBaseline, ks: Series | undefined, b: Bucket, o: Observation): Finding {
    const s = this.settings;
    const learned = ks ?? c;
    const keyId = ks ? o.key!.id : undefined;
    const ratio = b.failures / b.calls;
    const top = [...b.rvs.entries()].sort((x, y) => y[1] - x[1]).slice(0, 3);
    const conc = ks ? undefined : this.concentration(c, b);
    const label = (id: string): string | undefined => (o.key?.id === id ? o.key.label?.() : undefined);
    const named = (id: string): string => {
      const l = label(id);
      return `key ${id}${l !== undefined ? ` (label ${JSON.stringify(l)})` : ''}`;
    };
    const deviation =
      `${b.failures} of ${b.calls} calls${keyId ? ` with ${named(keyId)}` : ''} failed (${pct(ratio)}) in the ${s.bucketSeconds} s bucket from ${iso(b.start)}, ` +
      `${fmt((ratio - learned.fail.mean) * 100)} points above the ${ks ? "key's " : ''}learned failure ratio of ${pct(learned.fail.mean)} (threshold +${fmt(s.failureRatio * 100)} points); ` +
      `most frequent: ${top.map(([rv, n]) => `${rvName(rv)} ×${n}`).join(', ')}` +
      (conc ? `; ${conc.failures} of the ${b.failures} failures with ${named(conc.id)}` : '');
    const f = this.base(c, 'failure_spike', 'critical', o.at, keyId ? `:${keyId}` : '', deviation);
    f.call = o.fn;
    const keyNamed = keyId ?? conc?.id;
    if (keyNamed !== undefined) f.key = { id: keyNamed, label: label(keyNamed) };
    f.baseline = { scope: ks ? 'key' : 'client', failure_ratio: round(learned.fail.mean), buckets_learned: learned.fail.n, threshold_points: s.failureRatio, min_failures: s.minFailures };
    f.observed = { failures: b.failures, calls: b.calls, failure_ratio: round(ratio), top_rvs: top.map(([rv, n]) => ({ rv: rvName(rv), count: n })) };
    if (conc) f.observed.key_failures = { key: conc.id, failures: conc.failures };
    return f;
  }

  /** The key that holds at least half of the client's failures in bucket `b`, if one does. */
  private concentration(c: ClientBaseline, b: Bucket): { id: string; failures: number } | undefined {
    let best: { id: string; failures: number } | undefined;
    for (const [id, ks] of c.keys) {
      const kb = ks.bucket;
      if (kb && kb.start === b.start && kb.failures > (best?.failures ?? 0)) best = { id, failures: kb.failures };
    }
    return best && best.failures * 2 >= b.failures ? best : undefined;
  }

  private unusualHour(c: ClientBaseline, o: Observation, hour: number): Finding {
    const active = c.hours.flatMap((n, h) => (n > 0 ? [`${String(h).padStart(2, '0')}`] : []));
    const hh = String(hour).padStart(2, '0');
    const deviation = `active at ${hh}:00–${hh}:59 UTC (${o.fn}), an hour with no activity in ${c.rate.n} learned buckets since ${iso(c.firstSeen)}; active hours (UTC): ${list(active)}`;
    const f = this.base(c, 'unusual_hour', 'warning', o.at, `:${hh}`, deviation);
    f.call = o.fn;
    f.baseline = { active_hours_utc: c.hours.map((n) => n), buckets_learned: c.rate.n };
    f.observed = { hour_utc: hour };
    return f;
  }

  private resolved(c: ClientBaseline, kind: IncidentKind, keyId: string | undefined, why: string, at: number): Finding {
    const f = this.base(c, kind, 'info', at, keyId ? `:${keyId}` : '', why);
    f.action = 'resolve';
    f.summary = `usage anomaly ${kind} from ${clientName(c)} resolved: ${why}`;
    if (keyId) f.key = { id: keyId };
    return f;
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
