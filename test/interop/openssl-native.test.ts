// Plain OpenSSL (the CLI, no engine or provider) and the HSM interchange: signatures made
// in the HSM (through the real module, pkcs11js) verify with `openssl` and the exported
// public key (RSA-PSS, ECDSA, Ed25519); RSA-OAEP (SHA-256, a label) encrypted by
// `openssl pkeyutl` decrypts in the HSM and the reverse; AES-KW/KWP (RFC 3394/5649)
// keys wrapped by the HSM unwrap with `openssl enc -id-aes256-wrap[-pad]` and the reverse.
// All under the default strict profile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKK, CKM, CKO, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, loadModule, pkcs11js, runCli, type LoadedModule, type PKCS11, initTokenAndLogin } from '../helpers/module.js';
import { SO_PIN, USER_PIN } from '../helpers/p11tool.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ED25519 = Buffer.from('06032b6570', 'hex');
const MGF1_SHA256 = 2;
const CKZ_DATA_SPECIFIED = 1;
const LABEL = Buffer.from('craton-oaep-label');
const MSG = Buffer.from('message signed inside Craton HSM\n');

let d: Daemon;
let mod: LoadedModule;
let p11: PKCS11;
let s: Buffer;
let work: string;
const f = (name: string) => path.join(work, name);
const openssl = (args: string[]) => runCli('openssl', args, { timeoutMs: 30_000 });
async function ossl(args: string[]) {
  const r = await openssl(args);
  expect(r.code, `openssl ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}
const attr = (h: Buffer, type: number): Buffer => p11.C_GetAttributeValue(s, h, [{ type }])[0]!.value as Buffer;
const pem = (name: string, jwk: object): string => {
  writeFileSync(f(name), createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
  return f(name);
};
const b64u = (b: Buffer) => b.toString('base64url');
const session = [{ type: CKA.TOKEN, value: false }];

beforeAll(async () => {
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-ossl-native-'));
  writeFileSync(f('data'), MSG);
  mod = loadModule(d.socketPath);
  p11 = mod.p11;
  ({ session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'native' }));
});
afterAll(async () => {
  mod?.close();
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function sign(mechanism: object, key: Buffer, data: Buffer, max = 512): Buffer {
  p11.C_SignInit(s, mechanism as never, key);
  return p11.C_Sign(s, data, Buffer.alloc(max));
}

describe.sequential('plain OpenSSL ↔ Craton HSM', () => {
  let rsa: { publicKey: Buffer; privateKey: Buffer };
  let rsaPem: string;

  it('RSA-PSS (SHA-256, salt 32) signed in the HSM verifies with openssl', async () => {
    rsa = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN },
      [...session, { type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: CKA.VERIFY, value: true }, { type: CKA.ENCRYPT, value: true }],
      [...session, { type: CKA.SIGN, value: true }, { type: CKA.DECRYPT, value: true }],
    );
    rsaPem = pem('rsa.pem', { kty: 'RSA', n: b64u(attr(rsa.publicKey, CKA.MODULUS)), e: b64u(attr(rsa.publicKey, CKA.PUBLIC_EXPONENT)) });
    const sig = sign({ mechanism: CKM.SHA256_RSA_PKCS_PSS, parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: CKM.SHA256, mgf: MGF1_SHA256, saltLen: 32 } }, rsa.privateKey, MSG);
    writeFileSync(f('sig.pss'), sig);
    const ok = await ossl(['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-verify', rsaPem, '-signature', f('sig.pss'), f('data')]);
    expect(ok.stdout).toContain('Verified OK');
    writeFileSync(f('other'), 'another message\n');
    const bad = await openssl(['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-verify', rsaPem, '-signature', f('sig.pss'), f('other')]);
    expect(bad.code).not.toBe(0);
  });

  it('ECDSA P-256 with SHA-256 signed in the HSM verifies with openssl (r||s → DER)', async () => {
    const ec = p11.C_GenerateKeyPair(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, [...session, { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }], [...session, { type: CKA.SIGN, value: true }]);
    const pt = attr(ec.publicKey, CKA.EC_POINT).subarray(2); // DER OCTET STRING → 04||x||y
    const ecPem = pem('ec.pem', { kty: 'EC', crv: 'P-256', x: b64u(pt.subarray(1, 33)), y: b64u(pt.subarray(33)) });
    const raw = sign({ mechanism: CKM.ECDSA_SHA256 }, ec.privateKey, MSG, 64);
    expect(raw).toHaveLength(64);
    const int = (b: Buffer) => {
      let v = b;
      while (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) v = v.subarray(1);
      if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
      return Buffer.concat([Buffer.from([0x02, v.length]), v]);
    };
    const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
    writeFileSync(f('sig.ec'), Buffer.concat([Buffer.from([0x30, body.length]), body]));
    const ok = await ossl(['dgst', '-sha256', '-verify', ecPem, '-signature', f('sig.ec'), f('data')]);
    expect(ok.stdout).toContain('Verified OK');
  });

  it('Ed25519 signed in the HSM verifies with openssl pkeyutl -rawin', async () => {
    const ed = p11.C_GenerateKeyPair(s, { mechanism: CKM.EC_EDWARDS_KEY_PAIR_GEN }, [...session, { type: CKA.EC_PARAMS, value: ED25519 }, { type: CKA.VERIFY, value: true }], [...session, { type: CKA.SIGN, value: true }]);
    const pt = attr(ed.publicKey, CKA.EC_POINT);
    expect(pt).toHaveLength(32); // PKCS#11 3.0: raw RFC 8032 public key
    const edPem = pem('ed.pem', { kty: 'OKP', crv: 'Ed25519', x: b64u(pt) });
    writeFileSync(f('sig.ed'), sign({ mechanism: CKM.EDDSA }, ed.privateKey, MSG, 64));
    const ok = await ossl(['pkeyutl', '-verify', '-pubin', '-inkey', edPem, '-rawin', '-in', f('data'), '-sigfile', f('sig.ed')]);
    expect(ok.stdout).toContain('Signature Verified Successfully');
  });

  const oaep = { mechanism: CKM.RSA_PKCS_OAEP, parameter: { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: CKM.SHA256, mgf: MGF1_SHA256, source: CKZ_DATA_SPECIFIED, sourceData: LABEL } };
  const oaepOpts = ['-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256', '-pkeyopt', `rsa_oaep_label:${LABEL.toString('hex')}`];

  it('OAEP (SHA-256, label): openssl encrypts to the HSM key, the HSM decrypts', async () => {
    const secret = randomBytes(32);
    writeFileSync(f('oaep.in'), secret);
    await ossl(['pkeyutl', '-encrypt', '-pubin', '-inkey', rsaPem, ...oaepOpts, '-in', f('oaep.in'), '-out', f('oaep.enc')]);
    p11.C_DecryptInit(s, oaep as never, rsa.privateKey);
    expect(p11.C_Decrypt(s, readFileSync(f('oaep.enc')), Buffer.alloc(256)).equals(secret)).toBe(true);
  });

  it('OAEP (SHA-256, label): the HSM encrypts to an openssl key, openssl decrypts', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(f('ext.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = p11.C_CreateObject(s, [
      ...session,
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY },
      { type: CKA.KEY_TYPE, value: CKK.RSA },
      { type: CKA.MODULUS, value: Buffer.from(jwk.n!, 'base64url') },
      { type: CKA.PUBLIC_EXPONENT, value: Buffer.from(jwk.e!, 'base64url') },
      { type: CKA.ENCRYPT, value: true },
    ]);
    const secret = randomBytes(48);
    p11.C_EncryptInit(s, oaep as never, pub);
    writeFileSync(f('oaep2.enc'), p11.C_Encrypt(s, secret, Buffer.alloc(256)));
    await ossl(['pkeyutl', '-decrypt', '-inkey', f('ext.key'), ...oaepOpts, '-in', f('oaep2.enc'), '-out', f('oaep2.out')]);
    expect(readFileSync(f('oaep2.out')).equals(secret)).toBe(true);
  });

  for (const [name, mechType, cipher, iv, valueLen] of [
    ['AES-KW (RFC 3394)', CKM.AES_KEY_WRAP, 'id-aes256-wrap', 'a6a6a6a6a6a6a6a6', 32],
    ['AES-KWP (RFC 5649)', CKM.AES_KEY_WRAP_KWP, 'id-aes256-wrap-pad', 'a65959a6', 24],
  ] as const) {
    it(`${name}: HSM-wrapped keys unwrap with openssl enc -${cipher}, openssl-wrapped keys unwrap in the HSM`, async () => {
      const kekValue = randomBytes(32);
      const kek = p11.C_CreateObject(s, [
        ...session,
        { type: CKA.CLASS, value: CKO.SECRET_KEY },
        { type: CKA.KEY_TYPE, value: CKK.AES },
        { type: CKA.VALUE, value: kekValue },
        { type: CKA.WRAP, value: true },
        { type: CKA.UNWRAP, value: true },
      ]);
      const cbc = (k: Buffer, iv16: Buffer, pt: Buffer) => {
        const c = createCipheriv(`aes-${k.length * 8}-cbc`, k, iv16).setAutoPadding(false);
        return Buffer.concat([c.update(pt), c.final()]);
      };
      const hsmCbc = (h: Buffer, iv16: Buffer, pt: Buffer) => {
        p11.C_EncryptInit(s, { mechanism: CKM.AES_CBC, parameter: iv16 }, h);
        return p11.C_Encrypt(s, pt, Buffer.alloc(pt.length + 16));
      };
      const iv16 = randomBytes(16);
      const pt = randomBytes(64);

      // HSM → openssl
      const inner = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
        ...session,
        { type: CKA.VALUE_LEN, value: valueLen },
        { type: CKA.EXTRACTABLE, value: true },
        { type: CKA.ENCRYPT, value: true },
      ] as never);
      const wrapped = p11.C_WrapKey(s, { mechanism: mechType }, kek, inner, Buffer.alloc(64));
      writeFileSync(f('wrapped'), wrapped);
      await ossl(['enc', '-d', `-${cipher}`, '-K', kekValue.toString('hex'), '-iv', iv, '-in', f('wrapped'), '-out', f('unwrapped')]);
      const outside = readFileSync(f('unwrapped'));
      expect(outside).toHaveLength(valueLen);
      expect(hsmCbc(inner, iv16, pt).equals(cbc(outside, iv16, pt))).toBe(true);

      // openssl → HSM
      const extKey = randomBytes(valueLen);
      writeFileSync(f('ext.raw'), extKey);
      await ossl(['enc', `-${cipher}`, '-K', kekValue.toString('hex'), '-iv', iv, '-in', f('ext.raw'), '-out', f('ext.wrapped')]);
      const unwrapped = p11.C_UnwrapKey(s, { mechanism: mechType }, kek, readFileSync(f('ext.wrapped')), [
        ...session,
        { type: CKA.CLASS, value: CKO.SECRET_KEY },
        { type: CKA.KEY_TYPE, value: CKK.AES },
        { type: CKA.ENCRYPT, value: true },
      ]);
      expect(hsmCbc(unwrapped, iv16, pt).equals(cbc(extKey, iv16, pt))).toBe(true);
      expect(createHash('sha256').update(extKey).digest()).not.toEqual(createHash('sha256').update(outside).digest());
    });
  }
});
