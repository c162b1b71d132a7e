// AES-GCM invocation counters (NIST SP 800-38D §8.3): how many times each AES key has
// been used to encrypt with GCM, against [nonce] gcm_invocation_limit.
//
// Durability: a token key's counter is reserved in blocks that are written durably
// (data_dir/nonce/gcm-counters.json, replaceFileDurably) before any invocation inside the
// block is allowed to proceed. After a crash the counter resumes at the reserved mark: it
// may jump ahead by less than one block, never back, so no counted invocation is lost.
// Concurrent reservations share one write (CoalescingWriter group commit). The block is
// limit/4096 clamped to 1..65536, so a low test limit counts exactly (one write per
// invocation) and the 2^32 default costs one fsync per 65,536 encryptions.
//
// Session keys die with their session (and with the daemon), so theirs are counted in
// memory only. A destroyed key's counter is dropped (forget), from the file too: its
// object's uid is never reused, so nothing can resume from it.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import { CoalescingWriter, readIfExists, replaceFileDurably } from '../store/atomic-file.js';

export type Severity = 'info' | 'ticket' | 'page';

export interface CounterSettings {
  dataDir: string;
  limit: number;
  /** Increasing percentages (config [nonce] alert_thresholds). */
  thresholds: number[];
  /** Invocations reserved per durable write; default limit/4096 clamped to 1..65536. */
  blockSize?: number;
}

export interface ThresholdEvent {
  key: string;
  /** Highest configured threshold reached by this invocation, in percent (100 = exhausted). */
  percent: number;
  used: number;
  limit: number;
  severity: Severity;
}

export interface RefusedEvent {
  key: string;
  used: number;
  limit: number;
}

export interface CounterEvents {
  threshold: [ThresholdEvent];
  exhausted: [ThresholdEvent];
  refused: [RefusedEvent];
}

/** 75% → ticket, 95% → page (seed 003); lower thresholds are informational. */
export function severityOf(percent: number): Severity {
  if (percent >= 95) return 'page';
  if (percent >= 75) return 'ticket';
  return 'info';
}

export function defaultBlockSize(limit: number): number {
  return Math.min(65536, Math.max(1, Math.floor(limit / 4096)));
}

interface KeyState {
  /** Invocations handed out (this run, plus the resumed mark of earlier runs). */
  used: number;
  /** Invocations covered by the newest reservation (durable keys only). */
  reserved: number;
  /** Of `reserved`, the part known to be on disk. */
  durable: number;
  /** Highest threshold already announced, percent; persisted so restarts do not repeat it. */
  alerted: number;
  persistent: boolean;
  /** Set when the counter was raised by a restore (raise()): mixed into generated IVs'
   * fixed field, so two hosts restored from one backup never share an IV sequence. */
  epoch?: string;
}

interface FileForm {
  format: 1;
  keys: Record<string, { reserved: number; alerted: number; epoch?: string }>;
  /** Per restored slot (`slot-<n>/`): the restore's IV epoch and the count a token key of
   * that slot without a counter starts at (its backup did not count it). */
  restored?: Record<string, RestoreMark>;
}

export interface RestoreMark {
  epoch: string;
  start: number;
}

/** A token key's durable counter state (backup). */
export interface CounterMark {
  key: string;
  reserved: number;
  alerted: number;
}

const EPOCH = /^[0-9a-f]{16}$/;

export interface KeyUsage {
  key: string;
  used: number;
  limit: number;
  percent: number;
  persistent: boolean;
}

export class GcmCounters extends EventEmitter<CounterEvents> {
  readonly path: string;
  private readonly keys = new Map<string, KeyState>();
  private readonly restored = new Map<string, RestoreMark>();
  private readonly writer: CoalescingWriter;
  private readonly block: number;
  private readonly thresholds: number[];

  constructor(private readonly settings: CounterSettings) {
    super();
    this.path = path.join(settings.dataDir, 'nonce', 'gcm-counters.json');
    this.block = settings.blockSize ?? defaultBlockSize(settings.limit);
    this.thresholds = [...settings.thresholds].sort((a, b) => a - b);
    this.writer = new CoalescingWriter(async () => {
      const snap: FileForm = { format: 1, keys: {} };
      if (this.restored.size > 0) snap.restored = Object.fromEntries(this.restored);
      const marks: Array<[KeyState, number]> = [];
      for (const [id, st] of this.keys) {
        if (!st.persistent) continue;
        snap.keys[id] = st.epoch ? { reserved: st.reserved, alerted: st.alerted, epoch: st.epoch } : { reserved: st.reserved, alerted: st.alerted };
        marks.push([st, st.reserved]);
      }
      await replaceFileDurably(this.path, JSON.stringify(snap));
      for (const [st, r] of marks) if (r > st.durable) st.durable = r;
    });
  }

  get limit(): number {
    return this.settings.limit;
  }

  /** Reads the counters of earlier runs; each resumes at its reserved mark. */
  load(): void {
    const raw = readIfExists(this.path);
    if (!raw) return;
    let rec: FileForm;
    try {
      rec = JSON.parse(raw.toString('utf8')) as FileForm;
    } catch {
      throw new Error(`GCM counter store ${this.path} is not valid JSON; restore it from backup (deleting it would allow IV reuse)`);
    }
    if (rec.format !== 1 || typeof rec.keys !== 'object' || rec.keys === null) {
      throw new Error(`GCM counter store ${this.path} has an unknown format; this daemon reads format 1`);
    }
    for (const [id, k] of Object.entries(rec.keys)) {
      if (!Number.isSafeInteger(k.reserved) || k.reserved < 0) throw new Error(`GCM counter store ${this.path}: bad counter for ${id}`);
      if (k.epoch !== undefined && !EPOCH.test(k.epoch)) throw new Error(`GCM counter store ${this.path}: bad epoch for ${id}`);
      const st: KeyState = { used: k.reserved, reserved: k.reserved, durable: k.reserved, alerted: k.alerted ?? 0, persistent: true };
      if (k.epoch) st.epoch = k.epoch;
      this.keys.set(id, st);
    }
    for (const [prefix, m] of Object.entries(rec.restored ?? {})) {
      if (!EPOCH.test(m?.epoch) || !Number.isSafeInteger(m.start) || m.start < 0) throw new Error(`GCM counter store ${this.path}: bad restore mark for ${prefix}`);
      this.restored.set(prefix, { epoch: m.epoch, start: m.start });
    }
  }

  /**
   * Counts one GCM encryption with `key`. Resolves once the invocation is covered by a
   * durable reservation (persistent keys); rejects with CKR_KEY_FUNCTION_NOT_PERMITTED at
   * the limit, or CKR_DEVICE_ERROR when the reservation cannot be written (the invocation
   * then stays counted: counters only move forward).
   * Returns the 0-based invocation number.
   */
  async take(key: string, persistent: boolean): Promise<number> {
    let st = this.keys.get(key);
    if (!st) {
      // A token key of a restored slot that its backup did not count may have been used
      // after the backup on the source: it starts past the restore gap, in the restore's epoch.
      const mark = persistent ? this.restoreMarkOf(key) : undefined;
      const start = Math.min(this.settings.limit, mark?.start ?? 0);
      st = { used: start, reserved: start, durable: 0, alerted: 0, persistent };
      if (mark) st.epoch = mark.epoch;
      this.keys.set(key, st);
    }
    const limit = this.settings.limit;
    if (st.used >= limit) {
      this.emit('refused', { key, used: st.used, limit });
      throw new CkError(CKR.KEY_FUNCTION_NOT_PERMITTED, `GCM invocation limit of this key reached (${st.used}/${limit}); it still decrypts`, 'gcm_limit');
    }
    const n = st.used++;
    const crossed = this.crossed(st);
    if (st.persistent && st.used > st.durable) {
      if (st.used > st.reserved) st.reserved = Math.min(limit, n + this.block);
      try {
        await this.writer.request();
      } catch (err) {
        throw new CkError(CKR.DEVICE_ERROR, `cannot persist the GCM counter: ${(err as Error).message}`);
      }
    }
    if (crossed !== null) {
      const ev: ThresholdEvent = { key, percent: crossed, used: n + 1, limit, severity: crossed >= 100 ? 'page' : severityOf(crossed) };
      this.emit(crossed >= 100 ? 'exhausted' : 'threshold', ev);
    }
    return n;
  }

  /** The highest threshold (or 100 at exhaustion) newly reached by st.used, else null. */
  private crossed(st: KeyState): number | null {
    const limit = this.settings.limit;
    let hit: number | null = null;
    for (const t of this.thresholds) if (t > st.alerted && st.used * 100 >= t * limit) hit = t;
    if (st.used >= limit && st.alerted < 100) hit = 100;
    if (hit !== null) st.alerted = hit;
    return hit;
  }

  usage(key: string): KeyUsage | undefined {
    const st = this.keys.get(key);
    return st ? this.usageOf(key, st) : undefined;
  }

  /** Every key's usage, for `craton-hsm-admin key list` / `status`. */
  all(): KeyUsage[] {
    return [...this.keys].map(([k, st]) => this.usageOf(k, st));
  }

  private usageOf(key: string, st: KeyState): KeyUsage {
    const limit = this.settings.limit;
    return { key, used: st.used, limit, percent: Math.min(100, (st.used * 100) / limit), persistent: st.persistent };
  }

  private restoreMarkOf(key: string): RestoreMark | undefined {
    const slash = key.indexOf('/');
    return slash < 0 ? undefined : this.restored.get(key.slice(0, slash + 1));
  }

  /** Drops the restore mark of a slot (C_InitToken cleared it; its new keys are new). */
  forgetRestore(prefix: string): Promise<void> {
    if (!this.restored.delete(prefix)) return Promise.resolve();
    return this.writer.request().catch(() => undefined);
  }

  /** The IV epoch of `key` (see KeyState.epoch), or undefined when it never had one. */
  epochOf(key: string): string | undefined {
    return this.keys.get(key)?.epoch;
  }

  /** Durable marks of the token keys whose ids start with `prefix` (backup of one slot).
   * `reserved` is the bound every invocation handed out so far stays below. */
  marks(prefix: string): CounterMark[] {
    const out: CounterMark[] = [];
    for (const [key, st] of this.keys) {
      if (st.persistent && key.startsWith(prefix)) out.push({ key, reserved: Math.max(st.reserved, st.used), alerted: st.alerted });
    }
    return out;
  }

  /**
   * Restore: moves each token key's counter to at least `atLeast` (clamped to the limit: a
   * key raised past it encrypts no more), sets its IV epoch, and resolves once that is
   * durable. Counters only move forward: a key already past `atLeast` keeps its count.
   * Rejects when the counter file cannot be written.
   */
  async raise(
    prefix: string,
    mark: RestoreMark,
    entries: Array<{ key: string; atLeast: number; alerted: number }>,
  ): Promise<Array<{ key: string; before: number; after: number }>> {
    if (!EPOCH.test(mark.epoch)) throw new Error(`bad epoch ${mark.epoch}`);
    this.restored.set(prefix, { ...mark });
    const out: Array<{ key: string; before: number; after: number }> = [];
    for (const e of entries) {
      let st = this.keys.get(e.key);
      const before = st?.used ?? 0;
      if (!st) {
        st = { used: 0, reserved: 0, durable: 0, alerted: 0, persistent: true };
        this.keys.set(e.key, st);
      }
      const target = Math.min(this.settings.limit, Math.max(st.used, st.reserved, e.atLeast));
      st.persistent = true;
      st.used = target;
      st.reserved = target;
      st.alerted = Math.max(st.alerted, e.alerted);
      st.epoch = mark.epoch;
      out.push({ key: e.key, before, after: target });
    }
    await this.writer.request();
    return out;
  }

  /** Drops a session key's counter (its key is gone). Token keys keep theirs. */
  forgetSessionKey(key: string): void {
    const st = this.keys.get(key);
    if (st && !st.persistent) this.keys.delete(key);
  }

  /**
   * Drops the counters of keys that no longer exist (`keys`: ids, or a predicate over
   * ids), session and token keys alike; token keys' entries leave the counter file with
   * the next write, requested here. Resolves when that write is done; never rejects (a
   * failed write is harmless: a stale entry stays in the file until the next one).
   */
  forget(keys: string[] | ((id: string) => boolean)): Promise<void> {
    let persistent = false;
    for (const id of typeof keys === 'function' ? [...this.keys.keys()].filter(keys) : keys) {
      const st = this.keys.get(id);
      if (!st) continue;
      persistent ||= st.persistent;
      this.keys.delete(id);
    }
    return persistent ? this.writer.request().catch(() => undefined) : Promise.resolve();
  }

  /** Resolves when every reservation requested so far is durable. */
  flush(): Promise<void> {
    return this.writer.request();
  }
}
