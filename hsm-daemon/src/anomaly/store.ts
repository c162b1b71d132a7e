// The learned baselines on disk: data_dir/anomaly/baselines.json (0600), replaced durably
// (store/atomic-file.ts) every [anomaly] save_interval_seconds and at a clean shutdown.
// Only identities (uid, executable path, "slot-N/uid" key ids, mechanism numbers), counts
// and learned statistics: never key material, labels or data. Open incidents (a rate
// deviation or failure spike in progress) are kept, so a deviation that continues across a
// restart does not page again and a bucket back in band still resolves it. The bucket in
// progress is not kept; a restart starts a fresh bucket.
//
// Versions: 1 had no open incidents (still loaded); 2 adds `open` to a series, written only
// when one is open.
import path from 'node:path';
import { CoalescingWriter, readIfExists, replaceFileDurably } from '../store/atomic-file.js';
import type { Ewma } from './ewma.js';
import { INCIDENT_KINDS, newClient, newSeries, type ClientBaseline, type IncidentKind, type Series } from './baseline.js';
import { clientId, type Detector } from './detector.js';

export const BASELINES_VERSION = 2;
const READABLE_VERSIONS = new Set([1, 2]);

export function baselinesPath(dataDir: string): string {
  return path.join(dataDir, 'anomaly', 'baselines.json');
}

interface SeriesJson {
  first_seen: number;
  last_seen: number;
  rate: Ewma;
  fail: Ewma;
  mechanisms: Array<[number, number]>;
  /** Incidents open when saved (version 2; absent when none). */
  open?: IncidentKind[];
}
interface ClientJson extends SeriesJson {
  uid: number;
  exe: string | null;
  hours: number[];
  keys: Array<SeriesJson & { id: string }>;
}
export interface BaselinesJson {
  version: number;
  bucket_seconds: number;
  saved_at: string;
  clients: ClientJson[];
}

function seriesJson(s: Series): SeriesJson {
  const j: SeriesJson = { first_seen: s.firstSeen, last_seen: s.lastSeen, rate: { ...s.rate }, fail: { ...s.fail }, mechanisms: [...s.mechanisms.entries()] };
  const open = INCIDENT_KINDS.filter((k) => s.open[k]);
  if (open.length > 0) j.open = open;
  return j;
}

export function serialize(d: Detector, now = Date.now()): BaselinesJson {
  return {
    version: BASELINES_VERSION,
    bucket_seconds: d.settings.bucketSeconds,
    saved_at: new Date(now).toISOString(),
    clients: [...d.clients.values()].map((c) => ({
      uid: c.uid,
      exe: c.exe,
      ...seriesJson(c),
      hours: [...c.hours],
      keys: [...c.keys.entries()].map(([id, k]) => ({ id, ...seriesJson(k) })),
    })),
  };
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isEwma = (v: unknown): v is Ewma => typeof v === 'object' && v !== null && isNum((v as Ewma).n) && isNum((v as Ewma).mean) && isNum((v as Ewma).var);

function restoreSeries(into: Series, j: SeriesJson, rates: boolean): void {
  if (!isNum(j.first_seen) || !isNum(j.last_seen) || !isEwma(j.rate) || !isEwma(j.fail) || !Array.isArray(j.mechanisms)) throw new Error('malformed series');
  into.firstSeen = j.first_seen;
  into.lastSeen = j.last_seen;
  if (rates) {
    into.rate = { n: j.rate.n, mean: j.rate.mean, var: j.rate.var };
    into.fail = { n: j.fail.n, mean: j.fail.mean, var: j.fail.var };
  }
  for (const [m, t] of j.mechanisms) if (isNum(m) && isNum(t)) into.mechanisms.set(m, t);
  // Incidents are judged against the rates: dropped with them. Unknown kinds (a newer
  // daemon's) are ignored.
  if (rates && j.open !== undefined) {
    if (!Array.isArray(j.open)) throw new Error('malformed open incidents');
    for (const k of j.open) if ((INCIDENT_KINDS as readonly unknown[]).includes(k)) into.open[k as IncidentKind] = true;
  }
}

/** Loads saved baselines into an empty detector at time `now`. Returns a note for the log;
 * throws on a malformed file. Rates learned with another bucket length do not compare, so
 * they are dropped with the open incidents (that client warms up again) while its keys,
 * mechanisms and hours are kept. */
export function restore(d: Detector, j: BaselinesJson, now = Date.now()): string {
  if (!READABLE_VERSIONS.has(j?.version) || !Array.isArray(j.clients)) throw new Error(`unsupported baselines version ${String(j?.version)}`);
  d.resumedAt = now;
  const rates = j.bucket_seconds === d.settings.bucketSeconds;
  let n = 0;
  for (const cj of j.clients.slice(-d.settings.maxClients)) {
    if (!isNum(cj.uid) || (cj.exe !== null && typeof cj.exe !== 'string') || !Array.isArray(cj.hours) || !Array.isArray(cj.keys)) throw new Error('malformed client');
    const c: ClientBaseline = newClient(cj.uid, cj.exe, clientId(cj.uid, cj.exe), cj.first_seen);
    restoreSeries(c, cj, rates);
    for (let h = 0; h < 24; h++) c.hours[h] = isNum(cj.hours[h]) ? cj.hours[h]! : 0;
    for (const kj of cj.keys.slice(-d.settings.maxKeysPerClient)) {
      if (typeof kj.id !== 'string') throw new Error('malformed key');
      const k = newSeries(kj.first_seen);
      restoreSeries(k, kj, rates);
      c.keys.set(kj.id, k);
    }
    d.add(c);
    n++;
  }
  const open = d.openDedupKeys().length;
  return `${n} client baseline(s) loaded${open > 0 ? `, ${open} open incident(s)` : ''}${rates ? '' : ` (rates dropped: learned with bucket_seconds = ${j.bucket_seconds}, now ${d.settings.bucketSeconds})`}`;
}

export class BaselineStore {
  private readonly writer: CoalescingWriter;

  constructor(
    readonly file: string,
    private readonly detector: Detector,
  ) {
    this.writer = new CoalescingWriter(() => replaceFileDurably(this.file, JSON.stringify(serialize(this.detector)) + '\n'));
  }

  /** Reads the file into the detector; null when there is none yet. */
  load(now = Date.now()): string | null {
    const raw = readIfExists(this.file);
    if (raw === null) return null;
    return restore(this.detector, JSON.parse(raw.toString('utf8')) as BaselinesJson, now);
  }

  /** Writes the current state durably (saves requested during a write share the next one). */
  save(): Promise<void> {
    return this.writer.request();
  }
}
