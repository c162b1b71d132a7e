// Event filters. Command-line filters (seed 001) combine with AND:
//   --pid N, --name SUBSTR (process name), --library SUBSTR (library path),
//   --file GLOB (file path), --exclude GLOB (binary or file path), --sample-rate R.
// FIPS-Traces expressions (seed 000), also ANDed: `operation:ENCRYPT AND algorithm:AES*`,
// `binary:/usr/local/bin/myapp`; fields: operation, algorithm, binary, process, action,
// approved, event_type, pid; values are globs, case-insensitive for operation/algorithm/action.
import type { TraceEvent } from './events.js';

/** Glob → RegExp: * (any run), ? (one char), [abc] / [a-z] classes; anchored. */
export function globToRegExp(glob: string, flags = ''): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp('^' + re + '$', flags);
}

export interface FilterOptions {
  pid?: number;
  name?: string;
  library?: string;
  file?: string;
  exclude?: string[];
  expression?: string;
  /** 0 < rate <= 1: keep this fraction of crypto_op events (others always kept) */
  sampleRate?: number;
  /** only these event types (libs / files commands) */
  types?: ReadonlyArray<TraceEvent['event_type']>;
}

type Term = { field: string; re: RegExp };

const CASELESS = new Set(['operation', 'algorithm', 'action', 'event_type', 'approved']);
const FIELDS = new Set(['operation', 'algorithm', 'binary', 'signer', 'process', 'action', 'approved', 'event_type', 'pid', 'file', 'library']);

/** Parses `field:glob AND field:glob …`; throws on an unknown field or malformed term. */
export function parseExpression(expr: string): Term[] {
  const terms: Term[] = [];
  for (const part of expr.split(/\s+AND\s+/i)) {
    const t = part.trim();
    if (!t) continue;
    const m = /^([a-z_]+):(.+)$/i.exec(t);
    if (!m) throw new Error(`filter: "${t}" is not field:value`);
    let field = m[1]!.toLowerCase();
    if (!FIELDS.has(field)) throw new Error(`filter: unknown field "${field}" (known: ${[...FIELDS].join(', ')})`);
    if (field === 'signer') field = 'binary'; // FIPS-Traces' name for the calling binary
    terms.push({ field, re: globToRegExp(m[2]!.trim(), CASELESS.has(field) ? 'i' : '') });
  }
  return terms;
}

export function makeFilter(o: FilterOptions, random: () => number = Math.random): (e: TraceEvent) => boolean {
  const terms = o.expression ? parseExpression(o.expression) : [];
  const fileRe = o.file ? globToRegExp(o.file) : undefined;
  const excludes = (o.exclude ?? []).map((g) => globToRegExp(g));
  return (e) => {
    if (o.types && !o.types.includes(e.event_type)) return false;
    if (o.pid !== undefined && e.pid !== o.pid) return false;
    if (o.name !== undefined && !e.process.includes(o.name)) return false;
    if (o.library !== undefined && !(e.event_type === 'lib_load' && e.library.includes(o.library))) return false;
    if (fileRe && !(e.event_type === 'file_open' && fileRe.test(e.file))) return false;
    if (excludes.length) {
      const paths = [
        'binary' in e ? e.binary : undefined,
        e.event_type === 'file_open' ? e.file : undefined,
        e.event_type === 'lib_load' ? e.library : undefined,
      ].filter((p): p is string => typeof p === 'string');
      if (paths.some((p) => excludes.some((re) => re.test(p)))) return false;
    }
    for (const t of terms) {
      const v = (e as unknown as Record<string, unknown>)[t.field];
      if (v === undefined || !t.re.test(String(v))) return false;
    }
    if (o.sampleRate !== undefined && o.sampleRate < 1 && e.event_type === 'crypto_op' && e.action === 'ALLOWED') {
      // never sample away a warning or a block
      if (random() >= o.sampleRate) return false;
    }
    return true;
  };
}
