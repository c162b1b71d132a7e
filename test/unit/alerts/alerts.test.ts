// Alerts: PagerDuty v2 and webhook payloads, retry with backoff, dedup, the bounded
// queue, the command hook — against a local HTTP receiver on 127.0.0.1.
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Alerts, ACTION, DEFAULT_SEVERITY, raiseAlert, type Alert } from '../../../hsm-daemon/src/alerts/index.js';
import { pinTriggers } from '../../../hsm-daemon/src/alerts/triggers.js';
import { CKR } from '../../../hsm-daemon/src/pkcs11/index.js';

interface Received {
  path: string;
  body: Record<string, any>;
  at: number;
}

let server: http.Server;
let base: string;
let received: Received[] = [];
/** Status codes for the next requests (then 202); 'hang' never answers. */
let script: Array<number | 'hang'> = [];
const hanging: http.ServerResponse[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(data || '{}'), at: Date.now() });
      const s = script.shift() ?? 202;
      if (s === 'hang') return void hanging.push(res);
      res.writeHead(s, { 'content-type': 'application/json' }).end('{"status":"success"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const r of hanging) r.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
  script = [];
});

const POST: Alert = { kind: 'post_failure', severity: 'critical', summary: 'KAT aes-gcm failed', details: { test: 'aes-gcm' }, dedupKey: 'post_failure:1' };

function make(cfg: Partial<{ queue_size: number; max_retries: number; webhook: { url: string }; command: { argv: string[] } }> = {}, lines: string[] = [], logs: string[] = []) {
  return new Alerts(
    { queue_size: 100, max_retries: 3, pagerduty: { url: `${base}/v2/enqueue`, routing_key: 'R0UT1NGKEY' }, ...cfg },
    { backoffMs: 20, writeLine: (l) => void lines.push(l), log: (lv, m) => void logs.push(`${lv}: ${m}`), source: 'hsm-test-host', timeoutMs: 2000 },
  );
}

describe('PagerDuty Events API v2', () => {
  it('sends a trigger with the v2 fields and logs a structured line', async () => {
    const lines: string[] = [];
    const a = make({}, lines);
    expect(a.raise(POST)).toBe(true);
    await a.flush();
    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe('/v2/enqueue');
    expect(received[0]!.body).toMatchObject({
      routing_key: 'R0UT1NGKEY',
      event_action: 'trigger',
      dedup_key: 'post_failure:1',
      payload: {
        summary: 'KAT aes-gcm failed',
        severity: 'critical',
        source: 'hsm-test-host',
        component: 'craton-hsmd',
        custom_details: { kind: 'post_failure', action: 'page', test: 'aes-gcm' },
      },
    });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', event: 'alert', kind: 'post_failure', severity: 'critical', action: 'page' });
  });

  it('retries with exponential backoff after the receiver fails twice', async () => {
    script = [500, 503];
    const logs: string[] = [];
    const a = make({}, [], logs);
    a.raise(POST);
    await a.flush();
    expect(received).toHaveLength(3);
    const gaps = [received[1]!.at - received[0]!.at, received[2]!.at - received[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[1]).toBeGreaterThanOrEqual(35); // doubled
    expect(a.stats().pagerduty).toMatchObject({ delivered: 1, retries: 2, failed: 0 });
    expect(logs.filter((l) => l.startsWith('warn: alert post_failure to pagerduty failed'))).toHaveLength(2);
  });

  it('gives up after max_retries, and does not retry a 400', async () => {
    script = [500, 500, 500];
    const a = make({ max_retries: 2 });
    a.raise(POST);
    await a.flush();
    expect(received).toHaveLength(3);
    expect(a.stats().pagerduty).toMatchObject({ delivered: 0, failed: 1 });
    received = [];
    script = [400];
    const b = make();
    b.raise(POST);
    await b.flush();
    expect(received).toHaveLength(1);
    expect(b.stats().pagerduty!.failed).toBe(1);
  });

  it('retries when the receiver is down (connection refused)', async () => {
    const a = new Alerts({ queue_size: 10, max_retries: 1, pagerduty: { url: 'http://127.0.0.1:1/v2/enqueue', routing_key: 'k' } }, { backoffMs: 5, writeLine: () => undefined });
    a.raise(POST);
    await a.flush();
    expect(a.stats().pagerduty).toMatchObject({ retries: 1, failed: 1 });
  });

  it('deduplicates an open incident and resolves it', async () => {
    const a = make();
    expect(a.raise(POST)).toBe(true);
    expect(a.raise(POST)).toBe(false);
    expect(a.raise({ ...POST, dedupKey: undefined })).toBe(true); // a different key
    expect(a.suppressed).toBe(1);
    a.resolve('post_failure:1');
    await a.flush();
    expect(received.map((r) => r.body.event_action)).toEqual(['trigger', 'trigger', 'resolve']);
    expect(received[2]!.body).toEqual({ routing_key: 'R0UT1NGKEY', event_action: 'resolve', dedup_key: 'post_failure:1' });
    expect(a.raise(POST)).toBe(true); // after resolve, a new incident
    await a.flush();
  });
});

describe('queue, webhook, command hook, robustness', () => {
  it('bounds the queue and drops (counts) what does not fit, without blocking raise', async () => {
    script = ['hang'];
    const a = new Alerts(
      { queue_size: 2, max_retries: 0, pagerduty: { url: `${base}/v2/enqueue`, routing_key: 'k' } },
      { writeLine: () => undefined, timeoutMs: 300 },
    );
    // raise() returns at once: right after it the alerts are queued, not yet failed (the
    // hung receiver holds the first one until its 300 ms timeout).
    for (let i = 0; i < 5; i++) a.raise({ ...POST, dedupKey: `k${i}` });
    expect(a.stats().pagerduty).toMatchObject({ dropped: 3, queued: 2 });
    await a.flush();
    expect(a.stats().pagerduty).toMatchObject({ delivered: 1, failed: 1 }); // the hung one timed out
  });

  it('the webhook gets a generic JSON document', async () => {
    const a = new Alerts({ queue_size: 10, max_retries: 0, webhook: { url: `${base}/hook` } }, { writeLine: () => undefined, source: 'h' });
    a.raise({ kind: 'gcm_counter_ticket', severity: DEFAULT_SEVERITY.gcm_counter_ticket, summary: 'GCM counter above 75%', details: { key: 7 } });
    await a.flush();
    expect(received[0]).toMatchObject({
      path: '/hook',
      body: { event_action: 'trigger', kind: 'gcm_counter_ticket', severity: 'warning', action: 'ticket', summary: 'GCM counter above 75%', details: { key: 7 }, source: 'h' },
    });
  });

  it('runs the command hook with the event on stdin, retrying a failing exit', async () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'craton-alert-'));
    try {
      const out = path.join(d, 'out.json');
      const flag = path.join(d, 'failed-once');
      // fails the first time, then records stdin and the environment
      const sh = `if [ ! -e ${flag} ]; then touch ${flag}; exit 3; fi; cat > ${out}; echo "$CRATON_ALERT_KIND $CRATON_ALERT_PAGE" >> ${out}.env`;
      const a = new Alerts({ queue_size: 10, max_retries: 2, command: { argv: ['/bin/sh', '-c', sh] } }, { backoffMs: 5, writeLine: () => undefined });
      a.raise({ kind: 'pin_locked', severity: 'warning', summary: 'PIN locked' });
      await a.flush();
      expect(existsSync(out)).toBe(true);
      expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ action: 'trigger', kind: 'pin_locked', summary: 'PIN locked' });
      expect(readFileSync(out + '.env', 'utf8').trim()).toBe('pin_locked ticket');
      expect(a.stats().command).toMatchObject({ delivered: 1, retries: 1 });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('never throws into the caller, even when the log sink throws', () => {
    const a = new Alerts({ queue_size: 1, max_retries: 0 }, { writeLine: () => { throw new Error('EPIPE'); }, log: () => { throw new Error('x'); } });
    expect(() => a.raise(POST)).not.toThrow();
    expect(() => a.raise(null as unknown as Alert)).not.toThrow();
    expect(raiseAlert({ kind: 'policy_violation', severity: 'warning', summary: 'x' })).toBe(true);
  });

  it('severity → page/ticket mapping', () => {
    expect(ACTION).toEqual({ critical: 'page', error: 'page', warning: 'ticket', info: 'ticket' });
    expect(DEFAULT_SEVERITY.post_failure).toBe('critical');
    expect(DEFAULT_SEVERITY.gcm_counter_page).toBe('critical');
    expect(DEFAULT_SEVERITY.pin_locked).toBe('warning');
  });

  it('PIN triggers: a ticket after repeated CKR_PIN_INCORRECT from one session, and on CKR_PIN_LOCKED', () => {
    const lines: string[] = [];
    const a = new Alerts({ queue_size: 10, max_retries: 0 }, { writeLine: (l) => void lines.push(l) });
    const obs = pinTriggers(a, 3);
    const rec = (rv: number, session = 5) => obs({ app: { id: 'app1', peer: { uid: 1000 } } as never, fn: 'C_Login', rv, note: { session } });
    rec(CKR.PIN_INCORRECT);
    rec(CKR.PIN_INCORRECT);
    expect(lines).toHaveLength(0);
    rec(CKR.PIN_INCORRECT);
    rec(CKR.PIN_INCORRECT); // same incident: suppressed
    rec(CKR.PIN_LOCKED);
    expect(lines.map((l) => JSON.parse(l).kind)).toEqual(['pin_incorrect_repeated', 'pin_locked']);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', action: 'ticket' });
  });
});
