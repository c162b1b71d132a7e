// deploy/grafana/craton-hsm-dashboard.json against a live daemon: it is a well-formed Grafana
// dashboard (panels with the ${DS_PROMETHEUS} data source, targets and unique ids), and every
// metric its PromQL names is one the daemon exports (# TYPE in a real scrape, histogram
// suffixes _bucket/_sum/_count allowed), with every `by (...)` label on a scraped series.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKR } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startMetricsDaemon, type Daemon } from '../helpers/daemon.js';
import { initTokenAndLogin, loadModule, pkcs11js, rvOf, type LoadedModule } from '../helpers/module.js';

const DASHBOARD = path.join(REPO_ROOT, 'deploy', 'grafana', 'craton-hsm-dashboard.json');
const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, any>;

// ---- PromQL: which identifiers are metric names

const FUNCTIONS_AND_KEYWORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'histogram_quantile', 'time', 'vector', 'scalar', 'abs',
  'clamp_min', 'clamp_max', 'label_replace', 'label_values', 'absent', 'changes', 'resets', 'sort', 'sort_desc',
  'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time', 'last_over_time', 'inf', 'nan',
]);

/** Metric names and grouping labels of one expression. */
export function promqlNames(expr: string): { metrics: string[]; groupLabels: string[] } {
  const groupLabels: string[] = [];
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges, subqueries
    .replace(/\$\{?\w+\}?/g, ''); // dashboard variables
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k: string, labels: string) => {
    groupLabels.push(...labels.split(',').map((l) => l.trim()).filter(Boolean));
    return ' ';
  });
  const metrics: string[] = [];
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const id = m[0];
    const after = e.slice(m.index! + id.length).trimStart();
    if (after.startsWith('(') || FUNCTIONS_AND_KEYWORDS.has(id)) continue;
    if (/^\d/.test(id) || /^[eE]\d*$/.test(id)) continue;
    metrics.push(id);
  }
  return { metrics, groupLabels };
}

function allPanels(): any[] {
  const out: any[] = [];
  const walk = (ps: any[]) => {
    for (const p of ps) {
      out.push(p);
      if (Array.isArray(p.panels)) walk(p.panels);
    }
  };
  walk(dash.panels);
  return out;
}
const dataPanels = () => allPanels().filter((p) => p.type !== 'row');

function queries(): Array<{ where: string; expr: string }> {
  const qs = dataPanels().flatMap((p) => (p.targets as any[]).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: String(t.expr) })));
  for (const v of dash.templating.list as any[]) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\(\s*([^,()]+?)\s*,\s*(\w+)\s*\)$/.exec(q);
    expect(m, `variable ${v.name}: ${q}`).not.toBeNull();
    qs.push({ where: `variable ${v.name}`, expr: m![1]! });
  }
  return qs;
}

// ---- the daemon's exported names

interface Scrape {
  types: Map<string, string>;
  /** Label names seen per sample name. */
  labels: Map<string, Set<string>>;
}

function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const s = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})? /.exec(line);
    if (!s) continue;
    const set = labels.get(s[1]!) ?? new Set<string>();
    for (const l of (s[3] ?? '').matchAll(/(\w+)="/g)) set.add(l[1]!);
    labels.set(s[1]!, set);
  }
  return { types, labels };
}

/** The exported family a sample name belongs to (histogram suffixes), or null. */
function familyOf(name: string, types: Map<string, string>): string | null {
  if (types.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && (types.get(m[1]!) === 'histogram' || types.get(m[1]!) === 'summary')) return m[1]!;
  return null;
}


describe('the Grafana dashboard JSON', () => {
  it('is a Grafana 10 dashboard with a Prometheus data-source variable', () => {
    expect(dash.title).toBe('Craton HSM');
    expect(typeof dash.uid).toBe('string');
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const ds = (dash.templating.list as any[]).find((v) => v.name === 'DS_PROMETHEUS');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
  });

  it('has unique panel ids, and every panel has the data source, a position and targets', () => {
    const ids = allPanels().map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dataPanels().length).toBeGreaterThanOrEqual(15);
    for (const p of allPanels()) expect(p.gridPos, `panel ${p.id}`).toMatchObject({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
    for (const p of dataPanels()) {
      expect(p.datasource, `panel ${p.id} ${p.title}`).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(p.title.length).toBeGreaterThan(0);
      expect(Array.isArray(p.targets) && p.targets.length > 0, `panel ${p.id} targets`).toBe(true);
      const refIds = p.targets.map((t: any) => t.refId);
      expect(new Set(refIds).size, `panel ${p.id} refIds`).toBe(refIds.length);
      for (const t of p.targets) {
        expect(t.datasource).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
        expect(typeof t.expr === 'string' && t.expr.length > 0).toBe(true);
      }
    }
  });

  it('covers what the operator needs to see', () => {
    const exprs = queries().map((q) => q.expr).join('\n');
    for (const metric of [
      'craton_hsm_operations_total',
      'craton_hsm_operation_duration_seconds_bucket',
      'craton_hsm_sessions_open',
      'craton_hsm_gcm_invocations_used_ratio',
      'craton_hsm_audit_fsync_duration_seconds_bucket',
      'craton_hsm_audit_queue_depth',
      'craton_hsm_selftest_passed',
      'craton_hsm_drbg_healthy',
      'craton_hsm_policy_violations_total',
      'craton_hsm_anomaly_alerts_total',
    ])
      expect(exprs).toContain(metric);
    for (const q of [0.5, 0.95, 0.99]) expect(exprs).toContain(`histogram_quantile(${q}, sum by (le) (rate(craton_hsm_operation_duration_seconds_bucket`);
  });

  it('extracts metric names from PromQL (the checker itself)', () => {
    expect(promqlNames('histogram_quantile(0.99, sum by (le, function) (rate(a_b_bucket{instance=~"$instance", rv!="CKR_OK"}[$__rate_interval])))')).toEqual({
      metrics: ['a_b_bucket'],
      groupLabels: ['le', 'function'],
    });
    expect(promqlNames('sum(rate(x_total[5m])) / sum(rate(y_total[5m])) > 0.5 and on (instance) z == 1').metrics).toEqual(['x_total', 'y_total', 'z']);
    expect(promqlNames('time() - max(t_seconds)').metrics).toEqual(['t_seconds']);
  });
});

describe('every dashboard query names a metric the daemon exports', () => {
  let d: Daemon;
  let metricsUrl: string;
  let m: LoadedModule;
  let scrape: Scrape;
  let hook: http.Server;

  beforeAll(async () => {
    // an alert sink, so the per-sink delivery series exist
    hook = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as net.AddressInfo).port}/`;
    ({ d, url: metricsUrl } = await startMetricsDaemon({ slots: 1, extraToml: `[alerts.webhook]\nurl = "${hookUrl}"\n` }));
    m = loadModule(d.socketPath);
    const p11 = m.p11;
    // a few calls so the labelled series exist: digests, a failure, a policy violation, a GCM key
    const { session: s } = initTokenAndLogin(p11, { soPin: '12345678', userPin: '1234', label: 'grafana' });
    p11.C_DigestInit(s, { mechanism: CKM.SHA256 });
    p11.C_Digest(s, Buffer.from('x'), Buffer.alloc(32));
    expect(rvOf(() => p11.C_DigestInit(s, { mechanism: CKM.MD5 }))).toBe(CKR.MECHANISM_INVALID);
    const key = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.TOKEN, value: true },
      { type: CKA.ENCRYPT, value: true },
    ]);
    const gcm = { type: pkcs11js.CK_PARAMS_GCM, iv: Buffer.alloc(12, 1), ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 };
    p11.C_EncryptInit(s, { mechanism: CKM.AES_GCM, parameter: gcm } as never, key);
    p11.C_Encrypt(s, Buffer.from('hello'), Buffer.alloc(64));
    const r = await fetch(`${metricsUrl}/metrics`);
    expect(r.status).toBe(200);
    scrape = parseScrape(await r.text());
  }, 60_000);
  afterAll(async () => {
    m?.close();
    await d?.stop();
    hook?.closeAllConnections();
    await new Promise((r) => hook?.close(r));
  });

  it('the scrape has the series the panels group by', () => {
    expect(scrape.labels.get('craton_hsm_operations_total')).toEqual(new Set(['function', 'mechanism', 'rv']));
    expect(scrape.labels.get('craton_hsm_policy_violations_total')).toEqual(new Set(['mechanism', 'result']));
    expect(scrape.labels.get('craton_hsm_gcm_invocations_used_ratio')).toEqual(new Set(['key_id']));
    expect(scrape.labels.get('craton_hsm_anomaly_alerts_total')).toEqual(new Set(['kind']));
  });

  it.each(queries().map((q) => [q.where, q.expr]))('%s', (_where, expr) => {
    const { metrics, groupLabels } = promqlNames(expr);
    expect(metrics.length, `no metric in ${expr}`).toBeGreaterThan(0);
    const seenLabels = new Set<string>(['instance', 'job']); // added by Prometheus at scrape
    for (const name of metrics) {
      const family = familyOf(name, scrape.types);
      expect(family, `${name} is not exported by craton-hsmd (query: ${expr})`).not.toBeNull();
      for (const l of scrape.labels.get(name) ?? []) seenLabels.add(l);
    }
    for (const l of groupLabels) expect(seenLabels, `label "${l}" is on no series of ${metrics.join(', ')}`).toContain(l);
  });
});
