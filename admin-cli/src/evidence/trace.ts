// craton-trace logs (docs/tracer.md, `craton-trace monitor` JSON lines) merged into the
// evidence: the OpenSSL operations of processes that do not go through the HSM, per
// process, with the same approved / blocked figures as `craton-trace report`.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseIsoMicros, type CryptoOpEvent } from '../../../tracer/src/events.js';
import { rate, type TraceProcess, type TraceSection } from './document.js';

const byCount = (m: Map<string, number>) =>
  [...m].map(([algorithm, count]) => ({ algorithm, count })).sort((a, b) => b.count - a.count || a.algorithm.localeCompare(b.algorithm));

function isCryptoOp(v: unknown): v is CryptoOpEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return e.event_type === 'crypto_op' && typeof e.timestamp === 'string' && typeof e.pid === 'number' && typeof e.algorithm === 'string' && typeof e.approved === 'boolean' && typeof e.action === 'string';
}

/** Reads the trace files; counts the crypto_op events whose time falls in [since, until]
 * (unix seconds, inclusive, like the audit log's resolution). */
export async function collectTrace(files: string[], since: number, until: number): Promise<TraceSection> {
  const procs = new Map<string, TraceProcess>();
  const blocked = new Map<string, number>();
  const warned = new Map<string, number>();
  const s: TraceSection = {
    files: [],
    total_operations: 0,
    approved_operations: 0,
    non_approved_operations: 0,
    blocked_operations: 0,
    warned_operations: 0,
    approval_rate: null,
    blocked_algorithms: [],
    warned_algorithms: [],
    processes: [],
  };
  for (const file of files) {
    const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    let lines = 0;
    let bad = 0;
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of rl) {
      if (!line.trim()) continue;
      lines++;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        bad++;
        continue;
      }
      if (!isCryptoOp(v)) continue;
      const sec = Math.floor(parseIsoMicros(v.timestamp) / 1e6);
      if (!(sec >= since && sec <= until)) continue;
      s.total_operations++;
      const key = `${v.pid}\u0000${v.binary ?? v.process}`;
      let p = procs.get(key);
      if (!p) procs.set(key, (p = { pid: v.pid, process: v.process, binary: v.binary ?? null, operations: 0, approved: 0, non_approved: 0, blocked: 0, warned: 0, approval_rate: null }));
      p.operations++;
      if (v.approved) {
        s.approved_operations++;
        p.approved++;
      } else p.non_approved++;
      if (v.action === 'BLOCKED') {
        s.blocked_operations++;
        p.blocked++;
        blocked.set(v.algorithm, (blocked.get(v.algorithm) ?? 0) + 1);
      } else if (v.action === 'WARNED') {
        s.warned_operations++;
        p.warned++;
        warned.set(v.algorithm, (warned.get(v.algorithm) ?? 0) + 1);
      }
    }
    s.files.push({ path: file, sha256, lines, unparseable: bad });
  }
  s.non_approved_operations = s.total_operations - s.approved_operations;
  s.approval_rate = rate(s.approved_operations, s.total_operations);
  s.blocked_algorithms = byCount(blocked);
  s.warned_algorithms = byCount(warned);
  for (const p of procs.values()) p.approval_rate = rate(p.approved, p.operations);
  s.processes = [...procs.values()].sort((a, b) => b.operations - a.operations || a.pid - b.pid);
  return s;
}
