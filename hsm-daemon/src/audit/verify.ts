// Our verifier: every layer of every entry, across segments, streaming (constant memory).
// Used by `craton-hsm-admin audit verify`. Reports the first failure with file, line and
// the expected and recorded values.
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { ZERO_HASH, chainOf, evolveKey, hmacOf, seedHash } from './entry.js';
import { verifyCheckpoint, type SignedCheckpoint } from './checkpoint.js';
import { asEntry, type ParsedEntry } from './segments.js';

export interface VerifyOptions {
  /** The initial HMAC key (audit-hmac-initial.key): enables the keyed layer. */
  initialKey?: Buffer;
  /** The checkpoint public key: enables checkpoint signature checks. */
  publicKey?: KeyObject;
  /** The last signed head (<log>.head.json): detects truncation back past it. */
  head?: SignedCheckpoint & { checkpoint_seq?: number };
}

export interface VerifyFailure {
  file: string;
  line: number;
  seq: number | null;
  what: string;
  expected?: string;
  recorded?: string;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  firstSeq: number | null;
  lastSeq: number | null;
  lastChain: string | null;
  checkpointsVerified: number;
  layers: string[];
  warnings: string[];
  failure?: VerifyFailure;
  /** Set when the first segment did not start at seq 1 and was anchored on its SegmentStart. */
  anchoredAt?: { seq: number; chain: string };
}

export async function verifySegments(files: string[], opts: VerifyOptions = {}): Promise<VerifyResult> {
  const res: VerifyResult = {
    ok: true,
    entries: 0,
    firstSeq: null,
    lastSeq: null,
    lastChain: null,
    checkpointsVerified: 0,
    layers: ['previous_hash (seed 003)', 'seq', 'chain'],
    warnings: [],
  };
  if (opts.initialKey) res.layers.push('hmac (forward-secure)');
  if (opts.publicKey) res.layers.push('checkpoint signatures');
  let prevSeq: number | null = null;
  let prevChain: string | null = null;
  let key: Buffer | null = null;
  let last: ParsedEntry | null = null;
  const fail = (f: VerifyFailure): VerifyResult => {
    res.ok = false;
    res.failure = f;
    return res;
  };

  for (const file of files) {
    const name = file;
    let expectPrev = ZERO_HASH;
    let lineNo = 0;
    // Only complete lines: the daemon may be appending right now (or died mid-line and has
    // not recovered yet); an incomplete last line is reported, not judged.
    const { complete, size } = completeLength(file);
    if (complete < size) res.warnings.push(`${path.basename(file)}: ignored ${size - complete} byte(s) of an incomplete last line`);
    if (complete === 0) continue;
    const rl = createInterface({ input: createReadStream(file, { start: 0, end: complete - 1 }), crlfDelay: Infinity });
    try {
      for await (const line of rl) {
        lineNo++;
        let entry: ParsedEntry | null = null;
        try {
          entry = asEntry(JSON.parse(line));
        } catch {
          entry = null;
        }
        if (!entry) return fail({ file: name, line: lineNo, seq: null, what: 'not a valid audit entry (unparseable or missing fields)' });
        const seq = entry.seq;
        if (entry.previous_hash !== expectPrev)
          return fail({ file: name, line: lineNo, seq, what: 'previous_hash mismatch (entry before it altered, removed or inserted)', expected: expectPrev, recorded: entry.previous_hash });
        if (prevSeq === null) {
          // Anchor: the genesis, or the SegmentStart a segment begins with.
          if (seq === 1) prevChain = ZERO_HASH;
          else if (entry.operation === 'SegmentStart' && typeof entry.details?.previous_chain === 'string' && entry.details.previous_seq === seq - 1) {
            prevChain = entry.details.previous_chain;
            res.anchoredAt = { seq: seq - 1, chain: prevChain };
            res.warnings.push(`first segment starts at seq ${seq}; verified from its recorded anchor (seq ${seq - 1}, chain ${prevChain}), not from genesis`);
          } else return fail({ file: name, line: lineNo, seq, what: `cannot anchor: the log starts at seq ${seq} without a SegmentStart entry` });
          res.firstSeq = seq;
        } else if (seq !== prevSeq + 1) {
          return fail({ file: name, line: lineNo, seq, what: `sequence break: expected seq ${prevSeq + 1}, recorded ${seq} (entries removed, inserted or reordered)`, expected: String(prevSeq + 1), recorded: String(seq) });
        }
        const chain = chainOf(prevChain!, entry);
        if (chain !== entry.chain) return fail({ file: name, line: lineNo, seq, what: 'chain mismatch (this entry or one before it was altered)', expected: chain, recorded: entry.chain });
        if (opts.head && seq === opts.head.head_seq && entry.chain !== opts.head.head_chain)
          return fail({ file: name, line: lineNo, seq, what: 'chain differs from the signed head (history rewritten)', expected: opts.head.head_chain, recorded: entry.chain });
        if (opts.initialKey) {
          if (!key) {
            key = evolveKey(opts.initialKey);
            for (let s = 1; s < seq; s++) key = evolveKey(key);
          }
          const mac = hmacOf(key, entry);
          if (mac !== entry.hmac) return fail({ file: name, line: lineNo, seq, what: 'hmac mismatch (entry forged or altered, or wrong key)', expected: mac, recorded: entry.hmac });
          key = evolveKey(key);
        }
        if (entry.operation === 'Checkpoint') {
          const d = (entry.details ?? {}) as Record<string, unknown>;
          if (d.head_seq !== seq - 1 || d.head_chain !== prevChain)
            return fail({ file: name, line: lineNo, seq, what: 'checkpoint does not commit to the entry before it', expected: prevChain!, recorded: String(d.head_chain) });
          if (opts.publicKey) {
            if (typeof d.signature !== 'string') {
              res.warnings.push(`${path.basename(name)}:${lineNo}: checkpoint seq ${seq} is unsigned`);
            } else if (!verifyCheckpoint(opts.publicKey, { head_seq: seq - 1, head_chain: prevChain!, timestamp: entry.timestamp, signature: d.signature, key_id: String(d.key_id) })) {
              return fail({ file: name, line: lineNo, seq, what: 'checkpoint signature invalid' });
            } else res.checkpointsVerified++;
          }
        }
        expectPrev = seedHash(entry);
        prevChain = entry.chain;
        prevSeq = seq;
        last = entry;
        res.entries++;
      }
    } finally {
      rl.close();
    }
  }
  res.lastSeq = prevSeq;
  res.lastChain = prevChain;
  if (opts.head) {
    const h = opts.head;
    if (opts.publicKey && !verifyCheckpoint(opts.publicKey, h)) return fail({ file: 'head', line: 0, seq: h.head_seq, what: 'head file signature invalid' });
    if (prevSeq === null || prevSeq < h.head_seq)
      return fail({ file: files[files.length - 1] ?? '-', line: res.entries, seq: prevSeq, what: `truncated: the signed head records seq ${h.head_seq}, the log ends at seq ${prevSeq ?? 0}`, expected: h.head_chain, recorded: prevChain ?? '' });
  }
  if (last && last.operation !== 'Shutdown' && !(last.operation === 'Checkpoint' && (last.details as { reason?: unknown })?.reason === 'shutdown'))
    res.warnings.push('the log does not end with a clean shutdown (daemon running, crashed, or tail removed after the last checkpoint)');
  return res;
}

/** Bytes up to and including the last newline, and the file size. */
export function completeLength(file: string): { complete: number; size: number } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    let end = size;
    const buf = Buffer.alloc(1 << 16);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = readSync(fd, buf, 0, end - start, start);
      const i = buf.subarray(0, n).lastIndexOf(0x0a);
      if (i >= 0) return { complete: start + i + 1, size };
      end = start;
    }
    return { complete: 0, size };
  } finally {
    closeSync(fd);
  }
}
