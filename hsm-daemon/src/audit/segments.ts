// Finding and reading the segments of one audit log on disk: the live file
// (<data_dir>/craton_hsm_audit.jsonl) and the segments rotated beside it
// (craton_hsm_audit.<first seq, 12 digits>.jsonl, or names logrotate gave them). Used by the
// daemon at start-up and by craton-hsm-admin, which never writes to them.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface ParsedEntry {
  seq: number;
  previous_hash: string;
  chain: string;
  hmac: string;
  operation: string;
  timestamp: number;
  details?: Record<string, unknown>;
  [k: string]: unknown;
}

export function asEntry(v: unknown): ParsedEntry | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const e = v as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq) || typeof e.previous_hash !== 'string' || typeof e.chain !== 'string') return null;
  if (typeof e.hmac !== 'string' || typeof e.operation !== 'string') return null;
  return e as ParsedEntry;
}

export function parseEntryLine(line: string): ParsedEntry | null {
  try {
    return asEntry(JSON.parse(line));
  } catch {
    return null;
  }
}

export function rotatedName(logPath: string, firstSeq: number): string {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  const stem = base.endsWith('.jsonl') ? base.slice(0, -'.jsonl'.length) : base;
  return path.join(dir, `${stem}.${String(firstSeq).padStart(12, '0')}.jsonl`);
}

export const quarantinePrefix = (logPath: string): string => `${logPath}.quarantine-`;
export const headFile = (logPath: string): string => `${logPath}.head.json`;

function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** The first complete line's entry, or null. */
export function firstEntryOf(file: string): ParsedEntry | null {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = readAt(fd, 0, 1 << 16);
    const nl = buf.indexOf(0x0a);
    return nl < 0 ? null : parseEntryLine(buf.subarray(0, nl).toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

export interface TailScan {
  /** The last complete line that parses as an entry, scanning back from the end. */
  last: ParsedEntry | null;
  /** Byte offset just past that line (0 when none). Bytes after it are torn or garbage. */
  goodEnd: number;
  size: number;
}

export function scanTailFd(fd: number): TailScan {
  const size = fstatSync(fd).size;
  let window = Math.min(size, 1 << 16);
  for (;;) {
    const start = size - window;
    const buf = readAt(fd, start, window);
    let end = buf.lastIndexOf(0x0a); // end of the last complete line (exclusive of \n)
    while (end >= 0) {
      const prev = end === 0 ? -1 : buf.lastIndexOf(0x0a, end - 1);
      if (prev < 0 && start > 0) break; // line may begin before the window
      const e = parseEntryLine(buf.subarray(prev + 1, end).toString('utf8'));
      if (e) return { last: e, goodEnd: start + end + 1, size };
      end = prev;
    }
    if (start === 0) return { last: null, goodEnd: 0, size };
    window = Math.min(size, window * 4);
  }
}

export function scanTail(file: string): TailScan {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return scanTailFd(fd);
  } finally {
    closeSync(fd);
  }
}

export interface Segment {
  path: string;
  firstSeq: number | null;
  live: boolean;
}

/** Every segment of the log at `logPath`, oldest first (ordered by first seq; the live
 * file last when it is still empty). Quarantine, head and key files are not segments. */
export function discoverSegments(logPath: string): Segment[] {
  const dir = path.dirname(logPath);
  const live = path.basename(logPath);
  const stem = live.endsWith('.jsonl') ? live.slice(0, -'.jsonl'.length) : live;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: Segment[] = [];
  for (const name of names) {
    if (name !== live) {
      if (!name.startsWith(stem + '.') && !name.startsWith(live + '-')) continue;
      if (/\.quarantine-|\.head\.json$|\.tmp|\.(gz|xz|bz2|zst|key|pem|json)$/.test(name)) continue;
    }
    const p = path.join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    let first: ParsedEntry | null = null;
    try {
      first = firstEntryOf(p);
    } catch {
      continue;
    }
    if (!first && name !== live) continue;
    out.push({ path: p, firstSeq: first?.seq ?? null, live: name === live });
  }
  out.sort((a, b) => (a.firstSeq ?? Infinity) - (b.firstSeq ?? Infinity) || Number(a.live) - Number(b.live));
  return out;
}
