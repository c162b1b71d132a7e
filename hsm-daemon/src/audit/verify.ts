// Our verifier: every layer of every entry, across segments, streaming (constant memory).
// Used by `craton-hsm-admin audit verify`. Reports the first failure with file, line and
// the expected and recorded values.
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { ZERO_HASH, chainOf, evolveKey, hmacOf, seedHash } from './entry.js';
import { KEY_CHANGE_OPERATION, keyIdOf, verifyCheckpoint, type SignedCheckpoint } from './checkpoint.js';
import { asEntry, type ParsedEntry } from './segments.js';

export interface VerifyOptions {
  /** The initial HMAC key (audit-hmac-initial.key): enables the keyed layer. */
  initialKey?: Buffer;
  /** The checkpoint public key: enables checkpoint signature checks. */
  publicKey?: KeyObject;
  /** More trusted checkpoint public keys (the data directory's keyring, readCheckpointKeyring).
   * A checkpoint's key is picked by its key_id. The first signed checkpoint may use any
   * trusted key; after that the signing key may only change through a CheckpointKeyChange
   * entry that a checkpoint of the old key covers (docs/backup.md "Audit signing key"). */
  publicKeys?: Map<string, KeyObject>;
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
  /** Checkpoint signing keys in the order the log used them (key_id), when signatures were checked. */
  checkpointKeys?: string[];
}

/** Which checkpoint key is in force while walking the log, and a recorded change to another. */
interface KeyTrack {
  known: Map<string, KeyObject>;
  active: string | null;
  pending: { id: string; key: KeyObject; seq: number; confirmed: boolean } | null;
  used: string[];
}

const shortId = (id: string) => `${id.slice(0, 16)}…`;

/** Null when the CheckpointKeyChange entry is acceptable (and records it), else why not. */
function keyChange(t: KeyTrack, d: Record<string, unknown>, seq: number): string | null {
  const prev = d.previous_key_id;
  const next = d.new_key_id;
  if (typeof next !== 'string' || typeof d.new_public_key !== 'string') return 'checkpoint key change entry lacks new_key_id or new_public_key';
  if (prev === null) {
    // The log had no signing key (checkpoints unsigned): the new key's checkpoints must be
    // verifiable from the trusted keys alone.
    return t.active === null ? null : `checkpoint key change without a previous key while key ${shortId(t.active)} is in force`;
  }
  if (typeof prev !== 'string') return 'checkpoint key change entry lacks previous_key_id';
  if (t.pending) return `a second checkpoint key change before the one at seq ${t.pending.seq} took effect`;
  if (t.active === null) {
    if (!t.known.has(prev)) return `checkpoint key change from key ${shortId(prev)}, which is not a trusted key (keyring or --pubkey)`;
    t.active = prev;
    t.used.push(prev);
  } else if (prev !== t.active) return `checkpoint key change from key ${shortId(prev)}, but the key in force is ${shortId(t.active)}`;
  let key: KeyObject;
  try {
    key = createPublicKey(d.new_public_key);
  } catch {
    return 'checkpoint key change: new_public_key is not a public key';
  }
  if (keyIdOf(key) !== next) return 'checkpoint key change: new_key_id is not the key id of new_public_key';
  t.pending = { id: next, key, seq, confirmed: false };
  return null;
}

/** The key a signed checkpoint must verify under, or why none is acceptable. */
function checkpointKey(t: KeyTrack, kid: string): KeyObject | string {
  if (t.active === null) {
    const k = t.known.get(kid);
    if (!k) return `checkpoint signed by an unknown key ${kid} (not in the keyring ${'<data_dir>/audit-checkpoint-pubs'} nor given with --pubkey)`;
    t.active = kid;
    t.used.push(kid);
    return k;
  }
  if (kid === t.active) return t.known.get(kid)!;
  const p = t.pending;
  if (p && p.confirmed && kid === p.id) {
    t.known.set(p.id, p.key);
    t.active = p.id;
    t.used.push(p.id);
    t.pending = null;
    return p.key;
  }
  if (p && kid === p.id) return `checkpoint signed by the new key ${shortId(kid)} before a checkpoint of the old key ${shortId(t.active)} covered the key change at seq ${p.seq}`;
  if (!t.known.has(kid)) return `checkpoint signed by an unknown key ${kid} (not in the keyring nor introduced by a CheckpointKeyChange entry)`;
  return `checkpoint signed by key ${shortId(kid)}, but the key in force is ${shortId(t.active)} and no CheckpointKeyChange entry hands over to it`;
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
  const trusted = new Map(opts.publicKeys ?? []);
  if (opts.publicKey) trusted.set(keyIdOf(opts.publicKey), opts.publicKey);
  const signatures = trusted.size > 0;
  const track: KeyTrack = { known: trusted, active: null, pending: null, used: [] };
  if (signatures) {
    res.layers.push('checkpoint signatures');
    res.checkpointKeys = track.used;
  }
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
          if (signatures) {
            if (typeof d.signature !== 'string') {
              res.warnings.push(`${path.basename(name)}:${lineNo}: checkpoint seq ${seq} is unsigned`);
            } else {
              const key = checkpointKey(track, String(d.key_id));
              if (typeof key === 'string') return fail({ file: name, line: lineNo, seq, what: key });
              if (!verifyCheckpoint(key, { head_seq: seq - 1, head_chain: prevChain!, timestamp: entry.timestamp, signature: d.signature, key_id: String(d.key_id) }))
                return fail({ file: name, line: lineNo, seq, what: 'checkpoint signature invalid' });
              res.checkpointsVerified++;
              // A checkpoint of the key in force commits to the key change before it.
              if (track.pending && track.active !== track.pending.id) track.pending.confirmed = true;
            }
          }
        } else if (entry.operation === KEY_CHANGE_OPERATION && signatures) {
          const why = keyChange(track, (entry.details ?? {}) as Record<string, unknown>, seq);
          if (why) return fail({ file: name, line: lineNo, seq, what: why });
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
    if (signatures) {
      const hk = track.known.get(h.key_id) ?? (track.pending?.id === h.key_id ? track.pending.key : undefined);
      if (!hk) return fail({ file: 'head', line: 0, seq: h.head_seq, what: `head file signed by an unknown key ${h.key_id}` });
      if (!verifyCheckpoint(hk, h)) return fail({ file: 'head', line: 0, seq: h.head_seq, what: 'head file signature invalid' });
    }
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
