import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacFamily } from '../../../hsm-daemon/src/mechanisms/hmac.js';
import { readUlong } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { CKA, CKK, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import { ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { expectRv, hex, mech, multiPart, secretKey } from './helpers.js';
import type { MechanismParam } from '../../../hsm-daemon/src/mechanisms/types.js';

const fam = new HmacFamily();
const general = (macLen: number): MechanismParam => ({ kind: 'macGeneral', macLen });

// RFC 4231 §4.2 (test case 1), §4.3 (case 2), §4.6 (case 5, truncated to 128 bits).
const CASE1 = { key: Buffer.alloc(20, 0x0b), data: Buffer.from('Hi There') };
const CASE2 = { key: Buffer.from('Jefe'), data: Buffer.from('what do ya want for nothing?') };
const CASE5 = { key: Buffer.alloc(20, 0x0c), data: Buffer.from('Test With Truncation') };
const KAT: Array<[string, number, { key: Buffer; data: Buffer }, string]> = [
  ['SHA-224 #1', CKM.SHA224_HMAC, CASE1, '896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22'],
  ['SHA-256 #1', CKM.SHA256_HMAC, CASE1, 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  ['SHA-384 #1', CKM.SHA384_HMAC, CASE1, 'afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6'],
  ['SHA-512 #1', CKM.SHA512_HMAC, CASE1, '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
  ['SHA-256 #2', CKM.SHA256_HMAC, CASE2, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  ['SHA-512 #2', CKM.SHA512_HMAC, CASE2, '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
];

describe.each(KAT)('HMAC KAT %s', (_n, type, c, mac) => {
  it('signs the RFC 4231 value and verifies it', async () => {
    const key = secretKey(c.key, CKK.GENERIC_SECRET);
    expect((await fam.createOperation('sign', mech(type), key).oneShot(c.data)).toString('hex')).toBe(mac);
    expect(await fam.createOperation('verify', mech(type), key).oneShot(c.data, hex(mac))).toHaveLength(0);
  });
});

it('HMAC_GENERAL truncates (RFC 4231 case 5)', async () => {
  const key = secretKey(CASE5.key, CKK.GENERIC_SECRET);
  const op = fam.createOperation('sign', mech(CKM.SHA256_HMAC_GENERAL, general(16)), key);
  expect((await op.oneShot(CASE5.data)).toString('hex')).toBe('a3b6167473100ee06e0c796c2955552b');
  // The raw CK_MAC_GENERAL_PARAMS (one canonical CK_ULONG) is decoded too.
  const raw = fam.createOperation('sign', mech(CKM.SHA256_HMAC_GENERAL, { kind: 'bytes', data: ulongAttr(16) }), key);
  expect((await raw.oneShot(CASE5.data)).toString('hex')).toBe('a3b6167473100ee06e0c796c2955552b');
});

const ALL: Array<[string, number, number, string, number]> = [
  ['SHA-1', CKM.SHA_1_HMAC, CKM.SHA_1_HMAC_GENERAL, 'sha1', CKK.SHA_1_HMAC],
  ['SHA-224', CKM.SHA224_HMAC, CKM.SHA224_HMAC_GENERAL, 'sha224', CKK.SHA224_HMAC],
  ['SHA-256', CKM.SHA256_HMAC, CKM.SHA256_HMAC_GENERAL, 'sha256', CKK.SHA256_HMAC],
  ['SHA-384', CKM.SHA384_HMAC, CKM.SHA384_HMAC_GENERAL, 'sha384', CKK.SHA384_HMAC],
  ['SHA-512', CKM.SHA512_HMAC, CKM.SHA512_HMAC_GENERAL, 'sha512', CKK.SHA512_HMAC],
  ['SHA3-224', CKM.SHA3_224_HMAC, CKM.SHA3_224_HMAC_GENERAL, 'sha3-224', CKK.GENERIC_SECRET],
  ['SHA3-256', CKM.SHA3_256_HMAC, CKM.SHA3_256_HMAC_GENERAL, 'sha3-256', CKK.GENERIC_SECRET],
  ['SHA3-384', CKM.SHA3_384_HMAC, CKM.SHA3_384_HMAC_GENERAL, 'sha3-384', CKK.GENERIC_SECRET],
  ['SHA3-512', CKM.SHA3_512_HMAC, CKM.SHA3_512_HMAC_GENERAL, 'sha3-512', CKK.GENERIC_SECRET],
];

describe.each(ALL)('HMAC %s', (_n, type, gen, node, keyType) => {
  const key = secretKey(Buffer.alloc(32, 0x42), keyType);
  const data = Buffer.alloc(300, 0x17);
  const expected = createHmac(node, Buffer.alloc(32, 0x42)).update(data).digest();

  it('matches node:crypto, single- and multi-part', async () => {
    expect(await fam.createOperation('sign', mech(type), key).oneShot(data)).toEqual(expected);
    expect(await multiPart(fam.createOperation('sign', mech(type), key), data)).toEqual(expected);
    expect(await multiPart(fam.createOperation('verify', mech(type), key), data, expected)).toHaveLength(0);
  });

  it('general length truncates and bounds the length', async () => {
    expect(await fam.createOperation('sign', mech(gen, general(10)), key).oneShot(data)).toEqual(expected.subarray(0, 10));
    await expectRv(() => fam.createOperation('sign', mech(gen, general(expected.length + 1)), key), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(gen, general(0)), key), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(gen), key), CKR.MECHANISM_PARAM_INVALID);
  });

  it('reports a bad MAC and a bad MAC length distinctly', async () => {
    const bad = Buffer.from(expected);
    bad[0]! ^= 1;
    await expectRv(() => fam.createOperation('verify', mech(type), key).oneShot(data, bad), CKR.SIGNATURE_INVALID);
    await expectRv(() => fam.createOperation('verify', mech(type), key).oneShot(data, expected.subarray(1)), CKR.SIGNATURE_LEN_RANGE);
  });

  it('accepts generic secret keys and refuses other key types', async () => {
    await fam.createOperation('sign', mech(type), secretKey(Buffer.alloc(16, 1), CKK.GENERIC_SECRET)).oneShot(data);
    await expectRv(() => fam.createOperation('sign', mech(type), secretKey(Buffer.alloc(16, 1), CKK.AES)), CKR.KEY_TYPE_INCONSISTENT);
  });
});

describe('CKM_GENERIC_SECRET_KEY_GEN', () => {
  it('generates CKA_VALUE_LEN random bytes', async () => {
    const { attrs } = await fam.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), new Map([[CKA.VALUE_LEN, ulongAttr(48)]]));
    expect(attrs.get(CKA.VALUE)).toHaveLength(48);
    expect(readUlong(attrs.get(CKA.KEY_TYPE)!)).toBe(CKK.GENERIC_SECRET);
    expect(readUlong(attrs.get(CKA.VALUE_LEN)!)).toBe(48);
  });
  it('needs CKA_VALUE_LEN in range', async () => {
    await expectRv(() => fam.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), new Map()), CKR.TEMPLATE_INCOMPLETE);
    await expectRv(() => fam.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), new Map([[CKA.VALUE_LEN, ulongAttr(0)]])), CKR.KEY_SIZE_RANGE);
  });
  it('states its size range in bits, as PKCS#11 prescribes for this mechanism', () => {
    const i = fam.mechanisms().find((m) => m.type === CKM.GENERIC_SECRET_KEY_GEN)!;
    expect([i.minKeySize, i.maxKeySize]).toEqual([8, 32768]);
  });
});
