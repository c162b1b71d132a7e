// `craton-hsm-admin key import` against a real daemon: every file format the command reads
// round-trips (what the imported key signs or encrypts through the real module, pkcs11js →
// libcraton_hsm.so → craton-hsmd, plain `openssl` verifies or reproduces), the policy refuses
// weak keys (strict) or flags them (warn), and C_CreateObject / C_UnwrapKey of the same keys
// give the same objects and the same refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createHash, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKG, CKK, CKM, CKO, CKR, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { planImport, type PlannedObject } from '../../admin-cli/src/keys/import.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { p11ok } from '../helpers/p11tool.js';
import { describeRun, initTokenAndLogin, loadModule, pkcs11js, rvOf, runCli, type CliResult, type LoadedModule, type PKCS11 } from '../helpers/module.js';

const ADMIN_BIN = process.env.CRATON_TEST_ADMIN_BIN ?? path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SO_PIN = '12345678';
const USER_PIN = '1234';
const PASSPHRASE = 'correct horse battery';
const DATA = Buffer.from('signed by an imported key, checked by plain openssl\n');
const TOML = '[security]\nfailed_login_delay_base_ms = 0\n';

let dir: string;
const f = (name: string) => path.join(dir, name);

async function ossl(args: string[], input?: string): Promise<CliResult> {
  const r = await runCli('openssl', args, { timeoutMs: 60_000, input });
  expect(r.code, `openssl ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

function admin(d: Daemon, args: string[], input?: string): Promise<CliResult> {
  return runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
    env: { ...process.env, CRATON_HSM_CONFIG: '' },
    timeoutMs: 60_000,
    input,
  });
}

/** `key import` with the user PIN from a file; resolves with the JSON result. */
async function importOk(d: Daemon, args: string[], input?: string): Promise<{ imported: Array<Record<string, any>>; warnings: Array<{ object: number; reason: string }> }> {
  const r = await admin(d, ['key', 'import', '--pin-file', f('pin.txt'), '--json', ...args], input);
  expect(r.code, `key import ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return JSON.parse(r.stdout);
}

interface Env {
  d: Daemon;
  mod: LoadedModule;
  p11: PKCS11;
  s: Buffer;
}

function find(e: Env, template: Array<{ type: number; value: unknown }>): Buffer[] {
  e.p11.C_FindObjectsInit(e.s, template as never);
  const found = e.p11.C_FindObjects(e.s, 100);
  e.p11.C_FindObjectsFinal(e.s);
  return found;
}

function one(e: Env, label: string, cls: number): Buffer {
  const h = find(e, [{ type: CKA.LABEL, value: label }, { type: CKA.CLASS, value: cls }]);
  expect(h, `objects labelled ${label} of class ${cls}`).toHaveLength(1);
  return h[0]!;
}

const attr = (e: Env, h: Buffer, type: number): Buffer => e.p11.C_GetAttributeValue(e.s, h, [{ type }])[0]!.value as Buffer;
const flag = (e: Env, h: Buffer, type: number): boolean => attr(e, h, type)[0] === 1;
const ulong = (e: Env, h: Buffer, type: number): number => Number(attr(e, h, type).readBigUInt64LE(0));

function sign(e: Env, mech: unknown, key: Buffer, data: Buffer = DATA): Buffer {
  e.p11.C_SignInit(e.s, mech as never, key);
  return e.p11.C_Sign(e.s, data, Buffer.alloc(1024));
}

/** PKCS#11 ECDSA signatures are r || s; openssl wants DER. */
function ecdsaDer(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    const body = v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const half = raw.length / 2;
  const seq = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  return Buffer.concat([seq.length < 128 ? Buffer.from([0x30, seq.length]) : Buffer.from([0x30, 0x81, seq.length]), seq]);
}

/** openssl verifies `sig` over DATA with the public key in `pubPem`. */
async function opensslVerifies(pubPem: string, sig: Buffer, digestArgs: string[]): Promise<void> {
  writeFileSync(f('data.bin'), DATA);
  const sigFile = f(`sig-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(sigFile, sig);
  const r = await ossl(['dgst', ...digestArgs, '-verify', pubPem, '-signature', sigFile, f('data.bin')]);
  expect(r.stdout).toContain('Verified OK');
}

/** The byte ranges openssl itself reports for the TBSCertificate fields. */
async function certFieldsByOpenssl(pem: string): Promise<{ serial: Buffer; issuer: Buffer; subject: Buffer; der: Buffer }> {
  await ossl(['x509', '-in', pem, '-outform', 'DER', '-out', `${pem}.der`]);
  const der = readFileSync(`${pem}.der`);
  const r = await ossl(['asn1parse', '-inform', 'DER', '-in', `${pem}.der`]);
  const d2 = r.stdout
    .split('\n')
    .map((l) => /^\s*(\d+):d=2\s+hl=\s*(\d+)\s+l=\s*(\d+)\s+(prim|cons):\s*(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ off: Number(m[1]), len: Number(m[2]) + Number(m[3]), what: m[5]!.trim() }));
  const fields = d2[0]!.what.startsWith('cont [ 0 ]') ? d2.slice(1) : d2; // version
  const slice = (i: number) => der.subarray(fields[i]!.off, fields[i]!.off + fields[i]!.len);
  return { serial: slice(0), issuer: slice(2), subject: slice(4), der };
}

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

async function setUp(extraToml: string): Promise<Env> {
  const d = await startDaemon({ extraToml: TOML + extraToml });
  const mod = loadModule(d.socketPath);
  const { session } = initTokenAndLogin(mod.p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'import' });
  return { d, mod, p11: mod.p11, s: session };
}

let e: Env;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'craton-key-import-'));
  writeFileSync(f('pin.txt'), `${USER_PIN}\n`, { mode: 0o600 });
  writeFileSync(f('pass.txt'), `${PASSPHRASE}\n`, { mode: 0o600 });
  chmodSync(f('pin.txt'), 0o600);
  e = await setUp('');
}, 60_000);
let closedStrict = false;
afterAll(async () => {
  if (!closedStrict) e?.mod.close();
  await e?.d.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('key import: each format round-trips through the module and openssl', () => {
  it('RSA PKCS#1 PEM: private + public objects, imported-key flags, CKA_ID = SHA-1(modulus), SHA256-RSA-PKCS verifies in openssl', async () => {
    await ossl(['genrsa', '-traditional', '-out', f('rsa1.pem'), '2048']);
    expect(readFileSync(f('rsa1.pem'), 'utf8')).toContain('BEGIN RSA PRIVATE KEY');
    await ossl(['rsa', '-in', f('rsa1.pem'), '-pubout', '-out', f('rsa1.pub.pem')]);
    const r = await importOk(e.d, ['--file', f('rsa1.pem'), '--label', 'rsa1']);
    expect(r.imported.map((o) => o.class)).toEqual(['CKO_PRIVATE_KEY', 'CKO_PUBLIC_KEY']);
    expect(r.imported[0]).toMatchObject({ key_type: 'CKK_RSA', bits: 2048, label: 'rsa1', sensitive: true, extractable: false, private: true });

    const priv = one(e, 'rsa1', CKO.PRIVATE_KEY);
    const pub = one(e, 'rsa1', CKO.PUBLIC_KEY);
    expect(flag(e, priv, CKA.LOCAL)).toBe(false);
    expect(flag(e, priv, CKA.NEVER_EXTRACTABLE)).toBe(false);
    expect(flag(e, priv, CKA.ALWAYS_SENSITIVE)).toBe(false);
    expect(flag(e, priv, CKA.TOKEN)).toBe(true);
    expect(rvOf(() => attr(e, priv, CKA.PRIVATE_EXPONENT))).toBe(CKR.ATTRIBUTE_SENSITIVE);
    const jwk = createPrivateKey(readFileSync(f('rsa1.pem'))).export({ format: 'jwk' });
    const modulus = Buffer.from(jwk.n!, 'base64url');
    expect(attr(e, pub, CKA.MODULUS).equals(modulus)).toBe(true);
    expect(attr(e, priv, CKA.ID).equals(createHash('sha1').update(modulus).digest())).toBe(true);
    expect(attr(e, pub, CKA.ID).equals(attr(e, priv, CKA.ID))).toBe(true);

    await opensslVerifies(f('rsa1.pub.pem'), sign(e, { mechanism: CKM.SHA256_RSA_PKCS }, priv), ['-sha256']);
  });

  it('RSA PKCS#8 DER with --id: RSA-PSS verifies in openssl', async () => {
    await ossl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', f('rsa2.pem')]);
    await ossl(['pkcs8', '-topk8', '-nocrypt', '-in', f('rsa2.pem'), '-outform', 'DER', '-out', f('rsa2.der')]);
    // PrivateKeyInfo { version 0, rsaEncryption, … } (genpkey -outform DER would write PKCS#1 for RSA)
    expect(readFileSync(f('rsa2.der')).subarray(4, 22).toString('hex')).toBe('020100300d06092a864886f70d0101010500');
    await ossl(['pkey', '-in', f('rsa2.pem'), '-pubout', '-out', f('rsa2.pub.pem')]);
    const r = await importOk(e.d, ['--file', f('rsa2.der'), '--label', 'rsa2', '--id', 'c0ffee01', '--format', 'pkcs8']);
    expect(r.imported[0]).toMatchObject({ bits: 3072, id: 'c0ffee01' });
    const priv = one(e, 'rsa2', CKO.PRIVATE_KEY);
    const pss = { mechanism: CKM.SHA256_RSA_PKCS_PSS, parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLen: 32 } };
    await opensslVerifies(f('rsa2.pub.pem'), sign(e, pss, priv), ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32']);
  });

  it('encrypted PKCS#8 (PBES2 AES-256-CBC, P-384): passphrase from a file, then from stdin; ECDSA-SHA384 verifies in openssl', async () => {
    await ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', f('p384.pem')]);
    await ossl(['pkcs8', '-topk8', '-in', f('p384.pem'), '-v2', 'aes-256-cbc', '-passout', `file:${f('pass.txt')}`, '-out', f('p384.enc.pem')]);
    expect(readFileSync(f('p384.enc.pem'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    await ossl(['pkey', '-in', f('p384.pem'), '-pubout', '-out', f('p384.pub.pem')]);
    const r = await importOk(e.d, ['--file', f('p384.enc.pem'), '--label', 'p384', '--passphrase-file', f('pass.txt')]);
    expect(r.imported[0]).toMatchObject({ key_type: 'CKK_EC', curve: 'P-384' });
    const priv = one(e, 'p384', CKO.PRIVATE_KEY);
    await opensslVerifies(f('p384.pub.pem'), ecdsaDer(sign(e, { mechanism: CKM.ECDSA_SHA384 }, priv)), ['-sha384']);

    // The same file with the passphrase on stdin (and the PIN from its file).
    await importOk(e.d, ['--file', f('p384.enc.pem'), '--label', 'p384-stdin', '--passphrase-stdin'], `${PASSPHRASE}\n`);
    const again = one(e, 'p384-stdin', CKO.PRIVATE_KEY);
    expect(attr(e, again, CKA.ID).equals(attr(e, priv, CKA.ID))).toBe(true);
  });

  it('EC SEC1 PEM (with its EC PARAMETERS block): raw ECDSA over a SHA-256 digest verifies in openssl', async () => {
    await ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-out', f('ec1.pem')]);
    const pem = readFileSync(f('ec1.pem'), 'utf8');
    expect(pem).toContain('BEGIN EC PARAMETERS');
    expect(pem).toContain('BEGIN EC PRIVATE KEY');
    await ossl(['ec', '-in', f('ec1.pem'), '-pubout', '-out', f('ec1.pub.pem')]);
    await importOk(e.d, ['--file', f('ec1.pem'), '--label', 'ec1', '--type', 'ec']);
    const priv = one(e, 'ec1', CKO.PRIVATE_KEY);
    const pub = one(e, 'ec1', CKO.PUBLIC_KEY);
    expect(attr(e, priv, CKA.EC_PARAMS).toString('hex')).toBe('06082a8648ce3d030107');
    // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point; CKA_ID is SHA-1 of the point.
    const point = attr(e, pub, CKA.EC_POINT);
    expect(point.subarray(0, 3).toString('hex')).toBe('044104');
    expect(attr(e, pub, CKA.ID).equals(createHash('sha1').update(point.subarray(2)).digest())).toBe(true);
    const digest = createHash('sha256').update(DATA).digest();
    await opensslVerifies(f('ec1.pub.pem'), ecdsaDer(sign(e, { mechanism: CKM.ECDSA }, priv, digest)), ['-sha256']);
  });

  it('EC PKCS#8 PEM: ECDSA-SHA256 verifies in openssl', async () => {
    await ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('ec2.pem')]);
    await ossl(['pkey', '-in', f('ec2.pem'), '-pubout', '-out', f('ec2.pub.pem')]);
    await importOk(e.d, ['--file', f('ec2.pem'), '--label', 'ec2', '--format', 'pem']);
    await opensslVerifies(f('ec2.pub.pem'), ecdsaDer(sign(e, { mechanism: CKM.ECDSA_SHA256 }, one(e, 'ec2', CKO.PRIVATE_KEY))), ['-sha256']);
  });

  it('Ed25519 PKCS#8: the daemon’s Ed25519 form (CKK_EC_EDWARDS, RFC 8410 OID, raw point); EdDSA verifies in openssl', async () => {
    await ossl(['genpkey', '-algorithm', 'ed25519', '-out', f('ed.pem')]);
    await ossl(['pkey', '-in', f('ed.pem'), '-pubout', '-out', f('ed.pub.pem')]);
    await importOk(e.d, ['--file', f('ed.pem'), '--label', 'ed', '--type', 'ed25519']);
    const priv = one(e, 'ed', CKO.PRIVATE_KEY);
    const pub = one(e, 'ed', CKO.PUBLIC_KEY);
    expect(ulong(e, priv, CKA.KEY_TYPE)).toBe(CKK.EC_EDWARDS);
    expect(attr(e, pub, CKA.EC_PARAMS).toString('hex')).toBe('06032b6570');
    const x = createPrivateKey(readFileSync(f('ed.pem'))).export({ format: 'jwk' }).x!;
    expect(attr(e, pub, CKA.EC_POINT).toString('base64url')).toBe(x);
    // The daemon's own Ed25519 keys look the same.
    const gen = e.p11.C_GenerateKeyPair(e.s, { mechanism: CKM.EC_EDWARDS_KEY_PAIR_GEN }, [{ type: CKA.EC_PARAMS, value: Buffer.from('06032b6570', 'hex') }, { type: CKA.TOKEN, value: false }], [{ type: CKA.TOKEN, value: false }]);
    expect(ulong(e, gen.publicKey, CKA.KEY_TYPE)).toBe(CKK.EC_EDWARDS);
    expect(attr(e, gen.publicKey, CKA.EC_POINT)).toHaveLength(32);

    const sig = sign(e, { mechanism: CKM.EDDSA }, priv);
    writeFileSync(f('data.bin'), DATA);
    writeFileSync(f('ed.sig'), sig);
    const r = await ossl(['pkeyutl', '-verify', '-pubin', '-inkey', f('ed.pub.pem'), '-rawin', '-in', f('data.bin'), '-sigfile', f('ed.sig')]);
    expect(r.stdout).toContain('Signature Verified Successfully');
  });

  it('public key (SPKI PEM) alone: verifies through the module what openssl signed', async () => {
    await ossl(['genrsa', '-out', f('ext.pem'), '2048']);
    await ossl(['rsa', '-in', f('ext.pem'), '-pubout', '-out', f('ext.pub.pem')]);
    writeFileSync(f('data.bin'), DATA);
    await ossl(['dgst', '-sha256', '-sign', f('ext.pem'), '-out', f('ext.sig'), f('data.bin')]);
    const r = await importOk(e.d, ['--file', f('ext.pub.pem'), '--label', 'extpub']);
    expect(r.imported.map((o) => o.class)).toEqual(['CKO_PUBLIC_KEY']);
    const human = await admin(e.d, ['key', 'import', '--pin-file', f('pin.txt'), '--file', f('ext.pub.pem'), '--label', 'extpub-again']);
    expect(human.code, describeRun(human)).toBe(0);
    expect(human.stdout).toMatch(/^imported 1 object\(s\) into slot 0:\n  [0-9a-f]{32}  PUBLIC_KEY RSA 2048 bits  label "extpub-again"  id [0-9a-f]{40}\n$/);
    const pub = one(e, 'extpub', CKO.PUBLIC_KEY);
    expect(find(e, [{ type: CKA.LABEL, value: 'extpub' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toHaveLength(0);
    e.p11.C_VerifyInit(e.s, { mechanism: CKM.SHA256_RSA_PKCS }, pub);
    expect(e.p11.C_Verify(e.s, DATA, readFileSync(f('ext.sig')))).toBe(true);
  });

  it('X.509 certificate: CKO_CERTIFICATE whose SUBJECT, ISSUER, SERIAL_NUMBER and VALUE are the DER openssl locates in it', async () => {
    await ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('c.key'), '-out', f('c.pem'), '-subj', '/CN=Craton Import Test/O=Example Org', '-days', '3', '-set_serial', '0x00c0ffee0123456789']);
    const r = await importOk(e.d, ['--file', f('c.pem'), '--label', 'cert1']);
    expect(r.imported.map((o) => o.class)).toEqual(['CKO_CERTIFICATE']);
    const h = one(e, 'cert1', CKO.CERTIFICATE);
    const want = await certFieldsByOpenssl(f('c.pem'));
    expect(ulong(e, h, CKA.CERTIFICATE_TYPE)).toBe(0); // CKC_X_509
    expect(attr(e, h, CKA.VALUE).equals(want.der)).toBe(true);
    expect(attr(e, h, CKA.SUBJECT).toString('hex')).toBe(want.subject.toString('hex'));
    expect(attr(e, h, CKA.ISSUER).toString('hex')).toBe(want.issuer.toString('hex'));
    expect(attr(e, h, CKA.SERIAL_NUMBER).toString('hex')).toBe(want.serial.toString('hex'));
    expect(want.serial.toString('hex')).toBe('020900c0ffee0123456789');
    // CKA_ID is that of the certified key, so importing the key later pairs them.
    const modulus = Buffer.from(createPrivateKey(readFileSync(f('c.key'))).export({ format: 'jwk' }).n!, 'base64url');
    expect(attr(e, h, CKA.ID).equals(createHash('sha1').update(modulus).digest())).toBe(true);
  });

  /** CA (EC P-256) → leaf (RSA or EC), bundled with the CA certificate. */
  async function chain(tag: string, leafAlg: string[], exportArgs: string[]): Promise<void> {
    await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${tag}-ca.key`), '-out', f(`${tag}-ca.pem`), '-subj', `/CN=${tag} Test CA`, '-days', '3', '-addext', 'basicConstraints=critical,CA:TRUE']);
    await ossl(['req', '-newkey', ...leafAlg, '-nodes', '-keyout', f(`${tag}-leaf.key`), '-out', f(`${tag}-leaf.csr`), '-subj', `/CN=${tag} leaf`]);
    await ossl(['x509', '-req', '-in', f(`${tag}-leaf.csr`), '-CA', f(`${tag}-ca.pem`), '-CAkey', f(`${tag}-ca.key`), '-set_serial', '7', '-out', f(`${tag}-leaf.pem`), '-days', '2']);
    await ossl(['pkcs12', '-export', ...exportArgs, '-inkey', f(`${tag}-leaf.key`), '-in', f(`${tag}-leaf.pem`), '-certfile', f(`${tag}-ca.pem`), '-out', f(`${tag}.p12`), '-passout', `file:${f('pass.txt')}`]);
    await ossl(['x509', '-in', f(`${tag}-leaf.pem`), '-pubkey', '-noout', '-out', f(`${tag}-leaf.pub.pem`)]);
  }

  async function checkChain(tag: string, label: string): Promise<Buffer> {
    const priv = one(e, label, CKO.PRIVATE_KEY);
    const pub = one(e, label, CKO.PUBLIC_KEY);
    const leaf = one(e, label, CKO.CERTIFICATE);
    const ca = one(e, `${label}-ca1`, CKO.CERTIFICATE);
    const id = attr(e, priv, CKA.ID);
    expect(id.length).toBe(20);
    expect(attr(e, pub, CKA.ID).equals(id)).toBe(true);
    expect(attr(e, leaf, CKA.ID).equals(id)).toBe(true);
    expect(attr(e, ca, CKA.ID).equals(id)).toBe(false);
    expect(attr(e, leaf, CKA.VALUE).equals((await certFieldsByOpenssl(f(`${tag}-leaf.pem`))).der)).toBe(true);
    const caFields = await certFieldsByOpenssl(f(`${tag}-ca.pem`));
    expect(attr(e, ca, CKA.VALUE).equals(caFields.der)).toBe(true);
    expect(attr(e, ca, CKA.SUBJECT).equals(caFields.subject)).toBe(true);
    expect(attr(e, leaf, CKA.ISSUER).equals(caFields.subject)).toBe(true);
    expect(ulong(e, ca, CKA.CERTIFICATE_CATEGORY)).toBe(2); // authority
    expect(ulong(e, leaf, CKA.CERTIFICATE_CATEGORY)).toBe(1); // token user
    expect(attr(e, priv, CKA.SUBJECT).equals(attr(e, leaf, CKA.SUBJECT))).toBe(true);
    return priv;
  }

  it('PKCS#12 (OpenSSL 3 default: PBES2/AES-256, PBKDF2, SHA-256 MAC) with a chain: key, public key and leaf share CKA_ID; CA stored; RSA signature verifies', async () => {
    await chain('p12', ['rsa:2048'], []);
    const r = await importOk(e.d, ['--file', f('p12.p12'), '--label', 'p12', '--passphrase-file', f('pass.txt')]);
    expect(r.imported.map((o) => o.class)).toEqual(['CKO_PRIVATE_KEY', 'CKO_PUBLIC_KEY', 'CKO_CERTIFICATE', 'CKO_CERTIFICATE']);
    const priv = await checkChain('p12', 'p12');
    await opensslVerifies(f('p12-leaf.pub.pem'), sign(e, { mechanism: CKM.SHA256_RSA_PKCS }, priv), ['-sha256']);

    // Another application finds the pair and its certificate by the shared id, and signs with it.
    const id = r.imported[0]!.id as string;
    const list = await p11ok(e.d, ['--list-objects', '--login', '--pin', USER_PIN, '--id', id]);
    for (const kind of ['Private Key Object', 'Public Key Object', 'Certificate Object']) expect(list.stdout).toContain(kind);
    writeFileSync(f('data.bin'), DATA);
    await p11ok(e.d, ['--sign', '--login', '--pin', USER_PIN, '--id', id, '-m', 'SHA256-RSA-PKCS', '--input-file', f('data.bin'), '--output-file', f('p11tool.sig')]);
    await opensslVerifies(f('p12-leaf.pub.pem'), readFileSync(f('p11tool.sig')), ['-sha256']);
  });

  it('legacy PKCS#12 (openssl pkcs12 -export -legacy: RC2/3DES, SHA-1 MAC) with an EC leaf imports the same way', async () => {
    // The installed OpenSSL 3 ships the legacy provider (ossl-modules/legacy.so), which
    // -legacy loads; `chain` fails loudly if that ever stops being true.
    await chain('legacy', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-legacy']);
    const r = await importOk(e.d, ['--file', f('legacy.p12'), '--label', 'legacy', '--format', 'pkcs12', '--passphrase-file', f('pass.txt')]);
    expect(r.imported[0]).toMatchObject({ class: 'CKO_PRIVATE_KEY', key_type: 'CKK_EC', curve: 'P-256' });
    const priv = await checkChain('legacy', 'legacy');
    await opensslVerifies(f('legacy-leaf.pub.pem'), ecdsaDer(sign(e, { mechanism: CKM.ECDSA_SHA256 }, priv)), ['-sha256']);
  });

  it('AES raw: encryption through the module equals `openssl enc` with the same key', async () => {
    await ossl(['rand', '-out', f('aes.bin'), '32']);
    const r = await importOk(e.d, ['--file', f('aes.bin'), '--label', 'aes', '--type', 'aes']);
    expect(r.imported[0]).toMatchObject({ class: 'CKO_SECRET_KEY', key_type: 'CKK_AES', bits: 256, id: '' });
    const k = one(e, 'aes', CKO.SECRET_KEY);
    expect(flag(e, k, CKA.LOCAL)).toBe(false);
    const iv = randomBytes(16);
    writeFileSync(f('data.bin'), DATA);
    await ossl(['enc', '-aes-256-cbc', '-K', readFileSync(f('aes.bin')).toString('hex'), '-iv', iv.toString('hex'), '-in', f('data.bin'), '-out', f('aes.enc')]);
    e.p11.C_EncryptInit(e.s, { mechanism: CKM.AES_CBC_PAD, parameter: iv }, k);
    expect(e.p11.C_Encrypt(e.s, DATA, Buffer.alloc(256)).equals(readFileSync(f('aes.enc')))).toBe(true);
  });

  it('generic secret: HMAC-SHA256 through the module equals `openssl dgst -hmac`', async () => {
    await ossl(['rand', '-out', f('hmac.bin'), '32']);
    await importOk(e.d, ['--file', f('hmac.bin'), '--label', 'hmac', '--type', 'generic']);
    const k = one(e, 'hmac', CKO.SECRET_KEY);
    expect(ulong(e, k, CKA.KEY_TYPE)).toBe(CKK.GENERIC_SECRET);
    writeFileSync(f('data.bin'), DATA);
    await ossl(['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${readFileSync(f('hmac.bin')).toString('hex')}`, '-binary', '-out', f('hmac.out'), f('data.bin')]);
    expect(sign(e, { mechanism: CKM.SHA256_HMAC }, k).equals(readFileSync(f('hmac.out')))).toBe(true);
  });

  it('the audit entry names the objects (class, key type, size, label, id) and holds no key material', async () => {
    const r = await admin(e.d, ['audit', 'dump', '--last', '100000', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const entries = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const imports = entries.filter((x) => x.operation === 'AdminKeyImport');
    const rsa1 = imports.find((x) => x.details?.objects?.[0]?.label === 'rsa1');
    expect(rsa1?.details.objects[0]).toMatchObject({ class: 'CKO_PRIVATE_KEY', key_type: 'CKK_RSA', bits: 2048, label: 'rsa1' });
    expect(rsa1?.result).toEqual({ Success: null });
    const d = createPrivateKey(readFileSync(f('rsa1.pem'))).export({ format: 'jwk' });
    const text = imports.map((x) => JSON.stringify(x)).join('\n');
    for (const secret of [d.d!, Buffer.from(d.d!, 'base64url').toString('base64'), Buffer.from(d.p!, 'base64url').toString('base64'), readFileSync(f('aes.bin')).toString('base64')]) {
      expect(text).not.toContain(secret.slice(0, 40));
    }
  });
});

describe('key import: refusals', () => {
  async function refused(args: string[], code: number, message: RegExp, input?: string): Promise<void> {
    const r = await admin(e.d, ['key', 'import', '--pin-file', f('pin.txt'), ...args], input);
    expect(r.code, describeRun(r)).toBe(code);
    expect(r.stderr).toMatch(message);
  }

  it('RSA-1024 and P-192 in strict mode, with the policy’s reason; nothing is left behind', async () => {
    await ossl(['genrsa', '-out', f('rsa1024.pem'), '1024']);
    await refused(['--file', f('rsa1024.pem'), '--label', 'weak-rsa'], 1, /CKR_ATTRIBUTE_VALUE_INVALID.*RSA-1024 is below rsa_min_bits = 2048.*nothing was imported/);
    expect(find(e, [{ type: CKA.LABEL, value: 'weak-rsa' }])).toHaveLength(0);

    await ossl(['ecparam', '-name', 'prime192v1', '-genkey', '-noout', '-out', f('p192.pem')]);
    await refused(['--file', f('p192.pem'), '--label', 'weak-ec'], 1, /CKR_CURVE_NOT_SUPPORTED.*P-192/);
    await ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-224', '-out', f('p224.pem')]);
    await refused(['--file', f('p224.pem'), '--label', 'weak-ec'], 1, /CKR_CURVE_NOT_SUPPORTED.*P-224 is below ec_min_bits = 256/);
    expect(find(e, [{ type: CKA.LABEL, value: 'weak-ec' }])).toHaveLength(0);
  });

  it('a PKCS#12 whose key is refused leaves none of its certificates behind (all or nothing)', async () => {
    await ossl(['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', f('w.key'), '-out', f('w.pem'), '-subj', '/CN=weak', '-days', '2']);
    await ossl(['pkcs12', '-export', '-inkey', f('w.key'), '-in', f('w.pem'), '-out', f('w.p12'), '-passout', `file:${f('pass.txt')}`]);
    await refused(['--file', f('w.p12'), '--label', 'weak-p12', '--passphrase-file', f('pass.txt')], 1, /RSA-1024/);
    expect(find(e, [{ type: CKA.LABEL, value: 'weak-p12' }])).toHaveLength(0);
  });

  it('wrong passphrase (encrypted PKCS#8 and PKCS#12)', async () => {
    writeFileSync(f('wrong.txt'), 'not it\n', { mode: 0o600 });
    await refused(['--file', f('p384.enc.pem'), '--label', 'x', '--passphrase-file', f('wrong.txt')], 1, /wrong passphrase/);
    await refused(['--file', f('p12.p12'), '--label', 'x', '--passphrase-file', f('wrong.txt')], 1, /wrong passphrase/);
  });

  it('an encrypted file without a passphrase source, and both secrets on stdin', async () => {
    await refused(['--file', f('p384.enc.pem'), '--label', 'x'], 2, /is encrypted: give its passphrase with --passphrase-file FILE or --passphrase-stdin/);
    const r = await admin(e.d, ['key', 'import', '--pin-stdin', '--passphrase-stdin', '--file', f('p384.enc.pem'), '--label', 'x'], `${USER_PIN}\n${PASSPHRASE}\n`);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toMatch(/--pin-stdin and --passphrase-stdin would both read standard input/);
  });

  it('a garbage file', async () => {
    writeFileSync(f('garbage.bin'), randomBytes(300));
    await refused(['--file', f('garbage.bin'), '--label', 'x'], 2, /neither PEM nor DER/);
    writeFileSync(f('garbage.pem'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
    await refused(['--file', f('garbage.pem'), '--label', 'x'], 2, /"PRIVATE KEY" PEM block cannot be parsed/);
  });

  it('--type or --format contradicting the file', async () => {
    await refused(['--file', f('rsa1.pem'), '--label', 'x', '--type', 'ec'], 2, /--type ec contradicts .*rsa1\.pem: it holds an RSA private key/);
    await refused(['--file', f('rsa1.pem'), '--label', 'x', '--type', 'aes'], 2, /--type aes contradicts .*: it is PEM/);
    await refused(['--file', f('c.pem'), '--label', 'x', '--type', 'ed25519'], 2, /--type ed25519 contradicts .*certificate for an RSA key/);
    await refused(['--file', f('rsa2.der'), '--label', 'x', '--format', 'pem'], 2, /--format pem contradicts/);
    await refused(['--file', f('rsa2.der'), '--label', 'x', '--format', 'pkcs12'], 2, /--format pkcs12 contradicts .*not a PKCS#12/);
    await refused(['--file', f('aes.bin'), '--label', 'x', '--type', 'generic', '--format', 'der'], 2, /--format der does not apply/);
    writeFileSync(f('aes-short.bin'), randomBytes(20));
    await refused(['--file', f('aes-short.bin'), '--label', 'x', '--type', 'aes'], 2, /20 bytes is not an AES key/);
  });
});

describe('the same keys through the module: C_CreateObject and C_UnwrapKey', () => {
  const plan = (file: string, label: string, type?: 'rsa' | 'ec') =>
    planImport({ data: readFileSync(f(file)), name: file, label, ...(type ? { type } : {}), passphrase: async () => PASSPHRASE });
  const create = (o: PlannedObject): Buffer => e.p11.C_CreateObject(e.s, [...o.template].map(([type, value]) => ({ type, value })) as never);

  const COMPARED = [
    CKA.CLASS, CKA.KEY_TYPE, CKA.TOKEN, CKA.PRIVATE, CKA.ID, CKA.LOCAL, CKA.KEY_GEN_MECHANISM, CKA.NEVER_EXTRACTABLE, CKA.ALWAYS_SENSITIVE,
    CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.SIGN, CKA.DECRYPT, CKA.UNWRAP, CKA.DERIVE, CKA.MODIFIABLE, CKA.COPYABLE, CKA.DESTROYABLE, CKA.MODULUS, CKA.PUBLIC_EXPONENT,
  ];
  const PUB_COMPARED = [CKA.CLASS, CKA.KEY_TYPE, CKA.ID, CKA.LOCAL, CKA.VERIFY, CKA.ENCRYPT, CKA.WRAP, CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.EC_PARAMS, CKA.EC_POINT];
  const values = (h: Buffer, types: number[]) =>
    Object.fromEntries(types.map((t) => {
      const rv = rvOf(() => attr(e, h, t));
      return [`0x${t.toString(16)}`, rv === CKR.OK ? attr(e, h, t).toString('hex') : rvName(rv)];
    }));

  it('C_CreateObject of the same templates gives objects whose attributes equal the CLI-imported ones', async () => {
    for (const [file, label] of [['rsa1.pem', 'rsa1'], ['ec2.pem', 'ec2'], ['ed.pem', 'ed']] as const) {
      const objs = await plan(file, `${label}-module`);
      // The CLI-imported objects carry the plain label; the template otherwise is the same.
      const [priv, pub] = objs.map(create);
      expect(values(priv!, COMPARED)).toEqual(values(one(e, label, CKO.PRIVATE_KEY), COMPARED));
      expect(values(pub!, PUB_COMPARED)).toEqual(values(one(e, label, CKO.PUBLIC_KEY), PUB_COMPARED));
      expect(flag(e, priv!, CKA.LOCAL)).toBe(false);
      expect(flag(e, priv!, CKA.NEVER_EXTRACTABLE)).toBe(false);
      expect(flag(e, priv!, CKA.ALWAYS_SENSITIVE)).toBe(false);
    }
  });

  it('C_CreateObject of an RSA-1024 private key: CKR_ATTRIBUTE_VALUE_INVALID; of a P-224 or P-192 key: CKR_CURVE_NOT_SUPPORTED', async () => {
    const [rsaPriv, rsaPub] = await plan('rsa1024.pem', 'm-weak');
    expect(rvName(rvOf(() => create(rsaPriv!)))).toBe('CKR_ATTRIBUTE_VALUE_INVALID');
    expect(rvName(rvOf(() => create(rsaPub!)))).toBe('CKR_ATTRIBUTE_VALUE_INVALID');
    for (const file of ['p224.pem', 'p192.pem']) {
      const [ecPriv, ecPub] = await plan(file, 'm-weak');
      expect(rvName(rvOf(() => create(ecPriv!)))).toBe('CKR_CURVE_NOT_SUPPORTED');
      expect(rvName(rvOf(() => create(ecPub!)))).toBe('CKR_CURVE_NOT_SUPPORTED');
    }
    expect(find(e, [{ type: CKA.LABEL, value: 'm-weak' }])).toHaveLength(0);
  });

  it('C_UnwrapKey of a forbidden key size is refused the same way (RSA-1024 PKCS#8, a 64-bit HMAC-SHA256 key); an RSA-2048 key unwraps', () => {
    const kekValue = randomBytes(32);
    const kek = e.p11.C_CreateObject(e.s, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE, value: kekValue }, { type: CKA.UNWRAP, value: true }, { type: CKA.WRAP, value: true },
    ] as never);
    const kwp = (plain: Buffer) => {
      const c = createCipheriv('id-aes256-wrap-pad', kekValue, Buffer.from('a65959a6', 'hex'));
      return Buffer.concat([c.update(plain), c.final()]);
    };
    const unwrap = (wrapped: Buffer, cls: number, keyType: number) =>
      e.p11.C_UnwrapKey(e.s, { mechanism: CKM.AES_KEY_WRAP_KWP }, kek, wrapped, [
        { type: CKA.CLASS, value: cls }, { type: CKA.KEY_TYPE, value: keyType }, { type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true },
      ] as never);

    const weak = createPrivateKey(readFileSync(f('rsa1024.pem'))).export({ format: 'der', type: 'pkcs8' });
    expect(rvName(rvOf(() => unwrap(kwp(weak), CKO.PRIVATE_KEY, CKK.RSA)))).toBe('CKR_ATTRIBUTE_VALUE_INVALID');
    expect(rvName(rvOf(() => unwrap(kwp(randomBytes(8)), CKO.SECRET_KEY, CKK.SHA256_HMAC)))).toBe('CKR_ATTRIBUTE_VALUE_INVALID');
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'der', type: 'pkcs8' });
    const h = unwrap(kwp(good), CKO.PRIVATE_KEY, CKK.RSA);
    expect(flag(e, h, CKA.LOCAL)).toBe(false);
    expect(rvName(rvOf(() => unwrap(kwp(randomBytes(32)), CKO.SECRET_KEY, CKK.SHA256_HMAC)))).toBe('CKR_OK');
  });
});

describe('warn mode: weak keys are imported, flagged and audited', () => {
  let w: Env;
  beforeAll(async () => {
    // One module instance per process: the strict daemon's goes first.
    e.mod.close();
    closedStrict = true;
    w = await setUp('[algorithms]\nenforce = "warn"\n');
  }, 60_000);
  afterAll(async () => {
    w?.mod.close();
    await w?.d.stop();
  });

  it('the CLI imports RSA-1024 with a warning, C_CreateObject admits it, and the audit log records the violation', async () => {
    const r = await admin(w.d, ['key', 'import', '--pin-file', f('pin.txt'), '--file', f('rsa1024.pem'), '--label', 'weak']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toMatch(/policy warning \(warn mode, imported anyway\): RSA-1024 private key: RSA-1024 is below rsa_min_bits = 2048/);
    expect(find(w, [{ type: CKA.LABEL, value: 'weak' }])).toHaveLength(2);

    const [priv] = await planImport({ data: readFileSync(f('p224.pem')), name: 'p224.pem', label: 'weak-module', passphrase: async () => '' });
    const h = w.p11.C_CreateObject(w.s, [...priv!.template].map(([type, value]) => ({ type, value })) as never);
    expect(flag(w, h, CKA.LOCAL)).toBe(false);
    // A curve the token does not know at all is refused in warn mode too.
    const [p192] = await planImport({ data: readFileSync(f('p192.pem')), name: 'p192.pem', label: 'weak-module', passphrase: async () => '' });
    expect(rvName(rvOf(() => w.p11.C_CreateObject(w.s, [...p192!.template].map(([type, value]) => ({ type, value })) as never)))).toBe('CKR_CURVE_NOT_SUPPORTED');

    const dump = await admin(w.d, ['audit', 'dump', '--last', '100000', '--json']);
    const entries = dump.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const imp = entries.find((x) => x.operation === 'AdminKeyImport');
    expect(imp?.details.policy_warnings).toEqual([{ object: 0, reason: 'RSA-1024 is below rsa_min_bits = 2048' }, { object: 1, reason: 'RSA-1024 is below rsa_min_bits = 2048' }]);
    const violations = entries.filter((x) => x.operation === 'PolicyViolation').map((x) => x.details);
    expect(violations).toContainEqual(expect.objectContaining({ operation: 'import', mode: 'warn', refused: false, reason: 'RSA-1024 is below rsa_min_bits = 2048' }));
    expect(violations).toContainEqual(expect.objectContaining({ operation: 'import', reason: 'P-224 is below ec_min_bits = 256' }));
  });
});
