// What is learned about one client (uid + executable) and about each key it uses: calls per
// active bucket and the failure ratio (EWMA, ewma.ts), the mechanisms used, the keys used,
// and for the client the UTC hours it is active in. Only identifiers and counts: a key is
// its "slot-N/uid" id, never its value or label.
import { emptyEwma, learn, type Ewma } from './ewma.js';
import type { Finding } from './detector.js';

/** The [anomaly] settings the learning and the checks use (config/types.ts mirrors them). */
export interface AnomalySettings {
  bucketSeconds: number;
  /** Active buckets a client (or a client's key) is learned for before it can alert. */
  warmupBuckets: number;
  halfLifeBuckets: number;
  rateSigma: number;
  /** The rate band is at least this many calls per bucket above (and below) the mean. */
  rateFloor: number;
  /** Report active buckets below the band (rate_low) … */
  rateLow: boolean;
  /** … when the band's lower edge is at least this many calls per bucket. */
  rateLowMinCalls: number;
  /** A bucket is a failure spike when its failure ratio exceeds the learned ratio by this much … */
  failureRatio: number;
  /** … and it holds at least this many failures. */
  minFailures: number;
  newMechanism: boolean;
  newKey: boolean;
  unusualHour: boolean;
  maxClients: number;
  maxKeysPerClient: number;
}

/** The findings that stay open while their deviation lasts and are resolved when it ends. */
export type IncidentKind = 'rate_high' | 'rate_low' | 'failure_spike';
export const INCIDENT_KINDS: readonly IncidentKind[] = ['rate_high', 'rate_low', 'failure_spike'];

/** The bucket being counted (not persisted: a restart starts a fresh one). */
export interface Bucket {
  start: number;
  calls: number;
  failures: number;
  rvs: Map<number, number>;
}

export interface Series {
  firstSeen: number;
  lastSeen: number;
  rate: Ewma;
  fail: Ewma;
  /** Mechanism → last time used (ms). */
  mechanisms: Map<number, number>;
  bucket: Bucket | null;
  /** End (ms) of the last bucket closed; an idle bucket after it closes open incidents. */
  lastClosedEnd: number;
  /** Incidents raised and not yet resolved (persisted, store.ts). */
  open: Record<IncidentKind, boolean>;
  /** A closed bucket below the band, reported only once the client is active in the bucket
   * right after it: the last bucket of a run of activity is usually cut short, not low. */
  lowPending: { start: number; finding: Finding } | null;
}

export interface ClientBaseline extends Series {
  uid: number;
  exe: string | null;
  /** Short stable id for dedup keys: hash of uid and exe. */
  id: string;
  keys: Map<string, Series>;
  /** Active buckets per UTC hour of day. */
  hours: number[];
}

export function newSeries(now: number): Series {
  return { firstSeen: now, lastSeen: now, rate: emptyEwma(), fail: emptyEwma(), mechanisms: new Map(), bucket: null, lastClosedEnd: 0, open: { rate_high: false, rate_low: false, failure_spike: false }, lowPending: null };
}

export function newClient(uid: number, exe: string | null, id: string, now: number): ClientBaseline {
  return { ...newSeries(now), uid, exe, id, keys: new Map(), hours: new Array<number>(24).fill(0) };
}

export const bucketStart = (at: number, bucketMs: number): number => Math.floor(at / bucketMs) * bucketMs;

export const isWarm = (s: Series, settings: AnomalySettings): boolean => s.rate.n >= settings.warmupBuckets;

export const anyOpen = (s: Series): boolean => s.open.rate_high || s.open.rate_low || s.open.failure_spike;

/** Learns one closed bucket. `rateMin`/`rateCap`/`learnFail` come from the detector: a bucket
 * that left the band is learned at the band's edge, and a failure spike is not learned, so
 * one burst (or one lull) neither widens the band nor makes failures normal; a lasting shift
 * still moves the mean, one band-width per bucket. */
export function learnBucket(s: Series, b: Bucket, alpha: number, rateMin: number, rateCap: number, learnFail: boolean): void {
  learn(s.rate, Math.min(Math.max(b.calls, rateMin), rateCap), alpha);
  if (learnFail) learn(s.fail, b.calls > 0 ? b.failures / b.calls : 0, alpha);
}

/** Least recently seen entry of a map of series, for eviction. */
export function leastRecent<K, V extends { lastSeen: number }>(m: Map<K, V>): K | undefined {
  let oldest: K | undefined;
  let t = Infinity;
  for (const [k, v] of m) {
    if (v.lastSeen < t) {
      t = v.lastSeen;
      oldest = k;
    }
  }
  return oldest;
}
