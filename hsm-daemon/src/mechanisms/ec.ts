// Elliptic curves: NIST P-256/384/521 (key generation, ECDSA raw and hashed, ECDH),
// Ed25519 (key generation, pure EdDSA) and X25519 (key generation, ECDH1 derivation).
// CKA_EC_POINT is a DER OCTET STRING for the Weierstrass curves and the raw RFC 8032 /
// RFC 7748 bytes for Edwards and Montgomery keys (PKCS#11 3.0 §2.3.6, §2.3.7); imports
// of either curve accept both forms.
import { ECDH, createECDH, createHash, createPrivateKey, createPublicKey, diffieHellman, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CKA, CKD, CKF, CKK, CKM, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { keyTypeOf, optUlong, requireAttr, ulongAttr } from './attrs.js';
import { DER, bufferedOperation, derRead, derTlv, expectNoParam, hashByCkm, paramInvalid } from './common.js';
import { CURVES, bytesToInt, curveByOid, ecVerifyKey, ecdsaSignDigest, intToBytes, onCurve, type Curve, type EcVerifyKey } from './ecmath.js';
import { ecdsaVerifyOffloaded } from './ec-offload.js';
import { b64u, cached, failed, fromB64u, generateKeyPairAsync, keyClassOf, pairwiseTest, signAsync, verifyAsync } from './keys.js';
import type { AttrMap, KeyRef, Mechanism, MechanismFamily, MechanismInfo, OpKind, Operation } from './types.js';

const EC_FLAGS = CKF.EC_F_P | CKF.EC_NAMEDCURVE | CKF.EC_UNCOMPRESS;
const MIN_BITS = Math.min(...CURVES.map((c) => c.bits));
const MAX_BITS = Math.max(...CURVES.map((c) => c.bits));
const ED25519_BITS = 255;
/** CKA_EC_PARAMS for Ed25519: the RFC 8410 OID, or the PKCS#11 3.0 curve name. */
export const ED25519_OID = derTlv(DER.OID, Buffer.from([0x2b, 0x65, 0x70]));
const ED25519_NAME = derTlv(DER.PRINTABLE, Buffer.from('edwards25519'));
const X25519_BITS = 255;
/** CKA_EC_PARAMS for X25519: the RFC 8410 OID, or the PKCS#11 3.0 curve name. */
export const X25519_OID = derTlv(DER.OID, Buffer.from([0x2b, 0x65, 0x6e]));
const X25519_NAME = derTlv(DER.PRINTABLE, Buffer.from('curve25519'));
/** CKM_ECDSA takes a digest; nothing longer than the largest hash makes sense. */
const MAX_RAW_DIGEST = 64;

/** ECDSA with hashing: the mechanism names the hash, the key names the curve. */
const ECDSA_HASHED: ReadonlyMap<number, number> = new Map([
  [CKM.ECDSA_SHA1, CKM.SHA_1],
  [CKM.ECDSA_SHA224, CKM.SHA224],
  [CKM.ECDSA_SHA256, CKM.SHA256],
  [CKM.ECDSA_SHA384, CKM.SHA384],
  [CKM.ECDSA_SHA512, CKM.SHA512],
  [CKM.ECDSA_SHA3_224, CKM.SHA3_224],
  [CKM.ECDSA_SHA3_256, CKM.SHA3_256],
  [CKM.ECDSA_SHA3_384, CKM.SHA3_384],
  [CKM.ECDSA_SHA3_512, CKM.SHA3_512],
]);

/** X9.63 KDFs allowed with ECDH1 derivation. */
const ECDH_KDF: ReadonlyMap<number, string> = new Map([
  [CKD.SHA1_KDF, 'sha1'],
  [CKD.SHA224_KDF, 'sha224'],
  [CKD.SHA256_KDF, 'sha256'],
  [CKD.SHA384_KDF, 'sha384'],
  [CKD.SHA512_KDF, 'sha512'],
]);

/** An EC point attribute: DER OCTET STRING (the PKCS#11 form) or, on import, the
 * raw SEC 1 point. Returns the uncompressed point, validated on the curve. */
export function parseEcPoint(c: Curve, attr: Buffer): Buffer {
  const rawLen = (b: Buffer): boolean =>
    (b[0] === 0x04 && b.length === 1 + 2 * c.size) || ((b[0] === 0x02 || b[0] === 0x03) && b.length === 1 + c.size);
  let pt = attr;
  if (!rawLen(pt)) {
    const d = derRead(attr, DER.OCTET_STRING);
    if (!d || d.rest.length !== 0 || !rawLen(d.body)) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'malformed EC point');
    pt = d.body;
  }
  if (pt[0] !== 0x04) {
    try {
      pt = ECDH.convertKey(pt, c.name, undefined, undefined, 'uncompressed') as Buffer;
    } catch {
      throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'EC point not on curve');
    }
  }
  const x = bytesToInt(pt.subarray(1, 1 + c.size));
  const y = bytesToInt(pt.subarray(1 + c.size));
  if (!onCurve(c, x, y)) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'EC point not on curve');
  return Buffer.from(pt);
}

const encodePoint = (pt: Buffer): Buffer => derTlv(DER.OCTET_STRING, pt);

interface EcKey {
  tag: 'ec';
  curve: Curve;
  cls: 'private' | 'public';
  /** Private scalar (private keys only). */
  d?: bigint;
  point: Buffer;
  priv?: KeyObject;
  pub: KeyObject;
  /** Raw-ECDSA verification state (decoded point, precomputed tables), made on first use. */
  vk?: EcVerifyKey;
}

function jwkFor(c: Curve, point: Buffer, d?: Buffer): JsonWebKey {
  const jwk: JsonWebKey = {
    kty: 'EC',
    crv: c.jwk,
    x: b64u(point.subarray(1, 1 + c.size)),
    y: b64u(point.subarray(1 + c.size)),
  };
  if (d) jwk.d = b64u(d);
  return jwk;
}

function ecKey(key: KeyRef | null): EcKey {
  if (!key) throw new CkError(CKR.KEY_HANDLE_INVALID);
  if (keyTypeOf(key) !== CKK.EC) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  return cached(key, 'ec', () => {
    const c = curveByOid(requireAttr(key.attrs, CKA.EC_PARAMS));
    if (!c) throw new CkError(CKR.KEY_SIZE_RANGE, 'unsupported curve');
    const cls = keyClassOf(key, CKA.VALUE);
    if (cls === 'public') {
      const point = parseEcPoint(c, requireAttr(key.attrs, CKA.EC_POINT));
      return { tag: 'ec', curve: c, cls, point, pub: createPublicKey({ key: jwkFor(c, point), format: 'jwk' }) };
    }
    const value = requireAttr(key.attrs, CKA.VALUE);
    const d = bytesToInt(value);
    if (d < 1n || d >= c.n) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'EC private scalar out of range');
    const dBytes = intToBytes(d, c.size);
    try {
      const ecdh = createECDH(c.name);
      ecdh.setPrivateKey(dBytes);
      const point = ecdh.getPublicKey();
      const priv = createPrivateKey({ key: jwkFor(c, point, dBytes), format: 'jwk' });
      return { tag: 'ec', curve: c, cls, d, point, priv, pub: createPublicKey(priv) };
    } finally {
      dBytes.fill(0);
    }
  });
}

function needPrivate<T extends { cls: string; priv?: KeyObject }>(k: T): KeyObject {
  if (k.cls !== 'private' || !k.priv) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'operation needs a private key');
  return k.priv;
}

function sigLenCheck(sig: Buffer | undefined, len: number): Buffer {
  if (!sig) throw new CkError(CKR.ARGUMENTS_BAD, 'verify needs a signature');
  if (sig.length !== len) throw new CkError(CKR.SIGNATURE_LEN_RANGE);
  return sig;
}

function ecdsaOp(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
  if (kind !== 'sign' && kind !== 'verify') throw new CkError(CKR.MECHANISM_INVALID, 'ECDSA only signs and verifies');
  expectNoParam(mech);
  const k = ecKey(key);
  const c = k.curve;
  const sigLen = 2 * c.size;
  const priv = kind === 'sign' ? needPrivate(k) : undefined;
  if (mech.type === CKM.ECDSA) {
    return bufferedOperation(async (digest, signature) => {
      if (digest.length === 0 || digest.length > MAX_RAW_DIGEST) throw new CkError(CKR.DATA_LEN_RANGE);
      if (kind === 'sign') return ecdsaSignDigest(c, k.d!, digest);
      const sig = sigLenCheck(signature, sigLen);
      k.vk ??= ecVerifyKey(c, bytesToInt(k.point.subarray(1, 1 + c.size)), bytesToInt(k.point.subarray(1 + c.size)));
      if (!(await ecdsaVerifyOffloaded(k.vk, digest, sig))) throw new CkError(CKR.SIGNATURE_INVALID);
      return Buffer.alloc(0);
    });
  }
  const hash = hashByCkm(ECDSA_HASHED.get(mech.type)!)!;
  return bufferedOperation(async (data, signature) => {
    if (kind === 'sign') return signAsync(hash.node, data, { key: priv!, dsaEncoding: 'ieee-p1363' });
    const sig = sigLenCheck(signature, sigLen);
    if (!(await verifyAsync(hash.node, data, { key: k.pub, dsaEncoding: 'ieee-p1363' }, sig))) throw new CkError(CKR.SIGNATURE_INVALID);
    return Buffer.alloc(0);
  });
}

// ---- Ed25519 ----

interface EdKey {
  tag: 'ed25519';
  cls: 'private' | 'public';
  priv?: KeyObject;
  pub: KeyObject;
}

const ED_ALG_ID = derTlv(DER.SEQUENCE, ED25519_OID);

function edPrivateFromSeed(seed: Buffer): KeyObject {
  // RFC 8410 OneAsymmetricKey: version 0, algorithm, CurvePrivateKey in an OCTET STRING.
  const der = derTlv(
    DER.SEQUENCE,
    Buffer.concat([Buffer.from([DER.INTEGER, 1, 0]), ED_ALG_ID, derTlv(DER.OCTET_STRING, derTlv(DER.OCTET_STRING, seed))]),
  );
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function edPublicFromPoint(pt: Buffer): KeyObject {
  const der = derTlv(DER.SEQUENCE, Buffer.concat([ED_ALG_ID, derTlv(0x03, Buffer.concat([Buffer.from([0]), pt]))]));
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

export function isEd25519Params(p: Buffer | undefined): boolean {
  return !!p && (p.equals(ED25519_OID) || p.equals(ED25519_NAME));
}

function edKey(key: KeyRef | null): EdKey {
  if (!key) throw new CkError(CKR.KEY_HANDLE_INVALID);
  if (keyTypeOf(key) !== CKK.EC_EDWARDS) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  return cached(key, 'ed25519', () => {
    if (!isEd25519Params(key.attrs.get(CKA.EC_PARAMS))) throw new CkError(CKR.KEY_SIZE_RANGE, 'unsupported Edwards curve');
    const cls = keyClassOf(key, CKA.VALUE);
    if (cls === 'private') {
      const seed = requireAttr(key.attrs, CKA.VALUE);
      if (seed.length !== 32) throw new CkError(CKR.KEY_SIZE_RANGE);
      const priv = edPrivateFromSeed(seed);
      return { tag: 'ed25519', cls, priv, pub: createPublicKey(priv) };
    }
    let pt = requireAttr(key.attrs, CKA.EC_POINT);
    if (pt.length !== 32) {
      const d = derRead(pt, DER.OCTET_STRING);
      if (!d || d.rest.length || d.body.length !== 32) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'malformed Ed25519 point');
      pt = d.body;
    }
    try {
      return { tag: 'ed25519', cls, pub: edPublicFromPoint(pt) };
    } catch {
      throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'malformed Ed25519 point');
    }
  });
}

function eddsaOp(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
  if (kind !== 'sign' && kind !== 'verify') throw new CkError(CKR.MECHANISM_INVALID, 'EdDSA only signs and verifies');
  const p = mech.param;
  // Pure Ed25519 only: node offers neither Ed25519ctx nor Ed25519ph.
  if (p.kind === 'eddsa') {
    if (p.phFlag || p.context.length) throw paramInvalid('only pure Ed25519 is supported');
  } else expectNoParam(mech);
  const k = edKey(key);
  const priv = kind === 'sign' ? needPrivate(k) : undefined;
  return bufferedOperation(async (data, signature) => {
    if (kind === 'sign') return signAsync(null, data, priv!);
    const sig = sigLenCheck(signature, 64);
    if (!(await verifyAsync(null, data, k.pub, sig))) throw new CkError(CKR.SIGNATURE_INVALID);
    return Buffer.alloc(0);
  });
}

/** A 32-byte Edwards/Montgomery public value: raw (PKCS#11 3.0) or, as some clients and
 * older tokens write it, wrapped in a DER OCTET STRING. */
function raw32(attr: Buffer): Buffer | undefined {
  if (attr.length === 32) return attr;
  const d = derRead(attr, DER.OCTET_STRING);
  return d && !d.rest.length && d.body.length === 32 ? d.body : undefined;
}

// ---- X25519 ----

interface XKey {
  tag: 'x25519';
  cls: 'private' | 'public';
  priv?: KeyObject;
  pub: KeyObject;
}

const X_ALG_ID = derTlv(DER.SEQUENCE, X25519_OID);

export function isX25519Params(p: Buffer | undefined): boolean {
  return !!p && (p.equals(X25519_OID) || p.equals(X25519_NAME));
}

export function x25519Private(scalar: Buffer): KeyObject {
  const der = derTlv(DER.SEQUENCE, Buffer.concat([Buffer.from([DER.INTEGER, 1, 0]), X_ALG_ID, derTlv(DER.OCTET_STRING, derTlv(DER.OCTET_STRING, scalar))]));
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

export function x25519Public(u: Buffer): KeyObject {
  return createPublicKey({ key: derTlv(DER.SEQUENCE, Buffer.concat([X_ALG_ID, derTlv(0x03, Buffer.concat([Buffer.from([0]), u]))])), format: 'der', type: 'spki' });
}

function xKey(key: KeyRef): XKey {
  return cached(key, 'x25519', () => {
    if (!isX25519Params(key.attrs.get(CKA.EC_PARAMS))) throw new CkError(CKR.KEY_SIZE_RANGE, 'unsupported Montgomery curve');
    const cls = keyClassOf(key, CKA.VALUE);
    if (cls === 'private') {
      const scalar = requireAttr(key.attrs, CKA.VALUE);
      if (scalar.length !== 32) throw new CkError(CKR.KEY_SIZE_RANGE);
      const priv = x25519Private(scalar);
      return { tag: 'x25519', cls, priv, pub: createPublicKey(priv) };
    }
    const u = raw32(requireAttr(key.attrs, CKA.EC_POINT));
    if (!u) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'malformed X25519 public value');
    return { tag: 'x25519', cls, pub: x25519Public(u) };
  });
}

/** The node key of an EC, Ed25519 or X25519 private key object, for C_WrapKey's PKCS#8
 * encoding (pkcs8.ts). */
export function curvePrivateKeyObject(key: KeyRef): KeyObject {
  switch (keyTypeOf(key)) {
    case CKK.EC:
      return needPrivate(ecKey(key));
    case CKK.EC_EDWARDS:
      return needPrivate(edKey(key));
    case CKK.EC_MONTGOMERY:
      return needPrivate(xKey(key));
    default:
      throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  }
}

/** RFC 7748 §6.1 X25519 with the all-zero check (OpenSSL refuses a low-order peer). */
function x25519Shared(k: XKey, peer: Buffer): Buffer {
  const u = raw32(peer);
  if (!u) throw paramInvalid('X25519 public data must be 32 bytes');
  let peerKey: KeyObject;
  try {
    peerKey = x25519Public(u);
  } catch {
    throw paramInvalid('malformed X25519 public data');
  }
  try {
    return diffieHellman({ privateKey: needPrivate(k), publicKey: peerKey });
  } catch (e) {
    if (e instanceof CkError) throw e;
    throw paramInvalid('X25519 peer value gives an all-zero shared secret');
  }
}

// ---- ECDH ----

function ecdhPeerPoint(c: Curve, data: Buffer): Buffer {
  try {
    return parseEcPoint(c, data);
  } catch {
    throw paramInvalid('peer public value is not a point on the key curve');
  }
}

/** ANSI X9.63 KDF: Hash(Z || counter || sharedInfo), counter from 1, big-endian 32-bit. */
function x963Kdf(hash: string, z: Buffer, sharedInfo: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have < len; i++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(i);
    const block = createHash(hash).update(z).update(ctr).update(sharedInfo).digest();
    out.push(block);
    have += block.length;
  }
  const all = Buffer.concat(out);
  const res = Buffer.from(all.subarray(0, len));
  all.fill(0);
  for (const b of out) b.fill(0);
  return res;
}

/** Length a derived secret must have, from the template (CKA_VALUE_LEN or key type). */
function derivedLength(template: AttrMap, fallback: number): number {
  const len = optUlong(template, CKA.VALUE_LEN);
  const kt = optUlong(template, CKA.KEY_TYPE);
  if (kt === CKK.AES) {
    if (len === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'AES key needs CKA_VALUE_LEN');
    if (![16, 24, 32].includes(len)) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
  }
  const n = len ?? fallback;
  if (n < 1) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
  return n;
}

// ---- the family ----

export class EcFamily implements MechanismFamily {
  readonly name = 'ec';

  mechanisms(): MechanismInfo[] {
    const ec = (type: number, flags: number): MechanismInfo => ({ type, minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: flags | EC_FLAGS });
    const ed = (type: number, flags: number): MechanismInfo => ({
      type,
      minKeySize: ED25519_BITS,
      maxKeySize: ED25519_BITS,
      flags: flags | CKF.EC_F_P | CKF.EC_NAMEDCURVE,
    });
    return [
      ec(CKM.EC_KEY_PAIR_GEN, CKF.GENERATE_KEY_PAIR),
      ec(CKM.ECDSA, CKF.SIGN | CKF.VERIFY),
      ...[...ECDSA_HASHED.keys()].map((m) => ec(m, CKF.SIGN | CKF.VERIFY)),
      ec(CKM.ECDH1_DERIVE, CKF.DERIVE),
      ec(CKM.ECDH1_COFACTOR_DERIVE, CKF.DERIVE),
      ed(CKM.EC_EDWARDS_KEY_PAIR_GEN, CKF.GENERATE_KEY_PAIR),
      ed(CKM.EDDSA, CKF.SIGN | CKF.VERIFY),
      { type: CKM.EC_MONTGOMERY_KEY_PAIR_GEN, minKeySize: X25519_BITS, maxKeySize: X25519_BITS, flags: CKF.GENERATE_KEY_PAIR | CKF.EC_F_P | CKF.EC_NAMEDCURVE },
    ];
  }

  createOperation(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
    if (mech.type === CKM.ECDSA || ECDSA_HASHED.has(mech.type)) return ecdsaOp(kind, mech, key);
    if (mech.type === CKM.EDDSA) return eddsaOp(kind, mech, key);
    throw new CkError(CKR.MECHANISM_INVALID);
  }

  async generateKeyPair(mech: Mechanism, publicTemplate: AttrMap, _privateTemplate: AttrMap): Promise<{ publicKey: AttrMap; privateKey: AttrMap }> {
    expectNoParam(mech);
    const params = publicTemplate.get(CKA.EC_PARAMS);
    if (!params) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_EC_PARAMS is required');
    if (mech.type === CKM.EC_KEY_PAIR_GEN) return this.generateEc(params);
    if (mech.type === CKM.EC_EDWARDS_KEY_PAIR_GEN) return this.generateEd(params);
    if (mech.type === CKM.EC_MONTGOMERY_KEY_PAIR_GEN) return this.generateX(params);
    throw new CkError(CKR.MECHANISM_INVALID);
  }

  private async generateEc(params: Buffer): Promise<{ publicKey: AttrMap; privateKey: AttrMap }> {
    const c = curveByOid(params);
    if (!c) throw new CkError(CKR.CURVE_NOT_SUPPORTED);
    const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: c.name });
    await pairwiseTest('sha256', { key: privateKey, dsaEncoding: 'ieee-p1363' }, { key: publicKey, dsaEncoding: 'ieee-p1363' });
    const jwk = privateKey.export({ format: 'jwk' });
    const x = fromB64u(jwk.x);
    const y = fromB64u(jwk.y);
    const d = fromB64u(jwk.d);
    const point = Buffer.concat([Buffer.from([0x04]), x, y]);
    const value = intToBytes(bytesToInt(d), c.size);
    d.fill(0);
    return {
      publicKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.EC_POINT, encodePoint(point)],
      ]),
      privateKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.VALUE, value],
      ]),
    };
  }

  private async generateEd(params: Buffer): Promise<{ publicKey: AttrMap; privateKey: AttrMap }> {
    if (!isEd25519Params(params)) throw new CkError(CKR.CURVE_NOT_SUPPORTED);
    const { publicKey, privateKey } = await generateKeyPairAsync('ed25519', {});
    await pairwiseTest(null, { key: privateKey }, { key: publicKey });
    const jwk = privateKey.export({ format: 'jwk' });
    return {
      publicKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.EC_POINT, fromB64u(jwk.x)],
      ]),
      privateKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_EDWARDS)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.VALUE, fromB64u(jwk.d)],
      ]),
    };
  }

  private async generateX(params: Buffer): Promise<{ publicKey: AttrMap; privateKey: AttrMap }> {
    if (!isX25519Params(params)) throw new CkError(CKR.CURVE_NOT_SUPPORTED);
    const { publicKey, privateKey } = await generateKeyPairAsync('x25519', {});
    const jwk = privateKey.export({ format: 'jwk' });
    const u = fromB64u(jwk.x);
    const scalar = fromB64u(jwk.d);
    // Pairwise consistency for a key-agreement key (SP 800-56A Rev.3 §5.6.2.1.4): the
    // public value recomputed from the stored private value matches.
    const again = fromB64u(createPublicKey(x25519Private(scalar)).export({ format: 'jwk' }).x);
    if (!again.equals(u) || !fromB64u(publicKey.export({ format: 'jwk' }).x).equals(u)) {
      scalar.fill(0);
      throw new CkError(CKR.GENERAL_ERROR, 'pairwise consistency test failed');
    }
    return {
      publicKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.EC_POINT, u],
      ]),
      privateKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)],
        [CKA.EC_PARAMS, Buffer.from(params)],
        [CKA.VALUE, scalar],
      ]),
    };
  }

  async derive(mech: Mechanism, baseKey: KeyRef, template: AttrMap): Promise<AttrMap> {
    if (mech.type !== CKM.ECDH1_DERIVE && mech.type !== CKM.ECDH1_COFACTOR_DERIVE) throw new CkError(CKR.MECHANISM_INVALID);
    const p = mech.param;
    if (p.kind !== 'ecdh') throw paramInvalid('expected CK_ECDH1_DERIVE_PARAMS');
    let z: Buffer;
    if (keyTypeOf(baseKey) === CKK.EC_MONTGOMERY) {
      // X25519 (RFC 7748) through CKM_ECDH1_DERIVE, as PKCS#11 3.0 §2.3.16 allows.
      if (mech.type !== CKM.ECDH1_DERIVE) throw new CkError(CKR.MECHANISM_INVALID, 'X25519 uses CKM_ECDH1_DERIVE');
      const k = xKey(baseKey);
      if (k.cls !== 'private') throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
      z = x25519Shared(k, p.publicData);
    } else {
      const k = ecKey(baseKey);
      if (k.cls !== 'private') throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
      const c = k.curve;
      const peer = ecdhPeerPoint(c, p.publicData);
      // The NIST prime curves have cofactor 1, so cofactor ECDH equals plain ECDH.
      const ecdh = createECDH(c.name);
      const dBytes = intToBytes(k.d!, c.size);
      try {
        ecdh.setPrivateKey(dBytes);
        z = ecdh.computeSecret(peer);
      } catch {
        throw failed();
      } finally {
        dBytes.fill(0);
      }
    }
    try {
      let value: Buffer;
      if (p.kdf === CKD.NULL) {
        if (p.sharedData.length) throw paramInvalid('CKD_NULL takes no shared data');
        const len = derivedLength(template, z.length);
        if (len > z.length) throw new CkError(CKR.TEMPLATE_INCONSISTENT, 'derived key longer than the shared secret');
        // PKCS#11 truncation removes bytes from the leading end.
        value = Buffer.from(z.subarray(z.length - len));
      } else {
        const hash = ECDH_KDF.get(p.kdf);
        if (!hash) throw paramInvalid('unsupported KDF');
        value = x963Kdf(hash, z, p.sharedData, derivedLength(template, z.length));
      }
      return new Map([
        [CKA.VALUE, value],
        [CKA.VALUE_LEN, ulongAttr(value.length)],
      ]);
    } finally {
      z.fill(0);
    }
  }
}
