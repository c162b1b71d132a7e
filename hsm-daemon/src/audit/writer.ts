// The append-only, fsync'd, group-committed audit log writer.
//
// Entries are numbered and hashed synchronously, in call order, when they are appended
// (seq, previous_hash, chain, hmac); the lines then wait in one queue. A single pump
// writes everything queued with one write() on a file opened O_DSYNC (the write returns
// once the data and the metadata needed to read it back are on stable storage: the
// guarantee of write() + fdatasync(), in one system call and one thread-pool round trip),
// resolves those entries' promises, and starts over with whatever arrived meanwhile:
// concurrent calls share one sync (group commit). A call's reply waits for its entry's promise.
//
// Segment changes (rotation by size, SIGUSR1, admin command; reopen after logrotate's
// rename on SIGHUP) are markers in the same queue, so the order on disk is the order of
// numbering. Each segment starts with a SegmentStart entry that records the anchor (the
// chain value and seq it continues from); previous_hash restarts at zeros in every file
// so seed 003's verifier checks each file on its own, while `chain` and `seq` continue.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Json } from './canonical.js';
import { syncDirSync as syncDir } from '../store/atomic-file.js';
import { type CheckpointSigner, KEY_CHANGE_OPERATION } from './checkpoint.js';
import { readSecretFile, writeNewSecretFile } from '../store/secret-file.js';
import { type AuditEntry, ZERO_HASH, evolveKey, keyForSeq, sealEntry, seedHash } from './entry.js';
import { type ParsedEntry, discoverSegments, headFile, quarantinePrefix, rotatedName, scanTail, scanTailFd, firstEntryOf } from './segments.js';

export type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export const HMAC_INITIAL_FILE = 'audit-hmac-initial.key';
export const HMAC_STATE_FILE = 'audit-hmac-state.json';

/** An entry as the caller builds it; the writer adds seq and the hash fields. */
export type Draft = Omit<AuditEntry, 'seq' | 'previous_hash' | 'chain' | 'hmac'>;

export class AuditUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditUnavailableError';
  }
}

export interface WriterOptions {
  logPath: string;
  dataDir: string;
  maxSegmentBytes: number;
  checkpointInterval: number;
  signer: CheckpointSigner | null;
  log: LogFn;
  /** The daemon itself, for the entries of its own events. */
  actor: { pid: number; uid: number; exe: string | null };
  now?: () => number;
}

export interface OpenReport {
  lastSeq: number;
  torn: { bytes: number; file: string } | null;
  /** The log did not end with a clean shutdown. */
  unclean: boolean;
  /** Seqs the HMAC state says were written but the log no longer has. */
  missing: [number, number] | null;
  /** The live file was empty while the log already had entries (after a rotation/rename). */
  needSegmentStart: boolean;
  previousSegment: string | null;
}

interface Head {
  seq: number;
  prevHash: string;
  chain: string;
  key: Buffer; // key for entry seq+1
  sinceCheckpoint: number;
  liveFirstSeq: number | null;
}

type Settle = { resolve: () => void; reject: (e: Error) => void };
type Item =
  | ({ kind: 'entry'; line: string; seq: number; after?: () => Promise<void> } & Settle)
  | ({ kind: 'segment'; mode: 'rotate' | 'reopen'; target: string | null } & Settle);

type Unsettled = Item extends infer I ? (I extends Item ? Omit<I, 'resolve' | 'reject'> : never) : never;

const isCleanEnd = (e: ParsedEntry): boolean =>
  e.operation === 'Shutdown' || (e.operation === 'Checkpoint' && (e.details as { reason?: unknown } | undefined)?.reason === 'shutdown');

export class AuditWriter {
  private head: Head | null = null;
  private fh: FileHandle | null = null;
  private size = 0;
  private queue: Item[] = [];
  private pumping: Promise<void> = Promise.resolve();
  private pumpActive = false;
  private sideWrites: Promise<void> = Promise.resolve();
  private segmentPending = false;
  private closed = false;
  /** Set by beginClose(): no more rotations or periodic checkpoints. */
  private closing = false;
  healthy = false;
  lastError: string | null = null;
  /** Entries refused or lost since the log last became unavailable. */
  lost = 0;
  /** Cumulative counters for metrics/ (Prometheus): entries on disk, segment changes. */
  readonly stats = { entriesWritten: 0, rotations: 0, reopens: 0 };
  /** Called after each batch's synchronous write with its duration in seconds (metrics/ histogram). */
  onFsync: ((seconds: number) => void) | null = null;
  /** Called when a write or sync fails and the log becomes unavailable (audit/index.ts
   * turns it into the health events that page). */
  onFailure: ((message: string) => void) | null = null;

  /** Entries and segment markers waiting for the pump (metrics/). */
  get queueDepth(): number {
    return this.queue.length;
  }
  readonly now: () => number;

  constructor(readonly opts: WriterOptions) {
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  get seq(): number {
    return this.head?.seq ?? 0;
  }
  get chainHead(): string {
    return this.head?.chain ?? ZERO_HASH;
  }

  // ---------------------------------------------------------------- opening and recovery

  /** Opens (creating 0600, refusing symlinks) the live file, quarantines a torn tail and
   * restores the chain state from the last good entry. Throws when the log is unusable. */
  async open(): Promise<OpenReport> {
    const { logPath, dataDir } = this.opts;
    mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
    try {
      if (lstatSync(logPath).isSymbolicLink()) throw new AuditUnavailableError(`${logPath} is a symlink; refused`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;
    let fd: number;
    try {
      fd = openSync(logPath, flags, 0o600);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ELOOP') throw new AuditUnavailableError(`${logPath} is a symlink; refused`);
      throw err;
    }
    let report: OpenReport;
    let ino: number;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new AuditUnavailableError(`${logPath} is not a regular file`);
      if ((st.mode & 0o077) !== 0) {
        this.opts.log('warn', `audit log ${logPath} had mode ${(st.mode & 0o777).toString(8)}; set to 600`);
        fchmodSync(fd, 0o600);
      }
      ino = st.ino;
      const scan = scanTailFd(fd);
      let torn: OpenReport['torn'] = null;
      if (scan.goodEnd < scan.size) {
        const bytes = scan.size - scan.goodEnd;
        const buf = Buffer.alloc(bytes);
        let got = 0;
        while (got < bytes) {
          const n = readSync(fd, buf, got, bytes - got, scan.goodEnd + got);
          if (n === 0) break;
          got += n;
        }
        const qfile = `${quarantinePrefix(logPath)}${Date.now()}-${scan.last?.seq ?? 0}`;
        writeNewSecretFile(qfile, buf.subarray(0, got));
        ftruncateSync(fd, scan.goodEnd);
        fsyncSync(fd);
        syncDir(path.dirname(logPath));
        torn = { bytes, file: path.basename(qfile) };
        this.opts.log('warn', `audit log ${logPath}: ${bytes} torn/unparseable byte(s) after seq ${scan.last?.seq ?? 0} moved to ${qfile}`);
      }
      let last: ParsedEntry | null = scan.last;
      let previousSegment: string | null = null;
      if (!last) {
        const older = discoverSegments(logPath).filter((s) => !s.live);
        for (let i = older.length - 1; i >= 0 && !last; i--) {
          last = scanTail(older[i]!.path).last;
          previousSegment = path.basename(older[i]!.path);
        }
      }
      const lastSeq = last?.seq ?? 0;
      const { key, nextSeq, missing } = this.restoreKey(dataDir, lastSeq);
      const liveFirst = scan.last ? firstEntryOf(logPath) : null;
      this.head = {
        seq: nextSeq - 1,
        prevHash: scan.last ? seedHash(scan.last) : ZERO_HASH,
        chain: last?.chain ?? ZERO_HASH,
        key,
        sinceCheckpoint: 0,
        liveFirstSeq: liveFirst?.seq ?? null,
      };
      this.size = scan.goodEnd;
      report = {
        lastSeq,
        torn,
        unclean: last !== null && !isCleanEnd(last),
        missing,
        needSegmentStart: scan.last === null && lastSeq > 0,
        previousSegment,
      };
    } finally {
      closeSync(fd);
    }
    const fh = await open(logPath, flags | constants.O_DSYNC, 0o600);
    if ((await fh.stat()).ino !== ino) {
      await fh.close();
      throw new AuditUnavailableError(`${logPath} was replaced while it was being opened`);
    }
    this.fh = fh;
    this.liveIno = ino;
    this.healthy = true;
    this.lastError = null;
    this.closed = false;
    this.closing = false;
    return report;
  }

  private restoreKey(dataDir: string, lastSeq: number): { key: Buffer; nextSeq: number; missing: [number, number] | null } {
    const stateFile = path.join(dataDir, HMAC_STATE_FILE);
    const initialFile = path.join(dataDir, HMAC_INITIAL_FILE);
    let state: { next_seq: number; key: string } | null = null;
    if (existsSync(stateFile)) {
      const raw = JSON.parse(readSecretFile(stateFile).toString('utf8')) as { next_seq: number; key: string };
      if (!Number.isSafeInteger(raw.next_seq) || !/^[0-9a-f]{64}$/.test(raw.key)) throw new AuditUnavailableError(`${stateFile} is malformed`);
      state = raw;
    }
    if (!state) {
      if (lastSeq === 0) {
        if (existsSync(initialFile)) renameSync(initialFile, `${initialFile}.old-${Date.now()}`);
        const k0 = randomBytes(32);
        writeNewSecretFile(initialFile, k0.toString('hex') + '\n');
        const key = evolveKey(k0);
        k0.fill(0);
        writeStateSync(stateFile, 1, key);
        return { key, nextSeq: 1, missing: null };
      }
      if (!existsSync(initialFile))
        throw new AuditUnavailableError(`${stateFile} is missing and so is ${initialFile}: the keyed chain cannot continue`);
      this.opts.log('warn', `${stateFile} is missing; the keyed chain continues from ${initialFile}`);
      const k0 = Buffer.from(readSecretFile(initialFile).toString('utf8').trim(), 'hex');
      const key = keyForSeq(k0, lastSeq + 1);
      k0.fill(0);
      return { key, nextSeq: lastSeq + 1, missing: null };
    }
    let key: Buffer = Buffer.from(state.key, 'hex');
    if (state.next_seq > lastSeq + 1) {
      // Entries that were written (the state had moved past them) are gone: keep the gap
      // visible rather than reuse their numbers and keys.
      return { key, nextSeq: state.next_seq, missing: [lastSeq + 1, state.next_seq - 1] };
    }
    for (let s = state.next_seq; s < lastSeq + 1; s++) {
      const k = evolveKey(key);
      key.fill(0);
      key = k;
    }
    return { key, nextSeq: lastSeq + 1, missing: null };
  }

  // ---------------------------------------------------------------------------- appending

  /** Numbers, hashes and queues one entry; resolves once it is on disk (fdatasync). */
  append(draft: Draft): Promise<void> {
    if (!this.healthy || !this.head || this.closed)
      return Promise.reject(new AuditUnavailableError(this.lastError ?? 'audit log is not open'));
    const p = this.assign(draft);
    if (!this.closing && this.opts.checkpointInterval > 0 && this.head.sinceCheckpoint >= this.opts.checkpointInterval) {
      this.checkpoint('periodic').catch(() => undefined);
    }
    return p;
  }

  private assign(draft: Draft, after?: () => Promise<void>): Promise<void> {
    const h = this.head!;
    const seq = h.seq + 1;
    const entry = { ...draft, seq, previous_hash: h.prevHash } as Record<string, unknown>;
    if (entry.details === undefined) delete entry.details;
    // chain, hmac, the line and seed 003's hash from one serialization of the fields
    const sealed = sealEntry(h.chain, h.key, entry as unknown as Omit<AuditEntry, 'chain' | 'hmac'>);
    const line = sealed.line;
    const next = evolveKey(h.key);
    h.key.fill(0); // forward security: the key of an entry is gone once the entry is made
    h.key = next;
    h.seq = seq;
    h.chain = sealed.chain;
    h.prevHash = sealed.seedHash;
    h.sinceCheckpoint++;
    if (h.liveFirstSeq === null) h.liveFirstSeq = seq;
    return this.enqueue({ kind: 'entry', line, seq, after });
  }

  private enqueue(item: Unsettled): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...item, resolve, reject } as Item);
      // pumpActive is cleared synchronously by the pump when it finds the queue empty, so
      // an entry queued by a continuation of the last batch always gets a pump.
      if (!this.pumpActive) {
        this.pumpActive = true;
        this.pumping = this.pump();
      }
    });
  }

  private eventDraft(operation: string, details: Record<string, Json>): Draft {
    const a = this.opts.actor;
    return {
      timestamp: this.now(),
      session_handle: 0,
      operation,
      key_id: null,
      result: { Success: null },
      pid: a.pid,
      uid: a.uid,
      exe: a.exe,
      mechanism: null,
      fips_approved: null,
      details,
    };
  }

  /** A daemon event (written whatever the log level, unless the caller filtered it). */
  event(operation: string, details: Record<string, Json>): Promise<void> {
    return this.append(this.eventDraft(operation, details));
  }

  /**
   * Hands checkpoint signing to `next` (a restore installs a backed-up key): a checkpoint
   * signed by the current key, a CheckpointKeyChange entry naming the new key, and a
   * checkpoint of the current key covering it are numbered here, synchronously and in a row,
   * and the signer is switched before anything else can be numbered; so the log itself
   * records the hand-over that `audit verify` accepts. Resolves when all three are on disk.
   */
  changeSigner(next: CheckpointSigner, details: Record<string, Json>): Promise<void> {
    if (!this.healthy || !this.head) return Promise.reject(new AuditUnavailableError(this.lastError ?? 'audit log is not open'));
    const prev = this.opts.signer;
    const before = this.checkpoint('key-change');
    const entry = this.event(KEY_CHANGE_OPERATION, {
      ...details,
      previous_key_id: prev?.keyId ?? null,
      new_key_id: next.keyId,
      new_public_key: next.publicKeyPem,
    });
    const after = this.checkpoint('key-change');
    this.opts.signer = next;
    return Promise.all([before, entry, after]).then(() => undefined);
  }

  /** Signs the chain head as it stands and appends a Checkpoint entry; after it is on
   * disk, <log>.head.json and the HMAC state file are replaced. */
  checkpoint(reason: string): Promise<void> {
    if (!this.healthy || !this.head) return Promise.reject(new AuditUnavailableError(this.lastError ?? 'audit log is not open'));
    const h = this.head;
    h.sinceCheckpoint = 0;
    const ts = this.now();
    const details: Record<string, Json> = { reason, head_seq: h.seq, head_chain: h.chain };
    let signed: Record<string, Json> | null = null;
    if (this.opts.signer) {
      const cp = this.opts.signer.sign({ head_seq: h.seq, head_chain: h.chain, timestamp: ts });
      details.signature = cp.signature;
      details.key_id = cp.key_id;
      signed = { ...cp };
    } else {
      signed = { head_seq: h.seq, head_chain: h.chain, timestamp: ts };
    }
    const draft = this.eventDraft('Checkpoint', details);
    draft.timestamp = ts;
    const stateFile = path.join(this.opts.dataDir, HMAC_STATE_FILE);
    let keyCopy: Buffer | null = null;
    const seqAfter = h.seq + 2; // the checkpoint entry takes h.seq + 1
    const p = this.assign(draft, async () => {
      const k = keyCopy!;
      try {
        writeStateSync(stateFile, seqAfter, k);
        replaceSync(headFile(this.opts.logPath), JSON.stringify({ ...signed, checkpoint_seq: seqAfter - 1, segment: path.basename(this.opts.logPath) }) + '\n', 0o644);
      } finally {
        k.fill(0);
      }
    });
    keyCopy = Buffer.from(this.head.key);
    return p;
  }

  /** Closes the current segment with a checkpoint and starts the next one.
   * 'rotate': renames the live file to <stem>.<first seq>.jsonl. 'reopen' (SIGHUP): the
   * live file was renamed by logrotate, so only reopens the path; a no-op when the path
   * is still our file. */
  segment(mode: 'rotate' | 'reopen', reason: string): Promise<void> {
    if (!this.healthy || !this.head || !this.fh) return Promise.reject(new AuditUnavailableError(this.lastError ?? 'audit log is not open'));
    const h = this.head;
    let target: string | null = null;
    if (mode === 'reopen') {
      let same = false;
      try {
        same = statSync(this.opts.logPath).ino === this.liveIno;
      } catch {
        same = false;
      }
      if (same) return Promise.resolve();
    } else {
      if (h.liveFirstSeq === null) return Promise.resolve(); // nothing to rotate
      target = rotatedName(this.opts.logPath, h.liveFirstSeq);
      if (existsSync(target)) target = `${target.slice(0, -'.jsonl'.length)}-${Date.now()}.jsonl`;
    }
    this.segmentPending = true;
    void this.checkpoint(`segment:${reason}`).catch(() => undefined);
    void this.enqueue({ kind: 'segment', mode, target }).catch(() => undefined);
    h.prevHash = ZERO_HASH;
    h.liveFirstSeq = null;
    return this.event('SegmentStart', {
      reason,
      previous_seq: h.seq,
      previous_chain: h.chain,
      previous_segment: target ? path.basename(target) : null,
    });
  }

  private liveIno = -1;

  // ---------------------------------------------------------------------------- the pump

  private async pump(): Promise<void> {
    try {
      await this.pumpLoop();
    } catch (e) {
      this.pumpActive = false;
      this.fail(e as Error, []);
    }
  }

  /** Clears pumpActive itself, synchronously with finding the queue empty (no await in
   * between), so an entry queued by a resolved caller's continuation is never stranded. */
  private async pumpLoop(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        this.pumpActive = false;
        return;
      }
      const first = this.queue[0]!;
      if (first.kind === 'segment') {
        this.queue.shift();
        try {
          await this.switchSegment(first.mode, first.target);
          first.resolve();
        } catch (e) {
          first.reject(e as Error);
          this.pumpActive = false;
          this.fail(e as Error, []);
          return;
        }
        continue;
      }
      let n = 0;
      while (n < this.queue.length && this.queue[n]!.kind === 'entry') n++;
      const batch = this.queue.splice(0, n) as Array<Extract<Item, { kind: 'entry' }>>;
      const buf = Buffer.from(batch.map((b) => b.line).join(''), 'utf8');
      const fh = this.fh;
      try {
        if (!fh) throw new AuditUnavailableError(this.lastError ?? 'audit log is not open');
        // O_DSYNC: each write() returns with its bytes on stable storage (no separate
        // fdatasync round trip); a short write is continued, then synced the same way.
        const t0 = performance.now();
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off);
          off += bytesWritten;
        }
        this.onFsync?.((performance.now() - t0) / 1000);
      } catch (e) {
        this.pumpActive = false;
        this.fail(e as Error, batch, buf.length);
        return;
      }
      this.size += buf.length;
      this.stats.entriesWritten += batch.length;
      for (const b of batch) {
        b.resolve();
        if (b.after) {
          const after = b.after;
          this.sideWrites = this.sideWrites.then(after).catch((e: Error) => this.opts.log('warn', `audit checkpoint files: ${e.message}`));
        }
      }
      if (this.size >= this.opts.maxSegmentBytes && !this.segmentPending && this.healthy && !this.closed && !this.closing) {
        void this.segment('rotate', 'size').catch(() => undefined);
      }
    }
  }

  private async switchSegment(mode: 'rotate' | 'reopen', target: string | null): Promise<void> {
    const { logPath } = this.opts;
    const fh = this.fh!;
    this.fh = null;
    await fh.close();
    if (mode === 'rotate' && target) {
      renameSync(logPath, target);
    }
    syncDir(path.dirname(logPath));
    try {
      if (lstatSync(logPath).isSymbolicLink()) throw new AuditUnavailableError(`${logPath} is a symlink; refused`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_DSYNC;
    const nfh = await open(logPath, flags, 0o600);
    const st = await nfh.stat();
    this.fh = nfh;
    this.liveIno = st.ino;
    this.size = st.size;
    syncDir(path.dirname(logPath));
    this.segmentPending = false;
    if (mode === 'rotate') this.stats.rotations++;
    else this.stats.reopens++;
    this.opts.log('info', `audit log segment ${mode === 'rotate' ? `rotated to ${target}` : 'reopened'}; continuing at ${logPath}`);
  }

  /** A write or fsync failed: refuse everything queued, drop the partial batch from the
   * file when possible, and mark the log unavailable until recover() succeeds. */
  private fail(err: Error, batch: Array<Extract<Item, { kind: 'entry' }>>, _len = 0): void {
    const msg = `audit log write failed: ${err.message}`;
    this.healthy = false;
    this.lastError = msg;
    const rest = this.queue.splice(0);
    const refused = new AuditUnavailableError(msg);
    for (const b of batch) b.reject(refused);
    for (const b of rest) b.reject(refused);
    this.lost += batch.length + rest.filter((r) => r.kind === 'entry').length;
    this.segmentPending = false;
    const fh = this.fh;
    this.fh = null;
    if (this.head) this.head.key.fill(0);
    this.head = null;
    if (fh) {
      void fh
        .truncate(this.size)
        .catch(() => undefined)
        .finally(() => fh.close().catch(() => undefined));
    }
    this.opts.log('error', `${msg}; ${this.lost} entr${this.lost === 1 ? 'y' : 'ies'} not recorded`);
    try {
      this.onFailure?.(msg);
    } catch {
      // a listener's problem must not hide the failure
    }
  }

  /** Waits until everything queued so far is on disk (or failed). */
  async flush(): Promise<void> {
    while (this.pumpActive) await this.pumping;
    await this.sideWrites;
  }

  /** The shutdown sequence starts: the last entries stay in the current segment. */
  beginClose(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
    if (this.head) this.head.key.fill(0);
    this.healthy = false;
  }

  /** Test hook: the file handle, to simulate I/O failures. */
  get _fileHandle(): FileHandle | null {
    return this.fh;
  }
}

/** Atomically replaces `file` (tmp + fsync + rename + dir fsync), refusing a symlink target. */
function replaceSync(file: string, content: string, mode: number): void {
  try {
    if (lstatSync(file).isSymbolicLink()) throw new Error(`${file} is a symlink; refused`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, Buffer.from(content));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  syncDir(path.dirname(file));
}

function writeStateSync(file: string, nextSeq: number, key: Buffer): void {
  replaceSync(file, JSON.stringify({ next_seq: nextSeq, key: key.toString('hex') }) + '\n', 0o600);
}
