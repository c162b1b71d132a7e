// What an alert is, and how severities map to PagerDuty and to page vs ticket
// (docs/alerts.md carries the same table).
export type AlertKind =
  | 'post_failure'
  | 'drbg_failure'
  | 'audit_failure'
  | 'pin_incorrect_repeated'
  | 'pin_locked'
  | 'gcm_counter_ticket'
  | 'gcm_counter_page'
  | 'policy_violation'
  | 'integrity_failure'
  // usage anomalies (anomaly/, docs/anomaly.md)
  | 'anomaly_new_key'
  | 'anomaly_new_mechanism'
  | 'anomaly_rate_high'
  | 'anomaly_rate_low'
  | 'anomaly_failure_spike'
  | 'anomaly_unusual_hour';

export type Severity = 'critical' | 'error' | 'warning' | 'info';

export interface Alert {
  kind: AlertKind;
  severity: Severity;
  /** One line for a human; PagerDuty truncates at 1024 characters. Never key material or PINs. */
  summary: string;
  details?: Record<string, unknown>;
  /** Alerts with the same key are one incident: repeats are suppressed until resolved. */
  dedupKey?: string;
}

/** What each trigger of seed 003's table is raised with. */
export const DEFAULT_SEVERITY: Readonly<Record<AlertKind, Severity>> = {
  post_failure: 'critical',
  drbg_failure: 'critical',
  integrity_failure: 'critical',
  audit_failure: 'critical',
  gcm_counter_page: 'critical',
  pin_incorrect_repeated: 'warning',
  pin_locked: 'warning',
  gcm_counter_ticket: 'warning',
  policy_violation: 'warning',
  anomaly_new_key: 'warning',
  anomaly_new_mechanism: 'warning',
  // critical when 2 × rate_sigma above the mean
  anomaly_rate_high: 'warning',
  anomaly_rate_low: 'warning',
  anomaly_failure_spike: 'critical',
  anomaly_unusual_hour: 'warning',
};

/** PagerDuty Events API v2 payload.severity takes the same four names. */
export const PAGERDUTY_SEVERITY: Readonly<Record<Severity, Severity>> = { critical: 'critical', error: 'error', warning: 'warning', info: 'info' };

/** critical/error page someone (high urgency); warning/info open a ticket (low urgency). */
export const ACTION: Readonly<Record<Severity, 'page' | 'ticket'>> = { critical: 'page', error: 'page', warning: 'ticket', info: 'ticket' };

/** Process-log level of the structured alert line. */
export const LOG_LEVEL: Readonly<Record<Severity, 'error' | 'warn' | 'info'>> = { critical: 'error', error: 'error', warning: 'warn', info: 'info' };

/** One delivery to the sinks: a trigger, or the resolution of an earlier trigger. */
export interface AlertEvent {
  action: 'trigger' | 'resolve';
  kind: AlertKind;
  severity: Severity;
  summary: string;
  details: Record<string, unknown>;
  dedupKey: string;
  source: string;
  timestamp: string;
}
