// The Prometheus metrics (prom-client) and the readiness verdict, computed from "sources":
// small read-only views of the daemon's state, so unit tests can drive them without a
// daemon. Labels never carry key material, PINs, data or client-chosen strings: function
// and CK_RV names are bounded sets, mechanisms outside the served catalogue become
// "other", GCM keys are identified by the counter's key id (slot and object uid).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { rvName } from '../pkcs11/names.js';
import type { CallObserver, CallRecord } from '../dispatch/dispatcher.js';

export const PREFIX = 'craton_hsm_';

/** Seconds; covers a cached digest (~50 µs) up to RSA-4096 key generation. */
export const OPERATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; one fdatasync of a group-committed batch. */
export const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export interface SlotView {
  slot: number;
  initialized: boolean;
  sessionsRw: number;
  sessionsRo: number;
  /** Applications currently logged in, per role. */
  loggedInUser: number;
  loggedInSo: number;
}

export interface AuditView {
  healthy: boolean;
  queueDepth: number;
  stats: { entriesWritten: number; rotations: number; reopens: number };
  lastError: string | null;
}

export interface SelfTestView {
  passed: boolean;
  startedAt: string;
  integrity: { ok: boolean };
  kats: Array<{ name: string; ok: boolean }>;
  drbg: { ok: boolean };
}

export interface SinkView {
  delivered: number;
  failed: number;
  dropped: number;
  retries: number;
  queued: number;
}

export interface MetricSources {
  slots(): SlotView[];
  /** AES-GCM invocation counters (nonce/): key id and fraction of the limit used. */
  gcm(): Array<{ key: string; used: number; limit: number }>;
  errorState(): { kind: string; reason: string } | null;
  drbg(): { state: 'uninstantiated' | 'ready' | 'error' };
  selfTest(): SelfTestView | null;
  /** null when the audit log is disabled ([audit] log_level = "none"). */
  audit(): AuditView | null;
  alertSinks(): Record<string, SinkView>;
  /** The mechanism label: its CKM_ name when the daemon serves it, else "other". */
  mechanismLabel(mechanism: number): string;
  /** Usage-anomaly findings raised per kind, and what is tracked (anomaly/); absent or
   * null: no series. */
  anomaly?(): AnomalyView | null;
}

export interface AnomalyView {
  raised: Record<string, number>;
  clients: number;
  warmClients: number;
  keys: number;
}

export interface Readiness {
  ready: boolean;
  checks: {
    selftest: 'passed' | 'failed' | 'not_run';
    error_state: string | null;
    audit: 'writable' | 'unavailable' | 'disabled';
  };
}

/** /readyz: the latest self-test run passed, the audit log is writable (or disabled by
 * configuration), and the error-state latch is not set. */
export function readiness(src: Pick<MetricSources, 'selfTest' | 'errorState' | 'audit'>): Readiness {
  const st = src.selfTest();
  const err = src.errorState();
  const audit = src.audit();
  const checks: Readiness['checks'] = {
    selftest: st === null ? 'not_run' : st.passed ? 'passed' : 'failed',
    error_state: err ? err.kind : null,
    audit: audit === null ? 'disabled' : audit.healthy ? 'writable' : 'unavailable',
  };
  return { ready: checks.selftest === 'passed' && checks.error_state === null && checks.audit !== 'unavailable', checks };
}

export interface HsmMetrics {
  registry: Registry;
  /** Register with dispatcher.observe() after the audit log, so the latency includes the
   * audit entry's fsync and the CK_RV is the one the client receives. */
  observer: CallObserver;
  /** Audit writer hook (AuditWriter.onFsync). */
  observeFsync(seconds: number): void;
}

/** A counter whose value lives elsewhere (cumulative stats): reset and re-set on scrape. */
function sourcedCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => Array<[Partial<Record<L, string>>, number]>,
): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

function gauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => Array<[Partial<Record<L, string>>, number]>,
): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.set(labels, v);
    },
  });
}

const bit = (b: boolean): number => (b ? 1 : 0);

export function createMetrics(src: MetricSources, opts: { defaultMetrics?: boolean } = {}): HsmMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  // ---- calls
  const ops = new Counter({
    name: `${PREFIX}operations_total`,
    help: 'PKCS#11 calls completed, by C_* function, mechanism ("none" when the call has none) and CK_RV returned',
    labelNames: ['function', 'mechanism', 'rv'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: `${PREFIX}operation_duration_seconds`,
    help: 'Time in the daemon per PKCS#11 call (handler and audit fsync; excludes the socket), by C_* function',
    labelNames: ['function'] as const,
    buckets: OPERATION_BUCKETS,
    registers: [registry],
  });
  const violations = new Counter({
    name: `${PREFIX}policy_violations_total`,
    help: 'Calls that broke the [algorithms] policy, by mechanism and result (refused in strict mode | ran in warn mode)',
    labelNames: ['mechanism', 'result'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: `${PREFIX}refusals_total`,
    help: 'Calls refused by a preventive control, by C_* function and control (policy | lockout | gcm_limit | key_dates): the audit entries\' details.refused_by',
    labelNames: ['function', 'refused_by'] as const,
    registers: [registry],
  });
  const observer = (rec: CallRecord): void => {
    const mechanism = rec.note.mechanism === undefined ? 'none' : src.mechanismLabel(rec.note.mechanism);
    ops.inc({ function: rec.fn, mechanism, rv: rvName(rec.rv) });
    if (rec.startedAt !== undefined) latency.observe({ function: rec.fn }, (performance.now() - rec.startedAt) / 1000);
    if (rec.note.policyViolation !== undefined) violations.inc({ mechanism, result: rec.rv === 0 ? 'ran' : 'refused' });
    if (rec.note.refusal !== undefined && rec.rv !== 0) refusals.inc({ function: rec.fn, refused_by: rec.note.refusal });
  };

  // ---- slots, sessions, logins
  gauge(registry, `${PREFIX}sessions_open`, 'Open sessions per slot, by access (rw | ro)', ['slot', 'access'], () =>
    src.slots().flatMap((s): Array<[{ slot: string; access: string }, number]> => [
      [{ slot: String(s.slot), access: 'rw' }, s.sessionsRw],
      [{ slot: String(s.slot), access: 'ro' }, s.sessionsRo],
    ]),
  );
  gauge(registry, `${PREFIX}logged_in_applications`, 'Applications logged in per slot and role (user | so); 0 = not logged in', ['slot', 'role'], () =>
    src.slots().flatMap((s): Array<[{ slot: string; role: string }, number]> => [
      [{ slot: String(s.slot), role: 'user' }, s.loggedInUser],
      [{ slot: String(s.slot), role: 'so' }, s.loggedInSo],
    ]),
  );
  gauge(registry, `${PREFIX}token_initialized`, '1 when the slot\'s token is initialized', ['slot'], () =>
    src.slots().map((s) => [{ slot: String(s.slot) }, bit(s.initialized)]),
  );

  // ---- safety state
  gauge(registry, `${PREFIX}error_state`, '1 while the daemon is in the error state (every call returns CKR_GENERAL_ERROR)', [], () => [
    [{}, bit(src.errorState() !== null)],
  ]);
  gauge(registry, `${PREFIX}error_state_kind`, 'The latched error-state kind (present only while latched)', ['kind'], () => {
    const e = src.errorState();
    return e ? [[{ kind: e.kind }, 1]] : [];
  });
  gauge(registry, `${PREFIX}drbg_healthy`, '1 unless the DRBG is in its error state (health test or source failure)', [], () => [
    [{}, bit(src.drbg().state !== 'error')],
  ]);
  gauge(registry, `${PREFIX}drbg_instantiated`, '1 when the DRBG is instantiated and ready', [], () => [[{}, bit(src.drbg().state === 'ready')]]);
  gauge(registry, `${PREFIX}selftest_passed`, '1 when the latest self-test run (power-on or rerun) passed', [], () => {
    const st = src.selfTest();
    return [[{}, bit(st?.passed === true)]];
  });
  gauge(registry, `${PREFIX}selftest_result`, 'Latest self-test run, per test: 1 passed, 0 failed', ['test', 'kind'], () => {
    const st = src.selfTest();
    if (!st) return [];
    return [
      [{ test: 'integrity', kind: 'integrity' }, bit(st.integrity.ok)],
      [{ test: 'drbg', kind: 'drbg' }, bit(st.drbg.ok)],
      ...st.kats.map((k): [{ test: string; kind: string }, number] => [{ test: k.name, kind: 'kat' }, bit(k.ok)]),
    ];
  });
  gauge(registry, `${PREFIX}selftest_last_run_timestamp_seconds`, 'Start time of the latest self-test run (Unix seconds)', [], () => {
    const st = src.selfTest();
    return st ? [[{}, Date.parse(st.startedAt) / 1000]] : [];
  });
  gauge(registry, `${PREFIX}ready`, '1 when /readyz answers 200', [], () => [[{}, bit(readiness(src).ready)]]);

  // ---- AES-GCM invocation counters (SP 800-38D §8.3)
  gauge(
    registry,
    `${PREFIX}gcm_invocations_used_ratio`,
    'AES-GCM invocations used / [nonce] gcm_invocation_limit, per key id (slot-N/uid; never key material). Ticket at 0.75, page at 0.95',
    ['key_id'],
    () => src.gcm().map((k) => [{ key_id: k.key }, Math.min(1, k.used / k.limit)]),
  );

  // ---- audit log
  gauge(registry, `${PREFIX}audit_enabled`, '1 unless [audit] log_level = "none"', [], () => [[{}, bit(src.audit() !== null)]]);
  gauge(registry, `${PREFIX}audit_writable`, '1 while audit entries are being written (0: unavailable or disabled)', [], () => [
    [{}, bit(src.audit()?.healthy === true)],
  ]);
  gauge(registry, `${PREFIX}audit_queue_depth`, 'Audit entries waiting for the writer (not yet in a write/fsync batch)', [], () => [
    [{}, src.audit()?.queueDepth ?? 0],
  ]);
  const fsync = new Histogram({
    name: `${PREFIX}audit_fsync_duration_seconds`,
    help: 'fdatasync time per group-committed audit batch',
    buckets: FSYNC_BUCKETS,
    registers: [registry],
  });
  sourcedCounter(registry, `${PREFIX}audit_entries_written_total`, 'Audit entries written and fsynced since start', [], () => [
    [{}, src.audit()?.stats.entriesWritten ?? 0],
  ]);
  sourcedCounter(registry, `${PREFIX}audit_rotations_total`, 'Audit segment rotations (size, SIGUSR1, admin) since start', [], () => [
    [{}, src.audit()?.stats.rotations ?? 0],
  ]);
  sourcedCounter(registry, `${PREFIX}audit_reopens_total`, 'Audit log reopens after an external rename (SIGHUP) since start', [], () => [
    [{}, src.audit()?.stats.reopens ?? 0],
  ]);

  // ---- alert sinks
  const sinks = (f: (s: SinkView) => number) => () =>
    Object.entries(src.alertSinks()).map(([sink, s]): [{ sink: string }, number] => [{ sink }, f(s)]);
  sourcedCounter(registry, `${PREFIX}alert_sink_failures_total`, 'Alerts a sink failed to deliver after all retries', ['sink'], sinks((s) => s.failed));
  sourcedCounter(registry, `${PREFIX}alert_sink_dropped_total`, 'Alerts dropped because the sink queue was full', ['sink'], sinks((s) => s.dropped));
  sourcedCounter(registry, `${PREFIX}alert_sink_retries_total`, 'Alert delivery retries', ['sink'], sinks((s) => s.retries));
  sourcedCounter(registry, `${PREFIX}alert_sink_delivered_total`, 'Alerts delivered', ['sink'], sinks((s) => s.delivered));
  gauge(registry, `${PREFIX}alert_sink_queued`, 'Alerts waiting for delivery', ['sink'], sinks((s) => s.queued));

  // ---- usage anomalies (anomaly/, docs/anomaly.md)
  if (src.anomaly) {
    const view = src.anomaly.bind(src);
    sourcedCounter(registry, `${PREFIX}anomaly_alerts_total`, 'Usage anomalies raised (each also an alert and an audit UsageAnomaly entry), by kind', ['kind'], () =>
      Object.entries(view()?.raised ?? {}).map(([kind, n]): [{ kind: string }, number] => [{ kind }, n]),
    );
    gauge(registry, `${PREFIX}anomaly_clients_tracked`, 'Clients (uid + executable) with a learned baseline, by state (warm | warmup)', ['state'], () => {
      const v = view();
      return v ? [[{ state: 'warm' }, v.warmClients], [{ state: 'warmup' }, v.clients - v.warmClients]] : [];
    });
    gauge(registry, `${PREFIX}anomaly_keys_tracked`, '(client, key) pairs with a learned baseline', [], () => {
      const v = view();
      return v ? [[{}, v.keys]] : [];
    });
  }

  return { registry, observer, observeFsync: (seconds) => fsync.observe(seconds) };
}
