import { hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HkdfFamily } from '../../../hsm-daemon/src/mechanisms/hkdf.js';
import { readUlong, ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { CKA, CKF, CKK, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { MechanismParam } from '../../../hsm-daemon/src/mechanisms/types.js';
import { expectRv, hex, mech, secretKey } from './helpers.js';

const fam = new HkdfFamily();
const hkdf = (o: Partial<Extract<MechanismParam, { kind: 'hkdf' }>>): MechanismParam => ({
  kind: 'hkdf',
  extract: true,
  expand: true,
  prf: CKM.SHA256,
  saltType: CKF.HKDF_SALT_DATA,
  salt: Buffer.alloc(0),
  saltKey: 0,
  info: Buffer.alloc(0),
  ...o,
});
const len = (n: number) => new Map([[CKA.VALUE_LEN, ulongAttr(n)]]);

// RFC 5869 Appendix A, test cases 1 and 3 (SHA-256).
const KAT = [
  {
    name: 'A.1',
    ikm: Buffer.alloc(22, 0x0b),
    salt: hex('000102030405060708090a0b0c'),
    info: hex('f0f1f2f3f4f5f6f7f8f9'),
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.3 (no salt, no info)',
    ikm: Buffer.alloc(22, 0x0b),
    salt: Buffer.alloc(0),
    info: Buffer.alloc(0),
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

describe.each(KAT)('HKDF RFC 5869 $name', ({ ikm, salt, info, prk, okm }) => {
  const base = secretKey(ikm, CKK.GENERIC_SECRET);
  const saltType = salt.length ? CKF.HKDF_SALT_DATA : CKF.HKDF_SALT_NULL;
  it('extract+expand, extract only, expand only', async () => {
    const full = await fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ salt, info, saltType })), base, len(42));
    expect(full.get(CKA.VALUE)!.toString('hex')).toBe(okm);
    const ex = await fam.derive(mech(CKM.HKDF_DATA, hkdf({ salt, saltType, expand: false })), base, new Map());
    expect(ex.get(CKA.VALUE)!.toString('hex')).toBe(prk);
    const exp = await fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ extract: false, info })), secretKey(hex(prk), CKK.HKDF), len(42));
    expect(exp.get(CKA.VALUE)!.toString('hex')).toBe(okm);
    expect(Buffer.from(hkdfSync('sha256', ikm, salt, info, 42)).toString('hex')).toBe(okm);
  });
});

describe('HKDF CKF_HKDF_SALT_KEY (salt from a key the dispatcher resolved)', () => {
  const { ikm, salt, info, okm } = KAT[0]!;
  const base = secretKey(ikm, CKK.GENERIC_SECRET);
  it('RFC 5869 A.1 with the salt held in a CKK_HKDF or generic secret key', async () => {
    for (const kt of [CKK.HKDF, CKK.GENERIC_SECRET]) {
      const out = await fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_KEY, saltKey: 7, saltKeyRef: secretKey(salt, kt), info })), base, len(42));
      expect(out.get(CKA.VALUE)!.toString('hex')).toBe(okm);
    }
  });
  it('refuses a missing reference and salt keys of another type', async () => {
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_KEY, saltKey: 7 })), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_KEY, saltKey: 7, saltKeyRef: secretKey(salt) })), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
  });
});

describe('HKDF errors and key generation', () => {
  const base = secretKey(Buffer.alloc(32, 1), CKK.GENERIC_SECRET);
  it('parameter, template and key checks', async () => {
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ extract: false, expand: false })), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ prf: CKM.MD5 })), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_KEY })), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, { kind: 'none' }), base, len(16)), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_NULL })), base, new Map()), CKR.TEMPLATE_INCOMPLETE);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_NULL })), base, len(255 * 32 + 1)), CKR.TEMPLATE_INCONSISTENT);
    await expectRv(() => fam.derive(mech(CKM.HKDF_DERIVE, hkdf({ saltType: CKF.HKDF_SALT_NULL })), secretKey(Buffer.alloc(16)), len(16)), CKR.KEY_TYPE_INCONSISTENT);
  });
  it('CKM_HKDF_KEY_GEN makes CKK_HKDF keys', async () => {
    const { attrs } = await fam.generateKey(mech(CKM.HKDF_KEY_GEN), len(32));
    expect(readUlong(attrs.get(CKA.KEY_TYPE)!)).toBe(CKK.HKDF);
    expect(attrs.get(CKA.VALUE)).toHaveLength(32);
  });
});
