// Where daemon events meet the operator: each event source (self-tests and the error
// latch, the GCM invocation counters, PIN lockout, the FIPS policy) is connected here to
// the audit log (one entry per event) and to the alerts module (tickets and pages, seed
// 003's trigger table). Sources never import the sinks; this file is the only junction.
import type { AuditLog } from './audit/index.js';
import { getAlerts, raiseAlert } from './alerts/index.js';
import { onErrorState, type Safety } from './selftest/index.js';
import type { GcmNonceGuard } from './nonce/guard.js';
import type { Token } from './token/token.js';
import type { PolicyEnforcer } from './policy/enforcer.js';
import type { AnomalyMonitor } from './anomaly/index.js';
import { onAlertRaised } from './alerts/index.js';
import { policyFingerprint } from './policy/fingerprint.js';

export function connectEvents(opts: { audit: AuditLog; safety: Safety; gcm: GcmNonceGuard; tokens: Token[]; policy: PolicyEnforcer }): void {
  const { audit } = opts;
  audit.onHealthChange((h) => {
    if (h.healthy) return getAlerts().resolve('audit_failure', `audit log ${h.logPath} is written again`);
    raiseAlert({
      kind: 'audit_failure',
      severity: 'critical',
      summary: `audit log ${h.logPath} cannot be written (${h.reason})${h.failClosed ? '; audited calls are refused (fail_closed)' : '; calls run UNAUDITED'}`,
      details: { log_path: h.logPath, reason: h.reason, fail_closed: h.failClosed },
      dedupKey: 'audit_failure',
    });
  });
  const report = opts.safety.report;
  void audit.recordEvent('SelfTest', {
    passed: report.kats.every((k) => k.ok) && report.integrity.ok && report.drbg.ok,
    known_answer_tests: report.kats.length,
    failed: report.kats.filter((k) => !k.ok).map((k) => k.name),
    integrity: report.integrity.ok,
    drbg: report.drbg.ok,
    tests: report.kats.map((k) => k.name),
    duration_ms: report.durationMs,
  });
  // The policy in force, fingerprinted, at start and after every reload that changes it
  // (craton-hsm-admin evidence names the policy of a period from these entries).
  let policyHash = '';
  const recordPolicy = (reason: string): void => {
    const fp = policyFingerprint(opts.policy.settings);
    if (fp.policy_hash === policyHash) return;
    policyHash = fp.policy_hash;
    void audit.recordEvent('PolicyInForce', { reason, ...fp });
  };
  recordPolicy('startup');
  // reload/index.ts applies SIGHUP synchronously in its own listener; look afterwards.
  process.on('SIGHUP', () => setImmediate(() => recordPolicy('reload')));
  // Every alert raised reaches the log too (evidence reports them); not the audit log's own
  // failure alert while the log is down: that entry cannot be written, and Recovery says it.
  onAlertRaised((a) => {
    if (a.kind === 'audit_failure' || !audit.healthy()) return;
    void audit.recordEvent('AlertRaised', { kind: a.kind, severity: a.severity, summary: a.summary, dedup_key: a.dedupKey });
  });
  onErrorState((e) => void audit.recordEvent('ErrorState', { kind: e.kind, reason: e.reason }));

  const counters = opts.gcm.counters;
  counters.on('threshold', (e) => {
    void audit.recordEvent('NonceThreshold', { key: e.key, percent: e.percent, used: e.used, limit: e.limit });
    if (e.severity === 'info') return;
    raiseAlert({
      kind: e.severity === 'page' ? 'gcm_counter_page' : 'gcm_counter_ticket',
      severity: e.severity === 'page' ? 'critical' : 'warning',
      summary: `AES-GCM key ${e.key} at ${e.percent}% of its invocation limit (${e.used}/${e.limit})`,
      details: { ...e },
      dedupKey: `gcm_counter:${e.key}:${e.percent}`,
    });
  });
  counters.on('exhausted', (e) => {
    void audit.recordEvent('NonceExhausted', { key: e.key, used: e.used, limit: e.limit });
    raiseAlert({
      kind: 'gcm_counter_page',
      severity: 'critical',
      summary: `AES-GCM key ${e.key} reached its invocation limit; encryption with it is refused`,
      details: { ...e },
      dedupKey: `gcm_counter:${e.key}:100`,
    });
  });

  opts.policy.onViolation((v) => {
    void audit.recordEvent('PolicyViolation', {
      mechanism: v.mechanismName,
      operation: v.op,
      algorithm: v.verdict.algorithm,
      reason: v.verdict.reason,
      mode: v.mode,
      refused: v.refused,
    });
    raiseAlert({
      kind: 'policy_violation',
      severity: 'warning',
      summary: `${v.refused ? 'refused' : 'ran (warn mode)'} non-approved ${v.mechanismName} for ${v.op}: ${v.verdict.reason}`,
      details: { mechanism: v.mechanismName, op: v.op, algorithm: v.verdict.algorithm, mode: v.mode },
      dedupKey: `policy_violation:${v.mechanismName}:${v.op}`,
    });
  });

  // PIN alerts are raised from C_Login results by alerts/triggers.ts; here the lockout
  // transitions reach the audit log.
  for (const t of opts.tokens) {
    t.events.on('pin_locked', (e) => void audit.recordEvent('Lockout', { ...e }));
    t.events.on('pin_unlocked', (e) => void audit.recordEvent('Unlock', { ...e }));
  }
}

/** Usage anomalies (anomaly/): each finding is an audit entry and an alert; a deviation that
 * ends (rate back in band, failures back under the threshold) resolves its alert, also one
 * raised before a restart. */
export function connectAnomaly(audit: AuditLog, anomaly: AnomalyMonitor): void {
  // Incidents still open when the daemon stopped: resolved after the restart like any other.
  for (const k of anomaly.restoredIncidents()) getAlerts().adopt(k);
  anomaly.onFinding((f) => {
    if (f.action === 'resolve') {
      void audit.recordEvent('UsageAnomalyResolved', { anomaly: f.kind, client: f.client, key: f.key?.id ?? null, explanation: f.deviation });
      getAlerts().resolve(f.dedupKey, f.summary);
      return;
    }
    void audit.recordEvent('UsageAnomaly', {
      anomaly: f.kind,
      severity: f.severity,
      client: f.client,
      key: f.key ?? null,
      mechanism: f.mechanism ?? null,
      call: f.call ?? null,
      baseline: f.baseline,
      observed: f.observed,
      explanation: f.deviation,
    });
    raiseAlert({
      kind: `anomaly_${f.kind}`,
      severity: f.severity === 'info' ? 'warning' : f.severity,
      summary: f.summary,
      details: { anomaly: f.kind, client: f.client, key: f.key ?? null, mechanism: f.mechanism ?? null, baseline: f.baseline, observed: f.observed, explanation: f.deviation },
      dedupKey: f.dedupKey,
    });
  });
}
