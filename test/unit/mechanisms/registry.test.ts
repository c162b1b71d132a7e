import { describe, expect, it } from 'vitest';
import { MechanismRegistry, defaultFamilies } from '../../../hsm-daemon/src/mechanisms/registry.js';
import { DigestFamily } from '../../../hsm-daemon/src/mechanisms/digest.js';
import { CKF, CKM } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';

const reg = new MechanismRegistry(defaultFamilies());

// The backbone every client relies on, with the family that must own it and the
// key-size unit PKCS#11 prescribes.
const EXPECTED: Array<[string, number, string, number, number, number]> = [
  ['AES_KEY_GEN', CKM.AES_KEY_GEN, 'aes', 16, 32, CKF.GENERATE],
  ['AES_GCM', CKM.AES_GCM, 'aes', 16, 32, CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP],
  ['EC_KEY_PAIR_GEN', CKM.EC_KEY_PAIR_GEN, 'ec', 256, 521, CKF.GENERATE_KEY_PAIR | CKF.EC_F_P | CKF.EC_NAMEDCURVE | CKF.EC_UNCOMPRESS],
  ['ECDSA_SHA256', CKM.ECDSA_SHA256, 'ec', 256, 521, CKF.SIGN | CKF.VERIFY | CKF.EC_F_P | CKF.EC_NAMEDCURVE | CKF.EC_UNCOMPRESS],
  ['ECDH1_DERIVE', CKM.ECDH1_DERIVE, 'ec', 256, 521, CKF.DERIVE | CKF.EC_F_P | CKF.EC_NAMEDCURVE | CKF.EC_UNCOMPRESS],
  ['RSA_PKCS_KEY_PAIR_GEN', CKM.RSA_PKCS_KEY_PAIR_GEN, 'rsa', 2048, 4096, CKF.GENERATE_KEY_PAIR],
  ['SHA256_RSA_PKCS_PSS', CKM.SHA256_RSA_PKCS_PSS, 'rsa', 2048, 16384, CKF.SIGN | CKF.VERIFY],
  ['RSA_PKCS', CKM.RSA_PKCS, 'rsa', 2048, 16384, CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP | CKF.SIGN | CKF.VERIFY],
  ['SHA256', CKM.SHA256, 'digest', 0, 0, CKF.DIGEST],
  ['SHA256_HMAC', CKM.SHA256_HMAC, 'hmac', 1, 4096, CKF.SIGN | CKF.VERIFY],
  ['GENERIC_SECRET_KEY_GEN', CKM.GENERIC_SECRET_KEY_GEN, 'hmac', 8, 32768, CKF.GENERATE],
];

describe.each(EXPECTED)('registry: %s', (_n, type, family, min, max, flags) => {
  it('is owned by the right family with true PKCS#11 info', () => {
    expect(reg.family(type)?.name).toBe(family);
    expect(reg.info(type)).toEqual({ type, minKeySize: min, maxKeySize: max, flags });
  });
});

describe('registry', () => {
  it('lists every mechanism once, in ascending order', () => {
    const types = reg.list().map((m) => m.type);
    expect(new Set(types).size).toBe(types.length);
    expect([...types].sort((a, b) => a - b)).toEqual(types);
    expect(types.length).toBeGreaterThan(60);
  });
  it('answers undefined for unknown mechanisms', () => {
    expect(reg.info(CKM.DES_ECB)).toBeUndefined();
    expect(reg.family(CKM.DES_ECB)).toBeUndefined();
  });
  it('refuses two families offering one mechanism', () => {
    expect(() => new MechanismRegistry([new DigestFamily(), new DigestFamily()])).toThrow(/offered by both/);
  });
  it('hands out copies, so callers cannot alter the table', () => {
    reg.info(CKM.AES_GCM)!.flags = 0;
    reg.list()[0]!.flags = 0;
    expect(reg.info(CKM.AES_GCM)!.flags).not.toBe(0);
    expect(reg.list()[0]!.flags).not.toBe(0);
  });
  it('every family with a key-generation flag implements the generator', () => {
    for (const info of reg.list()) {
      const f = reg.family(info.type)!;
      if (info.flags & CKF.GENERATE) expect(f.generateKey, `${f.name}`).toBeTypeOf('function');
      if (info.flags & CKF.GENERATE_KEY_PAIR) expect(f.generateKeyPair, `${f.name}`).toBeTypeOf('function');
      if (info.flags & CKF.DERIVE) expect(f.derive, `${f.name}`).toBeTypeOf('function');
      if (info.flags & CKF.WRAP) expect(f.wrap, `${f.name}`).toBeTypeOf('function');
      if (info.flags & (CKF.SIGN | CKF.ENCRYPT | CKF.DIGEST)) expect(f.createOperation, `${f.name}`).toBeTypeOf('function');
    }
  });
});
