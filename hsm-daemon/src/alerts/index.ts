// Alerts and paging (issue 4, seed 003's trigger table; docs/alerts.md).
//
// raise() is synchronous, never throws and never waits: it writes one structured JSON
// line to the process log and queues the event for each configured remote sink
// ([alerts.webhook], [alerts.pagerduty], [alerts.command]). Each sink has its own bounded
// queue ([alerts] queue_size; when full, the new event is dropped and counted) and one
// worker that delivers in order, retrying transient failures up to [alerts] max_retries
// times with exponential backoff. Repeats of an open incident (same dedup key) within the
// dedup window are suppressed; resolve() closes the incident.
import os from 'node:os';
import type { Config } from '../config/types.js';
import { ACTION, LOG_LEVEL, type Alert, type AlertEvent } from './types.js';
import { CommandSink, PagerDutySink, RetryableError, WebhookSink, type Sink } from './sinks.js';

export * from './types.js';
export { pagerDutyBody } from './sinks.js';

export type AlertLog = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface AlertsOptions {
  /** The daemon's text process log, for the alerting machinery's own problems. */
  log?: AlertLog;
  /** Writes the structured alert line; default: process.stderr. */
  writeLine?: (line: string) => void;
  /** payload.source; default the host name. */
  source?: string;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Repeats of an open incident within this window are suppressed. */
  dedupWindowMs?: number;
  /** Per-delivery timeout (HTTP request or command run). */
  timeoutMs?: number;
}

export interface SinkStats {
  delivered: number;
  failed: number;
  dropped: number;
  retries: number;
  queued: number;
}

interface SinkState {
  sink: Sink;
  queue: AlertEvent[];
  running: boolean;
  stats: SinkStats;
}

type AlertsConfig = Config['alerts'];

export class Alerts {
  private readonly sinks: SinkState[] = [];
  private readonly open = new Map<string, number>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly log: AlertLog;
  private readonly writeLine: (line: string) => void;
  private readonly source: string;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly dedupWindowMs: number;
  private closed = false;
  suppressed = 0;

  constructor(
    private readonly config: AlertsConfig,
    opts: AlertsOptions = {},
  ) {
    this.log = opts.log ?? (() => undefined);
    this.writeLine = opts.writeLine ?? ((l) => void process.stderr.write(l + '\n'));
    this.source = opts.source ?? os.hostname();
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.dedupWindowMs = opts.dedupWindowMs ?? 10 * 60_000;
    const timeout = opts.timeoutMs ?? 10_000;
    const add = (sink: Sink) => this.sinks.push({ sink, queue: [], running: false, stats: { delivered: 0, failed: 0, dropped: 0, retries: 0, queued: 0 } });
    if (config.webhook) add(new WebhookSink(config.webhook.url, timeout));
    if (config.pagerduty) add(new PagerDutySink(config.pagerduty.url, config.pagerduty.routing_key, timeout));
    if (config.command) add(new CommandSink(config.command.argv, timeout));
  }

  /** Never throws, never blocks. Returns false when suppressed as a duplicate. */
  raise(alert: Alert): boolean {
    try {
      const dedupKey = (alert.dedupKey ?? `${alert.kind}:${alert.summary}`).slice(0, 255);
      const now = Date.now();
      const since = this.open.get(dedupKey);
      if (since !== undefined && now - since < this.dedupWindowMs) {
        this.suppressed++;
        this.log('debug', `alert ${alert.kind} suppressed as a repeat of open incident ${dedupKey}`);
        return false;
      }
      this.open.set(dedupKey, now);
      this.emit({
        action: 'trigger',
        kind: alert.kind,
        severity: alert.severity,
        summary: String(alert.summary),
        details: alert.details ?? {},
        dedupKey,
        source: this.source,
        timestamp: new Date(now).toISOString(),
      });
      return true;
    } catch (e) {
      this.safeLog('error', `alert could not be raised: ${(e as Error)?.message ?? String(e)}`);
      return false;
    }
  }

  /** Takes over an incident a previous run of the daemon raised and did not resolve (state
   * the raiser persisted, e.g. anomaly/store.ts): repeats are suppressed as for one raised
   * here, and resolve() reaches the sinks. */
  adopt(dedupKey: string): void {
    this.open.set(dedupKey.slice(0, 255), Date.now());
  }

  /** Closes an open incident (PagerDuty event_action "resolve"). Never throws. */
  resolve(dedupKey: string, summary = 'resolved'): void {
    try {
      const key = dedupKey.slice(0, 255);
      if (!this.open.delete(key)) return;
      const kind = (key.split(':')[0] ?? 'post_failure') as Alert['kind'];
      this.emit({ action: 'resolve', kind, severity: 'info', summary, details: {}, dedupKey: key, source: this.source, timestamp: new Date().toISOString() });
    } catch (e) {
      this.safeLog('error', `alert could not be resolved: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private emit(e: AlertEvent): void {
    try {
      this.writeLine(
        JSON.stringify({
          ts: e.timestamp,
          level: e.action === 'resolve' ? 'info' : LOG_LEVEL[e.severity],
          component: 'craton-hsmd',
          event: e.action === 'resolve' ? 'alert_resolved' : 'alert',
          kind: e.kind,
          severity: e.severity,
          action: ACTION[e.severity],
          summary: e.summary,
          dedup_key: e.dedupKey,
          details: e.details,
        }),
      );
    } catch {
      // the log sink failing must not stop the remote sinks
    }
    if (e.action === 'trigger') notifyRaised(e);
    if (this.closed) return;
    for (const s of this.sinks) {
      if (s.queue.length >= this.config.queue_size) {
        s.stats.dropped++;
        this.safeLog('warn', `alert queue for ${s.sink.name} is full (${this.config.queue_size}); dropped ${e.kind} ${e.action}`);
        continue;
      }
      s.queue.push(e);
      s.stats.queued = s.queue.length;
      if (!s.running) void this.drain(s);
    }
  }

  private async drain(s: SinkState): Promise<void> {
    s.running = true;
    try {
      while (s.queue.length) {
        const e = s.queue[0]!;
        await this.deliverWithRetry(s, e);
        s.queue.shift();
        s.stats.queued = s.queue.length;
      }
    } finally {
      s.running = false;
      if (this.sinks.every((x) => !x.running && x.queue.length === 0)) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async deliverWithRetry(s: SinkState, e: AlertEvent): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await s.sink.deliver(e);
        s.stats.delivered++;
        return;
      } catch (err) {
        const msg = (err as Error)?.message ?? String(err);
        const retryable = err instanceof RetryableError;
        if (!retryable || attempt >= this.config.max_retries || this.closed) {
          s.stats.failed++;
          this.safeLog('error', `alert ${e.kind} ${e.action} to ${s.sink.name} failed after ${attempt + 1} attempt(s): ${msg}`);
          return;
        }
        s.stats.retries++;
        const delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
        this.safeLog('warn', `alert ${e.kind} to ${s.sink.name} failed (${msg}); retry ${attempt + 1}/${this.config.max_retries} in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  private safeLog(level: 'error' | 'warn' | 'info' | 'debug', msg: string): void {
    try {
      this.log(level, msg);
    } catch {
      // ignore
    }
  }

  /** Resolves once every queue is empty and no delivery is in flight (tests, shutdown). */
  flush(): Promise<void> {
    if (this.sinks.every((s) => !s.running && s.queue.length === 0)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stats(): Record<string, SinkStats> {
    return Object.fromEntries(this.sinks.map((s) => [s.sink.name, { ...s.stats, queued: s.queue.length }]));
  }

  /** Stops retrying; events already queued get at most one more attempt. */
  close(): void {
    this.closed = true;
  }
}

// ---- listeners of every alert raised (events.ts writes them into the audit log) ----

const raisedListeners: Array<(e: AlertEvent) => void> = [];

/** Called for every alert raised (not suppressed repeats, not resolutions), by any instance. */
export function onAlertRaised(listener: (e: AlertEvent) => void): void {
  raisedListeners.push(listener);
}

function notifyRaised(e: AlertEvent): void {
  for (const l of raisedListeners) {
    try {
      l(e);
    } catch {
      // a listener's problem must not stop alerting
    }
  }
}

// ---- the daemon's instance, for modules that raise without being handed one ----

let current: Alerts | null = null;

/** Installed by selftest startSafety(); until then raiseAlert() only logs. */
export function setAlerts(a: Alerts): void {
  current = a;
}

export function getAlerts(): Alerts {
  current ??= new Alerts({ queue_size: 1000, max_retries: 0 });
  return current;
}

/** For the audit log, policy, nonce counters and the PIN logic: never throws. */
export function raiseAlert(alert: Alert): boolean {
  try {
    return getAlerts().raise(alert);
  } catch {
    return false;
  }
}
