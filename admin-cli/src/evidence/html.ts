// The evidence document as one self-contained HTML page for an auditor: inline CSS, charts
// drawn here as inline SVG (no script, no external resource), and every figure also as
// text. Each figure's element carries data-ev="<path in the JSON>" (e.g.
// data-ev="operations.by_mechanism.0.approved") and shows exactly the JSON value, so a
// test or a suspicious reader can check the page against the signed JSON mechanically.
import type { EvidenceDocument } from './document.js';

const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A figure bound to its JSON path. */
const fig = (path: string, value: unknown, tag = 'span'): string => `<${tag} data-ev="${esc(path)}">${esc(value === null || value === undefined ? '—' : value)}</${tag}>`;
/** A table cell bound to its JSON path. */
const td = (path: string, value: unknown): string => fig(path, value, 'td');

const C = { ok: '#2e7d32', warn: '#e65100', bad: '#c62828', grid: '#ddd', ink: '#222', muted: '#666', blue: '#1565c0' };

function approvalChart(doc: EvidenceDocument): string {
  const b = doc.timeline.buckets;
  const W = 760;
  const H = 240;
  const L = 48;
  const R = 48;
  const T = 16;
  const B = 40;
  const pw = W - L - R;
  const ph = H - T - B;
  const maxOps = Math.max(1, ...b.map((x) => x.approved + x.non_approved));
  const bw = pw / b.length;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const y = T + ph - (ph * i) / 4;
    parts.push(`<line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="${C.grid}"/>`);
    parts.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end" font-size="10" fill="${C.muted}">${i * 25}%</text>`);
    parts.push(`<text x="${L + pw + 6}" y="${y + 4}" font-size="10" fill="${C.muted}">${Math.round((maxOps * i) / 4)}</text>`);
  }
  const pts: string[] = [];
  b.forEach((x, i) => {
    const x0 = L + i * bw;
    const ha = (ph * x.approved) / maxOps;
    const hn = (ph * x.non_approved) / maxOps;
    const w = Math.max(1, bw * 0.7);
    const xo = x0 + (bw - w) / 2;
    if (ha > 0) parts.push(`<rect x="${xo.toFixed(1)}" y="${(T + ph - ha).toFixed(1)}" width="${w.toFixed(1)}" height="${ha.toFixed(1)}" fill="${C.ok}" opacity="0.35"><title>${esc(x.start)}: ${x.approved} approved</title></rect>`);
    if (hn > 0) parts.push(`<rect x="${xo.toFixed(1)}" y="${(T + ph - ha - hn).toFixed(1)}" width="${w.toFixed(1)}" height="${hn.toFixed(1)}" fill="${C.warn}" opacity="0.45"><title>${esc(x.start)}: ${x.non_approved} non-approved</title></rect>`);
    if (x.approval_rate !== null) {
      const cx = x0 + bw / 2;
      const cy = T + ph - (ph * Number(x.approval_rate)) / 100;
      pts.push(`${cx.toFixed(1)},${cy.toFixed(1)}`);
      parts.push(`<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3" fill="${C.blue}"><title>${esc(x.start)}: ${esc(x.approval_rate)}% approved</title></circle>`);
    }
  });
  if (pts.length > 1) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${C.blue}" stroke-width="2"/>`);
  const first = b[0];
  const last = b[b.length - 1];
  if (first && last) {
    parts.push(`<text x="${L}" y="${H - 20}" font-size="10" fill="${C.muted}">${esc(first.start)}</text>`);
    parts.push(`<text x="${L + pw}" y="${H - 20}" font-size="10" text-anchor="end" fill="${C.muted}">${esc(last.end)}</text>`);
  }
  parts.push(`<text x="${L}" y="${H - 4}" font-size="10" fill="${C.muted}">line: approval rate (left axis) · bars: operations per ${doc.timeline.bucket_seconds} s, green approved, orange non-approved (right axis)</text>`);
  return `<svg id="chart-approval" role="img" aria-label="approval rate over time" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

function hbars(id: string, label: string, rows: Array<{ name: string; value: number; path: string; color: string; note?: string }>): string {
  const W = 760;
  const rowH = 24;
  const L = 260;
  const H = Math.max(1, rows.length) * rowH + 10;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const parts = rows.map((r, i) => {
    const y = 5 + i * rowH;
    const w = ((W - L - 90) * r.value) / max;
    const name = r.name.length > 40 ? '…' + r.name.slice(-39) : r.name;
    return (
      `<text x="${L - 8}" y="${y + 15}" text-anchor="end" font-size="12" fill="${C.ink}">${esc(name)}</text>` +
      `<rect x="${L}" y="${y + 3}" width="${Math.max(r.value > 0 ? 2 : 0, w).toFixed(1)}" height="${rowH - 8}" fill="${r.color}"><title>${esc(r.name)}: ${r.value}${r.note ? ` (${esc(r.note)})` : ''}</title></rect>` +
      `<text x="${L + w + 6}" y="${y + 15}" font-size="12" fill="${C.ink}" data-ev="${esc(r.path)}">${r.value}</text>`
    );
  });
  if (rows.length === 0) parts.push(`<text x="${L}" y="18" font-size="12" fill="${C.muted}">none in this period</text>`);
  return `<svg id="${id}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

const clientName = (c: { pids: number; uid: number | null; exe: string | null }) => `${c.exe ?? '?'} (uid ${c.uid ?? '?'}, ${c.pids} pid${c.pids === 1 ? '' : 's'})`;
const pidList = (c: { pids: number; pid_list: number[] }) => c.pid_list.join(', ') + (c.pids > c.pid_list.length ? `, … (${c.pids - c.pid_list.length} more)` : '');
const yes = (b: boolean) => (b ? '<b class="ok">yes</b>' : '<b class="bad">NO</b>');

export function renderHtml(doc: EvidenceDocument): string {
  const s = doc.summary;
  const ch = doc.audit_chain;
  const sig = doc.signature;
  const sec: string[] = [];

  sec.push(`<section id="summary"><h2>Summary</h2><table class="kv">
<tr><th>Operations</th>${td('summary.operations', s.operations)}</tr>
<tr><th>Approved</th>${td('summary.approved', s.approved)}</tr>
<tr><th>Non-approved</th>${td('summary.non_approved', s.non_approved)}</tr>
<tr><th>Approval rate (%)</th>${td('summary.approval_rate', s.approval_rate)}</tr>
<tr><th>Refused operations</th>${td('summary.refusals', s.refusals)}</tr>
<tr><th>Failed logins</th>${td('summary.failed_logins', s.failed_logins)}</tr>
<tr><th>Keys created / destroyed / rotated</th><td>${fig('summary.keys_created', s.keys_created)} / ${fig('summary.keys_destroyed', s.keys_destroyed)} / ${fig('summary.keys_rotated', s.keys_rotated)}</td></tr>
<tr><th>Alerts raised</th>${td('summary.alerts', s.alerts)}</tr>
<tr><th>Self-test runs (failed)</th><td>${fig('summary.self_tests', s.self_tests)} (${fig('summary.self_tests_failed', s.self_tests_failed)})</td></tr>
<tr><th>Audit chain verified</th><td>${yes(s.chain_ok)} <span hidden data-ev="summary.chain_ok">${s.chain_ok}</span></td></tr>
</table></section>`);

  sec.push(`<section id="approval"><h2>Approval rate over time</h2>${approvalChart(doc)}
<details><summary>Figures per interval</summary><table><tr><th>from</th><th>to</th><th>operations</th><th>approved</th><th>non-approved</th><th>refused</th><th>approval %</th></tr>
${doc.timeline.buckets.map((b, i) => `<tr><td>${esc(b.start)}</td><td>${esc(b.end)}</td>${td(`timeline.buckets.${i}.operations`, b.operations)}${td(`timeline.buckets.${i}.approved`, b.approved)}${td(`timeline.buckets.${i}.non_approved`, b.non_approved)}${td(`timeline.buckets.${i}.refusals`, b.refusals)}${td(`timeline.buckets.${i}.approval_rate`, b.approval_rate)}</tr>`).join('\n')}
</table></details></section>`);

  const rk = doc.refusals.by_kind;
  sec.push(`<section id="refusals"><h2>Refused operations: ${fig('refusals.total', doc.refusals.total)}</h2>
${hbars('chart-refusals', 'refusals by kind', [
  { name: 'FIPS policy', value: rk.policy, path: 'refusals.by_kind.policy', color: C.bad },
  { name: 'PIN lockout', value: rk.lockout, path: 'refusals.by_kind.lockout', color: C.warn },
  { name: 'AES-GCM invocation limit', value: rk.gcm_limit, path: 'refusals.by_kind.gcm_limit', color: C.blue },
  { name: 'key date window', value: rk.key_dates, path: 'refusals.by_kind.key_dates', color: C.muted },
])}
<table><tr><th>seq</th><th>time</th><th>kind</th><th>operation</th><th>mechanism</th><th>result</th><th>pid</th><th>uid</th><th>exe</th><th>reason</th></tr>
${doc.refusals.entries.map((r, i) => `<tr>${td(`refusals.entries.${i}.seq`, r.seq)}<td>${esc(r.timestamp)}</td><td>${esc(r.kind)}${r.classified === 'inferred' ? ' (inferred)' : ''}</td><td>${esc(r.operation)}</td><td>${esc(r.mechanism ?? '—')}</td><td>${esc(r.result)}</td>${td(`refusals.entries.${i}.pid`, r.pid)}${td(`refusals.entries.${i}.uid`, r.uid)}<td>${esc(r.exe ?? '—')}</td><td>${esc(r.reason ?? '')}</td></tr>`).join('\n')}
</table>${doc.refusals.omitted ? `<p>${fig('refusals.omitted', doc.refusals.omitted)} more not listed.</p>` : ''}</section>`);

  sec.push(`<section id="clients"><h2>Activity per client</h2>
${hbars('chart-clients', 'audited calls per client', doc.operations.by_client.slice(0, 20).map((c, i) => ({ name: clientName(c), value: c.calls, path: `operations.by_client.${i}.calls`, color: C.blue })))}
<table><tr><th>exe</th><th>uid</th><th>pids</th><th>pid list</th><th>calls</th><th>operations</th><th>approved</th><th>non-approved</th><th>refused</th><th>failed logins</th></tr>
${doc.operations.by_client.map((c, i) => `<tr><td>${esc(c.exe ?? '—')}</td>${td(`operations.by_client.${i}.uid`, c.uid)}${td(`operations.by_client.${i}.pids`, c.pids)}<td>${esc(pidList(c))}</td>${td(`operations.by_client.${i}.calls`, c.calls)}${td(`operations.by_client.${i}.operations`, c.operations)}${td(`operations.by_client.${i}.approved`, c.approved)}${td(`operations.by_client.${i}.non_approved`, c.non_approved)}${td(`operations.by_client.${i}.refused`, c.refused)}${td(`operations.by_client.${i}.failed_logins`, c.failed_logins)}</tr>`).join('\n')}
</table></section>`);

  sec.push(`<section id="mechanisms"><h2>Operations by mechanism</h2>
<table><tr><th>mechanism</th><th>operations</th><th>approved</th><th>non-approved</th><th>no verdict</th><th>failed</th><th>calls</th></tr>
${doc.operations.by_mechanism.map((m, i) => `<tr><td>${esc(m.mechanism)}</td>${td(`operations.by_mechanism.${i}.operations`, m.operations)}${td(`operations.by_mechanism.${i}.approved`, m.approved)}${td(`operations.by_mechanism.${i}.non_approved`, m.non_approved)}${td(`operations.by_mechanism.${i}.unknown`, m.unknown)}${td(`operations.by_mechanism.${i}.failed`, m.failed)}${td(`operations.by_mechanism.${i}.calls`, m.calls)}</tr>`).join('\n')}
<tr><th>total</th>${td('operations.total', doc.operations.total)}${td('operations.approved', doc.operations.approved)}${td('operations.non_approved', doc.operations.non_approved)}${td('operations.unknown', doc.operations.unknown)}${td('operations.failed', doc.operations.failed)}<td></td></tr>
</table></section>`);

  const pol = doc.policy;
  sec.push(`<section id="policy"><h2>Policy in force</h2>
<table><tr><th>since (seq)</th><th>time</th><th>reason</th><th>enforce</th><th>policy hash</th><th>hash checks</th></tr>
${pol.in_force.map((p, i) => `<tr>${td(`policy.in_force.${i}.seq`, p.seq)}<td>${esc(p.timestamp ?? '')}</td><td>${esc(p.reason ?? '')}</td><td>${esc(p.settings.enforce)}</td><td><code>${fig(`policy.in_force.${i}.policy_hash`, p.policy_hash)}</code></td><td>${yes(p.hash_ok)}</td></tr>`).join('\n') || '<tr><td colspan="6">no PolicyInForce entry in the log up to the end of the period</td></tr>'}
</table><p>Configured now: <code>${fig('policy.configured_now.policy_hash', pol.configured_now.policy_hash)}</code> (enforce ${esc(pol.configured_now.settings.enforce)}); matches the newest policy of the period: ${yes(pol.matches_configuration)}</p></section>`);

  sec.push(`<section id="selftests"><h2>Self-tests</h2><p>All passed: ${yes(doc.self_tests.all_passed)}</p>
<table><tr><th>seq</th><th>time</th><th>trigger</th><th>passed</th><th>known-answer tests</th><th>integrity</th><th>DRBG</th><th>failed</th></tr>
${doc.self_tests.runs.map((r, i) => `<tr>${td(`self_tests.runs.${i}.seq`, r.seq)}<td>${esc(r.timestamp)}</td><td>${esc(r.trigger)}</td><td>${yes(r.passed)}</td>${td(`self_tests.runs.${i}.known_answer_tests`, r.known_answer_tests)}<td>${esc(r.integrity ?? '—')}</td><td>${esc(r.drbg ?? '—')}</td><td>${esc(r.failed.join(', '))}</td></tr>`).join('\n')}
</table>${doc.self_tests.error_states.length ? `<p class="bad">Error states: ${doc.self_tests.error_states.map((e) => `${esc(e.timestamp)} ${esc(e.kind)}: ${esc(e.reason)}`).join('; ')}</p>` : ''}</section>`);

  sec.push(`<section id="chain"><h2>Audit chain verification</h2><table class="kv">
<tr><th>Verified</th><td>${yes(ch.ok)}${ch.failure ? ` — ${esc(ch.failure.what)} at ${esc(ch.failure.file)}:${ch.failure.line}` : ''}</td></tr>
<tr><th>Segments</th><td>${fig('audit_chain.segments.length', ch.segments.length)}</td></tr>
<tr><th>Entries verified (whole log)</th>${td('audit_chain.entries_total', ch.entries_total)}</tr>
<tr><th>Entries in the period</th>${td('audit_chain.entries_in_period', ch.entries_in_period)}</tr>
<tr><th>First / last seq in the period</th><td>${fig('audit_chain.first_seq_in_period', ch.first_seq_in_period)} / ${fig('audit_chain.last_seq_in_period', ch.last_seq_in_period)}</td></tr>
<tr><th>Checkpoint signatures verified</th>${td('audit_chain.checkpoints_verified', ch.checkpoints_verified)}</tr>
<tr><th>Layers</th><td>${esc(ch.layers.join(', '))}</td></tr>
${ch.warnings.map((w) => `<tr><th>warning</th><td>${esc(w)}</td></tr>`).join('')}
</table></section>`);

  const classRows: Array<[keyof EvidenceDocument['keys']['created_by_class'], string]> = [
    ['key_pairs', 'key pairs generated (their halves are counted below)'],
    ['secret_keys', 'secret keys'],
    ['private_keys', 'private keys'],
    ['public_keys', 'public keys'],
    ['certificates', 'certificates'],
    ['other', 'other objects'],
    ['unknown', 'class not recorded'],
  ];
  sec.push(`<section id="keys"><h2>Keys and objects</h2><p>objects created ${fig('keys.created', doc.keys.created)}, destroyed ${fig('keys.destroyed', doc.keys.destroyed)}; audit signing key rotations ${fig('keys.rotated', doc.keys.rotated)}</p>
<table><tr><th>class</th><th>created</th><th>destroyed</th></tr>
${classRows.map(([k, name]) => `<tr><td>${esc(name)}</td>${td(`keys.created_by_class.${k}`, doc.keys.created_by_class[k])}${td(`keys.destroyed_by_class.${k}`, doc.keys.destroyed_by_class[k])}</tr>`).join('\n')}
</table>
<table><tr><th>seq</th><th>time</th><th>action</th><th>operation</th><th>objects</th><th>mechanism</th><th>handle</th><th>pid</th><th>exe</th></tr>
${doc.keys.events.map((k, i) => `<tr>${td(`keys.events.${i}.seq`, k.seq)}<td>${esc(k.timestamp)}</td><td>${esc(k.action)}</td><td>${esc(k.operation)}${k.detail ? ` (${esc(k.detail)})` : ''}</td>${td(`keys.events.${i}.objects`, k.objects)}<td>${esc(k.mechanism ?? '—')}</td>${td(`keys.events.${i}.key_handle`, k.key_handle)}${td(`keys.events.${i}.pid`, k.pid)}<td>${esc(k.exe ?? '—')}</td></tr>`).join('\n')}
</table></section>`);

  sec.push(`<section id="gcm"><h2>AES-GCM invocation counters</h2><p>GCM encryptions ${fig('gcm.encryptions', doc.gcm.encryptions)}, refused at the limit ${fig('gcm.limit_refusals', doc.gcm.limit_refusals)}</p>
<table><tr><th>key</th><th>peak invocations</th><th>limit</th><th>%</th></tr>
${doc.gcm.peaks.map((p, i) => `<tr><td><code>${esc(p.key)}</code></td>${td(`gcm.peaks.${i}.used`, p.used)}${td(`gcm.peaks.${i}.limit`, p.limit)}${td(`gcm.peaks.${i}.percent`, p.percent)}</tr>`).join('\n')}
</table></section>`);

  sec.push(`<section id="authn"><h2>Authentication</h2><p>failed logins ${fig('authentication.failed_logins', doc.authentication.failed_logins)}, lockout events ${fig('authentication.lockouts.length', doc.authentication.lockouts.length)}, unlocks ${fig('authentication.unlocks', doc.authentication.unlocks)}</p>
<p>Policy violations ${fig('policy_violations.total', doc.policy_violations.total)} (refused ${fig('policy_violations.refused', doc.policy_violations.refused)}, warned ${fig('policy_violations.warned', doc.policy_violations.warned)})</p></section>`);

  sec.push(`<section id="alerts"><h2>Alerts raised: ${fig('alerts.total', doc.alerts.total)}</h2>
<table><tr><th>kind</th><th>count</th></tr>${doc.alerts.by_kind.map((a, i) => `<tr><td>${esc(a.kind)}</td>${td(`alerts.by_kind.${i}.count`, a.count)}</tr>`).join('')}</table>
<table><tr><th>seq</th><th>time</th><th>kind</th><th>severity</th><th>summary</th></tr>
${doc.alerts.entries.map((a, i) => `<tr>${td(`alerts.entries.${i}.seq`, a.seq)}<td>${esc(a.timestamp)}</td><td>${esc(a.kind)}</td><td>${esc(a.severity)}</td><td>${esc(a.summary)}</td></tr>`).join('\n')}
</table></section>`);

  if (doc.trace) {
    const t = doc.trace;
    sec.push(`<section id="trace"><h2>Processes using OpenSSL directly (craton-trace)</h2>
<p>operations ${fig('trace.total_operations', t.total_operations)}, approved ${fig('trace.approved_operations', t.approved_operations)}, blocked ${fig('trace.blocked_operations', t.blocked_operations)}, warned ${fig('trace.warned_operations', t.warned_operations)}, approval rate ${fig('trace.approval_rate', t.approval_rate)}%</p>
${hbars('chart-trace', 'approval rate per process (%)', t.processes.slice(0, 20).map((p, i) => ({ name: `${p.binary ?? p.process} (pid ${p.pid})`, value: p.operations, path: `trace.processes.${i}.operations`, color: p.non_approved ? C.warn : C.ok, note: `${p.approval_rate ?? '—'}% approved` })))}
<table><tr><th>binary</th><th>pid</th><th>operations</th><th>approved</th><th>non-approved</th><th>blocked</th><th>approval %</th></tr>
${t.processes.map((p, i) => `<tr><td>${esc(p.binary ?? p.process)}</td>${td(`trace.processes.${i}.pid`, p.pid)}${td(`trace.processes.${i}.operations`, p.operations)}${td(`trace.processes.${i}.approved`, p.approved)}${td(`trace.processes.${i}.non_approved`, p.non_approved)}${td(`trace.processes.${i}.blocked`, p.blocked)}${td(`trace.processes.${i}.approval_rate`, p.approval_rate)}</tr>`).join('\n')}
</table>
<table><tr><th>blocked algorithm</th><th>count</th></tr>${t.blocked_algorithms.map((a, i) => `<tr><td>${esc(a.algorithm)}</td>${td(`trace.blocked_algorithms.${i}.count`, a.count)}</tr>`).join('')}</table></section>`);
  }

  sec.push(`<section id="signature"><h2>Signature</h2>${
    sig
      ? `<table class="kv"><tr><th>Signed at</th><td>${esc(sig.signed_at)}</td></tr><tr><th>Key id</th><td><code>${esc(sig.key_id)}</code></td></tr><tr><th>Digest (SHA-256)</th><td><code>${esc(sig.digest)}</code></td></tr></table>
<p>This page is a rendering. The signed record is the JSON document; check it with <code>craton-hsm-admin evidence verify FILE --pubkey audit-checkpoint-pub.pem</code>.</p>`
      : '<p class="bad">UNSIGNED: this document was made without the HSM\'s signature (--unsigned).</p>'
  }</section>`);

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Craton HSM compliance evidence ${esc(doc.period.since)} to ${esc(doc.period.until)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;color:${C.ink};max-width:1000px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid ${C.grid};padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid ${C.grid};padding:3px 8px;text-align:left;font-size:13px;vertical-align:top}
td[data-ev]{text-align:right;font-variant-numeric:tabular-nums}table.kv th{background:#f6f6f6;width:300px}
.ok{color:${C.ok}}.bad{color:${C.bad}}code{font-size:12px;word-break:break-all}.meta{color:${C.muted}}
@media print{details{display:block}details>*{display:block}}
</style></head>
<body>
<h1>Craton HSM compliance evidence</h1>
<p class="meta">Period <b>${esc(doc.period.since)}</b> to <b>${esc(doc.period.until)}</b> · host ${esc(doc.generator.host)} · generated ${esc(doc.generated_at)} by ${esc(doc.generator.tool)} ${esc(doc.generator.version)} · ${sig ? `signed by HSM key ${esc(sig.key_id.slice(0, 16))}…` : '<b class="bad">unsigned</b>'}</p>
${sec.join('\n')}
</body></html>
`;
}
