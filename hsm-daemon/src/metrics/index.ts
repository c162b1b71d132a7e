// The Prometheus endpoint ([metrics], off by default): /metrics, /healthz, /readyz on a
// loopback address. See docs/operations.md for the metric names and the deployment notes.
//
// main.ts wiring (after startWireServer, so /readyz never says ready before the socket serves):
//   const metrics = await startMetrics({ config, log, core, dispatcher, audit, safety });
//   await metrics.close();                                        // in stop()
import type { Config } from '../config/types.js';
import type { HsmCore } from '../dispatch/core.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { AuditLog } from '../audit/index.js';
import type { Safety } from '../selftest/index.js';
import type { AnomalyMonitor } from '../anomaly/index.js';
import { errorState } from '../selftest/index.js';
import { drbgStatus } from '../drbg/index.js';
import { mechanismName } from '../pkcs11/names.js';
import { isLoopbackAddress, resolveListen } from './listen.js';
import { createMetrics, readiness, type MetricSources, type Readiness, type SlotView } from './registry.js';
import { serveMetrics } from './server.js';

export { createMetrics, readiness, type MetricSources, type Readiness, type HsmMetrics } from './registry.js';
export { parseListen, isLoopbackAddress, resolveListen, MetricsConfigError } from './listen.js';

type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface MetricsOptions {
  config: Config;
  log: LogFn;
  core: HsmCore;
  dispatcher: Pick<Dispatcher, 'observe'>;
  audit: AuditLog;
  safety: Safety;
  /** Usage-anomaly detection: its counters appear when given. */
  anomaly?: Pick<AnomalyMonitor, 'stats'>;
}

export interface MetricsHandle {
  /** http://HOST:PORT, or null when [metrics] enabled = false. */
  readonly url: string | null;
  /** The same readiness verdict as /readyz (for `craton-hsm-admin status`). */
  readiness(): Readiness;
  close(): Promise<void>;
}

/** The /readyz verdict from the daemon's parts, for callers without a full MetricSources
 * (admin `status`); the same checks as /readyz whether or not [metrics] is enabled. */
export function daemonReadiness(opts: { audit: Pick<AuditLog, 'writer'>; safety: Pick<Safety, 'report'> }): Readiness {
  const { audit, safety } = opts;
  return readiness({
    selfTest: () => safety.report,
    errorState: () => errorState(),
    audit: () => {
      const w = audit.writer;
      return w ? { healthy: w.healthy, queueDepth: w.queueDepth, stats: w.stats, lastError: w.lastError } : null;
    },
  });
}

/** Views of the running daemon's state for the metrics (read on each scrape). */
export function daemonSources(opts: Omit<MetricsOptions, 'config' | 'log' | 'dispatcher'>): MetricSources {
  const { core, audit, safety } = opts;
  return {
    slots: () =>
      core.tokens.map((t, slot): SlotView => {
        const sessions = core.sessions.onSlot(slot);
        const apps = new Set(sessions.map((s) => s.app));
        let user = 0;
        let so = 0;
        for (const app of apps) {
          const role = t.roleOf(app);
          if (role === 'user') user++;
          else if (role === 'so') so++;
        }
        const rw = sessions.filter((s) => s.readWrite).length;
        return { slot, initialized: t.isInitialized, sessionsRw: rw, sessionsRo: sessions.length - rw, loggedInUser: user, loggedInSo: so };
      }),
    gcm: () => core.gcm.counters.all().map((u) => ({ key: u.key, used: u.used, limit: u.limit })),
    errorState: () => errorState(),
    drbg: () => drbgStatus(),
    selfTest: () => safety.report,
    audit: () => {
      const w = audit.writer;
      if (!w) return null;
      return { healthy: w.healthy, queueDepth: w.queueDepth, stats: w.stats, lastError: w.lastError };
    },
    alertSinks: () => safety.alerts.stats(),
    mechanismLabel: (m) => (core.mechanisms.info(m) ? mechanismName(m) : 'other'),
    anomaly: opts.anomaly ? () => opts.anomaly!.stats() : undefined,
  };
}

export async function startMetrics(opts: MetricsOptions): Promise<MetricsHandle> {
  const src = daemonSources(opts);
  const { config, log } = opts;
  if (!config.metrics.enabled) {
    return { url: null, readiness: () => readiness(src), close: async () => undefined };
  }
  const { host, port } = await resolveListen(config.metrics.listen, config.metrics.allow_non_loopback);
  const metrics = createMetrics(src);
  opts.dispatcher.observe(metrics.observer);
  const writer = opts.audit.writer;
  if (writer) writer.onFsync = metrics.observeFsync;
  const server = await serveMetrics({ host, port, registry: metrics.registry, readiness: () => readiness(src), log });
  if (!isLoopbackAddress(server.address.address)) log('warn', `metrics endpoint on ${server.url} may be reachable from other hosts (allow_non_loopback = true)`);
  log('info', `metrics: ${server.url}/metrics, /healthz, /readyz`);
  return {
    url: server.url,
    readiness: () => readiness(src),
    async close() {
      if (writer && writer.onFsync === metrics.observeFsync) writer.onFsync = null;
      await server.close();
    },
  };
}
