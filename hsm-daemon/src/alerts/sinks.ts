// The remote sinks: a generic JSON webhook, PagerDuty Events API v2, and a command hook.
// deliver() resolves on success, throws RetryableError for a transient failure (network,
// timeout, HTTP 429/5xx, non-zero exit) and any other Error for a permanent one.
import { spawn } from 'node:child_process';
import { ACTION, PAGERDUTY_SEVERITY, type AlertEvent } from './types.js';

export class RetryableError extends Error {
  override name = 'RetryableError';
}

export interface Sink {
  readonly name: string;
  deliver(e: AlertEvent): Promise<void>;
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'craton-hsmd' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (e) {
    throw new RetryableError(`POST failed: ${(e as Error).message}`);
  }
  await res.arrayBuffer().catch(() => undefined); // drain
  if (res.ok) return;
  if (res.status === 429 || res.status >= 500) throw new RetryableError(`HTTP ${res.status}`);
  throw new Error(`HTTP ${res.status} (not retried)`);
}

export class WebhookSink implements Sink {
  readonly name = 'webhook';
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  deliver(e: AlertEvent): Promise<void> {
    return postJson(
      this.url,
      {
        event_action: e.action,
        kind: e.kind,
        severity: e.severity,
        action: ACTION[e.severity],
        summary: e.summary,
        details: e.details,
        dedup_key: e.dedupKey,
        source: e.source,
        component: 'craton-hsmd',
        timestamp: e.timestamp,
      },
      this.timeoutMs,
    );
  }
}

/** https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ — the body fields. */
export function pagerDutyBody(routingKey: string, e: AlertEvent): Record<string, unknown> {
  if (e.action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: e.dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: e.dedupKey,
    client: 'Craton HSM',
    payload: {
      summary: e.summary.slice(0, 1024),
      severity: PAGERDUTY_SEVERITY[e.severity],
      source: e.source,
      component: 'craton-hsmd',
      group: 'craton-hsm',
      class: e.kind,
      timestamp: e.timestamp,
      custom_details: { kind: e.kind, action: ACTION[e.severity], ...e.details },
    },
  };
}

export class PagerDutySink implements Sink {
  readonly name = 'pagerduty';
  constructor(
    private readonly url: string,
    private readonly routingKey: string,
    private readonly timeoutMs: number,
  ) {}

  deliver(e: AlertEvent): Promise<void> {
    return postJson(this.url, pagerDutyBody(this.routingKey, e), this.timeoutMs);
  }
}

/** Runs argv with the event as one JSON document on stdin and CRATON_ALERT_* variables;
 * exit 0 is success. No shell is involved. */
export class CommandSink implements Sink {
  readonly name = 'command';
  constructor(
    private readonly argv: string[],
    private readonly timeoutMs: number,
  ) {}

  deliver(e: AlertEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.argv[0]!, this.argv.slice(1), {
        stdio: ['pipe', 'ignore', 'ignore'],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          CRATON_ALERT_ACTION: e.action,
          CRATON_ALERT_KIND: e.kind,
          CRATON_ALERT_SEVERITY: e.severity,
          CRATON_ALERT_PAGE: ACTION[e.severity],
          CRATON_ALERT_SUMMARY: e.summary,
          CRATON_ALERT_DEDUP_KEY: e.dedupKey,
        },
        timeout: this.timeoutMs,
      });
      child.once('error', (err) => reject(new RetryableError(`cannot run ${this.argv[0]}: ${err.message}`)));
      child.once('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new RetryableError(`${this.argv[0]} exited with ${signal ?? `code ${code}`}`)),
      );
      child.stdin!.on('error', () => undefined); // the hook may not read stdin
      child.stdin!.end(JSON.stringify(e) + '\n');
    });
  }
}
