// The on-disk form of one slot's token and its durable writer. The token lives in two
// files: a snapshot (data_dir/tokens/slot-<n>.json, replaced whole) and a journal beside it
// (slot-<n>.journal, store/token-journal.ts) of the changes made since, one line per durable
// write, so a change costs the size of the change. Public attributes of public objects are
// stored in the clear so the token works before anyone logs in; private objects are sealed
// under the token key, which is itself stored only wrapped under keys derived from the SO
// and user PINs; secret attributes of public objects are sealed under the data directory's
// device key (store/device-key.ts), so those objects work without a login too.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { replaceFileDurably, readIfExists, CoalescingWriter } from './atomic-file.js';
import { appendDurably, emptyJournal, encodeEntry, readJournal, truncateJournalSync, type JournalEntry } from './token-journal.js';

export interface PinRecord {
  /** base64 PBKDF2 salt */
  salt: string;
  iterations: number;
  /** base64 PBKDF2 output used only to check the PIN */
  verifier: string;
  /** the token key sealed under the PIN-derived key */
  wrappedTokenKey: string;
}

export interface StoredObject {
  uid: string;
  /** Clear attributes: hex type → base64 canonical value. Empty for private objects. */
  clear: Record<string, string>;
  /** Sealed JSON of the remaining attributes (all of them for private objects). */
  sealed?: string;
  /** Array attributes (CKA_WRAP_TEMPLATE …) as JSON, sealed with the rest when present. */
  private: boolean;
  /** Which key sealed `sealed`: absent = the token key (private objects, and public ones
   * written before the device key existed); 'device' = the device key (public objects only). */
  sealKey?: 'device';
}

export interface TokenRecord {
  format: 1;
  slot: number;
  initialized: boolean;
  label: string;
  serial: string;
  so: PinRecord | null;
  user: PinRecord | null;
  failedLogins: { so: number; user: number };
  objects: StoredObject[];
  /** The slot number sealed objects are bound to (their AAD) when it is not `slot`: a token
   * restored from a backup of another slot keeps its sealed blobs as they are. */
  sealSlot?: number;
  /** Names this snapshot: only journal lines carrying it apply (absent in stores written
   * before the journal; the first write then starts a new snapshot). Never in a backup. */
  generation?: string;
}

/** Everything of a token record but its objects: small, written whole when any of it changes. */
export type TokenHeader = Omit<TokenRecord, 'format' | 'objects' | 'generation'>;

/** A new snapshot once the journal outgrows the snapshot and this many bytes: rewriting
 * the whole token then costs at most about as much as the journal lines it replaces. */
export const COMPACT_MIN_BYTES = 1 << 20;

export interface TokenSource {
  /** The whole current state (a new snapshot). */
  snapshot(): TokenRecord;
  /** The current header (a journal line after a header change). */
  header(): TokenHeader;
}

export class TokenFile {
  readonly path: string;
  readonly journalPath: string;
  private readonly writer: CoalescingWriter;
  /** The snapshot on disk's generation; null when there is none (or it predates journals). */
  private generation: string | null = null;
  /** After a failed write the files may not match memory: the next write is a snapshot. */
  private snapshotDue = false;
  private snapshotBytes = 0;
  private journalBytes = 0;
  /** Whether the journal's directory entry is known durable (fsynced by this process). */
  private journalNamed = false;
  /** Changes not written yet: uid → its stored form, or null when deleted. */
  private pending = new Map<string, StoredObject | null>();
  private headerDirty = false;

  constructor(dataDir: string, slot: number, private readonly source?: TokenSource) {
    this.path = path.join(dataDir, 'tokens', `slot-${slot}.json`);
    this.journalPath = path.join(dataDir, 'tokens', `slot-${slot}.journal`);
    this.writer = new CoalescingWriter(() => this.write());
  }

  /**
   * The stored token: the snapshot with its journal's lines applied. Cuts a torn journal
   * tail (an append that was never acknowledged) off the file unless `repair` is false.
   * Throws with a clear message when the snapshot is not a token record or the journal is
   * damaged.
   */
  load(repair = true): TokenRecord | null {
    const raw = readIfExists(this.path);
    if (!raw) return null;
    let rec: TokenRecord;
    try {
      rec = JSON.parse(raw.toString('utf8')) as TokenRecord;
    } catch {
      throw new Error(`token store ${this.path} is not valid JSON; restore it from backup or move it away to start with an empty token`);
    }
    if (rec.format !== 1 || !Array.isArray(rec.objects)) {
      throw new Error(`token store ${this.path} has an unknown format; this daemon reads format 1`);
    }
    this.generation = typeof rec.generation === 'string' ? rec.generation : null;
    this.snapshotBytes = raw.length;
    delete rec.generation;
    // Without a generation every journal line is stale: the first write replaces them.
    if (this.generation === null) return rec;
    const j = readJournal(this.journalPath, this.generation);
    if (repair && j.validLength < j.fileLength) truncateJournalSync(this.journalPath, j.validLength);
    this.journalBytes = j.validLength;
    return j.entries.length > 0 ? applyEntries(rec, j.entries) : rec;
  }

  /** An object's new stored form, for the next write. */
  put(obj: StoredObject): void {
    this.pending.set(obj.uid, obj);
  }

  /** An object deleted, for the next write. */
  remove(uid: string): void {
    this.pending.set(uid, null);
  }

  /** The header (label, PINs, counters …) changed, for the next write. */
  headerChanged(): void {
    this.headerDirty = true;
  }

  /** Everything changed (C_InitToken, a restore): the next write is a new snapshot. */
  rewrite(): void {
    this.snapshotDue = true;
  }

  /**
   * Folds the journal into a new snapshot when it holds anything (clean shutdown): the
   * snapshot alone is then the whole token again, so an older daemon, or a copy of
   * slot-<n>.json without its journal, sees every change.
   */
  compact(): Promise<void> {
    if (this.generation !== null && this.journalBytes === 0 && this.pending.size === 0 && !this.headerDirty) return Promise.resolve();
    this.snapshotDue = true;
    return this.persist();
  }

  /** Resolves once every change reported before this call is durable on disk. */
  persist(): Promise<void> {
    return this.writer.request();
  }

  private async write(): Promise<void> {
    if (this.generation === null || this.snapshotDue || this.journalBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes)) {
      return this.writeSnapshot();
    }
    if (this.pending.size === 0 && !this.headerDirty) return;
    const entry: JournalEntry = { g: this.generation };
    const puts: StoredObject[] = [];
    const dels: string[] = [];
    for (const [uid, o] of this.pending) {
      if (o) puts.push(o);
      else dels.push(uid);
    }
    if (puts.length) entry.put = puts;
    if (dels.length) entry.del = dels;
    if (this.headerDirty) entry.header = this.requireSource().header();
    this.pending = new Map();
    this.headerDirty = false;
    const line = encodeEntry(entry);
    try {
      await appendDurably(this.journalPath, line, !this.journalNamed);
    } catch (err) {
      // A part of the line may be in the file: nothing may be appended after it.
      this.snapshotDue = true;
      this.journalNamed = false;
      throw err;
    }
    this.journalNamed = true;
    this.journalBytes += Buffer.byteLength(line);
  }

  /**
   * A new snapshot under a new generation, then an empty journal. A crash between the two
   * leaves the new snapshot and old lines that no longer apply; before the snapshot's
   * rename, the old snapshot and its journal: either way a complete state.
   */
  private async writeSnapshot(): Promise<void> {
    const generation = randomBytes(16).toString('hex');
    const body = JSON.stringify({ ...this.requireSource().snapshot(), generation });
    // Everything so far is in `body`; a rewrite() asked for while it is written gets its own.
    this.snapshotDue = false;
    this.pending = new Map();
    this.headerDirty = false;
    try {
      await replaceFileDurably(this.path, body);
      this.generation = generation;
      await emptyJournal(this.journalPath);
    } catch (err) {
      this.snapshotDue = true;
      throw err;
    }
    this.snapshotBytes = Buffer.byteLength(body);
    this.journalBytes = 0;
  }

  private requireSource(): TokenSource {
    if (!this.source) throw new Error(`token store ${this.path} was opened read-only`);
    return this.source;
  }
}

function applyEntries(rec: TokenRecord, entries: JournalEntry[]): TokenRecord {
  const objects = new Map(rec.objects.map((o) => [o.uid, o]));
  let header: TokenHeader | null = null;
  for (const e of entries) {
    if (e.header) header = e.header;
    for (const uid of e.del ?? []) objects.delete(uid);
    for (const o of e.put ?? []) objects.set(o.uid, o);
  }
  if (!header) return { ...rec, objects: [...objects.values()] };
  return { ...header, format: 1, objects: [...objects.values()] };
}

/** The token stored for `slot` in `dataDir`, snapshot and journal together (read-only). */
export function readTokenStore(dataDir: string, slot: number): TokenRecord | null {
  return new TokenFile(dataDir, slot).load(false);
}
