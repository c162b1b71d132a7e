// The append-only journal beside a token snapshot (data_dir/tokens/slot-<n>.journal): one
// line per durable write, each "<sha256 hex> <json>\n" where the JSON names the snapshot
// generation it applies to and the objects put, the uids deleted and, when it changed, the
// whole token header. A change costs one line instead of a rewrite of the whole token.
// One write is one line, so a batch (a key pair, an imported bundle) is all there or absent.
import { open } from 'node:fs/promises';
import { closeSync, constants, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { StoredObject, TokenHeader } from './token-file.js';

export interface JournalEntry {
  /** The snapshot generation this line applies to; lines of any other one are stale. */
  g: string;
  put?: StoredObject[];
  del?: string[];
  header?: TokenHeader;
}

export interface JournalRead {
  /** Lines of `generation`, in order. */
  entries: JournalEntry[];
  /** Bytes up to the end of the last whole, intact line. */
  validLength: number;
  /** Bytes in the file (more than validLength when the tail is torn). */
  fileLength: number;
}

const sum = (json: string): string => createHash('sha256').update(json).digest('hex');

export function encodeEntry(e: JournalEntry): string {
  const json = JSON.stringify(e);
  return `${sum(json)} ${json}\n`;
}

/**
 * Reads the journal at `file` and returns the lines of `generation`. A torn or damaged tail
 * (lines that do not check out, with no good line after them) is what a kill in the middle
 * of an append leaves: that write was never acknowledged, so it is ignored. A damaged line
 * followed by good ones is damage to acknowledged data: throws, naming the file and line.
 */
export function readJournal(file: string, generation: string | null): JournalRead {
  if (!existsSync(file)) return { entries: [], validLength: 0, fileLength: 0 };
  const raw = readFileSync(file);
  const entries: JournalEntry[] = [];
  let validLength = 0;
  let badLine = 0;
  let pos = 0;
  for (let line = 1; pos < raw.length; line++) {
    const nl = raw.indexOf(0x0a, pos);
    if (nl < 0) break; // an unfinished last line
    const text = raw.subarray(pos, nl).toString('utf8');
    pos = nl + 1;
    const entry = decodeLine(text);
    if (!entry) {
      if (badLine === 0) badLine = line;
      continue;
    }
    if (badLine !== 0) {
      throw new Error(
        `token journal ${file} line ${badLine} is damaged but later lines are intact; restore the data directory from backup (moving the journal away loses every change since the last snapshot)`,
      );
    }
    if (!isEntry(entry)) {
      throw new Error(`token journal ${file} line ${line} is not a journal entry; restore the data directory from backup`);
    }
    validLength = pos;
    if (entry.g === generation) entries.push(entry);
  }
  return { entries, validLength, fileLength: raw.length };
}

function decodeLine(text: string): unknown {
  const space = text.indexOf(' ');
  if (space !== 64) return null;
  const json = text.slice(65);
  if (sum(json) !== text.slice(0, 64)) return null;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return null;
  }
}

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  if (typeof e.g !== 'string') return false;
  if (e.put !== undefined && !(Array.isArray(e.put) && e.put.every((o) => typeof o === 'object' && o !== null && typeof (o as StoredObject).uid === 'string'))) return false;
  if (e.del !== undefined && !(Array.isArray(e.del) && e.del.every((u) => typeof u === 'string'))) return false;
  if (e.header !== undefined && (typeof e.header !== 'object' || e.header === null)) return false;
  return true;
}

/** Cuts a torn tail off before anything is appended after it (start-up path). */
export function truncateJournalSync(file: string, length: number): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    ftruncateSync(fd, length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends `text` and makes it durable (fdatasync). Creates the file (0600) when missing.
 * `syncDir` also fsyncs the directory, so the file's name survives a power loss too.
 */
export async function appendDurably(file: string, text: string, syncDir: boolean): Promise<void> {
  const base = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW;
  let fh;
  try {
    fh = await open(file, base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fh = await open(file, base | constants.O_CREAT | constants.O_EXCL, 0o600);
    syncDir = true;
  }
  try {
    await fh.writeFile(text);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  if (syncDir) {
    const dh = await open(path.dirname(file), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

/** Empties the journal durably (after a new snapshot made its lines stale). */
export async function emptyJournal(file: string): Promise<void> {
  let fh;
  try {
    fh = await open(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await fh.truncate(0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
