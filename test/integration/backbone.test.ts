// The backbone end to end: the real libcraton_hsm.so loaded by pkcs11js, talking to a
// real craton-hsmd on a private socket. Every expectation is a PKCS#11 2.40 rule.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, createVerify, verify as nodeVerify, constants as cc } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKS, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, pkcs11js, type LoadedModule, type PKCS11, rvOf } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';

let daemon: Daemon;
let mod: LoadedModule;
let p11: PKCS11;
let slot: Buffer;


function expectRv(fn: () => unknown, rv: number): void {
  const got = rvOf(fn);
  expect(rvName(got), `expected ${rvName(rv)}`).toBe(rvName(rv));
}

function rwSession(): Buffer {
  return p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
}

function genAes(s: Buffer, extra: Array<{ type: number; value: unknown }> = []): Buffer {
  return p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
    { type: CKA.VALUE_LEN, value: 32 },
    { type: CKA.TOKEN, value: false },
    ...extra,
  ] as never);
}

function genEc(s: Buffer, curveOid: string, token = false) {
  const params = Buffer.from(curveOid, 'hex');
  return p11.C_GenerateKeyPair(
    s,
    { mechanism: CKM.EC_KEY_PAIR_GEN },
    [{ type: CKA.EC_PARAMS, value: params }, { type: CKA.TOKEN, value: token }, { type: CKA.VERIFY, value: true }],
    [{ type: CKA.TOKEN, value: token }, { type: CKA.SIGN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }],
  );
}

const P256 = '06082a8648ce3d030107';
const P384 = '06052b81040022';

beforeAll(async () => {
  daemon = await startDaemon({ slots: 2 });
  mod = loadModule(daemon.socketPath);
  p11 = mod.p11;
  slot = p11.C_GetSlotList(true)[0]!;
  p11.C_InitToken(slot, SO_PIN, 'backbone');
  const s = rwSession();
  p11.C_Login(s, CKU.SO, SO_PIN);
  p11.C_InitPIN(s, USER_PIN);
  p11.C_Logout(s);
  p11.C_CloseSession(s);
});

afterAll(async () => {
  mod?.close();
  await daemon?.stop();
});

describe('slots and tokens', () => {
  it('reports library, slot and token information', () => {
    const info = p11.C_GetInfo();
    expect(info.manufacturerID.trim()).toBe('Craton HSM');
    expect(p11.C_GetSlotList(false)).toHaveLength(2);
    const si = p11.C_GetSlotInfo(slot);
    expect(si.flags & CKF.TOKEN_PRESENT).toBeTruthy();
    const ti = p11.C_GetTokenInfo(slot);
    expect(ti.label.trim()).toBe('backbone');
    expect(ti.flags & CKF.TOKEN_INITIALIZED).toBeTruthy();
    expect(ti.flags & CKF.USER_PIN_INITIALIZED).toBeTruthy();
    expect(ti.flags & CKF.RNG).toBeTruthy();
    expect(ti.utcTime).toMatch(/^\d{14}00$/);
  });

  it('lists mechanisms with true key sizes and flags', () => {
    const mechs = p11.C_GetMechanismList(slot);
    for (const m of [CKM.AES_KEY_GEN, CKM.AES_GCM, CKM.EC_KEY_PAIR_GEN, CKM.ECDSA, CKM.ECDSA_SHA256, CKM.RSA_PKCS_KEY_PAIR_GEN, CKM.SHA256_RSA_PKCS, CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256, CKM.SHA384, CKM.SHA512]) {
      expect(mechs).toContain(m);
    }
    const rsa = p11.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN);
    expect(rsa.minKeySize).toBe(2048);
    expect(rsa.maxKeySize).toBe(4096);
    expect(rsa.flags & CKF.GENERATE_KEY_PAIR).toBeTruthy();
    const gcm = p11.C_GetMechanismInfo(slot, CKM.AES_GCM);
    expect(gcm.flags & CKF.ENCRYPT && gcm.flags & CKF.DECRYPT).toBeTruthy();
  });

  it('an uninitialised token refuses sessions', () => {
    const other = p11.C_GetSlotList(true)[1]!;
    expect(p11.C_GetTokenInfo(other).flags & CKF.TOKEN_INITIALIZED).toBe(0);
    expectRv(() => p11.C_OpenSession(other, CKF.SERIAL_SESSION), CKR.TOKEN_NOT_RECOGNIZED);
  });
});

describe('login state machine', () => {
  it('moves through the session states and shares login across sessions', () => {
    const ro = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    const rw = rwSession();
    expect(p11.C_GetSessionInfo(ro).state).toBe(CKS.RO_PUBLIC_SESSION);
    expect(p11.C_GetSessionInfo(rw).state).toBe(CKS.RW_PUBLIC_SESSION);
    p11.C_Login(rw, CKU.USER, USER_PIN);
    expect(p11.C_GetSessionInfo(ro).state).toBe(CKS.RO_USER_FUNCTIONS);
    expect(p11.C_GetSessionInfo(rw).state).toBe(CKS.RW_USER_FUNCTIONS);
    expectRv(() => p11.C_Login(ro, CKU.USER, USER_PIN), CKR.USER_ALREADY_LOGGED_IN);
    expectRv(() => p11.C_Login(ro, CKU.SO, SO_PIN), CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    p11.C_Logout(ro);
    expect(p11.C_GetSessionInfo(rw).state).toBe(CKS.RW_PUBLIC_SESSION);
    expectRv(() => p11.C_Logout(ro), CKR.USER_NOT_LOGGED_IN);
    expectRv(() => p11.C_Login(rw, CKU.SO, SO_PIN), CKR.SESSION_READ_ONLY_EXISTS);
    p11.C_CloseSession(ro);
    p11.C_Login(rw, CKU.SO, SO_PIN);
    expect(p11.C_GetSessionInfo(rw).state).toBe(CKS.RW_SO_FUNCTIONS);
    expectRv(() => p11.C_OpenSession(slot, CKF.SERIAL_SESSION), CKR.SESSION_READ_WRITE_SO_EXISTS);
    p11.C_Logout(rw);
    p11.C_CloseSession(rw);
  });

  it('rejects wrong PINs, bad user types and PINs of the wrong length', () => {
    const s = rwSession();
    expectRv(() => p11.C_Login(s, CKU.USER, '9999'), CKR.PIN_INCORRECT);
    const flags = p11.C_GetTokenInfo(slot).flags;
    expect(flags & CKF.USER_PIN_COUNT_LOW).toBeTruthy();
    expectRv(() => p11.C_Login(s, 7, USER_PIN), CKR.USER_TYPE_INVALID);
    p11.C_Login(s, CKU.USER, USER_PIN);
    expect(p11.C_GetTokenInfo(slot).flags & CKF.USER_PIN_COUNT_LOW).toBe(0);
    expectRv(() => p11.C_SetPIN(s, USER_PIN, '12'), CKR.PIN_LEN_RANGE);
    p11.C_SetPIN(s, USER_PIN, '4321');
    p11.C_Logout(s);
    expectRv(() => p11.C_Login(s, CKU.USER, USER_PIN), CKR.PIN_INCORRECT);
    p11.C_Login(s, CKU.USER, '4321');
    p11.C_SetPIN(s, '4321', USER_PIN);
    p11.C_Logout(s);
    p11.C_CloseSession(s);
  });

  it('C_SetPIN in a read-only session and C_InitPIN without SO are refused', () => {
    const ro = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expectRv(() => p11.C_SetPIN(ro, USER_PIN, '5555'), CKR.SESSION_READ_ONLY);
    p11.C_CloseSession(ro);
    const rw = rwSession();
    expectRv(() => p11.C_InitPIN(rw, '5555'), CKR.USER_NOT_LOGGED_IN);
    p11.C_CloseSession(rw);
  });

  it('C_InitToken with a session open is refused', () => {
    const s = rwSession();
    expectRv(() => p11.C_InitToken(slot, SO_PIN, 'again'), CKR.SESSION_EXISTS);
    p11.C_CloseSession(s);
  });
});

describe('objects', () => {
  it('creates, finds, reads, changes, copies and destroys data objects', () => {
    const s = rwSession();
    const h = p11.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.DATA },
      { type: CKA.LABEL, value: 'note-1' },
      { type: CKA.VALUE, value: Buffer.from('hello') },
      { type: CKA.TOKEN, value: false },
    ]);
    p11.C_FindObjectsInit(s, [{ type: CKA.LABEL, value: 'note-1' }]);
    expect(p11.C_FindObjects(s, 10)).toHaveLength(1);
    expectRv(() => p11.C_FindObjectsInit(s, []), CKR.OPERATION_ACTIVE);
    p11.C_FindObjectsFinal(s);
    expectRv(() => p11.C_FindObjectsFinal(s), CKR.OPERATION_NOT_INITIALIZED);
    const [v] = p11.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }]);
    expect(Buffer.from(v!.value as Buffer).toString()).toBe('hello');
    p11.C_SetAttributeValue(s, h, [{ type: CKA.LABEL, value: 'note-2' }]);
    expect(p11.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])[0]!.value!.toString()).toBe('note-2');
    expectRv(() => p11.C_SetAttributeValue(s, h, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }]), CKR.ATTRIBUTE_READ_ONLY);
    const copy = p11.C_CopyObject(s, h, [{ type: CKA.LABEL, value: 'note-3' }]);
    expect(p11.C_GetAttributeValue(s, copy, [{ type: CKA.VALUE }])[0]!.value!.toString()).toBe('hello');
    expect(p11.C_GetObjectSize(s, copy)).toBeGreaterThan(5);
    p11.C_DestroyObject(s, h);
    expectRv(() => p11.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }]), CKR.OBJECT_HANDLE_INVALID);
    p11.C_DestroyObject(s, copy);
    p11.C_CloseSession(s);
  });

  it('validates templates with the spec codes', () => {
    const s = rwSession();
    expectRv(() => p11.C_CreateObject(s, [{ type: CKA.LABEL, value: 'x' }]), CKR.TEMPLATE_INCOMPLETE);
    expectRv(() => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }]), CKR.TEMPLATE_INCOMPLETE);
    expectRv(
      () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.MODULUS, value: Buffer.from([1]) }]),
      CKR.ATTRIBUTE_TYPE_INVALID,
    );
    expectRv(
      () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LOCAL, value: true }]),
      CKR.ATTRIBUTE_READ_ONLY,
    );
    expectRv(
      () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: Buffer.from([1, 2]) }]),
      CKR.ATTRIBUTE_VALUE_INVALID,
    );
    expectRv(
      () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LABEL, value: 'a' }, { type: CKA.LABEL, value: 'b' }]),
      CKR.TEMPLATE_INCONSISTENT,
    );
    expectRv(
      () => p11.C_CreateObject(s, [
        { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES },
        { type: CKA.VALUE, value: Buffer.alloc(16) }, { type: CKA.VALUE_LEN, value: 16 },
      ]),
      CKR.TEMPLATE_INCONSISTENT,
    );
    p11.C_CloseSession(s);
  });

  it('hides private objects without login and needs R/W for token objects', () => {
    const ro = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expectRv(
      () => p11.C_CreateObject(ro, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }]),
      CKR.SESSION_READ_ONLY,
    );
    expectRv(
      () => p11.C_CreateObject(ro, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.PRIVATE, value: true }]),
      CKR.USER_NOT_LOGGED_IN,
    );
    p11.C_Login(ro, CKU.USER, USER_PIN);
    const priv = p11.C_CreateObject(ro, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.PRIVATE, value: true }, { type: CKA.LABEL, value: 'secret-note' },
    ]);
    p11.C_Logout(ro);
    expectRv(() => p11.C_GetAttributeValue(ro, priv, [{ type: CKA.LABEL }]), CKR.OBJECT_HANDLE_INVALID);
    p11.C_FindObjectsInit(ro, [{ type: CKA.LABEL, value: 'secret-note' }]);
    expect(p11.C_FindObjects(ro, 10)).toHaveLength(0);
    p11.C_FindObjectsFinal(ro);
    p11.C_CloseSession(ro);
  });

  it('enforces SENSITIVE, EXTRACTABLE, MODIFIABLE, COPYABLE and DESTROYABLE', () => {
    const s = rwSession();
    p11.C_Login(s, CKU.USER, USER_PIN);
    const k = genAes(s, [{ type: CKA.MODIFIABLE, value: true }, { type: CKA.COPYABLE, value: false }, { type: CKA.DESTROYABLE, value: false }]);
    expectRv(() => p11.C_GetAttributeValue(s, k, [{ type: CKA.VALUE }]), CKR.ATTRIBUTE_SENSITIVE);
    const [sens, ext, local, kgm, as, ne] = p11.C_GetAttributeValue(s, k, [
      { type: CKA.SENSITIVE }, { type: CKA.EXTRACTABLE }, { type: CKA.LOCAL }, { type: CKA.KEY_GEN_MECHANISM },
      { type: CKA.ALWAYS_SENSITIVE }, { type: CKA.NEVER_EXTRACTABLE },
    ]);
    expect(sens!.value![0]).toBe(1);
    expect(ext!.value![0]).toBe(0);
    expect(local!.value![0]).toBe(1);
    expect(Buffer.from(kgm!.value!).readUInt32LE(0)).toBe(CKM.AES_KEY_GEN);
    expect(as!.value![0]).toBe(1);
    expect(ne!.value![0]).toBe(1);
    expectRv(() => p11.C_SetAttributeValue(s, k, [{ type: CKA.SENSITIVE, value: false }]), CKR.ATTRIBUTE_READ_ONLY);
    expectRv(() => p11.C_SetAttributeValue(s, k, [{ type: CKA.EXTRACTABLE, value: true }]), CKR.ATTRIBUTE_READ_ONLY);
    expectRv(() => p11.C_CopyObject(s, k, []), CKR.ACTION_PROHIBITED);
    expectRv(() => p11.C_DestroyObject(s, k), CKR.ACTION_PROHIBITED);
    const fixed = genAes(s, [{ type: CKA.MODIFIABLE, value: false }]);
    expectRv(() => p11.C_SetAttributeValue(s, fixed, [{ type: CKA.LABEL, value: 'nope' }]), CKR.ATTRIBUTE_READ_ONLY);
    const open = genAes(s, [{ type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]);
    expect(p11.C_GetAttributeValue(s, open, [{ type: CKA.VALUE }])[0]!.value).toHaveLength(32);
    expectRv(() => p11.C_GetAttributeValue(s, open, [{ type: CKA.MODULUS }]), CKR.ATTRIBUTE_TYPE_INVALID);
    p11.C_Logout(s);
    p11.C_CloseSession(s);
  });
});

describe('cryptography through the module', () => {
  let s: Buffer;
  beforeAll(() => {
    s = rwSession();
    p11.C_Login(s, CKU.USER, USER_PIN);
  });
  afterAll(() => {
    p11.C_Logout(s);
    p11.C_CloseSession(s);
  });

  it('digests single- and multi-part, matching node:crypto', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    for (const [m, alg] of [[CKM.SHA256, 'sha256'], [CKM.SHA384, 'sha384'], [CKM.SHA512, 'sha512']] as const) {
      p11.C_DigestInit(s, { mechanism: m });
      const one = p11.C_Digest(s, data, Buffer.alloc(64));
      p11.C_DigestInit(s, { mechanism: m });
      p11.C_DigestUpdate(s, data.subarray(0, 10));
      p11.C_DigestUpdate(s, data.subarray(10));
      const multi = p11.C_DigestFinal(s, Buffer.alloc(64));
      const want = createHash(alg).update(data).digest();
      expect(Buffer.from(one).equals(want)).toBe(true);
      expect(Buffer.from(multi).equals(want)).toBe(true);
    }
  });

  it('AES-GCM encrypts and decrypts, single- and multi-part, and rejects a bad tag', () => {
    const k = genAes(s);
    const iv = Buffer.alloc(12, 7);
    const aad = Buffer.from('header');
    const gcm = { mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 } } as never;
    const pt = Buffer.from('attack at dawn, bring coffee');
    p11.C_EncryptInit(s, gcm, k);
    const ct = Buffer.from(p11.C_Encrypt(s, pt, Buffer.alloc(pt.length + 16)));
    expect(ct).toHaveLength(pt.length + 16);
    p11.C_DecryptInit(s, gcm, k);
    expect(Buffer.from(p11.C_Decrypt(s, ct, Buffer.alloc(ct.length))).equals(pt)).toBe(true);
    p11.C_EncryptInit(s, gcm, k);
    const a = Buffer.from(p11.C_EncryptUpdate(s, pt.subarray(0, 5), Buffer.alloc(64)));
    const b = Buffer.from(p11.C_EncryptUpdate(s, pt.subarray(5), Buffer.alloc(64)));
    const c = Buffer.from(p11.C_EncryptFinal(s, Buffer.alloc(64)));
    expect(Buffer.concat([a, b, c]).equals(ct)).toBe(true);
    const bad = Buffer.from(ct);
    bad[bad.length - 1]! ^= 1;
    p11.C_DecryptInit(s, gcm, k);
    expectRv(() => p11.C_Decrypt(s, bad, Buffer.alloc(bad.length)), CKR.ENCRYPTED_DATA_INVALID);
    // the failed call ended the operation
    expectRv(() => p11.C_Decrypt(s, ct, Buffer.alloc(ct.length)), CKR.OPERATION_NOT_INITIALIZED);
  });

  it('ECDSA P-256/P-384 signatures verify with node:crypto', () => {
    for (const [oid, hashMech, alg] of [[P256, CKM.ECDSA_SHA256, 'sha256'], [P384, CKM.ECDSA_SHA384, 'sha384']] as const) {
      const { publicKey, privateKey } = genEc(s, oid);
      const point = Buffer.from(p11.C_GetAttributeValue(s, publicKey, [{ type: CKA.EC_POINT }])[0]!.value!);
      expect(point[0]).toBe(0x04); // DER OCTET STRING
      const raw = point.subarray(point[1]! & 0x80 ? 2 + (point[1]! & 0x7f) : 2);
      const crv = oid === P256 ? 'P-256' : 'P-384';
      const n = oid === P256 ? 32 : 48;
      const jwk = { kty: 'EC', crv, x: raw.subarray(1, 1 + n).toString('base64url'), y: raw.subarray(1 + n).toString('base64url') };
      const pub = createPublicKey({ key: jwk, format: 'jwk' });
      const data = Buffer.from('message to sign');
      p11.C_SignInit(s, { mechanism: hashMech }, privateKey);
      const sig = Buffer.from(p11.C_Sign(s, data, Buffer.alloc(2 * n)));
      expect(sig).toHaveLength(2 * n);
      expect(nodeVerify(alg, data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      p11.C_VerifyInit(s, { mechanism: hashMech }, publicKey);
      expect(p11.C_Verify(s, data, sig)).toBe(true);
      // raw ECDSA over a digest computed by the caller
      p11.C_SignInit(s, { mechanism: CKM.ECDSA }, privateKey);
      const digest = createHash(alg).update(data).digest();
      const rawSig = Buffer.from(p11.C_Sign(s, digest, Buffer.alloc(2 * n)));
      expect(nodeVerify(alg, data, { key: pub, dsaEncoding: 'ieee-p1363' }, rawSig)).toBe(true);
      // a flipped bit fails verification
      rawSig[5]! ^= 1;
      p11.C_VerifyInit(s, { mechanism: CKM.ECDSA }, publicKey);
      expectRv(() => p11.C_Verify(s, digest, rawSig), CKR.SIGNATURE_INVALID);
    }
  });

  it('RSA-2048 PKCS#1 v1.5 and PSS signatures verify with node:crypto', () => {
    const { publicKey, privateKey } = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN },
      [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: CKA.VERIFY, value: true }],
      [{ type: CKA.SIGN, value: true }],
    );
    const [mod, exp] = p11.C_GetAttributeValue(s, publicKey, [{ type: CKA.MODULUS }, { type: CKA.PUBLIC_EXPONENT }]);
    expect(mod!.value).toHaveLength(256);
    const pub = createPublicKey({
      key: { kty: 'RSA', n: Buffer.from(mod!.value!).toString('base64url'), e: Buffer.from(exp!.value!).toString('base64url') },
      format: 'jwk',
    });
    const data = Buffer.from('rsa message');
    p11.C_SignInit(s, { mechanism: CKM.SHA256_RSA_PKCS }, privateKey);
    p11.C_SignUpdate(s, data.subarray(0, 3));
    p11.C_SignUpdate(s, data.subarray(3));
    const sig = Buffer.from(p11.C_SignFinal(s, Buffer.alloc(256)));
    expect(createVerify('sha256').update(data).verify(pub, sig)).toBe(true);
    const pss = { mechanism: CKM.SHA256_RSA_PKCS_PSS, parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: CKM.SHA256, mgf: 2, saltLen: 32 } } as never;
    p11.C_SignInit(s, pss, privateKey);
    const pssSig = Buffer.from(p11.C_Sign(s, data, Buffer.alloc(256)));
    expect(nodeVerify('sha256', data, { key: pub, padding: cc.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pssSig)).toBe(true);
    p11.C_VerifyInit(s, pss, publicKey);
    expect(p11.C_Verify(s, data, pssSig)).toBe(true);
    expectRv(() => p11.C_GetAttributeValue(s, privateKey, [{ type: CKA.PRIVATE_EXPONENT }]), CKR.ATTRIBUTE_SENSITIVE);
  });

  it('generates random bytes', () => {
    const a = Buffer.from(p11.C_GenerateRandom(s, Buffer.alloc(32)));
    const b = Buffer.from(p11.C_GenerateRandom(s, Buffer.alloc(32)));
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
  });

  it('ends operations on logout', () => {
    const s2 = rwSession();
    const { privateKey } = genEc(s2, P256);
    p11.C_SignInit(s2, { mechanism: CKM.ECDSA_SHA256 }, privateKey);
    p11.C_Logout(s2); // logs out the whole application, s included
    expectRv(() => p11.C_Sign(s2, Buffer.from('x'), Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED);
    p11.C_Login(s, CKU.USER, USER_PIN);
    p11.C_CloseSession(s2);
  });
});

describe('bad input gets the spec CK_RV', () => {
  let s: Buffer;
  let aes: Buffer;
  let ecPriv: Buffer;
  let ecPub: Buffer;
  beforeAll(() => {
    s = rwSession();
    p11.C_Login(s, CKU.USER, USER_PIN);
    aes = genAes(s);
    const kp = genEc(s, P256);
    ecPriv = kp.privateKey;
    ecPub = kp.publicKey;
  });
  afterAll(() => {
    p11.C_Logout(s);
    p11.C_CloseSession(s);
  });

  const bogus = Buffer.from([0x39, 0x30, 0, 0, 0, 0, 0, 0]); // handle 12345
  const cases: Array<[string, () => unknown, number]> = [
    ['C_GetSlotInfo on a bad slot', () => p11.C_GetSlotInfo(Buffer.from([99, 0, 0, 0, 0, 0, 0, 0])), CKR.SLOT_ID_INVALID],
    ['C_GetTokenInfo on a bad slot', () => p11.C_GetTokenInfo(Buffer.from([99, 0, 0, 0, 0, 0, 0, 0])), CKR.SLOT_ID_INVALID],
    ['C_OpenSession on a bad slot', () => p11.C_OpenSession(Buffer.from([99, 0, 0, 0, 0, 0, 0, 0]), CKF.SERIAL_SESSION), CKR.SLOT_ID_INVALID],
    ['C_OpenSession without CKF_SERIAL_SESSION', () => p11.C_OpenSession(slot, 0), CKR.SESSION_PARALLEL_NOT_SUPPORTED],
    ['C_GetMechanismInfo of an unknown mechanism', () => p11.C_GetMechanismInfo(slot, 0x7ffffff0), CKR.MECHANISM_INVALID],
    ['C_CloseSession of a bad handle', () => p11.C_CloseSession(bogus), CKR.SESSION_HANDLE_INVALID],
    ['C_GetSessionInfo of a bad handle', () => p11.C_GetSessionInfo(bogus), CKR.SESSION_HANDLE_INVALID],
    ['C_Login on a bad session', () => p11.C_Login(bogus, CKU.USER, USER_PIN), CKR.SESSION_HANDLE_INVALID],
    ['C_SignInit with a bad key handle', () => p11.C_SignInit(s, { mechanism: CKM.ECDSA }, bogus), CKR.KEY_HANDLE_INVALID],
    ['C_SignInit with an unknown mechanism', () => p11.C_SignInit(s, { mechanism: 0x7ffffff0 }, ecPriv), CKR.MECHANISM_INVALID],
    ['C_SignInit with a digest mechanism', () => p11.C_SignInit(s, { mechanism: CKM.SHA256 }, ecPriv), CKR.MECHANISM_INVALID],
    ['C_SignInit with the wrong key type', () => p11.C_SignInit(s, { mechanism: CKM.SHA256_RSA_PKCS }, ecPriv), CKR.KEY_TYPE_INCONSISTENT],
    ['C_SignInit with a public key', () => p11.C_SignInit(s, { mechanism: CKM.ECDSA }, ecPub), CKR.KEY_FUNCTION_NOT_PERMITTED],
    ['C_EncryptInit with an EC key', () => p11.C_EncryptInit(s, { mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv: Buffer.alloc(12), ivBits: 96, tagBits: 128 } } as never, ecPriv), CKR.KEY_FUNCTION_NOT_PERMITTED],
    ['C_EncryptInit with GCM and no parameter', () => p11.C_EncryptInit(s, { mechanism: CKM.AES_GCM }, aes), CKR.MECHANISM_PARAM_INVALID],
    ['C_Sign without C_SignInit', () => p11.C_Sign(s, Buffer.from('x'), Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED],
    ['C_SignUpdate without C_SignInit', () => p11.C_SignUpdate(s, Buffer.from('x')), CKR.OPERATION_NOT_INITIALIZED],
    ['C_Verify without C_VerifyInit', () => p11.C_Verify(s, Buffer.from('x'), Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED],
    ['C_Encrypt without C_EncryptInit', () => p11.C_Encrypt(s, Buffer.from('x'), Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED],
    ['C_DecryptFinal without C_DecryptInit', () => p11.C_DecryptFinal(s, Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED],
    ['C_DigestFinal without C_DigestInit', () => p11.C_DigestFinal(s, Buffer.alloc(64)), CKR.OPERATION_NOT_INITIALIZED],
    ['C_FindObjects without C_FindObjectsInit', () => p11.C_FindObjects(s, 1), CKR.OPERATION_NOT_INITIALIZED],
    ['C_DigestInit twice', () => { p11.C_DigestInit(s, { mechanism: CKM.SHA256 }); try { p11.C_DigestInit(s, { mechanism: CKM.SHA256 }); } finally { p11.C_DigestFinal(s, Buffer.alloc(64)); } }, CKR.OPERATION_ACTIVE],
    ['C_GetAttributeValue of a bad object', () => p11.C_GetAttributeValue(s, bogus, [{ type: CKA.LABEL }]), CKR.OBJECT_HANDLE_INVALID],
    ['C_DestroyObject of a bad object', () => p11.C_DestroyObject(s, bogus), CKR.OBJECT_HANDLE_INVALID],
    ['C_GenerateKey with a key-pair mechanism', () => p11.C_GenerateKey(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, []), CKR.MECHANISM_INVALID],
    ['C_GenerateKey AES without CKA_VALUE_LEN', () => p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, []), CKR.TEMPLATE_INCOMPLETE],
    ['C_GenerateKey AES with a bad length', () => p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 17 }]), CKR.ATTRIBUTE_VALUE_INVALID],
    ['C_GenerateKeyPair EC without CKA_EC_PARAMS', () => p11.C_GenerateKeyPair(s, { mechanism: CKM.EC_KEY_PAIR_GEN }, [], []), CKR.TEMPLATE_INCOMPLETE],
    ['C_GenerateKeyPair RSA of 1024 bits', () => p11.C_GenerateKeyPair(s, { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN }, [{ type: CKA.MODULUS_BITS, value: 1024 }], []), CKR.KEY_SIZE_RANGE],
    ['C_CreateObject AES key of 7 bytes', () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.VALUE, value: Buffer.alloc(7) }]), CKR.ATTRIBUTE_VALUE_INVALID],
    // C_SeedRandom now succeeds (issue 4: additional input to a DRBG reseed); see test/integration/faults.test.ts.
    ['C_InitToken with a bad slot', () => p11.C_InitToken(Buffer.from([99, 0, 0, 0, 0, 0, 0, 0]), SO_PIN, 'x'), CKR.SLOT_ID_INVALID],
    ['C_Initialize twice', () => p11.C_Initialize(), CKR.CRYPTOKI_ALREADY_INITIALIZED],
    ['C_GetOperationState (not offered)', () => p11.C_GetOperationState(s), CKR.FUNCTION_NOT_SUPPORTED],
  ];

  it.each(cases)('%s', (_name, fn, rv) => {
    expectRv(fn, rv);
  });

  it('a short output buffer gets CKR_BUFFER_TOO_SMALL and the operation stays active', () => {
    p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, ecPriv);
    expectRv(() => p11.C_Sign(s, Buffer.from('data'), Buffer.alloc(10)), CKR.BUFFER_TOO_SMALL);
    const sig = p11.C_Sign(s, Buffer.from('data'), Buffer.alloc(64));
    expect(sig).toHaveLength(64);
  });
});
