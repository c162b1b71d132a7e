// The Prometheus endpoint end to end: a daemon with [metrics] enabled on a free loopback
// port, calls through the real module (pkcs11js → libcraton_hsm.so → craton-hsmd), then
// a scrape whose counters must match the calls made, with the right labels. /readyz turns
// 503 under an injected self-test fault; a non-loopback listen address is refused.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { freePort, startDaemon, startMetricsDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, pkcs11js, rvOf, type LoadedModule, type PKCS11 } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';

/** A daemon with metrics on a free port. */
function metricsDaemon(opts: { args?: string[]; env?: Record<string, string>; toml?: string } = {}): Promise<{ d: Daemon; url: string }> {
  return startMetricsDaemon({ slots: 2, args: opts.args, env: opts.env, extraToml: opts.toml });
}

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/metrics`);
  expect(r.status).toBe(200);
  return parse(await r.text());
}

const op = (fn: string, mechanism: string, rv: string) => `craton_hsm_operations_total{function="${fn}",mechanism="${mechanism}",rv="${rv}"}`;

describe('metrics endpoint during a client run', () => {
  let d: Daemon;
  let url: string;
  let mod: LoadedModule;
  let p11: PKCS11;

  beforeAll(async () => {
    ({ d, url } = await metricsDaemon({ toml: '[nonce]\ngcm_invocation_limit = 100\n' }));
    mod = loadModule(d.socketPath);
    p11 = mod.p11;
  });
  afterAll(async () => {
    mod?.close();
    await d?.stop();
  });

  it('/healthz and /readyz answer 200 on a healthy daemon', async () => {
    const h = await fetch(`${url}/healthz`);
    expect(h.status).toBe(200);
    const r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', selftest: 'passed', error_state: null, audit: 'writable' });
  });

  it('counters, gauges and histograms follow the calls made', async () => {
    const auditLines = () => readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8').split('\n').filter(Boolean).length;
    const before = await scrape(url);
    const linesBefore = auditLines();
    const get = (m: Map<string, number>, k: string) => m.get(k) ?? 0;

    const slot = p11.C_GetSlotList(true)[0]!;
    p11.C_InitToken(slot, SO_PIN, 'metrics');
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.SO, SO_PIN);
    p11.C_InitPIN(s, USER_PIN);
    p11.C_Logout(s);
    expect(rvName(rvOf(() => p11.C_Login(s, CKU.USER, '9999')))).toBe('CKR_PIN_INCORRECT');
    p11.C_Login(s, CKU.USER, USER_PIN);
    const ro = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);

    for (let i = 0; i < 3; i++) {
      p11.C_DigestInit(s, { mechanism: CKM.SHA256 });
      p11.C_Digest(s, Buffer.from(`m${i}`), Buffer.alloc(32));
    }
    const key = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.TOKEN, value: false },
      { type: CKA.ENCRYPT, value: true },
    ] as never);
    for (let i = 0; i < 2; i++) {
      const iv = Buffer.alloc(12);
      iv.writeUInt32BE(i + 1, 8);
      p11.C_EncryptInit(s, { mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } } as never, key);
      p11.C_Encrypt(s, Buffer.from('hello'), Buffer.alloc(64));
    }
    // strict policy: MD5 refused at C_DigestInit
    expect(rvName(rvOf(() => p11.C_DigestInit(s, { mechanism: CKM.MD5 })))).toBe('CKR_MECHANISM_INVALID');

    const after = await scrape(url);
    const linesAfter = auditLines();
    const delta = (k: string) => get(after, k) - get(before, k);

    expect(delta(op('C_DigestInit', 'CKM_SHA256', 'CKR_OK'))).toBe(3);
    expect(delta(op('C_Digest', 'CKM_SHA256', 'CKR_OK'))).toBe(3);
    expect(delta(op('C_EncryptInit', 'CKM_AES_GCM', 'CKR_OK'))).toBe(2);
    expect(delta(op('C_Encrypt', 'CKM_AES_GCM', 'CKR_OK'))).toBe(2);
    expect(delta(op('C_GenerateKey', 'CKM_AES_KEY_GEN', 'CKR_OK'))).toBe(1);
    expect(delta(op('C_Login', 'none', 'CKR_PIN_INCORRECT'))).toBe(1);
    // refusals by the control that refused (the audit entries' details.refused_by); a wrong PIN is none
    expect(delta('craton_hsm_refusals_total{function="C_DigestInit",refused_by="policy"}')).toBe(1);
    expect([...after.keys()].filter((k) => k.startsWith('craton_hsm_refusals_total{'))).toEqual(['craton_hsm_refusals_total{function="C_DigestInit",refused_by="policy"}']);
    expect(delta(op('C_Login', 'none', 'CKR_OK'))).toBe(2);
    expect(delta(op('C_InitToken', 'none', 'CKR_OK'))).toBe(1);
    expect(delta(op('C_OpenSession', 'none', 'CKR_OK'))).toBe(2);
    expect(delta('craton_hsm_operation_duration_seconds_count{function="C_Digest"}')).toBe(3);
    expect(delta('craton_hsm_operation_duration_seconds_count{function="C_GenerateKey"}')).toBe(1);
    expect(get(after, 'craton_hsm_operation_duration_seconds_sum{function="C_GenerateKey"}')).toBeGreaterThan(0);

    expect(get(after, 'craton_hsm_sessions_open{slot="0",access="rw"}')).toBe(1);
    expect(get(after, 'craton_hsm_sessions_open{slot="0",access="ro"}')).toBe(1);
    expect(get(after, 'craton_hsm_sessions_open{slot="1",access="rw"}')).toBe(0);
    expect(get(after, 'craton_hsm_logged_in_applications{slot="0",role="user"}')).toBe(1);
    expect(get(after, 'craton_hsm_logged_in_applications{slot="0",role="so"}')).toBe(0);
    expect(get(after, 'craton_hsm_token_initialized{slot="0"}')).toBe(1);
    expect(get(after, 'craton_hsm_token_initialized{slot="1"}')).toBe(0);

    const gcm = [...after].filter(([k]) => k.startsWith('craton_hsm_gcm_invocations_used_ratio{'));
    expect(gcm).toHaveLength(1);
    expect(gcm[0]![0]).toMatch(/^craton_hsm_gcm_invocations_used_ratio\{key_id="slot-0\/[^"]+"\}$/);
    expect(gcm[0]![1]).toBeCloseTo(0.02);

    // entries written = lines the audit log grew by (the logged calls, fsynced)
    expect(linesAfter - linesBefore).toBeGreaterThanOrEqual(15);
    expect(delta('craton_hsm_audit_entries_written_total')).toBe(linesAfter - linesBefore);
    expect(get(after, 'craton_hsm_audit_fsync_duration_seconds_count')).toBeGreaterThan(0);
    expect(get(after, 'craton_hsm_audit_writable')).toBe(1);
    expect(get(after, 'craton_hsm_audit_queue_depth')).toBe(0);
    expect(after.has('craton_hsm_audit_rotations_total')).toBe(true);
    expect(get(after, 'craton_hsm_alert_sink_failures_total{sink="log"}')).toBe(0);
    expect(get(after, 'craton_hsm_error_state')).toBe(0);
    expect(get(after, 'craton_hsm_drbg_healthy')).toBe(1);
    expect(get(after, 'craton_hsm_selftest_passed')).toBe(1);
    expect(get(after, 'craton_hsm_selftest_result{test="sha256",kind="kat"}')).toBe(1);
    expect(get(after, 'craton_hsm_ready')).toBe(1);

    p11.C_CloseSession(ro);
    p11.C_Logout(s);
    p11.C_CloseSession(s);
    const closed = await scrape(url);
    expect(get(closed, 'craton_hsm_sessions_open{slot="0",access="rw"}')).toBe(0);
    expect(get(closed, 'craton_hsm_logged_in_applications{slot="0",role="user"}')).toBe(0);
  });

  it('rotation by SIGUSR1 shows in audit_rotations_total', async () => {
    const before = (await scrape(url)).get('craton_hsm_audit_rotations_total') ?? 0;
    d.proc.kill('SIGUSR1');
    const end = Date.now() + 10_000;
    for (;;) {
      const now = (await scrape(url)).get('craton_hsm_audit_rotations_total') ?? 0;
      if (now === before + 1) break;
      if (Date.now() > end) throw new Error(`rotations stayed at ${now}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe('readiness under an injected self-test fault', () => {
  it('/readyz answers 503 while /healthz stays 200; the metrics show the error state', async () => {
    const { d, url } = await metricsDaemon({ args: ['--test-faults'], env: { CRATON_HSM_FAULT: 'post:sha256' } });
    try {
      const h = await fetch(`${url}/healthz`);
      expect(h.status).toBe(200);
      const r = await fetch(`${url}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: 'not_ready', selftest: 'failed', error_state: 'post_failure', audit: 'writable' });
      const m = await scrape(url);
      expect(m.get('craton_hsm_error_state')).toBe(1);
      expect(m.get('craton_hsm_error_state_kind{kind="post_failure"}')).toBe(1);
      expect(m.get('craton_hsm_selftest_passed')).toBe(0);
      expect(m.get('craton_hsm_selftest_result{test="sha256",kind="kat"}')).toBe(0);
      expect(m.get('craton_hsm_selftest_result{test="aes-gcm",kind="kat"}')).toBe(1);
      expect(m.get('craton_hsm_ready')).toBe(0);
    } finally {
      await d.stop();
    }
  });
});

describe('listen address policy', () => {
  it('refuses to start on a non-loopback address without allow_non_loopback', async () => {
    const port = await freePort();
    await expect(startDaemon({ extraToml: `[metrics]\nenabled = true\nlisten = "0.0.0.0:${port}"\n` })).rejects.toThrow(
      /metrics\.listen = "0\.0\.0\.0:\d+" is not a loopback address/,
    );
  });

  it('is off by default: [metrics] enabled = false serves nothing on the listen port', async () => {
    const port = await freePort();
    const d = await startDaemon({ extraToml: `[metrics]\nlisten = "127.0.0.1:${port}"\n` });
    try {
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      await d.stop();
    }
  });
});
