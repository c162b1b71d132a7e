// Java 17's SunPKCS11 provider against the module: keytool -list / -genkeypair / -delete on the
// PKCS11 keystore, and test/interop/java/CratonInterop.java (compiled here) signing, encrypting,
// MACing and reading SecureRandom through the provider, each result cross-checked with Java's
// software providers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { p11ok, p11tool, SO_PIN, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
let cfg: string;
const f = (name: string) => path.join(work, name);

const keytool = (args: string[]) =>
  runCli(
    'keytool',
    ['-keystore', 'NONE', '-storetype', 'PKCS11', '-providerclass', 'sun.security.pkcs11.SunPKCS11', '-providerarg', cfg, '-storepass', USER_PIN, ...args],
    { env: d.env, timeoutMs: 60_000 },
  );
async function keytoolOk(args: string[]) {
  const r = await keytool(args);
  expect(r.code, `keytool ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

beforeAll(async () => {
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-java-'));
  cfg = f('craton-pkcs11.cfg');
  writeFileSync(cfg, `name = Craton\nlibrary = ${d.modulePath}\nslotListIndex = 0\n`);
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 'jt1', '--so-pin', SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
});
afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.sequential('Java 17 SunPKCS11', () => {
  it('keytool -list on the empty token: provider SunPKCS11-Craton, 0 entries', async () => {
    const r = await keytoolOk(['-list']);
    expect(r.stdout).toMatch(/Keystore provider: SunPKCS11-Craton/);
    expect(r.stdout).toMatch(/Your keystore contains 0 entries/);
  });

  it('keytool -list with a wrong PIN fails with a login error', async () => {
    const r = await runCli(
      'keytool',
      ['-list', '-keystore', 'NONE', '-storetype', 'PKCS11', '-providerclass', 'sun.security.pkcs11.SunPKCS11', '-providerarg', cfg, '-storepass', '999999'],
      { env: d.env, timeoutMs: 60_000 },
    );
    expect(r.code, describeRun(r)).not.toBe(0);
    // keytool reports C_Login's CKR_PIN_INCORRECT as "java.io.IOException: load failed".
    expect(r.stdout + r.stderr).toMatch(/keytool error: java\.io\.IOException: load failed|CKR_PIN_INCORRECT/);
  });

  it('keytool -genkeypair EC and RSA store key pairs with self-signed certificates on the token', async () => {
    await keytoolOk(['-genkeypair', '-alias', 'jec', '-keyalg', 'EC', '-groupname', 'secp256r1', '-dname', 'CN=java ec', '-validity', '2']);
    await keytoolOk(['-genkeypair', '-alias', 'jrsa', '-keyalg', 'RSA', '-keysize', '2048', '-dname', 'CN=java rsa', '-validity', '2']);
    const r = await keytoolOk(['-list']);
    expect(r.stdout).toMatch(/Your keystore contains 2 entries/);
    expect(r.stdout).toMatch(/^jec, PrivateKeyEntry,/m);
    expect(r.stdout).toMatch(/^jrsa, PrivateKeyEntry,/m);
    const v = await keytoolOk(['-list', '-v', '-alias', 'jec']);
    expect(v.stdout).toMatch(/Owner: CN=java ec/);
    expect(v.stdout).toMatch(/Signature algorithm name: SHA256withECDSA/);
    expect(v.stdout).toMatch(/Subject Public Key Algorithm: 256-bit EC \(secp256r1\) key/);
    // Exported certificate: signed by the HSM key, valid under plain openssl.
    const pem = await keytoolOk(['-exportcert', '-rfc', '-alias', 'jrsa']);
    writeFileSync(f('jrsa.pem'), pem.stdout);
    const o = await runCli('openssl', ['verify', '-CAfile', f('jrsa.pem'), f('jrsa.pem')]);
    expect(o.code, describeRun(o)).toBe(0);
    // pkcs11-tool sees the objects keytool made. SunPKCS11 labels the certificate with the
    // alias and gives key and certificate CKA_ID = the alias bytes ("jec" = 6a6563).
    const objs = await p11ok(d, ['--slot', '0', '--list-objects', '--login', '--pin', USER_PIN]);
    const blocks = objs.stdout.split(/\n(?=\S)/);
    const block = (re: RegExp) => blocks.filter((b) => re.test(b));
    expect(block(/^Certificate Object; type = X\.509 cert\s+label:\s+jec\s[\s\S]*ID:\s+6a6563/), objs.stdout).toHaveLength(1);
    const ecPriv = block(/^Private Key Object; EC[\s\S]*ID:\s+6a6563/);
    expect(ecPriv, objs.stdout).toHaveLength(1);
    // Generated inside the token by SunPKCS11: sensitive from birth, never extractable, local.
    expect(ecPriv[0]).toMatch(/Access:\s+sensitive, always sensitive, never extractable, local/);
    const rsaPriv = block(/^Private Key Object; RSA[\s\S]*ID:\s+6a727361/);
    expect(rsaPriv, objs.stdout).toHaveLength(1);
    expect(rsaPriv[0]).toMatch(/Access:\s+sensitive/);
  });

  it('keytool -delete removes the key pair and certificate', async () => {
    await keytoolOk(['-delete', '-alias', 'jec']);
    const r = await keytoolOk(['-list']);
    expect(r.stdout).toMatch(/Your keystore contains 1 entry/);
    expect(r.stdout).not.toMatch(/^jec,/m);
    const objs = await p11tool(d, ['--slot', '0', '--list-objects', '--login', '--pin', USER_PIN]);
    expect(objs.stdout).not.toMatch(/label:\s+jec\s/);
  });

  it('CratonInterop.java: ECDSA, RSA, RSA-PSS, AES-GCM+AAD, AES-CBC, HMAC, SecureRandom match the software providers', async () => {
    const src = path.join(REPO_ROOT, 'test', 'interop', 'java', 'CratonInterop.java');
    const c = await runCli('javac', ['-d', f('classes'), src], { timeoutMs: 90_000 });
    expect(c.code, describeRun(c)).toBe(0);
    const r = await runCli('java', ['-cp', f('classes'), 'CratonInterop', cfg, USER_PIN], { env: d.env, timeoutMs: 90_000 });
    const lines = r.stdout.split('\n');
    for (const name of ['SecureRandom', 'SHA256withECDSA', 'SHA256withRSA', 'RSASSA-PSS', 'AES/GCM/NoPadding', 'AES/CBC/PKCS5Padding', 'HmacSHA256']) {
      expect(lines, `${name}\n${describeRun(r)}`).toContain(`PASS ${name}`);
    }
    expect(lines).toContain('DONE 0');
    expect(r.code, describeRun(r)).toBe(0);
  });
});
