// The enforcer: strict refuses with the right CK_RV, warn runs; both record the verdict
// on the call note and report violations; the mechanism list and info follow the policy.
import { describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { ulongValue } from '../../../hsm-daemon/src/pkcs11/values.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import type { CallNote } from '../../../hsm-daemon/src/dispatch/call.js';
import type { AttrMap, Mechanism } from '../../../hsm-daemon/src/mechanisms/types.js';
import { MechanismRegistry, defaultFamilies } from '../../../hsm-daemon/src/mechanisms/registry.js';
import { digestInfo, hashByName } from '../../../hsm-daemon/src/mechanisms/common.js';
import { PolicyEnforcer, keyContext, type PolicyViolation } from '../../../hsm-daemon/src/policy/enforcer.js';
import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '../../../hsm-daemon/src/policy/table.js';

const mk = (over: Partial<PolicySettings> = {}) => new PolicyEnforcer({ ...DEFAULT_POLICY_SETTINGS, ...over });
const mech = (type: number, param: Mechanism['param'] = { kind: 'none' }): Mechanism => ({ type, param });
const key = (entries: Array<[number, Buffer]>): { attrs: AttrMap } => ({ attrs: new Map(entries) });
const rvOf = (fn: () => unknown): number => {
  try {
    fn();
    return CKR.OK;
  } catch (e) {
    if (e instanceof CkError) return e.rv;
    throw e;
  }
};

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const P224 = Buffer.from('06052b81040021', 'hex');
const aes128 = key([[CKA.VALUE_LEN, ulongValue(16)]]);
const hmac80 = key([[CKA.VALUE, Buffer.alloc(10)]]);
const rsa1024 = key([[CKA.MODULUS, Buffer.concat([Buffer.from([0x80]), Buffer.alloc(127)])]]);

describe('strict', () => {
  const e = mk();
  const cases: Array<[string, () => unknown, number]> = [
    ['AES-ECB', () => e.checkKeyUse(mech(CKM.AES_ECB), 'encrypt', aes128, {}), CKR.MECHANISM_INVALID],
    ['raw RSA', () => e.checkKeyUse(mech(CKM.RSA_X_509), 'sign', key([[CKA.MODULUS_BITS, ulongValue(2048)]]), {}), CKR.MECHANISM_INVALID],
    ['SHA-1 digest', () => e.checkKeyUse(mech(CKM.SHA_1), 'digest', null, {}), CKR.MECHANISM_INVALID],
    ['MD5 digest', () => e.checkKeyUse(mech(CKM.MD5), 'digest', null, {}), CKR.MECHANISM_INVALID],
    ['RSA-1024 sign', () => e.checkKeyUse(mech(CKM.SHA256_RSA_PKCS), 'sign', rsa1024, {}), CKR.KEY_SIZE_RANGE],
    ['RSA-1024 generation', () => e.checkGenerate(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [new Map([[CKA.MODULUS_BITS, ulongValue(1024)]]), new Map()], {}), CKR.KEY_SIZE_RANGE],
    ['P-224 generation', () => e.checkGenerate(mech(CKM.EC_KEY_PAIR_GEN), [new Map([[CKA.EC_PARAMS, P224]]), new Map()], {}), CKR.KEY_SIZE_RANGE],
    ['HMAC with an 80-bit key', () => e.checkKeyUse(mech(CKM.SHA256_HMAC), 'sign', hmac80, {}), CKR.KEY_SIZE_RANGE],
    ['generic secret of 64 bits', () => e.checkGenerate(mech(CKM.GENERIC_SECRET_KEY_GEN), [new Map([[CKA.VALUE_LEN, ulongValue(8)]])], {}), CKR.KEY_SIZE_RANGE],
    ['PSS with SHA-1', () => e.checkKeyUse(mech(CKM.RSA_PKCS_PSS, { kind: 'pss', hashAlg: CKM.SHA_1, mgf: 1, saltLen: 20 }), 'sign', key([[CKA.MODULUS_BITS, ulongValue(2048)]]), {}), CKR.MECHANISM_INVALID],
    ['AES-GCM 128', () => e.checkKeyUse(mech(CKM.AES_GCM), 'encrypt', aes128, {}), CKR.OK],
    ['P-256 generation', () => e.checkGenerate(mech(CKM.EC_KEY_PAIR_GEN), [new Map([[CKA.EC_PARAMS, P256]]), new Map()], {}), CKR.OK],
  ];
  for (const [name, fn, rv] of cases) it(`${name} → 0x${rv.toString(16)}`, () => expect(rvOf(fn)).toBe(rv));

  it('records the verdict on the note and reports the refusal', () => {
    const seen: PolicyViolation[] = [];
    const off = e.onViolation((v) => seen.push(v));
    const note: CallNote = {};
    expect(rvOf(() => e.checkKeyUse(mech(CKM.MD5), 'digest', null, note))).toBe(CKR.MECHANISM_INVALID);
    expect(note).toMatchObject({ approved: false });
    expect(note.policyViolation).toMatch(/^MD5: /);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ mechanism: CKM.MD5, mechanismName: 'CKM_MD5', op: 'digest', mode: 'strict', refused: true });
    const ok: CallNote = {};
    e.checkKeyUse(mech(CKM.SHA256), 'digest', null, ok);
    expect(ok).toEqual({ approved: true });
    off();
    rvOf(() => e.checkKeyUse(mech(CKM.MD5), 'digest', null, {}));
    expect(seen).toHaveLength(1);
  });

  it('a throwing listener does not change the outcome', () => {
    const x = mk();
    x.onViolation(() => {
      throw new Error('boom');
    });
    expect(rvOf(() => x.checkKeyUse(mech(CKM.MD5), 'digest', null, {}))).toBe(CKR.MECHANISM_INVALID);
  });

  it('lists and describes only allowed mechanisms', () => {
    const reg = new MechanismRegistry(defaultFamilies());
    const listed = reg.list().filter((m) => e.listed(m.type)).map((m) => m.type);
    for (const m of [CKM.AES_ECB, CKM.RSA_X_509, CKM.SHA_1, CKM.MD5, CKM.ECDSA_SHA1, CKM.SHA1_RSA_PKCS, CKM.SHA_1_HMAC]) {
      expect(listed).not.toContain(m);
      expect(e.mechanismInfo(reg.info(m) ?? { type: m, minKeySize: 0, maxKeySize: 0, flags: CKF.SIGN })).toBeUndefined();
    }
    for (const m of [CKM.AES_GCM, CKM.SHA256, CKM.ECDSA_SHA256, CKM.RSA_PKCS_PSS, CKM.SHA256_HMAC, CKM.EDDSA]) expect(listed).toContain(m);
    // CKM_RSA_PKCS: listed for sign/verify (DigestInfo of an approved hash) only.
    expect(listed).toContain(CKM.RSA_PKCS);
    expect(e.mechanismInfo(reg.info(CKM.RSA_PKCS)!)!.flags & (CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP | CKF.SIGN | CKF.VERIFY)).toBe(CKF.SIGN | CKF.VERIFY);
    const gen = e.mechanismInfo(reg.info(CKM.RSA_PKCS_KEY_PAIR_GEN)!)!;
    expect(gen.minKeySize).toBe(2048);
    expect(mk({ rsa_min_bits: 3072 }).mechanismInfo(reg.info(CKM.RSA_PKCS_KEY_PAIR_GEN)!)!.minKeySize).toBe(3072);
  });

  it('allow_sha1_verify lists SHA-1 signature mechanisms with CKF_VERIFY only', () => {
    const x = mk({ allow_sha1_verify: true });
    const reg = new MechanismRegistry(defaultFamilies());
    expect(x.listed(CKM.ECDSA_SHA1)).toBe(true);
    const info = x.mechanismInfo(reg.info(CKM.ECDSA_SHA1)!)!;
    expect(info.flags & CKF.VERIFY).toBeTruthy();
    expect(info.flags & CKF.SIGN).toBe(0);
    expect(rvOf(() => x.checkKeyUse(mech(CKM.ECDSA_SHA1), 'verify', key([[CKA.EC_PARAMS, P256]]), {}))).toBe(CKR.OK);
    expect(rvOf(() => x.checkKeyUse(mech(CKM.ECDSA_SHA1), 'sign', key([[CKA.EC_PARAMS, P256]]), {}))).toBe(CKR.MECHANISM_INVALID);
  });
});

describe('CKM_RSA_PKCS input gate (DigestInfo at C_Sign/C_Verify)', () => {
  const rsa2048 = key([[CKA.MODULUS_BITS, ulongValue(2048)]]);
  const di = (h: string, len: number) => digestInfo(hashByName(h), Buffer.alloc(len, 7));
  const gateFor = (x: PolicyEnforcer, op: 'sign' | 'verify' = 'sign') => {
    x.checkKeyUse(mech(CKM.RSA_PKCS), op, rsa2048, {});
    return x.inputGate(mech(CKM.RSA_PKCS), op, rsa2048)!;
  };

  it('only CKM_RSA_PKCS sign/verify has one', () => {
    const e = mk();
    expect(e.inputGate(mech(CKM.RSA_PKCS), 'sign', rsa2048)).toBeDefined();
    expect(e.inputGate(mech(CKM.RSA_PKCS), 'decrypt', rsa2048)).toBeUndefined();
    expect(e.inputGate(mech(CKM.SHA256_RSA_PKCS), 'sign', rsa2048)).toBeUndefined();
    expect(rvOf(() => e.checkKeyUse(mech(CKM.RSA_PKCS), 'decrypt', rsa2048, {}))).toBe(CKR.MECHANISM_INVALID);
  });

  it('strict: approved DigestInfo passes, anything else is CKR_DATA_INVALID with a violation', () => {
    const e = mk();
    const seen: PolicyViolation[] = [];
    e.onViolation((v) => seen.push(v));
    for (const [h, len] of [['sha256', 32], ['sha384', 48], ['sha512', 64], ['sha224', 28], ['sha3-256', 32]] as const) {
      const note: CallNote = {};
      expect(rvOf(() => gateFor(e).check(note, di(h, len)))).toBe(CKR.OK);
      expect(note.approved).toBe(true);
    }
    const bad: Array<[string, Buffer]> = [
      ['raw data', Buffer.from('hello')],
      ['bare digest', Buffer.alloc(32, 1)],
      ['SHA-1 DigestInfo', di('sha1', 20)],
      ['MD5 DigestInfo', di('md5', 16)],
      ['SHA-256 DigestInfo, short digest', di('sha256', 32).subarray(0, 50)],
      ['SHA-256 DigestInfo with trailing byte', Buffer.concat([di('sha256', 32), Buffer.from([0])])],
    ];
    for (const [name, data] of bad) {
      const note: CallNote = {};
      expect(rvOf(() => gateFor(e).check(note, data)), name).toBe(CKR.DATA_INVALID);
      expect(note.approved, name).toBe(false);
      expect(note.policyViolation, name).toBeTruthy();
    }
    expect(seen).toHaveLength(bad.length);
    expect(seen.every((v) => v.refused && v.mechanism === CKM.RSA_PKCS)).toBe(true);
  });

  it('multi-part: the parts are checked together at Final', () => {
    const g = gateFor(mk());
    const d = di('sha256', 32);
    g.update(d.subarray(0, 10));
    g.update(d.subarray(10));
    expect(rvOf(() => g.check({}))).toBe(CKR.OK);
    const g2 = gateFor(mk());
    g2.update(d);
    g2.update(Buffer.alloc(200));
    expect(rvOf(() => g2.check({}))).toBe(CKR.DATA_INVALID);
  });

  it('SHA-1 DigestInfo verifies under allow_sha1_verify; warn runs and flags; allow_raw_rsa allows raw data', () => {
    expect(rvOf(() => gateFor(mk({ allow_sha1_verify: true }), 'verify').check({}, di('sha1', 20)))).toBe(CKR.OK);
    expect(rvOf(() => gateFor(mk({ allow_sha1_verify: true }), 'sign').check({}, di('sha1', 20)))).toBe(CKR.DATA_INVALID);
    const warn = mk({ enforce: 'warn' });
    const note: CallNote = {};
    expect(rvOf(() => gateFor(warn).check(note, Buffer.from('raw')))).toBe(CKR.OK);
    expect(note).toMatchObject({ approved: false });
    expect(note.policyViolation).toBeTruthy();
    const raw: CallNote = {};
    expect(rvOf(() => gateFor(mk({ allow_raw_rsa: true })).check(raw, Buffer.from('raw')))).toBe(CKR.OK);
    expect(raw.approved).toBe(false);
    expect(raw.policyViolation).toBeUndefined();
  });
});

describe('warn', () => {
  const e = mk({ enforce: 'warn' });
  it('runs the call, flags the note and reports the violation as not refused', () => {
    const seen: PolicyViolation[] = [];
    e.onViolation((v) => seen.push(v));
    const note: CallNote = {};
    const v = e.checkKeyUse(mech(CKM.SHA256_RSA_PKCS), 'sign', rsa1024, note);
    expect(v).toMatchObject({ approved: false, allowed: false, refusal: 'size' });
    expect(note.approved).toBe(false);
    expect(note.policyViolation).toMatch(/RSA-1024 is below rsa_min_bits/);
    expect(seen[0]).toMatchObject({ mode: 'warn', refused: false });
    expect(rvOf(() => e.checkKeyUse(mech(CKM.AES_ECB), 'encrypt', aes128, {}))).toBe(CKR.OK);
  });
  it('lists and describes everything', () => {
    const reg = new MechanismRegistry(defaultFamilies());
    for (const m of reg.list()) {
      expect(e.listed(m.type)).toBe(true);
      expect(e.mechanismInfo(m)).toEqual(m);
    }
  });
});

describe('keyContext', () => {
  it('reads RSA, EC and secret key sizes', () => {
    expect(keyContext(rsa1024.attrs)).toEqual({ keyBits: 1024 });
    expect(keyContext(new Map([[CKA.EC_PARAMS, P256]]))).toEqual({ curve: 'P-256' });
    expect(keyContext(aes128.attrs)).toEqual({ keyBits: 128 });
    expect(keyContext(hmac80.attrs)).toEqual({ keyBits: 80 });
    expect(keyContext(new Map(), new Map([[CKA.MODULUS_BITS, ulongValue(3072)]]))).toEqual({ keyBits: 3072 });
  });
});
