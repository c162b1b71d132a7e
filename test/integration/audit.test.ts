// The audit log end to end: a real craton-hsmd with a real client (pkcs11-tool, and the
// pkcs11js hammer for kill -9), checked by seed 003's Python verifier and by
// `craton-hsm-admin audit verify`.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { SO_PIN, USER_PIN, p11ok, p11tool } from '../helpers/p11tool.js';
import { SEED_VERIFIER } from '../unit/audit/helpers.js';

const ADMIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const daemons: Daemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.stop().catch(() => undefined);
});

async function start(dataDir?: string, extraToml?: string): Promise<Daemon> {
  const d = await startDaemon({ slots: 1, dataDir, extraToml });
  daemons.push(d);
  return d;
}

const logPath = (d: Daemon) => path.join(d.dataDir, 'craton_hsm_audit.jsonl');
const entries = (d: Daemon) =>
  readFileSync(logPath(d), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);

function seedVerify(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = path.join(path.dirname(file), 'seed_verify.py');
  writeFileSync(script, SEED_VERIFIER);
  return runCli('python3', [script, file]);
}

const admin = (d: Daemon, args: string[]) => runCli(process.execPath, [ADMIN, '--config', d.configPath, '--data-dir', d.dataDir, ...args], { env: d.env });

describe('audit log with a real client', () => {
  it('records pkcs11-tool calls with peer identity; both verifiers accept it', async () => {
    const d = await start();
    const label = 'Schlüssel-ключ-鍵';
    await p11ok(d, ['--init-token', '--slot', '0', '--label', label, '--so-pin', SO_PIN]);
    await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
    await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '02', '--label', `ec-${label}`, '--login', '--pin', USER_PIN]);
    const bad = await p11tool(d, ['--slot', '0', '--login', '--pin', '9999', '--list-objects']);
    expect(bad.code).not.toBe(0);
    const dataFile = path.join(d.dataDir, 'to-sign.bin');
    writeFileSync(dataFile, 'audit me');
    await p11ok(d, ['--slot', '0', '--sign', '--mechanism', 'ECDSA-SHA256', '--id', '02', '--login', '--pin', USER_PIN, '--input-file', dataFile, '--output-file', path.join(d.dataDir, 'sig.bin')]);

    const es = entries(d);
    expect(es[0]!.operation).toBe('Startup');
    expect((statSync(logPath(d)).mode & 0o777).toString(8)).toBe('600');
    const client = es.filter((e) => typeof e.exe === 'string' && e.exe.includes('pkcs11-tool'));
    expect(client.length).toBeGreaterThan(5);
    for (const e of client) {
      expect(Number.isInteger(e.pid) && e.pid > 0).toBe(true);
      expect(e.uid).toBe(process.getuid!());
    }
    const ops = client.map((e) => e.operation);
    for (const op of ['InitToken', 'InitPIN', 'GenerateKeyPair', 'Login', 'SignInit', 'Sign', 'OpenSession', 'CloseSession']) expect(ops, op).toContain(op);
    const gen = client.find((e) => e.operation === 'GenerateKeyPair')!;
    expect(gen.mechanism).toMatch(/^CKM_EC(DSA)?_KEY_PAIR_GEN$/);
    expect(Number.isInteger(gen.key_id)).toBe(true);
    expect(client.find((e) => e.operation === 'Sign')!.key_id).toBe(client.find((e) => e.operation === 'SignInit')!.key_id);
    expect(client.some((e) => e.operation === 'Login' && e.result.Failure === 'CKR_PIN_INCORRECT')).toBe(true);
    const text = readFileSync(logPath(d), 'utf8');
    // A digits-only PIN turns up inside hex hashes by chance: look in the other strings.
    expect((text.match(/"(?:[^"\\]|\\.)*"/g) ?? []).filter((v) => !/^"[0-9a-fA-F]*"$/.test(v) && v.includes(USER_PIN))).toEqual([]);
    expect(text).not.toContain('audit me');

    await d.stop();
    const tail = entries(d).slice(-2).map((e) => e.operation);
    expect(tail).toEqual(['Shutdown', 'Checkpoint']);
    const seed = await seedVerify(logPath(d));
    expect(seed.code, describeRun(seed)).toBe(0);
    const v = await admin(d, ['audit', 'verify']);
    expect(v.code, describeRun(v)).toBe(0);
    expect(v.stdout).toMatch(/verified \d+ entries/);
    expect(v.stdout).toMatch(/hmac/);
    const dump = await admin(d, ['audit', 'dump', '--last', '100']);
    expect(dump.code, describeRun(dump)).toBe(0);
    expect(dump.stdout).toContain('pkcs11-tool');
  });

  it('kill -9 during a burst: every acknowledged operation has its entry; the chain verifies after restart', async () => {
    const d1 = await start();
    await p11ok(d1, ['--init-token', '--slot', '0', '--label', 'burst', '--so-pin', SO_PIN]);
    await p11ok(d1, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
    const hammers = ['a', 'b', 'c'].map((prefix) => {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test/helpers/hammer.mjs'), d1.modulePath, '0', USER_PIN, prefix], { env: d1.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      return { child, pid: child.pid!, out: () => out, exited: new Promise<void>((r) => child.once('exit', () => r())) };
    });
    await new Promise((r) => setTimeout(r, 1500 + Math.floor(Math.random() * 500)));
    await d1.kill9();
    await Promise.all(hammers.map((h) => h.exited));

    const d2 = await start(d1.dataDir);
    await d2.stop();
    const es = entries(d2);
    for (const h of hammers) {
      const acked = h.out().split('\n').filter((l) => l.startsWith('acked ')).length;
      expect(acked).toBeGreaterThan(0);
      const logged = es.filter((e) => e.pid === h.pid && e.operation === 'GenerateKey' && 'Success' in e.result).length;
      expect(logged).toBeGreaterThanOrEqual(acked);
      expect(logged).toBeLessThanOrEqual(acked + 1);
    }
    expect(es.some((e) => e.operation === 'Recovery' && e.details.unclean_shutdown === true)).toBe(true);
    const seed = await seedVerify(logPath(d2));
    expect(seed.code, describeRun(seed)).toBe(0);
    const v = await admin(d2, ['audit', 'verify']);
    expect(v.code, describeRun(v)).toBe(0);
  });
});

describe('checkpoint key custody and admin-socket rotation', () => {
  it('keeps the signing key sealed (no plaintext private key on disk); `audit pubkey` prints only the public half', async () => {
    const d = await start();
    await d.stop();
    const files = readdirSync(d.dataDir);
    expect(files).toContain('audit-checkpoint-key.sealed');
    expect(files).not.toContain('audit-checkpoint-key.pem');
    for (const f of files) {
      const st = statSync(path.join(d.dataDir, f));
      if (st.isFile()) expect(readFileSync(path.join(d.dataDir, f), 'latin1'), f).not.toMatch(/PRIVATE KEY/);
    }
    for (const f of ['audit-checkpoint-key.sealed', 'audit-checkpoint.kek']) expect((statSync(path.join(d.dataDir, f)).mode & 0o777).toString(8), f).toBe('600');
    const pub = await admin(d, ['audit', 'pubkey']);
    expect(pub.code, describeRun(pub)).toBe(0);
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(pub.stdout).not.toMatch(/PRIVATE/);
    const sealed = JSON.parse(readFileSync(path.join(d.dataDir, 'audit-checkpoint-key.sealed'), 'utf8'));
    expect(pub.stdout.trim()).toBe(sealed.public_key.trim());
    // the checkpoints written with the unsealed key verify against the exported public key
    const pubFile = path.join(d.dataDir, 'exported.pub.pem');
    writeFileSync(pubFile, pub.stdout);
    const v = await admin(d, ['audit', 'verify', '--pubkey', pubFile, '--json']);
    expect(v.code, describeRun(v)).toBe(0);
    expect(JSON.parse(v.stdout).checkpointsVerified, `${v.stdout}\n--- daemon stderr ---\n${d.stderr()}`).toBeGreaterThan(0);
  });

  it('`audit rotate` uses the admin socket when the daemon answers', async () => {
    const d = await start();
    const r = await admin(d, ['audit', 'rotate']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/rotated .* \(admin socket /);
    const rotated = readdirSync(d.dataDir).filter((f) => /^craton_hsm_audit\.\d{12}\.jsonl$/.test(f));
    expect(rotated).toHaveLength(1); // done when the command returns (synchronous over the socket)
    expect(entries(d)[0]!.operation).toBe('SegmentStart');
    await d.stop();
    const v = await admin(d, ['audit', 'verify']);
    expect(v.code, describeRun(v)).toBe(0);
    const down = await admin(d, ['audit', 'rotate']);
    expect(down.code).toBe(4); // daemon down: no admin socket, no live pid
  });
});
