import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesFamily } from '../../../hsm-daemon/src/mechanisms/aes.js';
import { readUlong, ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { CKA, CKF, CKK, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { MechanismParam } from '../../../hsm-daemon/src/mechanisms/types.js';
import { bytes, expectRv, hex, mech, multiPart, secretKey } from './helpers.js';

const fam = new AesFamily();
const gcm = (iv: Buffer, aad: Buffer, tagBits = 128): MechanismParam => ({ kind: 'gcm', iv, ivBits: iv.length * 8, aad, tagBits });
const ctr = (cb: Buffer, counterBits = 128): MechanismParam => ({ kind: 'ctr', counterBits, cb });

interface CipherKat {
  name: string;
  type: number;
  key: string;
  param: MechanismParam;
  pt: string;
  ct: string;
}

const GCM_K = 'feffe9928665731c6d6a8f9467308308';
const GCM_IV = hex('cafebabefacedbaddecaf888');
const GCM_P =
  'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255';
const GCM_A = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
const SP38A_K = '2b7e151628aed2a6abf7158809cf4f3c';
const SP38A_P = '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51';

// Known answers: GCM spec (McGrew & Viega) test cases 2, 3, 4, 16; SP 800-38A F.1.1,
// F.2.1, F.5.1; RFC 3394 §4.1, §4.6; RFC 5649 §6.
const KATS: CipherKat[] = [
  { name: 'GCM TC2', type: CKM.AES_GCM, key: '00'.repeat(16), param: gcm(Buffer.alloc(12), Buffer.alloc(0)), pt: '00'.repeat(16), ct: '0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf' },
  {
    name: 'GCM TC3',
    type: CKM.AES_GCM,
    key: GCM_K,
    param: gcm(GCM_IV, Buffer.alloc(0)),
    pt: GCM_P,
    ct: '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985' + '4d5c2af327cd64a62cf35abd2ba6fab4',
  },
  {
    name: 'GCM TC4 (AAD)',
    type: CKM.AES_GCM,
    key: GCM_K,
    param: gcm(GCM_IV, GCM_A),
    pt: GCM_P.slice(0, 120),
    ct: '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091' + '5bc94fbc3221a5db94fae95ae7121a47',
  },
  {
    name: 'GCM TC4, 96-bit tag',
    type: CKM.AES_GCM,
    key: GCM_K,
    param: gcm(GCM_IV, GCM_A, 96),
    pt: GCM_P.slice(0, 120),
    ct: '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091' + '5bc94fbc3221a5db94fae95a',
  },
  {
    name: 'GCM TC16 (AES-256)',
    type: CKM.AES_GCM,
    key: GCM_K + GCM_K,
    param: gcm(GCM_IV, GCM_A),
    pt: GCM_P.slice(0, 120),
    ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662' + '76fc6ece0f4e1768cddf8853bb2d551b',
  },
  { name: 'ECB F.1.1', type: CKM.AES_ECB, key: SP38A_K, param: { kind: 'none' }, pt: SP38A_P, ct: '3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf' },
  {
    name: 'CBC F.2.1',
    type: CKM.AES_CBC,
    key: SP38A_K,
    param: bytes(hex('000102030405060708090a0b0c0d0e0f')),
    pt: SP38A_P,
    ct: '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2',
  },
  {
    name: 'CTR F.5.1',
    type: CKM.AES_CTR,
    key: SP38A_K,
    param: ctr(hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')),
    pt: SP38A_P,
    ct: '874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff',
  },
  {
    name: 'KW RFC 3394 4.1',
    type: CKM.AES_KEY_WRAP,
    key: '000102030405060708090a0b0c0d0e0f',
    param: { kind: 'none' },
    pt: '00112233445566778899aabbccddeeff',
    ct: '1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5',
  },
  {
    name: 'KW RFC 3394 4.6',
    type: CKM.AES_KEY_WRAP,
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    param: { kind: 'none' },
    pt: '00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f',
    ct: '28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21',
  },
  {
    name: 'KWP RFC 5649 (20 bytes)',
    type: CKM.AES_KEY_WRAP_KWP,
    key: '5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8',
    param: { kind: 'none' },
    pt: 'c37b7e6492584340bed12207808941155068f738',
    ct: '138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a',
  },
  {
    name: 'KWP RFC 5649 (7 bytes) as CKM_AES_KEY_WRAP_PAD',
    type: CKM.AES_KEY_WRAP_PAD,
    key: '5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8',
    param: { kind: 'none' },
    pt: '466f7250617369',
    ct: 'afbeb0f07dfbf5419200f2ccb50bb24f',
  },
];

describe.each(KATS)('AES encrypt/decrypt KAT: $name', ({ type, key, param, pt, ct }) => {
  const k = secretKey(hex(key));
  it('encrypts to the published value, single- and multi-part', async () => {
    expect((await fam.createOperation('encrypt', mech(type, param), k).oneShot(hex(pt))).toString('hex')).toBe(ct);
    expect((await multiPart(fam.createOperation('encrypt', mech(type, param), k), hex(pt))).toString('hex')).toBe(ct);
  });
  it('decrypts back, single- and multi-part', async () => {
    expect((await fam.createOperation('decrypt', mech(type, param), k).oneShot(hex(ct))).toString('hex')).toBe(pt);
    expect((await multiPart(fam.createOperation('decrypt', mech(type, param), k), hex(ct))).toString('hex')).toBe(pt);
  });
});

// Round trips over lengths that exercise partial blocks, against node:crypto where the
// mode has a direct node equivalent.
const ROUND: Array<{ name: string; type: number; param: () => MechanismParam; lens: number[]; node?: (k: Buffer, p: MechanismParam, d: Buffer) => Buffer }> = [
  {
    name: 'CBC_PAD',
    type: CKM.AES_CBC_PAD,
    param: () => bytes(Buffer.alloc(16, 9)),
    lens: [0, 1, 15, 16, 17, 100],
    node: (k, _p, d) => {
      const c = createCipheriv(`aes-${k.length * 8}-cbc`, k, Buffer.alloc(16, 9));
      return Buffer.concat([c.update(d), c.final()]);
    },
  },
  { name: 'CTR', type: CKM.AES_CTR, param: () => ctr(Buffer.alloc(16, 3), 32), lens: [0, 1, 15, 16, 17, 100] },
  { name: 'GCM', type: CKM.AES_GCM, param: () => gcm(Buffer.alloc(12, 5), Buffer.from('hdr')), lens: [0, 1, 15, 16, 17, 100] },
  { name: 'GCM 32-bit tag, 1-byte IV', type: CKM.AES_GCM, param: () => gcm(Buffer.alloc(1, 5), Buffer.alloc(0), 32), lens: [0, 33] },
  { name: 'ECB', type: CKM.AES_ECB, param: () => ({ kind: 'none' }), lens: [0, 16, 64] },
  { name: 'KWP', type: CKM.AES_KEY_WRAP_KWP, param: () => ({ kind: 'none' }), lens: [1, 8, 9, 64] },
];

describe.each(ROUND)('AES round trip $name', ({ type, param, lens, node }) => {
  it.each([16, 24, 32])('key %i bytes', async (klen) => {
    const kv = Buffer.alloc(klen, 0x5a);
    const k = secretKey(kv);
    for (const len of lens) {
      const data = Buffer.alloc(len, len & 0xff);
      const c = await fam.createOperation('encrypt', mech(type, param()), k).oneShot(data);
      expect(await multiPart(fam.createOperation('encrypt', mech(type, param()), k), data)).toEqual(c);
      if (node) expect(c).toEqual(node(kv, param(), data));
      expect(await fam.createOperation('decrypt', mech(type, param()), k).oneShot(c)).toEqual(data);
      expect(await multiPart(fam.createOperation('decrypt', mech(type, param()), k), c)).toEqual(data);
    }
  });
});

describe('AES GCM', () => {
  const k = secretKey(Buffer.alloc(16, 1));
  it('multi-part decrypt releases no plaintext before the tag verifies', async () => {
    const p = gcm(Buffer.alloc(12), Buffer.alloc(0));
    const c = await fam.createOperation('encrypt', mech(CKM.AES_GCM, p), k).oneShot(Buffer.alloc(64, 7));
    const op = fam.createOperation('decrypt', mech(CKM.AES_GCM, p), k);
    expect(await op.update(c.subarray(0, 40))).toHaveLength(0);
    expect(await op.update(c.subarray(40))).toHaveLength(0);
    expect(await op.final()).toEqual(Buffer.alloc(64, 7));
  });
  it('a wrong tag is CKR_ENCRYPTED_DATA_INVALID', async () => {
    const p = gcm(Buffer.alloc(12), Buffer.from('aad'));
    const c = await fam.createOperation('encrypt', mech(CKM.AES_GCM, p), k).oneShot(Buffer.alloc(20, 7));
    c[c.length - 1]! ^= 1;
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_GCM, p), k).oneShot(c), CKR.ENCRYPTED_DATA_INVALID);
    const op = fam.createOperation('decrypt', mech(CKM.AES_GCM, p), k);
    await op.update(c);
    await expectRv(() => op.final(), CKR.ENCRYPTED_DATA_INVALID);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_GCM, p), k).oneShot(c.subarray(0, 15)), CKR.ENCRYPTED_DATA_LEN_RANGE);
  });
  it.each([0, 8, 16, 24, 72, 100, 136])('tag of %i bits is CKR_MECHANISM_PARAM_INVALID', async (bits) => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_GCM, gcm(Buffer.alloc(12), Buffer.alloc(0), bits)), k), CKR.MECHANISM_PARAM_INVALID);
  });
  it('an empty IV or a non-GCM parameter is CKR_MECHANISM_PARAM_INVALID', async () => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_GCM, gcm(Buffer.alloc(0), Buffer.alloc(0))), k), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_GCM, bytes(Buffer.alloc(12))), k), CKR.MECHANISM_PARAM_INVALID);
  });
});

describe('AES length and parameter errors', () => {
  const k = secretKey(Buffer.alloc(16, 1));
  const iv = bytes(Buffer.alloc(16));
  const cases: Array<[string, number, MechanismParam]> = [
    ['ECB', CKM.AES_ECB, { kind: 'none' }],
    ['CBC', CKM.AES_CBC, iv],
  ];
  it.each(cases)('%s: unaligned input is DATA_LEN_RANGE / ENCRYPTED_DATA_LEN_RANGE', async (_n, type, p) => {
    await expectRv(() => fam.createOperation('encrypt', mech(type, p), k).oneShot(Buffer.alloc(15)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('decrypt', mech(type, p), k).oneShot(Buffer.alloc(17)), CKR.ENCRYPTED_DATA_LEN_RANGE);
    const op = fam.createOperation('encrypt', mech(type, p), k);
    await op.update(Buffer.alloc(20));
    await expectRv(() => op.final(), CKR.DATA_LEN_RANGE);
  });
  it('CBC_PAD: bad padding is ENCRYPTED_DATA_INVALID, bad length ENCRYPTED_DATA_LEN_RANGE', async () => {
    const c = await fam.createOperation('encrypt', mech(CKM.AES_CBC, iv), k).oneShot(Buffer.alloc(32, 0));
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_CBC_PAD, iv), k).oneShot(c), CKR.ENCRYPTED_DATA_INVALID);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_CBC_PAD, iv), k).oneShot(c.subarray(0, 31)), CKR.ENCRYPTED_DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_CBC_PAD, iv), k).oneShot(Buffer.alloc(0)), CKR.ENCRYPTED_DATA_LEN_RANGE);
  });
  it('CBC IV must be 16 bytes', async () => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_CBC, bytes(Buffer.alloc(8))), k), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_CBC), k), CKR.MECHANISM_PARAM_INVALID);
  });
  it('CTR refuses to wrap the counter portion', async () => {
    const p = ctr(Buffer.alloc(16, 0), 1); // counter 0 of a 1-bit counter: two blocks
    expect(await fam.createOperation('encrypt', mech(CKM.AES_CTR, p), k).oneShot(Buffer.alloc(32))).toHaveLength(32);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_CTR, p), k).oneShot(Buffer.alloc(33)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_CTR, ctr(Buffer.alloc(16), 0)), k), CKR.MECHANISM_PARAM_INVALID);
  });
  it('CTR accepts the raw canonical CK_AES_CTR_PARAMS', async () => {
    const raw = Buffer.concat([ulongAttr(128), hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')]);
    const c = await fam.createOperation('encrypt', mech(CKM.AES_CTR, bytes(raw)), secretKey(hex(SP38A_K))).oneShot(hex(SP38A_P).subarray(0, 16));
    expect(c.toString('hex')).toBe('874d6191b620e3261bef6864990db6ce');
  });
  it('key wrap: bad lengths and a corrupted wrapping', async () => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_KEY_WRAP), k).oneShot(Buffer.alloc(12)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_KEY_WRAP), k).oneShot(Buffer.alloc(20)), CKR.ENCRYPTED_DATA_LEN_RANGE);
    const w = await fam.createOperation('encrypt', mech(CKM.AES_KEY_WRAP), k).oneShot(Buffer.alloc(16, 3));
    w[3]! ^= 1;
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.AES_KEY_WRAP), k).oneShot(w), CKR.ENCRYPTED_DATA_INVALID);
  });
  it('key type and size are checked', async () => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_ECB), secretKey(Buffer.alloc(16), CKK.GENERIC_SECRET)), CKR.KEY_TYPE_INCONSISTENT);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_ECB), secretKey(Buffer.alloc(20))), CKR.KEY_SIZE_RANGE);
    await expectRv(() => fam.createOperation('sign', mech(CKM.AES_GCM, gcm(Buffer.alloc(12), Buffer.alloc(0))), k), CKR.MECHANISM_INVALID);
  });
});

// NIST SP 800-38B Appendix D.1 (AES-128) examples 1-4.
const CMAC_MSG = hex(SP38A_P + '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710');
const CMAC_KATS: Array<[number, string]> = [
  [0, 'bb1d6929e95937287fa37d129b756746'],
  [16, '070a16b46b4d4144f79bdd9dd04a287c'],
  [40, 'dfa66747de9ae63030ca32611497c827'],
  [64, '51f0bebf7e3b9d92fc49741779363cfe'],
];

describe.each(CMAC_KATS)('AES CMAC SP 800-38B, %i-byte message', (len, tag) => {
  const k = secretKey(hex(SP38A_K));
  const m = CMAC_MSG.subarray(0, len);
  it('signs single- and multi-part, verifies, and truncates with CMAC_GENERAL', async () => {
    expect((await fam.createOperation('sign', mech(CKM.AES_CMAC), k).oneShot(m)).toString('hex')).toBe(tag);
    expect((await multiPart(fam.createOperation('sign', mech(CKM.AES_CMAC), k), m)).toString('hex')).toBe(tag);
    expect(await fam.createOperation('verify', mech(CKM.AES_CMAC), k).oneShot(m, hex(tag))).toHaveLength(0);
    const g = fam.createOperation('sign', mech(CKM.AES_CMAC_GENERAL, { kind: 'macGeneral', macLen: 8 }), k);
    expect((await g.oneShot(m)).toString('hex')).toBe(tag.slice(0, 16));
    await expectRv(() => fam.createOperation('verify', mech(CKM.AES_CMAC), k).oneShot(m, hex(tag).subarray(1)), CKR.SIGNATURE_LEN_RANGE);
    const bad = hex(tag);
    bad[5]! ^= 0x80;
    await expectRv(() => fam.createOperation('verify', mech(CKM.AES_CMAC), k).oneShot(m, bad), CKR.SIGNATURE_INVALID);
  });
});

describe('AES key generation and wrap/unwrap', () => {
  it.each([16, 24, 32])('generates a %i-byte key', async (len) => {
    const { attrs } = await fam.generateKey(mech(CKM.AES_KEY_GEN), new Map([[CKA.VALUE_LEN, ulongAttr(len)]]));
    expect(attrs.get(CKA.VALUE)).toHaveLength(len);
    expect(readUlong(attrs.get(CKA.KEY_TYPE)!)).toBe(CKK.AES);
  });
  it('refuses other sizes and a missing CKA_VALUE_LEN', async () => {
    await expectRv(() => fam.generateKey(mech(CKM.AES_KEY_GEN), new Map([[CKA.VALUE_LEN, ulongAttr(20)]])), CKR.ATTRIBUTE_VALUE_INVALID);
    await expectRv(() => fam.generateKey(mech(CKM.AES_KEY_GEN), new Map()), CKR.TEMPLATE_INCOMPLETE);
  });
  it.each([
    ['KW', CKM.AES_KEY_WRAP, { kind: 'none' } as MechanismParam],
    ['KWP', CKM.AES_KEY_WRAP_KWP, { kind: 'none' } as MechanismParam],
    ['GCM', CKM.AES_GCM, gcm(Buffer.alloc(12, 1), Buffer.alloc(0))],
    ['CBC_PAD', CKM.AES_CBC_PAD, bytes(Buffer.alloc(16))],
  ])('%s wraps and unwraps a secret key', async (_n, type, p) => {
    const kek = secretKey(Buffer.alloc(32, 0x11));
    const target = secretKey(Buffer.alloc(24, 0x22), CKK.GENERIC_SECRET);
    const w = await fam.wrap(mech(type, p), kek, target);
    const u = await fam.unwrap(mech(type, p), kek, w, new Map());
    expect(u.get(CKA.VALUE)).toEqual(Buffer.alloc(24, 0x22));
    w[w.length - 1]! ^= 1;
    if (type !== CKM.AES_CBC_PAD) await expectRv(() => fam.unwrap(mech(type, p), kek, w, new Map()), CKR.WRAPPED_KEY_INVALID);
  });
  it('unwrapping with a non-AES key is UNWRAPPING_KEY_TYPE_INCONSISTENT', async () => {
    await expectRv(() => fam.unwrap(mech(CKM.AES_KEY_WRAP), secretKey(Buffer.alloc(16), CKK.GENERIC_SECRET), Buffer.alloc(24), new Map()), CKR.UNWRAPPING_KEY_TYPE_INCONSISTENT);
  });
  it('mechanism info is in bytes with the expected flags', () => {
    const gcmInfo = fam.mechanisms().find((m) => m.type === CKM.AES_GCM)!;
    expect(gcmInfo).toEqual({ type: CKM.AES_GCM, minKeySize: 16, maxKeySize: 32, flags: CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP });
    expect(fam.mechanisms().find((m) => m.type === CKM.AES_KEY_GEN)!.flags).toBe(CKF.GENERATE);
  });
});
