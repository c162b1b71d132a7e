// Our token as a SOURCE of private keys: C_WrapKey of extractable private keys through the
// real module (pkcs11js in this process, and a C application for the length query and
// CKR_BUFFER_TOO_SMALL), unwrapped by a real SoftHSM2 token that then signs for OUR public
// key, and back again from SoftHSM2 into our token. The refusals (non-extractable,
// wrap-with-trusted, wrapping key without CKA_WRAP) and CKM_AES_KEY_WRAP's whole-block rule
// are checked through the module too, RFC 3394 against SoftHSM2's own answer.
//
// `craton-hsm-admin migrate` always targets our module, and two instances of our module in
// one process share one socket, so a Craton → Craton migrate cannot run here; what a
// migration from our token needs (wrap out, unwrap elsewhere) is what this file checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, initTokenAndLogin, loadModule, pkcs11js, runCli, rvOf, type LoadedModule, type PKCS11 } from '../helpers/module.js';
import { softhsmToken, type SoftToken } from '../helpers/softhsm.js';

const ADMIN_BIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SO_PIN = '12345678';
const PIN = '4321';
const SOFT_PIN = '123456';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ED25519 = Buffer.from('06032b6570', 'hex');
const MSG = Buffer.from('signed by a key that moved between tokens');
const KWP = { mechanism: CKM.AES_KEY_WRAP_PAD };

let d: Daemon;
let work: string;
let ours: LoadedModule;
let p11: PKCS11;
let s: Buffer;
let softToken: SoftToken | undefined;
let soft: PKCS11;
let ss: Buffer;
let client: string;
/** The transport key's value, on both tokens; in memory only for the test. */
const KEK = randomBytes(32);

type Tpl = Array<{ type: number; value?: unknown }>;

const aesKey = (p: PKCS11, session: Buffer, use: number, more: Tpl = []): Buffer =>
  p.C_CreateObject(session, [
    { type: CKA.CLASS, value: CKO.SECRET_KEY },
    { type: CKA.KEY_TYPE, value: CKK.AES },
    { type: CKA.TOKEN, value: false },
    { type: CKA.VALUE, value: KEK },
    { type: use, value: true },
    ...more,
  ] as pkcs11js.Template);

interface Pair {
  pub: Buffer;
  priv: Buffer;
}

function ourPair(kind: 'rsa' | 'ec' | 'ed', label: string, priv: Tpl = []): Pair {
  const mech = { rsa: CKM.RSA_PKCS_KEY_PAIR_GEN, ec: CKM.EC_KEY_PAIR_GEN, ed: CKM.EC_EDWARDS_KEY_PAIR_GEN }[kind];
  const pubTpl: Tpl = kind === 'rsa' ? [{ type: CKA.MODULUS_BITS, value: 2048 }] : [{ type: CKA.EC_PARAMS, value: kind === 'ec' ? P256 : ED25519 }];
  const { publicKey, privateKey } = p11.C_GenerateKeyPair(
    s,
    { mechanism: mech },
    [...pubTpl, { type: CKA.TOKEN, value: true }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: label }] as pkcs11js.Template,
    [
      { type: CKA.TOKEN, value: true },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SIGN, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: true },
      { type: CKA.LABEL, value: label },
    ]
      .filter((a) => !priv.some((o) => o.type === a.type))
      .concat(priv as Array<{ type: number; value: boolean }>) as pkcs11js.Template,
  );
  return { pub: publicKey, priv: privateKey };
}

const wrapOurs = (kek: Buffer, key: Buffer, mech = KWP): Buffer => p11.C_WrapKey(s, mech, kek, key, Buffer.alloc(4096));

function unwrapTemplate(keyType: number): pkcs11js.Template {
  return [
    { type: CKA.CLASS, value: CKO.PRIVATE_KEY },
    { type: CKA.KEY_TYPE, value: keyType },
    { type: CKA.TOKEN, value: false },
    { type: CKA.PRIVATE, value: true },
    { type: CKA.SIGN, value: true },
    { type: CKA.SENSITIVE, value: true },
    { type: CKA.EXTRACTABLE, value: true },
  ];
}

function sign(p: PKCS11, session: Buffer, mech: number, key: Buffer, data: Buffer): Buffer {
  p.C_SignInit(session, { mechanism: mech }, key);
  return p.C_Sign(session, data, Buffer.alloc(1024));
}

function verifyOurs(mech: number, pub: Buffer, data: Buffer, sig: Buffer): boolean {
  p11.C_VerifyInit(s, { mechanism: mech }, pub);
  return p11.C_Verify(s, data, sig);
}

const attr = (p: PKCS11, session: Buffer, h: Buffer, type: number): Buffer => p.C_GetAttributeValue(session, h, [{ type }])[0]!.value as Buffer;

/** Our RSA public key as node sees it, for a check independent of both tokens. */
function nodeRsaPublic(pub: Buffer) {
  return createPublicKey({ key: { kty: 'RSA', n: attr(p11, s, pub, CKA.MODULUS).toString('base64url'), e: attr(p11, s, pub, CKA.PUBLIC_EXPONENT).toString('base64url') }, format: 'jwk' });
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-wrap-private-'));
  softToken = softhsmToken(work, { label: 'peer', soPin: '87654321', pin: SOFT_PIN });
  soft = softToken.p11;
  const softSlot = softToken.slot;
  ss = soft.C_OpenSession(softSlot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  soft.C_Login(ss, CKU.USER, SOFT_PIN);

  d = await startDaemon();
  ours = loadModule(d.socketPath);
  p11 = ours.p11;
  ({ session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: PIN, label: 'source' }));

  client = path.join(work, 'wrap_client');
  const cc = await runCli('gcc', [
    '-std=c11', '-O1', '-Wall', '-Wextra', '-Werror',
    '-I', path.join(REPO_ROOT, 'proxy-module/include'), '-I', '/usr/include/p11-kit-1',
    path.join(REPO_ROOT, 'test/c/wrap_client.c'), '-o', client, '-ldl',
  ]);
  expect(cc.code, describeRun(cc)).toBe(0);
}, 120_000);

afterAll(async () => {
  softToken?.close();
  ours?.close();
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('C_WrapKey of private keys out of our token, C_UnwrapKey on SoftHSM2', () => {
  for (const kind of ['rsa', 'ec'] as const) {
    const keyType = kind === 'rsa' ? CKK.RSA : CKK.EC;
    it(`${kind === 'rsa' ? 'RSA-2048' : 'EC P-256'}: length query = wrap length (a C client); SoftHSM2 unwraps and signs for our public key; and back into our token`, async () => {
      const label = `${kind}-out`;
      const pair = ourPair(kind, label);

      // A C application: NULL buffer → exact length; one byte short → BUFFER_TOO_SMALL; exact → the blob.
      const r = await runCli(client, [d.modulePath, PIN, label, CKM.AES_KEY_WRAP_PAD.toString(16)], { env: d.env, input: `${KEK.toString('hex')}\n` });
      expect(r.code, describeRun(r)).toBe(0);
      const query = Number(/^query (\d+)$/m.exec(r.stdout)![1]);
      expect(/^short (\S+) (\d+)$/m.exec(r.stdout)!.slice(1)).toEqual([`0x${CKR.BUFFER_TOO_SMALL.toString(16)}`, String(query)]);
      const [, len, hex] = /^wrapped (\d+) ([0-9a-f]+)$/m.exec(r.stdout)!;
      expect(Number(len)).toBe(query);
      const fromC = Buffer.from(hex!, 'hex');
      expect(fromC.length).toBe(query);

      // The same key under the same transport key, wrapped in this process: the same bytes.
      const kek = aesKey(p11, s, CKA.WRAP);
      const wrapped = wrapOurs(kek, pair.priv);
      expect(wrapped.equals(fromC)).toBe(true);

      const softKek = aesKey(soft, ss, CKA.UNWRAP);
      const moved = soft.C_UnwrapKey(ss, KWP, softKek, wrapped, unwrapTemplate(keyType));
      if (kind === 'rsa') {
        const sig = sign(soft, ss, CKM.SHA256_RSA_PKCS, moved, MSG);
        expect(verifyOurs(CKM.SHA256_RSA_PKCS, pair.pub, MSG, sig)).toBe(true);
        expect(verify('sha256', MSG, nodeRsaPublic(pair.pub), sig)).toBe(true);
        expect(attr(soft, ss, moved, CKA.MODULUS).equals(attr(p11, s, pair.pub, CKA.MODULUS))).toBe(true);
      } else {
        const sig = sign(soft, ss, CKM.ECDSA, moved, createHash('sha256').update(MSG).digest());
        expect(verifyOurs(CKM.ECDSA_SHA256, pair.pub, MSG, sig)).toBe(true);
        expect(attr(soft, ss, moved, CKA.EC_PARAMS).equals(P256)).toBe(true);
      }

      // SoftHSM2 wraps it again; our token unwraps it and it still signs for the original public key.
      const softWrapKek = aesKey(soft, ss, CKA.WRAP);
      const again = soft.C_WrapKey(ss, KWP, softWrapKek, moved, Buffer.alloc(4096));
      const ourUnwrapKek = aesKey(p11, s, CKA.UNWRAP);
      const home = p11.C_UnwrapKey(s, KWP, ourUnwrapKek, again, unwrapTemplate(keyType));
      const mech = kind === 'rsa' ? CKM.SHA256_RSA_PKCS : CKM.ECDSA_SHA256;
      expect(verifyOurs(mech, pair.pub, MSG, sign(p11, s, mech, home, MSG))).toBe(true);
    });
  }
});

describe('what may not leave, through the module', () => {
  it('CKA_EXTRACTABLE=false → CKR_KEY_UNEXTRACTABLE', () => {
    const pair = ourPair('ec', 'locked', [{ type: CKA.EXTRACTABLE, value: false }]);
    expect(rvOf(() => wrapOurs(aesKey(p11, s, CKA.WRAP), pair.priv))).toBe(CKR.KEY_UNEXTRACTABLE);
  });

  it('CKA_WRAP_WITH_TRUSTED=true and a wrapping key that is not CKA_TRUSTED → CKR_KEY_NOT_WRAPPABLE', () => {
    const pair = ourPair('rsa', 'trusted-only', [{ type: CKA.WRAP_WITH_TRUSTED, value: true }]);
    expect(rvOf(() => wrapOurs(aesKey(p11, s, CKA.WRAP), pair.priv))).toBe(CKR.KEY_NOT_WRAPPABLE);
  });

  it('a wrapping key without CKA_WRAP → CKR_KEY_FUNCTION_NOT_PERMITTED', () => {
    const pair = ourPair('ec', 'no-wrap-kek');
    const kek = aesKey(p11, s, CKA.ENCRYPT, [{ type: CKA.WRAP, value: false }]);
    expect(rvOf(() => wrapOurs(kek, pair.priv))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
  });
});

describe('CKM_AES_KEY_WRAP (RFC 3394) takes whole 8-byte blocks only', () => {
  it('a P-256 PKCS#8 blob (138 bytes) → CKR_KEY_SIZE_RANGE; SoftHSM2 zero-fills instead, and our token unwraps its blob', () => {
    const pair = ourPair('ec', 'kw-p256');
    expect(rvOf(() => wrapOurs(aesKey(p11, s, CKA.WRAP), pair.priv, { mechanism: CKM.AES_KEY_WRAP }))).toBe(CKR.KEY_SIZE_RANGE);
    // The documented difference (docs/compat.md): SoftHSM2 pads the PKCS#8 DER with zero
    // bytes to a multiple of 8. DER says where it ends, so our unwrap takes such a blob.
    const { publicKey, privateKey } = soft.C_GenerateKeyPair(
      ss,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: false }, { type: CKA.VERIFY, value: true }],
      [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }, { type: CKA.EXTRACTABLE, value: true }],
    );
    const softBlob = soft.C_WrapKey(ss, { mechanism: CKM.AES_KEY_WRAP }, aesKey(soft, ss, CKA.WRAP), privateKey, Buffer.alloc(4096));
    // SoftHSM2's P-256 PKCS#8 leaves out the public key: 67 bytes, filled to 72, + 8.
    expect(softBlob.length).toBe(80);
    const here = p11.C_UnwrapKey(s, { mechanism: CKM.AES_KEY_WRAP }, aesKey(p11, s, CKA.UNWRAP), softBlob, unwrapTemplate(CKK.EC));
    const sig = sign(p11, s, CKM.ECDSA, here, createHash('sha256').update(MSG).digest());
    soft.C_VerifyInit(ss, { mechanism: CKM.ECDSA }, publicKey);
    expect(soft.C_Verify(ss, createHash('sha256').update(MSG).digest(), sig)).toBe(true);
  });

  it('an Ed25519 PKCS#8 blob (48 bytes) wraps to 56 bytes and unwraps back into our token', () => {
    const pair = ourPair('ed', 'kw-ed25519');
    const wrapped = wrapOurs(aesKey(p11, s, CKA.WRAP), pair.priv, { mechanism: CKM.AES_KEY_WRAP });
    expect(wrapped.length).toBe(56);
    const back = p11.C_UnwrapKey(s, { mechanism: CKM.AES_KEY_WRAP }, aesKey(p11, s, CKA.UNWRAP), wrapped, unwrapTemplate(CKK.EC_EDWARDS));
    expect(verifyOurs(CKM.EDDSA, pair.pub, MSG, sign(p11, s, CKM.EDDSA, back, MSG))).toBe(true);
  });
});

describe('audit', () => {
  it('C_WrapKey is audited per call, success and refusal, without key material', async () => {
    const r = await runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, 'audit', 'dump', '--last', '100000', '--json'], {
      env: { ...process.env, CRATON_HSM_CONFIG: '' },
      timeoutMs: 60_000,
    });
    expect(r.code, describeRun(r)).toBe(0);
    const wraps = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { operation: string; result: unknown })
      .filter((x) => x.operation === 'WrapKey');
    expect(wraps.some((x) => JSON.stringify(x.result) === '{"Success":null}')).toBe(true);
    expect(wraps.some((x) => JSON.stringify(x.result) === '{"Failure":"CKR_KEY_UNEXTRACTABLE"}')).toBe(true);
    for (const form of [KEK.toString('hex'), KEK.toString('base64'), KEK.toString('base64url')]) expect(r.stdout).not.toContain(form.slice(0, 24));
  });
});
