// Usage-anomaly detection ([anomaly], docs/anomaly.md): a dispatcher observer learns, per
// client (uid + executable) and per key it uses, its call rate, failure ratio, mechanisms,
// keys and active hours, and reports explainable findings. events.ts turns each finding
// into an audit entry (UsageAnomaly) and an alert; metrics/ counts them.
//
// main.ts wiring:
//   const anomaly = startAnomaly({ config, dispatcher, tokens, log });
//   await anomaly.close();                                        // in stop(): saves
import { renameSync } from 'node:fs';
import type { Config } from '../config/types.js';
import type { CallObserver } from '../dispatch/dispatcher.js';
import type { AnomalySettings } from './baseline.js';
import { Detector, type AnomalyKind, type Finding } from './detector.js';
import { observationOf, type ObjectLookup } from './identity.js';
import { BaselineStore, baselinesPath } from './store.js';

export { Detector, ANOMALY_KINDS, type AnomalyKind, type Finding, type Observation } from './detector.js';
export type { AnomalySettings } from './baseline.js';

type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface AnomalyStats {
  /** Findings raised per kind since start. */
  raised: Record<AnomalyKind, number>;
  clients: number;
  keys: number;
  /** Clients past warm-up. */
  warmClients: number;
}

export interface AnomalyMonitor {
  readonly enabled: boolean;
  /** Listeners must not throw (errors are logged and dropped). */
  onFinding(listener: (f: Finding) => void): void;
  stats(): AnomalyStats;
  /** Dedup keys of the incidents restored open from the baselines file: alerts/ adopts them
   * so their resolution reaches the sinks after a restart. */
  restoredIncidents(): string[];
  /** Saves the baselines now (also done periodically and by close()). */
  save(): Promise<void>;
  close(): Promise<void>;
}

export function settingsFrom(a: Config['anomaly']): AnomalySettings {
  return {
    bucketSeconds: a.bucket_seconds,
    warmupBuckets: a.warmup_buckets,
    halfLifeBuckets: a.half_life_buckets,
    rateSigma: a.rate_sigma,
    rateFloor: a.rate_floor,
    rateLow: a.rate_low,
    rateLowMinCalls: a.rate_low_min_calls,
    failureRatio: a.failure_ratio,
    minFailures: a.min_failures,
    newMechanism: a.new_mechanism,
    newKey: a.new_key,
    unusualHour: a.unusual_hour,
    maxClients: a.max_clients,
    maxKeysPerClient: a.max_keys_per_client,
  };
}

const EMPTY_RAISED = (): Record<AnomalyKind, number> => ({ new_key: 0, new_mechanism: 0, rate_high: 0, rate_low: 0, failure_spike: 0, unusual_hour: 0 });

export function startAnomaly(opts: {
  config: Config;
  dispatcher: { observe(o: CallObserver): void };
  tokens: readonly ObjectLookup[];
  log: LogFn;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
}): AnomalyMonitor {
  const { config, log } = opts;
  const listeners: Array<(f: Finding) => void> = [];
  if (!config.anomaly.enabled) {
    return {
      enabled: false,
      onFinding: () => undefined,
      stats: () => ({ raised: EMPTY_RAISED(), clients: 0, keys: 0, warmClients: 0 }),
      restoredIncidents: () => [],
      save: async () => undefined,
      close: async () => undefined,
    };
  }
  const now = opts.now ?? Date.now;
  const settings = settingsFrom(config.anomaly);
  const detector = new Detector(settings);
  const store = new BaselineStore(baselinesPath(config.daemon.data_dir), detector);
  try {
    const note = store.load(now());
    log('info', `anomaly: ${note ?? 'no saved baselines; every client starts in warm-up'}`);
  } catch (e) {
    detector.clear();
    const aside = `${store.file}.unreadable-${now()}`;
    try {
      renameSync(store.file, aside);
    } catch {
      // leave it; the next save replaces it
    }
    log('warn', `anomaly: ${store.file} is unreadable (${(e as Error).message}); kept as ${aside}, learning from scratch`);
  }
  const restored = detector.openDedupKeys();

  const emit = (findings: Finding[]): void => {
    for (const f of findings)
      for (const l of listeners) {
        try {
          l(f);
        } catch (e) {
          log('error', `anomaly listener failed: ${(e as Error).message}`);
        }
      }
  };

  opts.dispatcher.observe((rec) => {
    try {
      const findings = detector.observe(observationOf(rec, opts.tokens, now()));
      if (findings.length > 0) emit(findings);
    } catch (e) {
      log('error', `anomaly: ${rec.fn} not learned: ${(e as Error).message}`);
    }
  });
  const sweep = setInterval(() => emit(detector.tick(now())), Math.max(250, (settings.bucketSeconds * 1000) / 2));
  sweep.unref();
  const save = (): Promise<void> =>
    store.save().catch((e: unknown) => log('error', `anomaly: cannot save ${store.file}: ${(e as Error).message}`));
  const saver = setInterval(() => void save(), config.anomaly.save_interval_seconds * 1000);
  saver.unref();

  return {
    enabled: true,
    onFinding: (l) => void listeners.push(l),
    restoredIncidents: () => [...restored],
    stats() {
      let keys = 0;
      let warm = 0;
      for (const c of detector.clients.values()) {
        keys += c.keys.size;
        if (c.rate.n >= settings.warmupBuckets) warm++;
      }
      return { raised: { ...detector.raised }, clients: detector.clients.size, keys, warmClients: warm };
    },
    save,
    async close() {
      clearInterval(sweep);
      clearInterval(saver);
      await save();
    },
  };
}
