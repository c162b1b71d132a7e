// OpenSC's pkcs11-tool driving build/libcraton_hsm.so against a fresh daemon. The steps
// build on each other (token → PIN → keys → signatures), so they run in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun } from '../helpers/module.js';
import { p11ok, p11tool, SO_PIN, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
beforeAll(async () => {
  d = await startDaemon({ slots: 2 });
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-p11tool-'));
  writeFileSync(path.join(work, 'data'), 'Craton HSM interop test payload\n');
  writeFileSync(path.join(work, 'other'), 'a different payload\n');
});
afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});
const f = (name: string) => path.join(work, name);

describe.sequential('pkcs11-tool', () => {
  it('--list-slots shows both slots with uninitialized tokens', async () => {
    const r = await p11ok(d, ['--list-slots']);
    expect(r.stdout).toMatch(/^Available slots:/m);
    expect(r.stdout.match(/^Slot \d+ \(0x[0-9a-f]+\):/gm), r.stdout).toHaveLength(2);
    expect(r.stdout).toMatch(/^Slot 0 \(0x0\):/m);
    expect(r.stdout.match(/token state:\s+uninitialized/g), r.stdout).toHaveLength(2);
  });

  it('--init-token labels the token and sets the SO PIN', async () => {
    const r = await p11ok(d, ['--init-token', '--slot', '0', '--label', 't1', '--so-pin', SO_PIN]);
    expect(r.stdout).toContain('Token successfully initialized');
    const slots = await p11ok(d, ['--list-slots']);
    expect(slots.stdout).toMatch(/token label\s*:\s*t1\s*$/m);
    expect(slots.stdout).toMatch(/token flags\s*:.*token initialized/);
    // Slot 1 is untouched.
    expect(slots.stdout.match(/token state:\s+uninitialized/g)).toHaveLength(1);
  });

  it('--init-pin as SO sets the user PIN; a wrong SO PIN is refused', async () => {
    const bad = await p11tool(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', '87654321', '--pin', USER_PIN]);
    expect(bad.code, describeRun(bad)).not.toBe(0);
    expect(bad.stderr + bad.stdout).toContain('CKR_PIN_INCORRECT');
    const r = await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
    expect(r.stdout).toContain('User PIN successfully initialized');
    const slots = await p11ok(d, ['--list-slots']);
    expect(slots.stdout).toMatch(/token flags\s*:.*PIN initialized/);
  });

  it('--keypairgen rsa:2048', async () => {
    const r = await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'rsa:2048', '--id', '01', '--label', 'rsa1', '--login', '--pin', USER_PIN]);
    expect(r.stdout).toContain('Key pair generated');
    expect(r.stdout).toMatch(/Private Key Object; RSA/);
    expect(r.stdout).toMatch(/Public Key Object; RSA 2048 bits/);
    expect(r.stdout).toMatch(/label:\s+rsa1/);
    expect(r.stdout).toMatch(/ID:\s+01/);
    expect(r.stdout).toMatch(/Access:\s+.*sensitive, always sensitive, never extractable, local/);
  });

  it('--keypairgen EC:prime256v1', async () => {
    const r = await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '02', '--label', 'ec1', '--login', '--pin', USER_PIN]);
    expect(r.stdout).toContain('Key pair generated');
    expect(r.stdout).toMatch(/Private Key Object; EC/);
    expect(r.stdout).toMatch(/Public Key Object; EC\s+EC_POINT 256 bits/);
    // CKA_EC_PARAMS is the prime256v1 OID; CKA_EC_POINT a DER OCTET STRING of an uncompressed point.
    expect(r.stdout).toMatch(/EC_PARAMS:\s+06082a8648ce3d030107/);
    expect(r.stdout).toMatch(/EC_POINT:\s+044104[0-9a-f]{128}\s/);
    expect(r.stdout).toMatch(/ID:\s+02/);
  });

  it('--list-objects: public keys always, private keys only after login', async () => {
    const pub = await p11ok(d, ['--slot', '0', '--list-objects']);
    expect(pub.stdout).toMatch(/Public Key Object; RSA 2048 bits/);
    expect(pub.stdout).toMatch(/Public Key Object; EC\s+EC_POINT 256 bits/);
    expect(pub.stdout).not.toContain('Private Key Object');

    const all = await p11ok(d, ['--slot', '0', '--list-objects', '--login', '--pin', USER_PIN]);
    expect(all.stdout.match(/Private Key Object/g), all.stdout).toHaveLength(2);
    expect(all.stdout.match(/Public Key Object/g), all.stdout).toHaveLength(2);
    expect(all.stdout).toMatch(/label:\s+rsa1/);
    expect(all.stdout).toMatch(/label:\s+ec1/);
  });

  it('signs with SHA256-RSA-PKCS and verifies; a changed message does not verify', async () => {
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'SHA256-RSA-PKCS', '--id', '01', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.rsa')]);
    expect(statSync(f('sig.rsa')).size).toBe(256);
    const ok = await p11ok(d, ['--slot', '0', '--verify', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', f('data'), '--signature-file', f('sig.rsa')]);
    expect(ok.stdout).toContain('Signature is valid');
    const bad = await p11tool(d, ['--slot', '0', '--verify', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', f('other'), '--signature-file', f('sig.rsa')]);
    expect(bad.stdout).toContain('Invalid signature');
    expect(bad.stdout).not.toContain('Signature is valid');
  });

  it('signs with ECDSA-SHA256 and verifies; a changed message does not verify', async () => {
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'ECDSA-SHA256', '--id', '02', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.ec')]);
    expect(statSync(f('sig.ec')).size).toBe(64); // r || s
    const ok = await p11ok(d, ['--slot', '0', '--verify', '-m', 'ECDSA-SHA256', '--id', '02', '-i', f('data'), '--signature-file', f('sig.ec')]);
    expect(ok.stdout).toContain('Signature is valid');
    const bad = await p11tool(d, ['--slot', '0', '--verify', '-m', 'ECDSA-SHA256', '--id', '02', '-i', f('other'), '--signature-file', f('sig.ec')]);
    expect(bad.stdout).toContain('Invalid signature');
    // Two ECDSA signatures of one message differ (random k).
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'ECDSA-SHA256', '--id', '02', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.ec2')]);
    expect(readFileSync(f('sig.ec2')).equals(readFileSync(f('sig.ec')))).toBe(false);
  });

  it('signing without login fails with CKR_USER_NOT_LOGGED_IN or finds no private key', async () => {
    const r = await p11tool(d, ['--slot', '0', '--sign', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', f('data'), '-o', f('sig.nologin')]);
    expect(r.code, describeRun(r)).not.toBe(0);
  });

  it('--test-fork: a forked child can C_Initialize the inherited module', async () => {
    const r = await p11ok(d, ['--test-fork']);
    expect(r.stdout).toContain('*** Calling C_Initialize in forked child process ***');
    expect(r.stderr).not.toContain('CKR_CRYPTOKI_ALREADY_INITIALIZED');
  });

  it('the token and keys survive a daemon restart', async () => {
    await d.stop();
    d = await startDaemon({ dataDir: d.dataDir });
    const all = await p11ok(d, ['--slot', '0', '--list-objects', '--login', '--pin', USER_PIN]);
    expect(all.stdout.match(/Private Key Object/g), all.stdout).toHaveLength(2);
    const ok = await p11ok(d, ['--slot', '0', '--verify', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', f('data'), '--signature-file', f('sig.rsa')]);
    expect(ok.stdout).toContain('Signature is valid');
  });
});
