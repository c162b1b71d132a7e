// The writer: what it puts on disk verifies under seed 003's Python verifier and ours;
// every tampering case is caught by ours with the line; torn tails are quarantined;
// rotation continues the chain; files are 0600; symlinks are refused.
import { appendFileSync, existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifySegments } from '../../../hsm-daemon/src/audit/verify.js';
import { discoverSegments, headFile } from '../../../hsm-daemon/src/audit/segments.js';
import { HMAC_INITIAL_FILE, HMAC_STATE_FILE, type AuditWriter } from '../../../hsm-daemon/src/audit/writer.js';
import { CHECKPOINT_PUB_FILE } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { callDraft, makeWriter, readLines, seedVerify, tempDir, writeLines } from './helpers.js';

async function fill(w: AuditWriter, n: number, label = 'op'): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, (_v, i) =>
      w.append(callDraft({ operation: i % 3 === 0 ? 'Sign' : 'GenerateKeyPair', exe: `/opt/${label}/bïn/tool ${i} "q" \\ 😀`, key_id: i % 2 ? null : i })),
    ),
  );
}

function keysOf(dir: string) {
  return {
    initialKey: Buffer.from(readFileSync(path.join(dir, HMAC_INITIAL_FILE), 'utf8').trim(), 'hex'),
    publicKey: createPublicKey(readFileSync(path.join(dir, CHECKPOINT_PUB_FILE))),
  };
}

async function freshLog(n = 20): Promise<{ dir: string; file: string }> {
  const dir = tempDir();
  const w = makeWriter(dir);
  await w.open();
  await fill(w, n);
  await w.checkpoint('test');
  await w.close();
  return { dir, file: path.join(dir, 'craton_hsm_audit.jsonl') };
}

describe('audit writer', () => {
  it('writes entries the seed verifier and ours accept; 0600 files', async () => {
    const { dir, file } = await freshLog(50);
    const lines = readLines(file);
    expect(lines).toHaveLength(51);
    const e = JSON.parse(lines[0]!);
    for (const k of ['timestamp', 'session_handle', 'operation', 'key_id', 'result', 'previous_hash', 'seq', 'pid', 'uid', 'exe', 'mechanism', 'fips_approved', 'chain', 'hmac'])
      expect(e, k).toHaveProperty(k);
    expect(e.previous_hash).toBe('0'.repeat(64));
    expect(Number.isInteger(e.timestamp)).toBe(true);
    const seed = seedVerify(file);
    expect(seed.out).toContain('verified 51 entries');
    expect(seed.code).toBe(0);
    const r = await verifySegments([file], keysOf(dir));
    expect(r.failure).toBeUndefined();
    expect(r.entries).toBe(51);
    expect(r.checkpointsVerified).toBe(1);
    for (const f of ['craton_hsm_audit.jsonl', HMAC_INITIAL_FILE, HMAC_STATE_FILE, 'audit-checkpoint-key.sealed', 'audit-checkpoint.kek'])
      expect((statSync(path.join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
  });

  it('group commit: concurrent appends are ordered and all resolve', async () => {
    const dir = tempDir();
    const w = makeWriter(dir);
    await w.open();
    await fill(w, 500);
    await w.close();
    const seqs = readLines(path.join(dir, 'craton_hsm_audit.jsonl')).map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_v, i) => i + 1));
  });

  it('continues the chain and keyed chain across restarts', async () => {
    const dir = tempDir();
    for (let round = 0; round < 3; round++) {
      const w = makeWriter(dir);
      const rep = await w.open();
      if (round > 0) expect(rep.unclean).toBe(round === 2); // round 1 started after a clean close
      await fill(w, 5);
      if (round < 1) {
        await w.event('Shutdown', {});
      }
      await w.close();
    }
    const file = path.join(dir, 'craton_hsm_audit.jsonl');
    expect(seedVerify(file).code).toBe(0);
    const r = await verifySegments([file], keysOf(dir));
    expect(r.failure).toBeUndefined();
    expect(r.entries).toBe(16);
  });

  describe('tampering is detected by our verifier, with the line', () => {
    const cases: Array<[string, (l: string[]) => string[], number]> = [
      ['edit', (l) => l.map((x, i) => (i === 9 ? x.replace('"operation":"Sign"', '"operation":"Verify"').replace('"operation":"GenerateKeyPair"', '"operation":"Verify"') : x)), 10],
      ['delete', (l) => l.filter((_x, i) => i !== 9), 10],
      ['insert (copy of an entry)', (l) => [...l.slice(0, 9), l[4]!, ...l.slice(9)], 10],
      ['reorder', (l) => [...l.slice(0, 9), l[10]!, l[9]!, ...l.slice(11)], 10],
    ];
    for (const [name, mutate, line] of cases) {
      it(name, async () => {
        const { dir, file } = await freshLog();
        writeLines(file, mutate(readLines(file)));
        const r = await verifySegments([file], keysOf(dir));
        expect(r.ok).toBe(false);
        expect(r.failure!.line).toBe(line);
        expect(r.failure!.file).toBe(file);
      });
    }

    it('patched-neighbour edit passes the seed verifier but not ours', async () => {
      const { dir, file } = await freshLog();
      const { createHash } = await import('node:crypto');
      const { canonicalJson } = await import('../../../hsm-daemon/src/audit/canonical.js');
      const lines = readLines(file);
      const e = JSON.parse(lines[9]!);
      e.key_id = 999;
      lines[9] = canonicalJson(e);
      // Recompute previous_hash for every later entry, as an attacker would.
      for (let i = 10; i < lines.length; i++) {
        const prev = JSON.parse(lines[i - 1]!);
        delete prev.previous_hash;
        const cur = JSON.parse(lines[i]!);
        cur.previous_hash = createHash('sha256').update(canonicalJson(prev)).digest('hex');
        lines[i] = canonicalJson(cur);
      }
      writeLines(file, lines);
      expect(seedVerify(file).code).toBe(0);
      const r = await verifySegments([file], keysOf(dir));
      expect(r.ok).toBe(false);
      expect(r.failure!.line).toBe(10);
      expect(r.failure!.what).toMatch(/chain/);
      expect(r.failure!.expected).not.toBe(r.failure!.recorded);
    });

    it('edit with chain recomputed too is caught by the hmac layer', async () => {
      const { dir, file } = await freshLog();
      const { canonicalJson } = await import('../../../hsm-daemon/src/audit/canonical.js');
      const { chainOf, seedHash } = await import('../../../hsm-daemon/src/audit/entry.js');
      const lines = readLines(file).slice(0, 15);
      const es = lines.map((l) => JSON.parse(l));
      es[9].key_id = 999;
      for (let i = 9; i < es.length; i++) {
        if (i > 9) es[i].previous_hash = seedHash(es[i - 1]);
        es[i].chain = chainOf(es[i - 1].chain, es[i]);
      }
      writeLines(file, es.map((e) => canonicalJson(e)));
      expect(seedVerify(file).code).toBe(0);
      expect((await verifySegments([file])).ok).toBe(true); // public layers alone are fooled
      const r = await verifySegments([file], keysOf(dir));
      expect(r.failure?.line).toBe(10);
      expect(r.failure?.what).toMatch(/hmac/);
    });

    it('truncation back past the signed head', async () => {
      const { dir, file } = await freshLog();
      writeLines(file, readLines(file).slice(0, 12));
      const head = JSON.parse(readFileSync(headFile(file), 'utf8'));
      const r = await verifySegments([file], { ...keysOf(dir), head });
      expect(r.ok).toBe(false);
      expect(r.failure!.what).toMatch(/truncated/);
      expect(r.failure!.line).toBe(12);
    });
  });

  it('quarantines a torn last line, records a recovery entry and continues the chain', async () => {
    const { dir, file } = await freshLog(10);
    appendFileSync(file, '{"chain":"abc","seq":12,"operation":"Sig');
    const w = makeWriter(dir);
    const rep = await w.open();
    expect(rep.torn?.bytes).toBeGreaterThan(10);
    expect(rep.unclean).toBe(true);
    await w.event('Recovery', { torn_bytes: rep.torn!.bytes });
    await fill(w, 3);
    await w.close();
    const q = readdirSync(dir).filter((n) => n.includes('.quarantine-'));
    expect(q).toHaveLength(1);
    expect(readFileSync(path.join(dir, q[0]!), 'utf8')).toContain('"operation":"Sig');
    expect((statSync(path.join(dir, q[0]!)).mode & 0o777).toString(8)).toBe('600');
    expect(seedVerify(file).code).toBe(0);
    const r = await verifySegments([file], keysOf(dir));
    expect(r.failure).toBeUndefined();
    expect(r.entries).toBe(15);
  });

  it('rotates by size and on demand; verifies across segments and one segment from its anchor', async () => {
    const dir = tempDir();
    const w = makeWriter(dir, { maxSegmentBytes: 8 * 1024, checkpointInterval: 25 });
    await w.open();
    for (let i = 0; i < 10; i++) await fill(w, 10, `r${i}`);
    await w.segment('rotate', 'admin');
    await fill(w, 3);
    await w.close();
    const segs = discoverSegments(path.join(dir, 'craton_hsm_audit.jsonl'));
    expect(segs.length).toBeGreaterThan(3);
    for (const s of segs) expect(seedVerify(s.path).code, s.path).toBe(0);
    const r = await verifySegments(segs.map((s) => s.path), keysOf(dir));
    expect(r.failure).toBeUndefined();
    expect(r.firstSeq).toBe(1);
    expect(r.checkpointsVerified).toBeGreaterThan(4);
    const one = await verifySegments([segs[2]!.path], keysOf(dir));
    expect(one.failure).toBeUndefined();
    expect(one.anchoredAt).toBeDefined();
    // dropping a middle segment breaks the chain
    const gap = await verifySegments([segs[0]!.path, segs[2]!.path], keysOf(dir));
    expect(gap.ok).toBe(false);
    expect(gap.failure!.line).toBe(1);
  });

  it('refuses a symlinked log file', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'elsewhere.jsonl');
    writeFileSync(target, '');
    symlinkSync(target, path.join(dir, 'craton_hsm_audit.jsonl'));
    const w = makeWriter(dir);
    await expect(w.open()).rejects.toThrow(/symlink/);
    expect(lstatSync(path.join(dir, 'craton_hsm_audit.jsonl')).isSymbolicLink()).toBe(true);
  });

  it('tightens an existing log file to 0600', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'craton_hsm_audit.jsonl');
    writeFileSync(file, '', { mode: 0o644 });
    const w = makeWriter(dir);
    await w.open();
    await w.close();
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
  });

  it('a write failure rejects the pending entries and marks the log unavailable', async () => {
    const { dir } = await freshLog(3);
    const w = makeWriter(dir);
    await w.open();
    await fill(w, 2);
    await w._fileHandle!.close(); // the next write fails with EBADF
    await expect(w.append(callDraft())).rejects.toThrow(/write failed/);
    expect(w.healthy).toBe(false);
    await expect(w.append(callDraft())).rejects.toThrow();
    const rep = await w.open(); // recovery
    expect(rep.lastSeq).toBe(3 + 1 + 2);
    await fill(w, 2);
    await w.close();
    expect(existsSync(path.join(dir, 'craton_hsm_audit.jsonl'))).toBe(true);
    const r = await verifySegments([path.join(dir, 'craton_hsm_audit.jsonl')], keysOf(dir));
    expect(r.failure).toBeUndefined();
  });
});
