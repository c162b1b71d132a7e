// Signatures made inside the HSM verify with plain OpenSSL and the exported public keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { initTokenWithKeys, p11ok, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
const f = (name: string) => path.join(work, name);
const openssl = (args: string[]) => runCli('openssl', args, { timeoutMs: 30_000 });

beforeAll(async () => {
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-openssl-'));
  writeFileSync(f('data'), 'message signed inside Craton HSM\n');
  writeFileSync(f('other'), 'message signed inside Craton HSM.\n');
  await initTokenWithKeys(d);
});
afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function exportPubkey(id: string, name: string): Promise<string> {
  await p11ok(d, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', id, '-o', f(`${name}.der`)]);
  const r = await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', f(`${name}.der`), '-out', f(`${name}.pem`)]);
  expect(r.code, `the exported ${name} key is not a DER SubjectPublicKeyInfo\n${describeRun(r)}`).toBe(0);
  return f(`${name}.pem`);
}

async function verify(pem: string, sig: string, data: string) {
  return openssl(['dgst', '-sha256', '-verify', pem, '-signature', sig, data]);
}

describe.sequential('openssl verifies HSM signatures', () => {
  it('exports the public keys as SubjectPublicKeyInfo', async () => {
    const ec = await exportPubkey('02', 'ec');
    const rsa = await exportPubkey('01', 'rsa');
    const ecText = await openssl(['pkey', '-pubin', '-in', ec, '-text', '-noout']);
    expect(ecText.stdout).toContain('Public-Key: (256 bit)');
    expect(ecText.stdout).toMatch(/ASN1 OID: prime256v1/);
    const rsaText = await openssl(['pkey', '-pubin', '-in', rsa, '-text', '-noout']);
    expect(rsaText.stdout).toContain('Public-Key: (2048 bit)');
    expect(rsaText.stdout).toMatch(/Exponent: 65537/);
  });

  it('RSA PKCS#1 v1.5 with SHA-256', async () => {
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'SHA256-RSA-PKCS', '--id', '01', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.rsa')]);
    const ok = await verify(f('rsa.pem'), f('sig.rsa'), f('data'));
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(ok.stdout).toContain('Verified OK');
    const bad = await verify(f('rsa.pem'), f('sig.rsa'), f('other'));
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain('Verification failure');
  });

  it('ECDSA P-256 with SHA-256 (DER signature via --signature-format openssl)', async () => {
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'ECDSA-SHA256', '--id', '02', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.ec.der'), '--signature-format', 'openssl']);
    const der = readFileSync(f('sig.ec.der'));
    expect(der[0]).toBe(0x30); // SEQUENCE { r INTEGER, s INTEGER }
    const ok = await verify(f('ec.pem'), f('sig.ec.der'), f('data'));
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(ok.stdout).toContain('Verified OK');
    const bad = await verify(f('ec.pem'), f('sig.ec.der'), f('other'));
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain('Verification failure');
  });

  it('ECDSA r||s from the HSM converted to DER by hand verifies too', async () => {
    await p11ok(d, ['--slot', '0', '--sign', '-m', 'ECDSA-SHA256', '--id', '02', '--login', '--pin', USER_PIN, '-i', f('data'), '-o', f('sig.ec.raw')]);
    const raw = readFileSync(f('sig.ec.raw'));
    expect(raw.length).toBe(64);
    const int = (b: Buffer) => {
      let i = 0;
      while (i < b.length - 1 && b[i] === 0) i++;
      let v = b.subarray(i);
      if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
      return Buffer.concat([Buffer.from([0x02, v.length]), v]);
    };
    const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
    writeFileSync(f('sig.ec.conv'), Buffer.concat([Buffer.from([0x30, body.length]), body]));
    const ok = await verify(f('ec.pem'), f('sig.ec.conv'), f('data'));
    expect(ok.code, describeRun(ok)).toBe(0);
  });

  it('a signature does not verify under the other key', async () => {
    const r = await verify(f('rsa.pem'), f('sig.ec.der'), f('data'));
    expect(r.code).not.toBe(0);
  });
});
