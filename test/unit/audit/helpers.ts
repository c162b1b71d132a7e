// Shared helpers for the audit unit tests: temp dirs, a writer on a private data dir,
// the seed 003 reference verifier as a python3 script, and line-level file surgery.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { AuditWriter, type Draft } from '../../../hsm-daemon/src/audit/writer.js';
import { loadOrCreateSigner } from '../../../hsm-daemon/src/audit/checkpoint.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'craton-audit-'));
  dirs.push(d);
  return d;
}

export const logs: string[] = [];
export const testLog = (level: string, msg: string): void => {
  logs.push(`${level}: ${msg}`);
};

export function makeWriter(dataDir: string, over: Partial<ConstructorParameters<typeof AuditWriter>[0]> = {}): AuditWriter {
  return new AuditWriter({
    logPath: path.join(dataDir, 'craton_hsm_audit.jsonl'),
    dataDir,
    maxSegmentBytes: 1 << 30,
    checkpointInterval: 0,
    signer: loadOrCreateSigner(dataDir),
    log: testLog,
    actor: { pid: process.pid, uid: process.getuid!(), exe: '/usr/bin/node' },
    ...over,
  });
}

let n = 0;
export function callDraft(over: Partial<Draft> = {}): Draft {
  n++;
  return {
    timestamp: 1_700_000_000 + n,
    session_handle: 7,
    operation: 'Sign',
    key_id: 42,
    result: { Success: null },
    pid: 1234,
    uid: 1000,
    exe: '/usr/bin/pkcs11-tool',
    mechanism: 'CKM_ECDSA',
    fips_approved: null,
    ...over,
  };
}

// Seed 003's reference verifier, verbatim in substance (it is the compatibility oracle).
export const SEED_VERIFIER = `import hashlib, json, sys
prev = "0" * 64
for lineno, line in enumerate(open(sys.argv[1]), start=1):
    entry = json.loads(line)
    if entry["previous_hash"] != prev:
        sys.exit(f"chain break at line {lineno}: "
                 f"expected {entry['previous_hash']}, got {prev}")
    # Canonical form: previous_hash field excluded, keys sorted.
    body = {k: v for k, v in entry.items() if k != "previous_hash"}
    prev = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
print(f"verified {lineno} entries")
`;

export function seedVerify(file: string): { code: number; out: string } {
  const dir = tempDir();
  const script = path.join(dir, 'verify.py');
  writeFileSync(script, SEED_VERIFIER);
  const r = spawnSync('python3', [script, file], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

export function python(code: string, input: string): string {
  return execFileSync('python3', ['-c', code], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
}

export function readLines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
}
export function writeLines(file: string, lines: string[]): void {
  writeFileSync(file, lines.map((l) => l + '\n').join(''));
}
