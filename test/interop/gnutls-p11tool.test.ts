// GnuTLS's p11tool and certtool (gnutls-bin) driving the module with RFC 7512 URIs: token and
// mechanism listing, key generation, --test-sign (ECDSA, RSA, RSA-PSS), a self-signed
// certificate made with an HSM key and written back to the token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { p11ok, SO_PIN, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
let env: NodeJS.ProcessEnv;
const f = (name: string) => path.join(work, name);
const TOKEN = 'pkcs11:token=gt1';

const gnutls = (tool: 'p11tool' | 'certtool', args: string[]) => runCli(tool, ['--provider', d.modulePath, ...args], { env, timeoutMs: 60_000 });
async function ok(tool: 'p11tool' | 'certtool', args: string[]) {
  const r = await gnutls(tool, args);
  expect(r.code, `${tool} ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

beforeAll(async () => {
  // The default strict profile: GnuTLS signs RSA PKCS#1 v1.5 as CKM_RSA_PKCS over its own
  // DigestInfo, which the policy allows when it names an approved hash (checked at C_Sign).
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-gnutls-'));
  // GNUTLS_PIN answers the user-PIN prompt; no other PKCS#11 modules are loaded with --provider.
  env = { ...d.env, GNUTLS_PIN: USER_PIN };
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 'gt1', '--so-pin', SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
});
afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.sequential('GnuTLS p11tool / certtool', () => {
  it('--list-tokens shows the token with its URI and flags', async () => {
    const r = await ok('p11tool', ['--list-tokens']);
    expect(r.stdout).toMatch(/URL: pkcs11:model=craton-hsmd;manufacturer=Craton%20HSM;serial=[0-9A-F]+;token=gt1/);
    expect(r.stdout).toMatch(/Label: gt1/);
    expect(r.stdout).toMatch(/Flags: .*RNG.*Requires login/);
  });

  it('--list-mechanisms names the key generation and signature mechanisms', async () => {
    const r = await ok('p11tool', ['--list-mechanisms', TOKEN]);
    // GnuTLS prints CKM_EC_KEY_PAIR_GEN (0x1040) under its older name CKM_ECDSA_KEY_PAIR_GEN.
    for (const m of ['CKM_ECDSA_KEY_PAIR_GEN', 'CKM_ECDSA', 'CKM_ECDSA_SHA256', 'CKM_RSA_PKCS_KEY_PAIR_GEN', 'CKM_SHA256_RSA_PKCS', 'CKM_RSA_PKCS_PSS', 'CKM_AES_GCM', 'CKM_SHA256']) {
      expect(r.stdout, m).toMatch(new RegExp(`\\] ${m} `));
    }
    expect(r.stdout).toMatch(/CKM_RSA_PKCS_KEY_PAIR_GEN keysize range \(2048, \d+\) generate_key_pair/);
  });

  it('--generate-privkey ECDSA secp256r1 and RSA 2048 print the matching public keys', async () => {
    const ec = await ok('p11tool', ['--login', '--generate-privkey', 'ECDSA', '--curve', 'secp256r1', '--label', 'gec', TOKEN]);
    const ecKey = createPublicKey(ec.stdout);
    expect(ecKey.asymmetricKeyType).toBe('ec');
    expect(ecKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    writeFileSync(f('gec.pub.pem'), ec.stdout);
    const rsa = await ok('p11tool', ['--login', '--generate-privkey', 'RSA', '--bits', '2048', '--label', 'grsa', TOKEN]);
    const rsaKey = createPublicKey(rsa.stdout);
    expect(rsaKey.asymmetricKeyType).toBe('rsa');
    expect(rsaKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('--list-all: public keys without login, private keys (sensitive, never extractable) with login', async () => {
    const pub = await ok('p11tool', ['--list-all', TOKEN]);
    expect(pub.stdout).toMatch(/Type: Public key \(EC\/ECDSA-SECP256R1\)/);
    expect(pub.stdout).toMatch(/Type: Public key \(RSA-2048\)/);
    expect(pub.stdout).not.toContain('Private key');
    const all = await ok('p11tool', ['--login', '--list-all', TOKEN]);
    const priv = all.stdout.split(/\n(?=Object \d+:)/).filter((o) => /Type: Private key/.test(o));
    expect(priv, all.stdout).toHaveLength(2);
    for (const o of priv) expect(o).toMatch(/Flags: .*CKA_PRIVATE; CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;/);
  });

  it('--test-sign ECDSA, RSA PKCS#1 and RSA-PSS', async () => {
    const ec = await ok('p11tool', ['--login', '--test-sign', `${TOKEN};object=gec;type=private`]);
    expect(ec.stderr).toMatch(/Signing using ECDSA-SHA256\.\.\. ok/);
    expect(ec.stderr).toMatch(/Verifying against public key in the token\.\.\. ok/);
    const rsa = await ok('p11tool', ['--login', '--test-sign', `${TOKEN};object=grsa;type=private`]);
    expect(rsa.stderr).toMatch(/Signing using RSA-SHA256\.\.\. ok/);
    expect(rsa.stderr).toMatch(/Verifying against public key in the token\.\.\. ok/);
    const pss = await ok('p11tool', ['--login', '--test-sign', '--sign-params', 'rsa-pss', `${TOKEN};object=grsa;type=private`]);
    expect(pss.stderr).toMatch(/Signing using RSA-PSS-SHA256\.\.\. ok/);
    expect(pss.stderr).toMatch(/Verifying against public key in the token\.\.\. ok/);
  });

  it('--test-sign without the PIN fails (private key not found)', async () => {
    const r = await runCli('p11tool', ['--provider', d.modulePath, '--test-sign', `${TOKEN};object=gec;type=private`], { env: d.env, timeoutMs: 30_000 });
    expect(r.code, describeRun(r)).not.toBe(0);
    expect(r.stderr).not.toMatch(/Signing using .*\.\.\. ok/);
  });

  it('certtool self-signs with the HSM key; p11tool writes the certificate to the token and exports it unchanged', async () => {
    writeFileSync(f('tmpl'), 'cn = "craton gnutls interop"\nserial = 7\nexpiration_days = 30\nsigning_key\nca\ncert_signing_key\n');
    await ok('certtool', [
      '--generate-self-signed',
      '--load-privkey', `${TOKEN};object=gec;type=private`,
      '--load-pubkey', `${TOKEN};object=gec;type=public`,
      '--template', f('tmpl'),
      '--outfile', f('cert.pem'),
    ]);
    const v = await runCli('openssl', ['verify', '-CAfile', f('cert.pem'), f('cert.pem')]);
    expect(v.code, describeRun(v)).toBe(0);
    // The certificate carries the HSM public key.
    const certKey = (await runCli('openssl', ['x509', '-in', f('cert.pem'), '-noout', '-pubkey'])).stdout;
    expect(createPublicKey(certKey).export({ format: 'jwk' })).toEqual(createPublicKey(readFileSync(f('gec.pub.pem'), 'utf8')).export({ format: 'jwk' }));

    await ok('p11tool', ['--login', '--write', '--load-certificate', f('cert.pem'), '--label', 'gcert', TOKEN]);
    const certs = await ok('p11tool', ['--list-all-certs', TOKEN]);
    expect(certs.stdout).toMatch(/Type: X\.509 Certificate \(EC\/ECDSA-SECP256R1\)/);
    expect(certs.stdout).toMatch(/Label: gcert/);
    const exp = await ok('p11tool', ['--export', `${TOKEN};object=gcert;type=cert`]);
    const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(der(exp.stdout).equals(der(readFileSync(f('cert.pem'), 'utf8')))).toBe(true);
  });

  it('--delete removes the certificate', async () => {
    await ok('p11tool', ['--login', '--batch', '--delete', `${TOKEN};object=gcert;type=cert`]);
    const certs = await gnutls('p11tool', ['--list-all-certs', TOKEN]);
    expect(certs.stderr).toContain('No matching objects found');
    expect(certs.stdout).not.toContain('gcert');
    // The key pair the certificate belonged to is still there.
    const keys = await ok('p11tool', ['--login', '--list-privkeys', TOKEN]);
    expect(keys.stdout).toMatch(/Label: gec/);
  });
});
