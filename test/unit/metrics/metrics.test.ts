// The metrics registry, readiness and HTTP endpoint with fake sources (no daemon).
import { afterEach, describe, expect, it } from 'vitest';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { mechanismName } from '../../../hsm-daemon/src/pkcs11/names.js';
import { createMetrics, readiness, type MetricSources } from '../../../hsm-daemon/src/metrics/registry.js';
import { isLoopbackAddress, parseListen, resolveListen } from '../../../hsm-daemon/src/metrics/listen.js';
import { serveMetrics, type MetricsServer } from '../../../hsm-daemon/src/metrics/server.js';

function fakeSources(over: Partial<MetricSources> = {}): MetricSources & { state: Record<string, any> } {
  const state: Record<string, any> = {
    error: null,
    drbg: 'ready',
    passed: true,
    auditHealthy: true,
    audit: { entriesWritten: 7, rotations: 2, reopens: 1 },
  };
  return {
    state,
    slots: () => [
      { slot: 0, initialized: true, sessionsRw: 2, sessionsRo: 1, loggedInUser: 1, loggedInSo: 0 },
      { slot: 1, initialized: false, sessionsRw: 0, sessionsRo: 0, loggedInUser: 0, loggedInSo: 0 },
    ],
    gcm: () => [{ key: 'slot-0/abc123', used: 3, limit: 4 }],
    errorState: () => state.error,
    drbg: () => ({ state: state.drbg }),
    selfTest: () => ({
      passed: state.passed,
      startedAt: '2025-01-01T00:00:00.000Z',
      integrity: { ok: true },
      kats: [
        { name: 'sha256', ok: state.passed },
        { name: 'aes-gcm', ok: true },
      ],
      drbg: { ok: true },
    }),
    audit: () =>
      state.auditDisabled ? null : { healthy: state.auditHealthy, queueDepth: 5, stats: state.audit, lastError: null },
    alertSinks: () => ({ log: { delivered: 1, failed: 0, dropped: 0, retries: 0, queued: 0 }, pagerduty: { delivered: 0, failed: 3, dropped: 1, retries: 4, queued: 2 } }),
    mechanismLabel: (m) => (m === CKM.SHA256 || m === CKM.AES_GCM ? mechanismName(m) : 'other'),
    ...over,
  };
}

/** Parses the text format into "name{labels}" → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const app = { id: 'a1', peer: { pid: 1, uid: 1000, exe: null } } as never;

describe('createMetrics', () => {
  it('counts calls by function, mechanism and CK_RV, and times them per function', async () => {
    const src = fakeSources();
    const m = createMetrics(src, { defaultMetrics: false });
    const t = performance.now() - 3; // 3 ms ago
    m.observer({ app, fn: 'C_DigestInit', rv: CKR.OK, note: { mechanism: CKM.SHA256 }, startedAt: t });
    m.observer({ app, fn: 'C_DigestInit', rv: CKR.OK, note: { mechanism: CKM.SHA256 }, startedAt: t });
    m.observer({ app, fn: 'C_EncryptInit', rv: CKR.MECHANISM_INVALID, note: { mechanism: 0x80001234 }, startedAt: t });
    m.observer({ app, fn: 'C_GetSlotList', rv: CKR.OK, note: {} });
    const v = parse(await m.registry.metrics());
    expect(v.get('craton_hsm_operations_total{function="C_DigestInit",mechanism="CKM_SHA256",rv="CKR_OK"}')).toBe(2);
    expect(v.get('craton_hsm_operations_total{function="C_EncryptInit",mechanism="other",rv="CKR_MECHANISM_INVALID"}')).toBe(1);
    expect(v.get('craton_hsm_operations_total{function="C_GetSlotList",mechanism="none",rv="CKR_OK"}')).toBe(1);
    expect(v.get('craton_hsm_operation_duration_seconds_count{function="C_DigestInit"}')).toBe(2);
    expect(v.get('craton_hsm_operation_duration_seconds_sum{function="C_DigestInit"}')).toBeGreaterThanOrEqual(0.005);
    expect(v.get('craton_hsm_operation_duration_seconds_bucket{le="0.001",function="C_DigestInit"}')).toBe(0);
    // no startedAt: counted, not timed
    expect(v.get('craton_hsm_operation_duration_seconds_count{function="C_GetSlotList"}')).toBeUndefined();
  });

  it('exposes sessions, logins, safety state, GCM usage, audit and alert sinks', async () => {
    const m = createMetrics(fakeSources(), { defaultMetrics: false });
    m.observeFsync(0.002);
    m.observeFsync(0.0003);
    const text = await m.registry.metrics();
    const v = parse(text);
    expect(v.get('craton_hsm_sessions_open{slot="0",access="rw"}')).toBe(2);
    expect(v.get('craton_hsm_sessions_open{slot="0",access="ro"}')).toBe(1);
    expect(v.get('craton_hsm_sessions_open{slot="1",access="rw"}')).toBe(0);
    expect(v.get('craton_hsm_logged_in_applications{slot="0",role="user"}')).toBe(1);
    expect(v.get('craton_hsm_logged_in_applications{slot="0",role="so"}')).toBe(0);
    expect(v.get('craton_hsm_token_initialized{slot="1"}')).toBe(0);
    expect(v.get('craton_hsm_error_state')).toBe(0);
    expect(v.get('craton_hsm_drbg_healthy')).toBe(1);
    expect(v.get('craton_hsm_drbg_instantiated')).toBe(1);
    expect(v.get('craton_hsm_selftest_passed')).toBe(1);
    expect(v.get('craton_hsm_selftest_result{test="sha256",kind="kat"}')).toBe(1);
    expect(v.get('craton_hsm_selftest_result{test="integrity",kind="integrity"}')).toBe(1);
    expect(v.get('craton_hsm_selftest_last_run_timestamp_seconds')).toBe(1735689600);
    expect(v.get('craton_hsm_gcm_invocations_used_ratio{key_id="slot-0/abc123"}')).toBe(0.75);
    expect(v.get('craton_hsm_audit_queue_depth')).toBe(5);
    expect(v.get('craton_hsm_audit_writable')).toBe(1);
    expect(v.get('craton_hsm_audit_entries_written_total')).toBe(7);
    expect(v.get('craton_hsm_audit_rotations_total')).toBe(2);
    expect(v.get('craton_hsm_audit_reopens_total')).toBe(1);
    expect(v.get('craton_hsm_audit_fsync_duration_seconds_count')).toBe(2);
    expect(v.get('craton_hsm_audit_fsync_duration_seconds_bucket{le="0.0005"}')).toBe(1);
    expect(v.get('craton_hsm_alert_sink_failures_total{sink="pagerduty"}')).toBe(3);
    expect(v.get('craton_hsm_alert_sink_failures_total{sink="log"}')).toBe(0);
    expect(v.get('craton_hsm_alert_sink_dropped_total{sink="pagerduty"}')).toBe(1);
    expect(v.get('craton_hsm_alert_sink_queued{sink="pagerduty"}')).toBe(2);
    expect(v.get('craton_hsm_ready')).toBe(1);
    expect(text).toContain('# TYPE craton_hsm_operations_total counter');
    expect(text).toContain('# TYPE craton_hsm_audit_entries_written_total counter');
    expect(text).toContain('# TYPE craton_hsm_audit_fsync_duration_seconds histogram');
    expect(text).not.toContain('NaN');
  });

  it('follows the sources between scrapes (error state, DRBG, audit down, rotations)', async () => {
    const src = fakeSources();
    const m = createMetrics(src, { defaultMetrics: false });
    src.state.error = { kind: 'drbg_failure', reason: 'stuck source' };
    src.state.drbg = 'error';
    src.state.auditHealthy = false;
    src.state.audit = { entriesWritten: 9, rotations: 3, reopens: 1 };
    const v = parse(await m.registry.metrics());
    expect(v.get('craton_hsm_error_state')).toBe(1);
    expect(v.get('craton_hsm_error_state_kind{kind="drbg_failure"}')).toBe(1);
    expect(v.get('craton_hsm_drbg_healthy')).toBe(0);
    expect(v.get('craton_hsm_audit_writable')).toBe(0);
    expect(v.get('craton_hsm_audit_entries_written_total')).toBe(9);
    expect(v.get('craton_hsm_audit_rotations_total')).toBe(3);
    expect(v.get('craton_hsm_ready')).toBe(0);
  });

  it('includes the process metrics by default, on its own registry', async () => {
    const a = createMetrics(fakeSources());
    const b = createMetrics(fakeSources());
    const text = await a.registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    expect(await b.registry.metrics()).toContain('craton_hsm_operations_total');
  });

  it('never puts anything but bounded names and key ids in labels', async () => {
    const m = createMetrics(fakeSources(), { defaultMetrics: false });
    m.observer({ app, fn: 'C_Sign', rv: 0x12345678, note: { mechanism: 0xdeadbeef, key: 42, session: 7 }, startedAt: performance.now() });
    const text = await m.registry.metrics();
    expect(text).toContain('function="C_Sign",mechanism="other",rv="CKR_0x12345678"');
    for (const m of text.matchAll(/\{([^}]*)\}/g)) {
      for (const kv of m[1]!.split(/,(?=[a-z_]+=)/)) expect(kv.split('=')[0]).toMatch(/^(function|mechanism|rv|slot|access|role|kind|test|key_id|sink|le)$/);
    }
  });
});

describe('readiness', () => {
  it('is ready when self-tests passed, audit writable (or disabled), no error state', () => {
    const src = fakeSources();
    expect(readiness(src)).toEqual({ ready: true, checks: { selftest: 'passed', error_state: null, audit: 'writable' } });
    src.state.auditDisabled = true;
    expect(readiness(src).ready).toBe(true);
    expect(readiness(src).checks.audit).toBe('disabled');
  });
  it('is not ready on a failed self-test, an error state, or an unwritable audit log', () => {
    const a = fakeSources();
    a.state.passed = false;
    expect(readiness(a)).toMatchObject({ ready: false, checks: { selftest: 'failed' } });
    const b = fakeSources();
    b.state.error = { kind: 'post_failure', reason: 'x' };
    expect(readiness(b)).toMatchObject({ ready: false, checks: { error_state: 'post_failure' } });
    const c = fakeSources();
    c.state.auditHealthy = false;
    expect(readiness(c)).toMatchObject({ ready: false, checks: { audit: 'unavailable' } });
    expect(readiness(fakeSources({ selfTest: () => null })).checks.selftest).toBe('not_run');
  });
});

describe('listen address', () => {
  it('parses HOST:PORT and [IPv6]:PORT', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListen('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    expect(() => parseListen('127.0.0.1')).toThrow(/HOST:PORT/);
    expect(() => parseListen('[1:2]:1')).toThrow(/IPv6/);
  });
  it('knows loopback', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['0.0.0.0', '10.0.0.1', '::', '::ffff:10.0.0.1', 'fe80::1', 'localhost']) expect(isLoopbackAddress(a), a).toBe(false);
  });
  it('refuses a non-loopback address unless allowed', async () => {
    await expect(resolveListen('0.0.0.0:9464', false)).rejects.toThrow(/not a loopback address.*allow_non_loopback/);
    await expect(resolveListen('[::]:9464', false)).rejects.toThrow(/not a loopback address/);
    await expect(resolveListen('0.0.0.0:9464', true)).resolves.toEqual({ host: '0.0.0.0', port: 9464 });
    await expect(resolveListen('127.0.0.1:9464', false)).resolves.toEqual({ host: '127.0.0.1', port: 9464 });
    const lh = await resolveListen('localhost:9464', false);
    expect(isLoopbackAddress(lh.host)).toBe(true);
  });
});

describe('HTTP endpoint', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves /metrics, /healthz, /readyz (200, then 503), 404 and 405', async () => {
    const src = fakeSources();
    const m = createMetrics(src, { defaultMetrics: false });
    server = await serveMetrics({ host: '127.0.0.1', port: 0, registry: m.registry, readiness: () => readiness(src), log: () => undefined });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).toContain('craton_hsm_sessions_open{slot="0",access="rw"} 2');
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    let ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', selftest: 'passed', error_state: null, audit: 'writable' });
    src.state.error = { kind: 'post_failure', reason: 'x' };
    ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', error_state: 'post_failure' });
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    const post = await fetch(`${server.url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('reports a port already in use', async () => {
    const m = createMetrics(fakeSources(), { defaultMetrics: false });
    server = await serveMetrics({ host: '127.0.0.1', port: 0, registry: m.registry, readiness: () => readiness(fakeSources()), log: () => undefined });
    await expect(
      serveMetrics({ host: '127.0.0.1', port: server.address.port, registry: m.registry, readiness: () => readiness(fakeSources()), log: () => undefined }),
    ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});
