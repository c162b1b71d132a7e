// Compliance report from a trace log (seed 000's figures): period, total_operations,
// approved_operations, blocked_operations, approval_rate, blocked_algorithms, plus hourly
// buckets. Input: craton-trace monitor output (JSON lines); only crypto_op lines count.
import { parseIsoMicros, type CryptoOpEvent, type TraceEvent } from './events.js';

export interface Counts {
  total_operations: number;
  approved_operations: number;
  non_approved_operations: number;
  warned_operations: number;
  blocked_operations: number;
  /** approved / total in percent, two decimals; null with no operations */
  approval_rate: number | null;
  blocked_algorithms: Array<{ algorithm: string; count: number }>;
  warned_algorithms: Array<{ algorithm: string; count: number }>;
}

export interface Bucket extends Counts {
  period: string;
}

export interface ComplianceReport extends Counts {
  report_version: '1.0';
  generated_at: string;
  period: string;
  period_start: string | null;
  period_end: string | null;
  algorithms: Array<{ algorithm: string; operation: string; approved: boolean; count: number }>;
  processes: Array<{ binary: string; operations: number; non_approved: number; blocked: number }>;
  buckets: Bucket[];
  bucket_size: 'hourly' | 'daily' | 'none';
}

const isoSec = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const byCount = (m: Map<string, number>) =>
  [...m].map(([algorithm, count]) => ({ algorithm, count })).sort((a, b) => b.count - a.count || a.algorithm.localeCompare(b.algorithm));

function counts(ops: readonly CryptoOpEvent[]): Counts {
  const blocked = new Map<string, number>();
  const warned = new Map<string, number>();
  let approved = 0;
  let blockedN = 0;
  let warnedN = 0;
  for (const e of ops) {
    if (e.approved) approved++;
    if (e.action === 'BLOCKED') {
      blockedN++;
      blocked.set(e.algorithm, (blocked.get(e.algorithm) ?? 0) + 1);
    } else if (e.action === 'WARNED') {
      warnedN++;
      warned.set(e.algorithm, (warned.get(e.algorithm) ?? 0) + 1);
    }
  }
  const total = ops.length;
  return {
    total_operations: total,
    approved_operations: approved,
    non_approved_operations: total - approved,
    warned_operations: warnedN,
    blocked_operations: blockedN,
    approval_rate: total ? Math.round((approved / total) * 10000) / 100 : null,
    blocked_algorithms: byCount(blocked),
    warned_algorithms: byCount(warned),
  };
}

export interface ReportOptions {
  period?: 'hourly' | 'daily' | 'none';
  /** only operations at or after / before these times (ISO) */
  since?: string;
  until?: string;
  now?: () => Date;
}

export function buildReport(events: Iterable<TraceEvent>, o: ReportOptions = {}): ComplianceReport {
  const since = o.since ? parseIsoMicros(o.since) : -Infinity;
  const until = o.until ? parseIsoMicros(o.until) : Infinity;
  const ops: Array<CryptoOpEvent & { us: number }> = [];
  for (const e of events) {
    if (e.event_type !== 'crypto_op') continue;
    const us = parseIsoMicros(e.timestamp);
    if (us < since || us > until) continue;
    ops.push({ ...e, us });
  }
  ops.sort((a, b) => a.us - b.us);
  const size = o.period ?? 'hourly';
  const width = size === 'daily' ? 86_400_000 : 3_600_000;
  const buckets: Bucket[] = [];
  if (size !== 'none') {
    const groups = new Map<number, CryptoOpEvent[]>();
    for (const e of ops) {
      const start = Math.floor(e.us / 1000 / width) * width;
      (groups.get(start) ?? groups.set(start, []).get(start)!).push(e);
    }
    for (const [start, g] of [...groups].sort((a, b) => a[0] - b[0])) buckets.push({ period: `${isoSec(start)} to ${isoSec(start + width)}`, ...counts(g) });
  }
  const algos = new Map<string, { algorithm: string; operation: string; approved: boolean; count: number }>();
  const procs = new Map<string, { binary: string; operations: number; non_approved: number; blocked: number }>();
  for (const e of ops) {
    const k = `${e.algorithm}\0${e.operation}\0${e.approved}`;
    const a = algos.get(k) ?? algos.set(k, { algorithm: e.algorithm, operation: e.operation, approved: e.approved, count: 0 }).get(k)!;
    a.count++;
    const b = e.binary ?? e.process;
    const p = procs.get(b) ?? procs.set(b, { binary: b, operations: 0, non_approved: 0, blocked: 0 }).get(b)!;
    p.operations++;
    if (!e.approved) p.non_approved++;
    if (e.action === 'BLOCKED') p.blocked++;
  }
  const first = ops[0];
  const last = ops[ops.length - 1];
  const start = first ? first.timestamp : null;
  const end = last ? last.timestamp : null;
  return {
    report_version: '1.0',
    generated_at: (o.now?.() ?? new Date()).toISOString(),
    period: start && end ? `${start} to ${end}` : 'no operations',
    period_start: start,
    period_end: end,
    ...counts(ops),
    algorithms: [...algos.values()].sort((a, b) => b.count - a.count || a.algorithm.localeCompare(b.algorithm)),
    processes: [...procs.values()].sort((a, b) => b.operations - a.operations || a.binary.localeCompare(b.binary)),
    bucket_size: size,
    buckets,
  };
}

export function reportText(r: ComplianceReport): string {
  const rate = r.approval_rate === null ? 'n/a' : `${r.approval_rate.toFixed(2)}%`;
  const lines = [
    'FIPS compliance report (craton-trace)',
    `Period:              ${r.period}`,
    `Total operations:    ${r.total_operations}`,
    `Approved:            ${r.approved_operations}`,
    `Non-approved:        ${r.non_approved_operations} (warned ${r.warned_operations}, blocked ${r.blocked_operations})`,
    `Approval rate:       ${rate}`,
  ];
  if (r.blocked_algorithms.length) lines.push('Blocked algorithms:  ' + r.blocked_algorithms.map((a) => `${a.algorithm} ×${a.count}`).join(', '));
  if (r.warned_algorithms.length) lines.push('Warned algorithms:   ' + r.warned_algorithms.map((a) => `${a.algorithm} ×${a.count}`).join(', '));
  if (r.algorithms.length) {
    lines.push('', 'Algorithms:');
    for (const a of r.algorithms) lines.push(`  ${a.approved ? 'approved    ' : 'NOT approved'}  ${a.operation.padEnd(10)} ${a.algorithm.padEnd(24)} ${a.count}`);
  }
  if (r.processes.length) {
    lines.push('', 'Processes:');
    for (const p of r.processes) lines.push(`  ${p.binary}: ${p.operations} operations, ${p.non_approved} non-approved, ${p.blocked} blocked`);
  }
  if (r.buckets.length) {
    lines.push('', `${r.bucket_size === 'daily' ? 'Daily' : 'Hourly'}:`);
    for (const b of r.buckets) lines.push(`  ${b.period}: ${b.total_operations} ops, ${b.approved_operations} approved, ${b.blocked_operations} blocked, rate ${b.approval_rate === null ? 'n/a' : b.approval_rate.toFixed(2) + '%'}`);
  }
  return lines.join('\n') + '\n';
}
