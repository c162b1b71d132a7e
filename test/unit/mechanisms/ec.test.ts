import { createECDH, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { EcFamily } from '../../../hsm-daemon/src/mechanisms/ec.js';
import { CURVES, bytesToInt, ecdsaSignDigest, ecdsaVerifyDigest } from '../../../hsm-daemon/src/mechanisms/ecmath.js';
import { readUlong, ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { CKA, CKD, CKF, CKK, CKM, CKO, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { AttrMap, KeyRef } from '../../../hsm-daemon/src/mechanisms/types.js';
import { expectRv, hex, keyRef, mech, multiPart, objectFrom } from './helpers.js';

const fam = new EcFamily();

interface Pair {
  pub: KeyRef;
  priv: KeyRef;
  pubAttrs: AttrMap;
  privAttrs: AttrMap;
  /** Independent node views of the generated key. */
  nodePub: KeyObject;
  nodePriv: KeyObject;
}

function nodeKeysFrom(curveJwk: string, size: number, pubAttrs: AttrMap, privAttrs: AttrMap): { nodePub: KeyObject; nodePriv: KeyObject } {
  const ecPoint = pubAttrs.get(CKA.EC_POINT)!;
  expect(ecPoint[0]).toBe(0x04); // DER OCTET STRING
  const pt = ecPoint.subarray(ecPoint.length - (1 + 2 * size));
  expect(pt[0]).toBe(0x04); // uncompressed
  const jwk = { kty: 'EC', crv: curveJwk, x: pt.subarray(1, 1 + size).toString('base64url'), y: pt.subarray(1 + size).toString('base64url') };
  const d = privAttrs.get(CKA.VALUE)!;
  expect(d).toHaveLength(size);
  return { nodePub: createPublicKey({ key: jwk, format: 'jwk' }), nodePriv: createPrivateKey({ key: { ...jwk, d: d.toString('base64url') }, format: 'jwk' }) };
}

const CURVE_TABLE: Array<[string, number, string]> = [
  ['P-256', 0, 'sha256'],
  ['P-384', 1, 'sha384'],
  ['P-521', 2, 'sha512'],
];

const pairs = new Map<string, Pair>();

beforeAll(async () => {
  for (const [name, idx] of CURVE_TABLE) {
    const c = CURVES[idx]!;
    const { publicKey, privateKey } = await fam.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, c.oid]]), new Map());
    pairs.set(name, {
      pub: objectFrom(publicKey, CKO.PUBLIC_KEY),
      priv: objectFrom(privateKey, CKO.PRIVATE_KEY),
      pubAttrs: publicKey,
      privAttrs: privateKey,
      ...nodeKeysFrom(name, c.size, publicKey, privateKey),
    });
  }
});

describe.each(CURVE_TABLE)('EC %s', (name, idx, hashName) => {
  const c = CURVES[idx]!;
  const msg = Buffer.from('the quick brown fox');

  it('key pair attributes are PKCS#11-shaped', () => {
    const p = pairs.get(name)!;
    expect(readUlong(p.pubAttrs.get(CKA.KEY_TYPE)!)).toBe(CKK.EC);
    expect(p.pubAttrs.get(CKA.EC_PARAMS)).toEqual(c.oid);
    expect(p.pubAttrs.get(CKA.EC_POINT)).toHaveLength(1 + 2 * c.size + (c.size > 60 ? 3 : 2));
    expect(p.privAttrs.get(CKA.EC_PARAMS)).toEqual(c.oid);
  });

  it('curve constants agree with OpenSSL (G = 1·G, -G = (n-1)·G)', () => {
    const e = createECDH(c.name);
    e.setPrivateKey(Buffer.from([1]));
    const g = e.getPublicKey();
    expect(bytesToInt(g.subarray(1, 1 + c.size))).toBe(c.gx);
    expect(bytesToInt(g.subarray(1 + c.size))).toBe(c.gy);
    e.setPrivateKey(Buffer.from((c.n - 1n).toString(16).padStart(2 * c.size, '0'), 'hex'));
    expect(bytesToInt(e.getPublicKey().subarray(1 + c.size))).toBe(c.p - c.gy);
  });

  it(`raw CKM_ECDSA over a ${hashName} digest verifies with node (p1363 and DER)`, async () => {
    const p = pairs.get(name)!;
    const digest = createHash(hashName).update(msg).digest();
    const sig = await fam.createOperation('sign', mech(CKM.ECDSA), p.priv).oneShot(digest);
    expect(sig).toHaveLength(2 * c.size);
    expect(verify(hashName, msg, { key: p.nodePub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    // Same signature in DER form, for verifiers that only take DER.
    const der = derSig(sig, c.size);
    expect(verify(hashName, msg, p.nodePub, der)).toBe(true);
    expect(await fam.createOperation('verify', mech(CKM.ECDSA), p.pub).oneShot(digest, sig)).toHaveLength(0);
  });

  it('raw CKM_ECDSA truncates a digest longer than the order (SHA-512 input)', async () => {
    const p = pairs.get(name)!;
    const digest = createHash('sha512').update(msg).digest();
    const sig = await fam.createOperation('sign', mech(CKM.ECDSA), p.priv).oneShot(digest);
    expect(verify('sha512', msg, { key: p.nodePub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
  });

  it('raw CKM_ECDSA verifies signatures made by node', async () => {
    const p = pairs.get(name)!;
    const sig = sign(hashName, msg, { key: p.nodePriv, dsaEncoding: 'ieee-p1363' });
    const digest = createHash(hashName).update(msg).digest();
    expect(await fam.createOperation('verify', mech(CKM.ECDSA), p.pub).oneShot(digest, sig)).toHaveLength(0);
    const bad = Buffer.from(sig);
    bad[bad.length - 1]! ^= 1;
    await expectRv(() => fam.createOperation('verify', mech(CKM.ECDSA), p.pub).oneShot(digest, bad), CKR.SIGNATURE_INVALID);
    await expectRv(() => fam.createOperation('verify', mech(CKM.ECDSA), p.pub).oneShot(digest, sig.subarray(2)), CKR.SIGNATURE_LEN_RANGE);
  });

  const HASHED: Array<[string, number, string]> = [
    ['ECDSA_SHA1', CKM.ECDSA_SHA1, 'sha1'],
    ['ECDSA_SHA224', CKM.ECDSA_SHA224, 'sha224'],
    ['ECDSA_SHA256', CKM.ECDSA_SHA256, 'sha256'],
    ['ECDSA_SHA384', CKM.ECDSA_SHA384, 'sha384'],
    ['ECDSA_SHA512', CKM.ECDSA_SHA512, 'sha512'],
    ['ECDSA_SHA3_256', CKM.ECDSA_SHA3_256, 'sha3-256'],
    ['ECDSA_SHA3_512', CKM.ECDSA_SHA3_512, 'sha3-512'],
  ];
  it.each(HASHED)('%s: sign/verify single- and multi-part, cross-checked with node', async (_m, type, h) => {
    const p = pairs.get(name)!;
    const data = Buffer.alloc(200, 0x33);
    const s1 = await fam.createOperation('sign', mech(type), p.priv).oneShot(data);
    const s2 = await multiPart(fam.createOperation('sign', mech(type), p.priv), data);
    for (const s of [s1, s2]) expect(verify(h, data, { key: p.nodePub, dsaEncoding: 'ieee-p1363' }, s)).toBe(true);
    const ns = sign(h, data, { key: p.nodePriv, dsaEncoding: 'ieee-p1363' });
    expect(await multiPart(fam.createOperation('verify', mech(type), p.pub), data, ns)).toHaveLength(0);
    const other = Buffer.from(data);
    other[0]! ^= 1;
    await expectRv(() => fam.createOperation('verify', mech(type), p.pub).oneShot(other, ns), CKR.SIGNATURE_INVALID);
    await expectRv(() => fam.createOperation('verify', mech(type), p.pub).oneShot(data, Buffer.concat([ns, Buffer.alloc(1)])), CKR.SIGNATURE_LEN_RANGE);
  });

  it('accepts a raw or compressed point on import', async () => {
    const p = pairs.get(name)!;
    const der = p.pubAttrs.get(CKA.EC_POINT)!;
    const raw = der.subarray(der.length - (1 + 2 * c.size));
    const compressed = Buffer.concat([Buffer.from([2 + Number(bytesToInt(raw.subarray(1 + c.size)) & 1n)]), raw.subarray(1, 1 + c.size)]);
    const digest = createHash('sha256').update(msg).digest();
    const sig = await fam.createOperation('sign', mech(CKM.ECDSA), p.priv).oneShot(digest);
    for (const pt of [raw, compressed]) {
      const k = keyRef(new Map([...p.pubAttrs, [CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)], [CKA.EC_POINT, pt]]));
      expect(await fam.createOperation('verify', mech(CKM.ECDSA), k).oneShot(digest, sig)).toHaveLength(0);
    }
  });

  it('ECDH1_DERIVE agrees with node ECDH (CKD_NULL) and applies the X9.63 KDF', async () => {
    const p = pairs.get(name)!;
    const peer = createECDH(c.name);
    peer.generateKeys();
    const myPoint = p.pubAttrs.get(CKA.EC_POINT)!.subarray(-(1 + 2 * c.size));
    const z = peer.computeSecret(myPoint);
    for (const type of [CKM.ECDH1_DERIVE, CKM.ECDH1_COFACTOR_DERIVE]) {
      const param = { kind: 'ecdh' as const, kdf: CKD.NULL, sharedData: Buffer.alloc(0), publicData: peer.getPublicKey() };
      const out = await fam.derive(mech(type, param), p.priv, new Map());
      expect(out.get(CKA.VALUE)).toEqual(z);
    }
    const shared = Buffer.from('info');
    const kdf = { kind: 'ecdh' as const, kdf: CKD.SHA256_KDF, sharedData: shared, publicData: peer.getPublicKey() };
    const aes = await fam.derive(mech(CKM.ECDH1_DERIVE, kdf), p.priv, new Map([[CKA.KEY_TYPE, ulongAttr(CKK.AES)], [CKA.VALUE_LEN, ulongAttr(32)]]));
    const ctr = Buffer.from([0, 0, 0, 1]);
    expect(aes.get(CKA.VALUE)).toEqual(createHash('sha256').update(z).update(ctr).update(shared).digest());
    const bad = { ...kdf, publicData: Buffer.alloc(1 + 2 * c.size, 4) };
    await expectRv(() => fam.derive(mech(CKM.ECDH1_DERIVE, bad), p.priv, new Map()), CKR.MECHANISM_PARAM_INVALID);
  });
});

function derSig(p1363: Buffer, size: number): Buffer {
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([2, v.length]), v]);
  };
  const body = Buffer.concat([int(p1363.subarray(0, size)), int(p1363.subarray(size))]);
  return Buffer.concat([Buffer.from(body.length < 128 ? [0x30, body.length] : [0x30, 0x81, body.length]), body]);
}

describe('ECDSA known answers and errors', () => {
  it('RFC 6979 A.2.5: P-256, SHA-256, "sample" (unhedged)', () => {
    const d = BigInt('0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721');
    const sig = ecdsaSignDigest(CURVES[0]!, d, createHash('sha256').update('sample').digest(), false);
    expect(sig.toString('hex')).toBe(
      'efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716' + 'f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8',
    );
  });

  it('hedged raw signatures differ each time but all verify', async () => {
    const c = CURVES[0]!;
    const e = createECDH(c.name);
    e.generateKeys();
    const d = bytesToInt(e.getPrivateKey());
    const pt = e.getPublicKey();
    const dg = createHash('sha256').update('x').digest();
    const a = ecdsaSignDigest(c, d, dg);
    const b = ecdsaSignDigest(c, d, dg);
    expect(a.equals(b)).toBe(false);
    for (const s of [a, b]) expect(await ecdsaVerifyDigest(c, bytesToInt(pt.subarray(1, 33)), bytesToInt(pt.subarray(33)), dg, s)).toBe(true);
  });

  it('errors: key type, missing private key, unsupported curve, raw input length', async () => {
    const p = pairs.get('P-256')!;
    const dg = Buffer.alloc(32, 1);
    await expectRv(() => fam.createOperation('sign', mech(CKM.ECDSA), p.pub), CKR.KEY_TYPE_INCONSISTENT);
    const rsaish = keyRef(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.RSA)]]));
    await expectRv(() => fam.createOperation('sign', mech(CKM.ECDSA), rsaish), CKR.KEY_TYPE_INCONSISTENT);
    const k1 = keyRef(new Map([...p.privAttrs, [CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.EC_PARAMS, hex('06052b8104000a')]]));
    await expectRv(() => fam.createOperation('sign', mech(CKM.ECDSA), k1), CKR.KEY_SIZE_RANGE);
    await expectRv(() => fam.createOperation('sign', mech(CKM.ECDSA), p.priv).oneShot(Buffer.alloc(0)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.ECDSA), p.priv), CKR.MECHANISM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(CKM.ECDSA, { kind: 'bytes', data: Buffer.alloc(3) }), p.priv), CKR.MECHANISM_PARAM_INVALID);
    expect(await fam.createOperation('sign', mech(CKM.ECDSA), p.priv).oneShot(dg)).toHaveLength(64);
  });

  it('key generation: curve checks', async () => {
    await expectRv(() => fam.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), new Map(), new Map()), CKR.TEMPLATE_INCOMPLETE);
    await expectRv(() => fam.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, hex('06052b8104000a')]]), new Map()), CKR.CURVE_NOT_SUPPORTED);
  });

  it('mechanism info: bits and EC capability flags', () => {
    const i = fam.mechanisms().find((m) => m.type === CKM.ECDSA)!;
    expect(i).toEqual({ type: CKM.ECDSA, minKeySize: 256, maxKeySize: 521, flags: CKF.SIGN | CKF.VERIFY | CKF.EC_F_P | CKF.EC_NAMEDCURVE | CKF.EC_UNCOMPRESS });
    expect(fam.mechanisms().find((m) => m.type === CKM.EC_KEY_PAIR_GEN)!.flags & CKF.GENERATE_KEY_PAIR).toBeTruthy();
  });
});

describe('Ed25519', () => {
  // RFC 8032 §7.1 TEST 1 and TEST 2.
  const VECTORS: Array<[string, string, string, string]> = [
    [
      '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
      '',
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    ],
    [
      '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
      '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
      '72',
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
    ],
  ];
  const edParams = hex('06032b6570');
  const priv = (seed: string): KeyRef =>
    keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)], [CKA.EC_PARAMS, edParams], [CKA.VALUE, hex(seed)]]));
  const pub = (pt: Buffer): KeyRef =>
    keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)], [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)], [CKA.EC_PARAMS, edParams], [CKA.EC_POINT, pt]]));

  it.each(VECTORS)('RFC 8032 vector (seed %s)', async (seed, pk, msg, sig) => {
    expect((await fam.createOperation('sign', mech(CKM.EDDSA), priv(seed)).oneShot(hex(msg))).toString('hex')).toBe(sig);
    for (const pt of [hex(pk), Buffer.concat([hex('0420'), hex(pk)])])
      expect(await fam.createOperation('verify', mech(CKM.EDDSA), pub(pt)).oneShot(hex(msg), hex(sig))).toHaveLength(0);
    const bad = hex(sig);
    bad[0]! ^= 1;
    await expectRv(() => fam.createOperation('verify', mech(CKM.EDDSA), pub(hex(pk))).oneShot(hex(msg), bad), CKR.SIGNATURE_INVALID);
    await expectRv(() => fam.createOperation('verify', mech(CKM.EDDSA), pub(hex(pk))).oneShot(hex(msg), bad.subarray(1)), CKR.SIGNATURE_LEN_RANGE);
  });

  it('generates key pairs that node can verify; refuses Ed25519ph', async () => {
    const { publicKey, privateKey } = await fam.generateKeyPair(mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, edParams]]), new Map());
    const data = Buffer.alloc(100, 9);
    const sk = objectFrom(privateKey, CKO.PRIVATE_KEY);
    const sig = await multiPart(fam.createOperation('sign', mech(CKM.EDDSA), sk), data);
    // PKCS#11 3.0: CKA_EC_POINT of an Edwards key is the raw RFC 8032 public key.
    const pt = publicKey.get(CKA.EC_POINT)!;
    expect(pt).toHaveLength(32);
    const nodePub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pt.toString('base64url') }, format: 'jwk' });
    expect(verify(null, data, nodePub, sig)).toBe(true);
    await expectRv(() => fam.createOperation('sign', mech(CKM.EDDSA, { kind: 'eddsa', phFlag: true, context: Buffer.alloc(0) }), sk), CKR.MECHANISM_PARAM_INVALID);
    const { privateKey: nk } = generateKeyPairSync('ed25519');
    expect(nk.asymmetricKeyType).toBe('ed25519');
  });
});

describe('X25519', () => {
  const fam = new EcFamily();
  // RFC 7748 §6.1 (Diffie-Hellman test vector).
  const A_PRIV = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const A_PUB = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  const B_PRIV = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const B_PUB = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const K = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  const OID = hex('06032b656e');
  const NAME = Buffer.concat([hex('130a'), Buffer.from('curve25519')]);
  const priv = (v: Buffer, params = OID): KeyRef =>
    keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)], [CKA.EC_PARAMS, params], [CKA.VALUE, v]]));
  const ecdh = (publicData: Buffer, kdf: number = CKD.NULL, sharedData = Buffer.alloc(0)) => mech(CKM.ECDH1_DERIVE, { kind: 'ecdh', kdf, sharedData, publicData });

  it('RFC 7748 §6.1: both sides derive K; the public data may be raw or a DER OCTET STRING', async () => {
    const ab = await fam.derive(ecdh(B_PUB), priv(A_PRIV), new Map());
    expect(ab.get(CKA.VALUE)!.toString('hex')).toBe(K.toString('hex'));
    const ba = await fam.derive(ecdh(Buffer.concat([hex('0420'), A_PUB])), priv(B_PRIV, NAME), new Map());
    expect(ba.get(CKA.VALUE)!.equals(K)).toBe(true);
    // CKD_SHA256_KDF (X9.63) over the same Z, truncated to an AES-128 key.
    const kdf = await fam.derive(ecdh(B_PUB, CKD.SHA256_KDF, Buffer.from('info')), priv(A_PRIV), new Map([[CKA.KEY_TYPE, ulongAttr(CKK.AES)], [CKA.VALUE_LEN, ulongAttr(16)]]));
    const want = createHash('sha256').update(K).update(hex('00000001')).update(Buffer.from('info')).digest().subarray(0, 16);
    expect(kdf.get(CKA.VALUE)!.equals(want)).toBe(true);
  });

  it('refuses malformed and low-order peers, public base keys and the cofactor mechanism', async () => {
    await expectRv(() => fam.derive(ecdh(B_PUB.subarray(1)), priv(A_PRIV), new Map()), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(ecdh(Buffer.alloc(32)), priv(A_PRIV), new Map()), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.derive(mech(CKM.ECDH1_COFACTOR_DERIVE, { kind: 'ecdh', kdf: CKD.NULL, sharedData: Buffer.alloc(0), publicData: B_PUB }), priv(A_PRIV), new Map()), CKR.MECHANISM_INVALID);
    const pub = keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)], [CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)], [CKA.EC_PARAMS, OID], [CKA.EC_POINT, A_PUB]]));
    await expectRv(() => fam.derive(ecdh(B_PUB), pub, new Map()), CKR.KEY_TYPE_INCONSISTENT);
    await expectRv(() => fam.derive(ecdh(B_PUB), priv(A_PRIV, hex('06032b656f')), new Map()), CKR.KEY_SIZE_RANGE);
  });

  it('CKM_EC_MONTGOMERY_KEY_PAIR_GEN: OID or curve name, raw 32-byte CKA_EC_POINT; node agrees on the secret', async () => {
    for (const params of [OID, NAME]) {
      const { publicKey, privateKey } = await fam.generateKeyPair(mech(CKM.EC_MONTGOMERY_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, params]]), new Map());
      expect(readUlong(publicKey.get(CKA.KEY_TYPE)!)).toBe(CKK.EC_MONTGOMERY);
      expect(publicKey.get(CKA.EC_PARAMS)!.equals(params)).toBe(true);
      const u = publicKey.get(CKA.EC_POINT)!;
      expect(u).toHaveLength(32);
      const other = generateKeyPairSync('x25519');
      const otherU = Buffer.from(other.publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const ours = await fam.derive(ecdh(otherU), objectFrom(privateKey, CKO.PRIVATE_KEY), new Map());
      const theirs = diffieHellman({ privateKey: other.privateKey, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: u.toString('base64url') }, format: 'jwk' }) });
      expect(ours.get(CKA.VALUE)!.equals(theirs)).toBe(true);
    }
    await expectRv(() => fam.generateKeyPair(mech(CKM.EC_MONTGOMERY_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, hex('06032b656f')]]), new Map()), CKR.CURVE_NOT_SUPPORTED);
    expect(fam.mechanisms().find((m) => m.type === CKM.EC_MONTGOMERY_KEY_PAIR_GEN)).toMatchObject({ minKeySize: 255, maxKeySize: 255 });
  });
});
