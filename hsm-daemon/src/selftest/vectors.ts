// Power-on known-answer tests. Each runs through the mechanism family that serves the
// algorithm (mechanisms/registry.ts defaultFamilies()), so the code tested is the code
// that serves. Every expected value is a published vector, cited at the test.
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { CKA, CKD, CKF, CKG, CKK, CKM, CKO, CKZ } from '../pkcs11/constants.generated.js';
import { ulongAttr } from '../mechanisms/attrs.js';
import { defaultFamilies } from '../mechanisms/registry.js';
import type { AttrMap, KeyRef, Mechanism, MechanismFamily, MechanismParam, OpKind } from '../mechanisms/types.js';
import { hmacDrbgKat } from '../drbg/kat.js';
import { RSA_KAT } from './rsa-kat-key.js';

export class KatFailure extends Error {
  constructor(readonly test: string, detail: string) {
    super(`${test}: ${detail}`);
    this.name = 'KatFailure';
  }
}

export interface KatContext {
  /** Fault injection (tests only): the named test's computed value gets one bit flipped. */
  corrupt?: string;
  families: MechanismFamily[];
}

export interface Kat {
  name: string;
  /** What the expected values come from. */
  source: string;
  run(ctx: KatContext): Promise<void>;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const NONE: MechanismParam = { kind: 'none' };
const mech = (type: number, param: MechanismParam = NONE): Mechanism => ({ type, param });
const key = (entries: Array<[number, Buffer]>): KeyRef => ({ handle: 0, attrs: new Map(entries) as AttrMap, cache: null });
const secret = (kt: number, value: Buffer): KeyRef =>
  key([
    [CKA.CLASS, ulongAttr(CKO.SECRET_KEY)],
    [CKA.KEY_TYPE, ulongAttr(kt)],
    [CKA.VALUE, value],
  ]);

function family(ctx: KatContext, type: number): MechanismFamily {
  const f = ctx.families.find((x) => x.mechanisms().some((m) => m.type === type));
  if (!f) throw new Error(`no family offers mechanism 0x${type.toString(16)}`);
  return f;
}

function expectEqual(ctx: KatContext, test: string, what: string, got: Buffer, expected: Buffer): void {
  const g = Buffer.from(got);
  if (ctx.corrupt === test && g.length) g[0]! ^= 1;
  if (g.length !== expected.length || !timingSafeEqual(g, expected)) throw new KatFailure(test, `${what} does not match the known answer`);
}

async function oneShot(ctx: KatContext, kind: OpKind, m: Mechanism, k: KeyRef | null, data: Buffer, sig?: Buffer): Promise<Buffer> {
  const f = family(ctx, m.type);
  if (!f.createOperation) throw new Error(`${f.name} has no operations`);
  return f.createOperation(kind, m, k).oneShot(data, sig);
}

/** Verify must accept the known signature and (fault path) reject a corrupted one. */
async function expectVerifies(ctx: KatContext, test: string, m: Mechanism, k: KeyRef, data: Buffer, sig: Buffer): Promise<void> {
  const s = Buffer.from(sig);
  if (ctx.corrupt === test) s[s.length - 1]! ^= 1;
  try {
    await oneShot(ctx, 'verify', m, k, data, s);
  } catch (e) {
    throw new KatFailure(test, `known signature did not verify (${(e as Error).message})`);
  }
}

function digestKat(name: string, ckm: number, expected: string, source: string): Kat {
  return {
    name,
    source,
    async run(ctx) {
      expectEqual(ctx, name, 'digest of "abc"', await oneShot(ctx, 'digest', mech(ckm), null, Buffer.from('abc')), hex(expected));
    },
  };
}

// ---- vectors ----

/** RFC 4231 §4.3 test case 2: key "Jefe", data "what do ya want for nothing?". */
const RFC4231_KEY = Buffer.from('Jefe');
const RFC4231_DATA = Buffer.from('what do ya want for nothing?');

/** NIST SP 800-38A Appendix F: AES-128 key and the first two plaintext blocks. */
const SP800_38A_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c');
const SP800_38A_PT = hex('6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51');

/** The GCM specification (McGrew & Viega), test case 4 (AES-128 with AAD), also used by CAVP gcmEncryptExtIV128. */
const GCM = {
  key: hex('feffe9928665731c6d6a8f9467308308'),
  iv: hex('cafebabefacedbaddecaf888'),
  aad: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
  pt: hex(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  ),
  ct: hex(
    '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091',
  ),
  tag: hex('5bc94fbc3221a5db94fae95ae7121a47'),
};

/** RFC 6979 Appendix A.2.5: ECDSA P-256, private key x, message "sample", SHA-256. */
const P256_OID = hex('06082a8648ce3d030107');
const RFC6979 = {
  d: hex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721'),
  q: hex(
    '04 60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6 7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299',
  ),
  sig: hex(
    'efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716 f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8',
  ),
};

/** RFC 8032 §7.1 TEST 1: Ed25519, empty message. */
const ED25519_OID = hex('06032b6570');
const RFC8032 = {
  secret: hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  pub: hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
  sig: hex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  ),
};

/** RFC 5869 Appendix A.1 (test case 1): HKDF-SHA-256. */
/** NIST CAVS 14.1 ECC CDH primitive test vectors (SP 800-56A Rev.3 §5.7.1.2),
 * KAS_ECC_CDH_PrimitiveTest.txt, [P-256] COUNT = 0. */
const ECC_CDH_P256 = {
  qCavs: hex('04 700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287 db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac'),
  dIut: hex('7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534'),
  z: hex('46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b'),
};
/** RFC 7748 §6.1: Alice's private key, Bob's public key, the shared secret K. */
const X25519_OID = hex('06032b656e');
const RFC7748 = {
  a: hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
  bPub: hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'),
  k: hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'),
};
/** NIST SP 800-38C Appendix C.2 (Example 2): K = 40..4f, 8-byte nonce, 16-byte A and P, Tlen = 48. */
const SP800_38C = {
  key: hex('404142434445464748494a4b4c4d4e4f'),
  nonce: hex('1011121314151617'),
  aad: hex('000102030405060708090a0b0c0d0e0f'),
  pt: hex('202122232425262728292a2b2c2d2e2f'),
  ct: hex('d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd'),
};

/** C_DeriveKey through the family with CKM_ECDH1_DERIVE, CKD_NULL: the raw shared secret. */
async function ecdhZ(ctx: KatContext, base: KeyRef, publicData: Buffer, len: number): Promise<Buffer> {
  const f = family(ctx, CKM.ECDH1_DERIVE);
  const out = await f.derive!(
    mech(CKM.ECDH1_DERIVE, { kind: 'ecdh', kdf: CKD.NULL, sharedData: Buffer.alloc(0), publicData }),
    base,
    new Map([[CKA.VALUE_LEN, ulongAttr(len)]]),
  );
  return out.get(CKA.VALUE) ?? Buffer.alloc(0);
}

const RFC5869 = {
  ikm: Buffer.alloc(22, 0x0b),
  salt: hex('000102030405060708090a0b0c'),
  info: hex('f0f1f2f3f4f5f6f7f8f9'),
  okm: hex('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865'),
};

const der = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, body.length]), body]);

function rsaKeys(): { priv: KeyRef; pub: KeyRef } {
  const r = RSA_KAT;
  const common: Array<[number, Buffer]> = [
    [CKA.KEY_TYPE, ulongAttr(CKK.RSA)],
    [CKA.MODULUS, hex(r.n)],
    [CKA.PUBLIC_EXPONENT, hex(r.e)],
  ];
  return {
    pub: key([[CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)], ...common]),
    priv: key([
      [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)],
      ...common,
      [CKA.PRIVATE_EXPONENT, hex(r.d)],
      [CKA.PRIME_1, hex(r.p)],
      [CKA.PRIME_2, hex(r.q)],
      [CKA.EXPONENT_1, hex(r.dp)],
      [CKA.EXPONENT_2, hex(r.dq)],
      [CKA.COEFFICIENT, hex(r.qi)],
    ]),
  };
}

export const KATS: readonly Kat[] = [
  digestKat('sha224', CKM.SHA224, '23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7', 'FIPS 180-4 example "abc" (NIST CSRC SHA224.pdf; CAVP SHAVS)'),
  digestKat('sha256', CKM.SHA256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'FIPS 180-4 example "abc" (NIST CSRC SHA256.pdf; CAVP SHAVS)'),
  digestKat(
    'sha384',
    CKM.SHA384,
    'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7',
    'FIPS 180-4 example "abc" (NIST CSRC SHA384.pdf)',
  ),
  digestKat(
    'sha512',
    CKM.SHA512,
    'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    'FIPS 180-4 example "abc" (NIST CSRC SHA512.pdf)',
  ),
  digestKat('sha3-256', CKM.SHA3_256, '3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532', 'FIPS 202 example "abc" (NIST CSRC SHA3-256_Msg0/abc examples)'),
  digestKat(
    'sha3-512',
    CKM.SHA3_512,
    'b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0',
    'FIPS 202 example "abc" (NIST CSRC SHA3-512 examples)',
  ),
  {
    name: 'hmac-sha256',
    source: 'RFC 4231 §4.3 test case 2',
    async run(ctx) {
      const k = secret(CKK.GENERIC_SECRET, RFC4231_KEY);
      const m = mech(CKM.SHA256_HMAC);
      const mac = await oneShot(ctx, 'sign', m, k, RFC4231_DATA);
      expectEqual(ctx, 'hmac-sha256', 'HMAC', mac, hex('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'));
      await oneShot(ctx, 'verify', m, k, RFC4231_DATA, mac);
    },
  },
  {
    name: 'hmac-sha512',
    source: 'RFC 4231 §4.3 test case 2',
    async run(ctx) {
      const mac = await oneShot(ctx, 'sign', mech(CKM.SHA512_HMAC), secret(CKK.GENERIC_SECRET, RFC4231_KEY), RFC4231_DATA);
      expectEqual(
        ctx,
        'hmac-sha512',
        'HMAC',
        mac,
        hex(
          '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
        ),
      );
    },
  },
  {
    name: 'aes-cbc',
    source: 'NIST SP 800-38A F.2.1 / F.2.2 (CBC-AES128)',
    async run(ctx) {
      const k = secret(CKK.AES, SP800_38A_KEY);
      const m = mech(CKM.AES_CBC, { kind: 'bytes', data: hex('000102030405060708090a0b0c0d0e0f') });
      const ct = hex('7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2');
      expectEqual(ctx, 'aes-cbc', 'ciphertext', await oneShot(ctx, 'encrypt', m, k, SP800_38A_PT), ct);
      expectEqual(ctx, 'aes-cbc', 'plaintext', await oneShot(ctx, 'decrypt', m, k, ct), SP800_38A_PT);
    },
  },
  {
    name: 'aes-ctr',
    source: 'NIST SP 800-38A F.5.1 / F.5.2 (CTR-AES128)',
    async run(ctx) {
      const k = secret(CKK.AES, SP800_38A_KEY);
      const m = mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 128, cb: hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff') });
      const ct = hex('874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff');
      expectEqual(ctx, 'aes-ctr', 'ciphertext', await oneShot(ctx, 'encrypt', m, k, SP800_38A_PT), ct);
      expectEqual(ctx, 'aes-ctr', 'plaintext', await oneShot(ctx, 'decrypt', m, k, ct), SP800_38A_PT);
    },
  },
  {
    name: 'aes-gcm',
    source: 'GCM specification (McGrew & Viega) test case 4, AES-128 with AAD',
    async run(ctx) {
      const k = secret(CKK.AES, GCM.key);
      const m = mech(CKM.AES_GCM, { kind: 'gcm', iv: GCM.iv, ivBits: 96, aad: GCM.aad, tagBits: 128 });
      const out = Buffer.concat([GCM.ct, GCM.tag]);
      expectEqual(ctx, 'aes-gcm', 'ciphertext||tag', await oneShot(ctx, 'encrypt', m, k, GCM.pt), out);
      expectEqual(ctx, 'aes-gcm', 'plaintext', await oneShot(ctx, 'decrypt', m, k, out), GCM.pt);
    },
  },
  {
    name: 'aes-kw',
    source: 'RFC 3394 §4.1 (128-bit key data with a 128-bit KEK)',
    async run(ctx) {
      const k = secret(CKK.AES, hex('000102030405060708090a0b0c0d0e0f'));
      const m = mech(CKM.AES_KEY_WRAP);
      const data = hex('00112233445566778899aabbccddeeff');
      const wrapped = hex('1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5');
      expectEqual(ctx, 'aes-kw', 'wrapped key', await oneShot(ctx, 'encrypt', m, k, data), wrapped);
      expectEqual(ctx, 'aes-kw', 'unwrapped key', await oneShot(ctx, 'decrypt', m, k, wrapped), data);
    },
  },
  {
    name: 'aes-cmac',
    source: 'NIST SP 800-38B Appendix D.1 example 2 (AES-128, Mlen = 128)',
    async run(ctx) {
      const mac = await oneShot(ctx, 'sign', mech(CKM.AES_CMAC), secret(CKK.AES, SP800_38A_KEY), SP800_38A_PT.subarray(0, 16));
      expectEqual(ctx, 'aes-cmac', 'CMAC', mac, hex('070a16b46b4d4144f79bdd9dd04a287c'));
    },
  },
  {
    name: 'rsa-pkcs1-sha256',
    source: 'fixed RSA-2048 key, signature computed by the OpenSSL CLI (rsa-kat-key.ts)',
    async run(ctx) {
      const { priv, pub } = rsaKeys();
      const m = mech(CKM.SHA256_RSA_PKCS);
      const msg = Buffer.from(RSA_KAT.message);
      expectEqual(ctx, 'rsa-pkcs1-sha256', 'signature', await oneShot(ctx, 'sign', m, priv, msg), hex(RSA_KAT.sig));
      await expectVerifies(ctx, 'rsa-pkcs1-sha256', m, pub, msg, hex(RSA_KAT.sig));
    },
  },
  {
    name: 'rsa-oaep-sha256',
    source: 'fixed RSA-2048 key, ciphertext computed by the OpenSSL CLI (rsa-kat-key.ts)',
    async run(ctx) {
      const { priv } = rsaKeys();
      const m = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: CKZ.DATA_SPECIFIED, sourceData: Buffer.alloc(0) });
      expectEqual(ctx, 'rsa-oaep-sha256', 'plaintext', await oneShot(ctx, 'decrypt', m, priv, hex(RSA_KAT.ct)), Buffer.from(RSA_KAT.oaepPlaintext));
    },
  },
  {
    name: 'ecdsa-p256',
    source: 'RFC 6979 A.2.5 (P-256, SHA-256, "sample") verify; then sign/verify with that key',
    async run(ctx) {
      const pub = key([
        [CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC)],
        [CKA.EC_PARAMS, P256_OID],
        [CKA.EC_POINT, der(0x04, RFC6979.q)],
      ]);
      const priv = key([
        [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC)],
        [CKA.EC_PARAMS, P256_OID],
        [CKA.VALUE, RFC6979.d],
      ]);
      const m = mech(CKM.ECDSA_SHA256);
      const msg = Buffer.from('sample');
      await expectVerifies(ctx, 'ecdsa-p256', m, pub, msg, RFC6979.sig);
      const sig = await oneShot(ctx, 'sign', m, priv, msg);
      await expectVerifies(ctx, 'ecdsa-p256', m, pub, msg, sig);
    },
  },
  {
    name: 'eddsa-ed25519',
    source: 'RFC 8032 §7.1 TEST 1',
    async run(ctx) {
      const priv = key([
        [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)],
        [CKA.EC_PARAMS, ED25519_OID],
        [CKA.VALUE, RFC8032.secret],
      ]);
      const pub = key([
        [CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)],
        [CKA.EC_PARAMS, ED25519_OID],
        [CKA.EC_POINT, der(0x04, RFC8032.pub)],
      ]);
      const m = mech(CKM.EDDSA);
      expectEqual(ctx, 'eddsa-ed25519', 'signature', await oneShot(ctx, 'sign', m, priv, Buffer.alloc(0)), RFC8032.sig);
      await expectVerifies(ctx, 'eddsa-ed25519', m, pub, Buffer.alloc(0), RFC8032.sig);
    },
  },
  {
    name: 'ecdh-p256',
    source: 'NIST CAVS 14.1 KAS ECC CDH primitive (SP 800-56A Rev.3 §5.7.1.2), P-256 COUNT 0',
    async run(ctx) {
      const priv = key([
        [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC)],
        [CKA.EC_PARAMS, P256_OID],
        [CKA.VALUE, ECC_CDH_P256.dIut],
      ]);
      expectEqual(ctx, 'ecdh-p256', 'Z', await ecdhZ(ctx, priv, ECC_CDH_P256.qCavs, 32), ECC_CDH_P256.z);
    },
  },
  {
    name: 'x25519',
    source: 'RFC 7748 §6.1 (Alice\'s private key with Bob\'s public key gives K)',
    async run(ctx) {
      const priv = key([
        [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)],
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)],
        [CKA.EC_PARAMS, X25519_OID],
        [CKA.VALUE, RFC7748.a],
      ]);
      expectEqual(ctx, 'x25519', 'K', await ecdhZ(ctx, priv, RFC7748.bPub, 32), RFC7748.k);
    },
  },
  {
    name: 'aes-ccm',
    source: 'NIST SP 800-38C Appendix C, Example 2 (encrypt, then decrypt with the tag check)',
    async run(ctx) {
      const m = mech(CKM.AES_CCM, { kind: 'ccm', dataLen: SP800_38C.pt.length, nonce: SP800_38C.nonce, aad: SP800_38C.aad, macLen: 6 });
      const k = secret(CKK.AES, SP800_38C.key);
      expectEqual(ctx, 'aes-ccm', 'ciphertext', await oneShot(ctx, 'encrypt', m, k, SP800_38C.pt), SP800_38C.ct);
      expectEqual(ctx, 'aes-ccm', 'plaintext', await oneShot(ctx, 'decrypt', m, k, SP800_38C.ct), SP800_38C.pt);
    },
  },
  {
    name: 'hkdf-sha256',
    source: 'RFC 5869 Appendix A.1 (test case 1)',
    async run(ctx) {
      const f = family(ctx, CKM.HKDF_DERIVE);
      const out = await f.derive!(
        mech(CKM.HKDF_DERIVE, {
          kind: 'hkdf',
          extract: true,
          expand: true,
          prf: CKM.SHA256,
          saltType: CKF.HKDF_SALT_DATA,
          salt: RFC5869.salt,
          saltKey: 0,
          info: RFC5869.info,
        }),
        secret(CKK.GENERIC_SECRET, RFC5869.ikm),
        new Map([[CKA.VALUE_LEN, ulongAttr(RFC5869.okm.length)]]),
      );
      expectEqual(ctx, 'hkdf-sha256', 'OKM', out.get(CKA.VALUE) ?? Buffer.alloc(0), RFC5869.okm);
    },
  },
  {
    // No family offers CKM_PKCS5_PBKD2 yet; PBKDF2 serves the PIN verifiers and token
    // wrapping keys (token/pin.ts), which call node:crypto pbkdf2 exactly like this.
    name: 'pbkdf2-sha256',
    source: 'RFC 7914 §11 (PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64)',
    async run(ctx) {
      const dk = pbkdf2Sync('passwd', 'salt', 1, 64, 'sha256');
      expectEqual(
        ctx,
        'pbkdf2-sha256',
        'derived key',
        dk,
        hex('55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783'),
      );
    },
  },
  {
    name: 'drbg',
    source: 'NIST CAVP drbgvectors_pr_false HMAC_DRBG.rsp [SHA-256] COUNT 0 (drbg/kat.ts)',
    async run(ctx) {
      if (!hmacDrbgKat(ctx.corrupt === 'drbg')) throw new KatFailure('drbg', 'HMAC_DRBG output does not match the CAVP vector');
    },
  },
];

export function katContext(corrupt?: string): KatContext {
  return { corrupt, families: defaultFamilies() };
}
