// The token store's journal (store/token-journal.ts, store/token-file.ts): each durable write
// appends one line; load replays the lines of the snapshot's generation; a torn tail is
// ignored and cut off; a damaged line before intact ones stops the start; a new snapshot
// (new generation) makes older lines stale, so a crash at any step of it loads a whole state.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMPACT_MIN_BYTES, TokenFile, readTokenStore, type StoredObject, type TokenHeader, type TokenRecord } from '../../../hsm-daemon/src/store/token-file.js';
import { encodeEntry } from '../../../hsm-daemon/src/store/token-journal.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A token's state in memory, and its file, as Token keeps them. */
class Memory {
  header: TokenHeader = { slot: 0, initialized: true, label: 'unit', serial: '00000000000000AB', so: null, user: null, failedLogins: { so: 0, user: 0 } };
  objects = new Map<string, StoredObject>();
  readonly file: TokenFile;
  constructor(readonly dir: string) {
    this.file = new TokenFile(dir, 0, { snapshot: () => this.record(), header: () => ({ ...this.header }) });
  }
  record(): TokenRecord {
    return { format: 1, ...this.header, objects: [...this.objects.values()] };
  }
  put(uid: string, size = 16): Promise<void> {
    const o: StoredObject = { uid, clear: { '3': Buffer.from(uid.padEnd(size, '.')).toString('base64') }, private: false };
    this.objects.set(uid, o);
    this.file.put(o);
    return this.file.persist();
  }
  remove(uid: string): Promise<void> {
    this.objects.delete(uid);
    this.file.remove(uid);
    return this.file.persist();
  }
  setLabel(label: string): Promise<void> {
    this.header.label = label;
    this.file.headerChanged();
    return this.file.persist();
  }
}

function newDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'craton-journal-'));
  dirs.push(dir);
  return dir;
}

const snapshotPath = (dir: string) => path.join(dir, 'tokens', 'slot-0.json');
const journalPath = (dir: string) => path.join(dir, 'tokens', 'slot-0.journal');
const generationOf = (dir: string) => (JSON.parse(readFileSync(snapshotPath(dir), 'utf8')) as TokenRecord).generation;
const journalLines = (dir: string) => readFileSync(journalPath(dir), 'utf8').split('\n').filter(Boolean);
const uids = (rec: TokenRecord | null) => rec!.objects.map((o) => o.uid).sort();

/** A token whose first write (a snapshot) is done. */
async function started(): Promise<Memory> {
  const m = new Memory(newDir());
  m.file.rewrite();
  await m.file.persist();
  return m;
}

describe('token journal', () => {
  it('a change appends one line (0600) and leaves the snapshot alone; load replays the lines', async () => {
    const m = await started();
    const snapshot = readFileSync(snapshotPath(m.dir), 'utf8');
    await m.put('a');
    await m.put('b');
    await m.remove('a');
    await m.setLabel('renamed');
    expect(readFileSync(snapshotPath(m.dir), 'utf8')).toBe(snapshot);
    expect(journalLines(m.dir)).toHaveLength(4);
    expect(statSync(journalPath(m.dir)).mode & 0o777).toBe(0o600);
    const rec = readTokenStore(m.dir, 0)!;
    expect(uids(rec)).toEqual(['b']);
    expect(rec.label).toBe('renamed');
    expect(rec.generation).toBeUndefined();
    expect(rec).toEqual(m.record());
  });

  it('changes made while a write is in flight share the next line (one fsync)', async () => {
    const m = await started();
    await Promise.all(Array.from({ length: 50 }, (_, i) => m.put(`o${i}`)));
    // the first write takes the change made before it; the other 49 wait and go together
    expect(journalLines(m.dir)).toHaveLength(2);
    expect(uids(readTokenStore(m.dir, 0))).toHaveLength(50);
  });

  it('a torn last line is ignored at load and cut off before the next append', async () => {
    const m = await started();
    await m.put('kept');
    const good = readFileSync(journalPath(m.dir)).length;
    const torn = encodeEntry({ g: generationOf(m.dir)!, put: [{ uid: 'torn', clear: {}, private: false }] });
    appendFileSync(journalPath(m.dir), torn.slice(0, torn.length - 20));
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['kept']);

    const after = new Memory(m.dir);
    const rec = after.file.load()!;
    expect(uids(rec)).toEqual(['kept']);
    expect(readFileSync(journalPath(m.dir)).length).toBe(good);
    for (const o of rec.objects) after.objects.set(o.uid, o);
    await after.put('next');
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['kept', 'next']);
    expect(journalLines(m.dir)).toHaveLength(2);
  });

  it('a whole last line that does not check out (a torn multi-page write) is ignored too', async () => {
    const m = await started();
    await m.put('kept');
    const line = encodeEntry({ g: generationOf(m.dir)!, put: [{ uid: 'bad', clear: {}, private: false }] });
    appendFileSync(journalPath(m.dir), line.replace('"bad"', '"bxd"'));
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['kept']);
  });

  it('a damaged line followed by intact ones refuses to load, naming the file and line', async () => {
    const m = await started();
    await m.put('a');
    await m.put('b');
    await m.put('c');
    const lines = journalLines(m.dir);
    lines[1] = lines[1]!.replace('"b"', '"x"');
    writeFileSync(journalPath(m.dir), lines.join('\n') + '\n');
    expect(() => readTokenStore(m.dir, 0)).toThrow(/token journal .*slot-0\.journal line 2 is damaged but later lines are intact; restore/);
  });

  it('only lines of the snapshot generation apply', async () => {
    const m = await started();
    await m.put('current');
    appendFileSync(journalPath(m.dir), encodeEntry({ g: 'another-generation', put: [{ uid: 'stale', clear: {}, private: false }], header: { ...m.header, label: 'stale' } }));
    const rec = readTokenStore(m.dir, 0)!;
    expect(uids(rec)).toEqual(['current']);
    expect(rec.label).toBe('unit');
  });

  it('a store from before the journal (no generation) ignores any journal; the first write is a snapshot', async () => {
    const dir = newDir();
    mkdirSync(path.join(dir, 'tokens'));
    const old: TokenRecord = { format: 1, slot: 0, initialized: true, label: 'old', serial: '01', so: null, user: null, failedLogins: { so: 0, user: 0 }, objects: [{ uid: 'o', clear: {}, private: false }] };
    writeFileSync(snapshotPath(dir), JSON.stringify(old));
    writeFileSync(journalPath(dir), encodeEntry({ g: 'whatever', del: ['o'] }));
    const m = new Memory(dir);
    const rec = m.file.load()!;
    expect(rec).toEqual(old);
    for (const o of rec.objects) m.objects.set(o.uid, o);
    await m.put('p');
    expect(generationOf(dir)).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(journalPath(dir), 'utf8')).toBe('');
    expect(uids(readTokenStore(dir, 0))).toEqual(['o', 'p']);
  });

  it('compaction: a crash after the new snapshot, before the journal is emptied, loads the whole state', async () => {
    const m = await started();
    await m.put('a');
    await m.put('b');
    const oldJournal = readFileSync(journalPath(m.dir));
    const before = generationOf(m.dir);
    m.file.rewrite();
    await m.remove('a');
    expect(generationOf(m.dir)).not.toBe(before);
    expect(readFileSync(journalPath(m.dir)).length).toBe(0);
    // the intermediate state: new snapshot, old journal still full
    writeFileSync(journalPath(m.dir), oldJournal);
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['b']);
    // and lines appended after the stale ones still apply
    await m.put('c');
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['b', 'c']);
  });

  it('compaction: a crash before the new snapshot is renamed in loads the old snapshot and journal', async () => {
    const m = await started();
    await m.put('a');
    await m.put('b');
    writeFileSync(`${snapshotPath(m.dir)}.tmp-99999`, '{"format":1,"objects":[{"uid":'); // half-written new snapshot
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['a', 'b']);
  });

  it('a journal past its bound is folded into a new snapshot on the next write', async () => {
    const m = await started();
    const before = generationOf(m.dir);
    const size = 64 * 1024;
    const n = Math.ceil(COMPACT_MIN_BYTES / size) + 2;
    for (let i = 0; i < n; i++) await m.put(`big${i}`, size);
    expect(generationOf(m.dir)).not.toBe(before);
    expect(readFileSync(journalPath(m.dir)).length).toBeLessThan(COMPACT_MIN_BYTES);
    const rec = readTokenStore(m.dir, 0)!;
    expect(rec.objects).toHaveLength(n);
    expect(rec).toEqual(m.record());
  });

  it('a rewrite asked for while a snapshot is being written gets a snapshot of its own', async () => {
    const m = new Memory(newDir());
    const first = m.put('a'); // the first write of a new store is a snapshot: in flight now
    m.objects.clear(); // what C_InitToken does, then asks for a rewrite
    m.header.label = 'cleared';
    m.file.rewrite();
    const second = m.file.persist();
    await Promise.all([first, second]);
    const rec = readTokenStore(m.dir, 0)!;
    expect(rec.objects).toEqual([]);
    expect(rec.label).toBe('cleared');
  });

  it('after a failed append the next write is a whole snapshot', async () => {
    const m = await started();
    await m.put('a');
    rmSync(journalPath(m.dir));
    mkdirSync(journalPath(m.dir)); // the append cannot open it
    await expect(m.put('b')).rejects.toThrow();
    m.objects.delete('b'); // what Token does when a write fails
    rmSync(journalPath(m.dir), { recursive: true });
    const before = generationOf(m.dir);
    await m.put('c');
    expect(generationOf(m.dir)).not.toBe(before);
    expect(uids(readTokenStore(m.dir, 0))).toEqual(['a', 'c']);
  });
});
