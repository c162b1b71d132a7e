// End to end through the real module (pkcs11js → libcraton_hsm.so → craton-hsmd): each
// injected fault (--test-faults + CRATON_HSM_FAULT) puts the daemon in the error state —
// every call returns CKR_GENERAL_ERROR, the process log says so at error level, and a
// PagerDuty Events v2 trigger reaches a local receiver, after it failed twice.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKR, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, type PKCS11, rvOf } from '../helpers/module.js';

interface Hit {
  body: Record<string, any>;
  status: number;
}

let server: http.Server;
let url: string;
/** Per routing key: every request, and how many to fail with 500 first. */
const hits = new Map<string, Hit[]>();
const failFirst = new Map<string, number>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      const body = JSON.parse(data || '{}');
      const key = String(body.routing_key);
      const list = hits.get(key) ?? [];
      const left = failFirst.get(key) ?? 0;
      const status = left > 0 ? 500 : 202;
      failFirst.set(key, left - 1);
      list.push({ body, status });
      hits.set(key, list);
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 202 ? '{"status":"success"}' : '{"status":"error"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});


async function waitFor<T>(f: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function daemonWith(routingKey: string, fault: string | undefined, testFaults = true): Promise<Daemon> {
  return startDaemon({
    extraToml: `[alerts]\nmax_retries = 4\n[alerts.pagerduty]\nurl = "${url}"\nrouting_key = "${routingKey}"\n`,
    args: testFaults ? ['--test-faults'] : [],
    env: fault ? { CRATON_HSM_FAULT: fault } : {},
  });
}

const FAULTS: Array<[string, string]> = [
  ['post:sha256', 'post_failure'],
  ['post:aes-gcm', 'post_failure'],
  ['post:rsa-pkcs1-sha256', 'post_failure'],
  ['post:ecdsa-p256', 'post_failure'],
  ['post:drbg', 'post_failure'],
  ['drbg-health', 'drbg_failure'],
  ['integrity', 'integrity_failure'],
];

describe.each(FAULTS)('CRATON_HSM_FAULT=%s', (fault, kind) => {
  const key = `rk-${fault.replace(/[^a-z0-9]/gi, '-')}`;
  let daemon: Daemon;

  beforeAll(async () => {
    failFirst.set(key, 2);
    daemon = await daemonWith(key, fault);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('every call returns CKR_GENERAL_ERROR through the module', () => {
    const mod = loadModule(daemon.socketPath);
    const p11: PKCS11 = mod.p11;
    try {
      const slot = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]);
      const bogus = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
      const calls: Array<[string, () => unknown]> = [
        ['C_GetSlotList', () => p11.C_GetSlotList(true)],
        ['C_GetSlotInfo', () => p11.C_GetSlotInfo(slot)],
        ['C_GetTokenInfo', () => p11.C_GetTokenInfo(slot)],
        ['C_GetMechanismList', () => p11.C_GetMechanismList(slot)],
        ['C_OpenSession', () => p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION)],
        ['C_GenerateRandom', () => p11.C_GenerateRandom(bogus, Buffer.alloc(16))],
        ['C_SeedRandom', () => p11.C_SeedRandom(bogus, Buffer.from('x'))],
        ['C_CloseAllSessions', () => p11.C_CloseAllSessions(slot)],
      ];
      for (const [name, f] of calls) expect(rvName(rvOf(f)), name).toBe('CKR_GENERAL_ERROR');
    } finally {
      mod.close();
    }
  });

  it('the process log records the error state at error level', () => {
    expect(daemon.stderr()).toMatch(new RegExp(`craton-hsmd error: entering the error state \\(${kind}\\)`));
    const line = daemon
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((j) => j.event === 'alert');
    expect(line).toMatchObject({ level: 'error', kind, severity: 'critical', action: 'page' });
  });

  it('pages PagerDuty (v2 payload), delivered on the third attempt after two failures', async () => {
    const list = await waitFor(() => {
      const l = hits.get(key);
      return l && l.some((h) => h.status === 202) ? l : undefined;
    });
    expect(list.map((h) => h.status)).toEqual([500, 500, 202]);
    for (const h of list)
      expect(h.body).toMatchObject({
        routing_key: key,
        event_action: 'trigger',
        dedup_key: `${kind}:${daemon.proc.pid}`,
        payload: {
          severity: 'critical',
          component: 'craton-hsmd',
          custom_details: { kind, action: 'page', error_state: kind },
        },
      });
    expect(String(list[0]!.body.payload.summary)).toMatch(/^Craton HSM error state: /);
    expect(typeof list[0]!.body.payload.source).toBe('string');
    expect(daemon.stderr()).toMatch(/alert \w+ to pagerduty failed \(HTTP 500\); retry 1\/4/);
  });
});

describe('without faults', () => {
  let daemon: Daemon;
  afterAll(async () => {
    await daemon?.stop();
  });

  it('CRATON_HSM_FAULT without --test-faults is ignored; POST passes; C_SeedRandom and C_GenerateRandom work', async () => {
    daemon = await daemonWith('rk-clean', 'post:sha256', false);
    expect(daemon.stderr()).toMatch(/CRATON_HSM_FAULT is set but ignored/);
    expect(daemon.stderr()).toMatch(/power-on self-tests passed: \d+\/\d+ known-answer tests, integrity ok/);
    const mod = loadModule(daemon.socketPath);
    try {
      const p11 = mod.p11;
      const slot = p11.C_GetSlotList(false)[0]!;
      p11.C_InitToken(slot, '12345678', 'faults');
      const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
      p11.C_SeedRandom(s, Buffer.from('caller-supplied seed'));
      const a = p11.C_GenerateRandom(s, Buffer.alloc(32));
      const b = p11.C_GenerateRandom(s, Buffer.alloc(32));
      expect(a.equals(b)).toBe(false);
      p11.C_CloseSession(s);
    } finally {
      mod.close();
    }
    expect(hits.get('rk-clean')).toBeUndefined();
  });
});
