// RSA: key-pair generation, PKCS#1 v1.5 and PSS signatures (raw and hashed),
// PKCS#1 v1.5 / OAEP / raw encryption, and key transport of secret keys.
// Message encodings (EMSA-PKCS1-v1_5, EMSA-PSS) are built here so that the
// pre-hashed mechanisms work; the private exponentiation itself is OpenSSL's
// (with its blinding), run on worker threads.
import { constants, createHash, createPrivateKey, createPublicKey, publicEncrypt, timingSafeEqual, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKR, CKZ } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { randomBytes } from '../drbg/index.js';
import { keyTypeOf, optUlong, requireAttr, ulongAttr } from './attrs.js';
import { EMPTY, bufferedOperation, digestInfo, expectNoParam, hashByCkm, hashByMgf, paramInvalid, ulongsFromBytes, unwrapSecretValue, wrapSecretValue, type HashAlg } from './common.js';
import { bytesToInt } from './ecmath.js';
import { b64u, cached, fromB64u, generateKeyPairAsync, keyClassOf, pairwiseTest } from './keys.js';
import { privateDecryptOffloaded } from './offload.js';
import type { AttrMap, KeyRef, Mechanism, MechanismFamily, MechanismInfo, OpKind, Operation } from './types.js';

const GEN_MIN_BITS = 2048;
const GEN_MAX_BITS = 4096;
/** Existing keys may be larger than we generate (imported); smaller is policy's call
 * but below 2048 bits is not offered at all. */
const OP_MIN_BITS = 2048;
const OP_MAX_BITS = 16384;
const DEFAULT_E = 65537;
/** EMSA-PKCS1-v1_5 and RSAES-PKCS1-v1_5 need at least 8 bytes of padding string. */
const PKCS1_OVERHEAD = 11;

const HASHED_PKCS1: ReadonlyMap<number, number> = new Map([
  [CKM.SHA1_RSA_PKCS, CKM.SHA_1],
  [CKM.SHA224_RSA_PKCS, CKM.SHA224],
  [CKM.SHA256_RSA_PKCS, CKM.SHA256],
  [CKM.SHA384_RSA_PKCS, CKM.SHA384],
  [CKM.SHA512_RSA_PKCS, CKM.SHA512],
  [CKM.SHA3_224_RSA_PKCS, CKM.SHA3_224],
  [CKM.SHA3_256_RSA_PKCS, CKM.SHA3_256],
  [CKM.SHA3_384_RSA_PKCS, CKM.SHA3_384],
  [CKM.SHA3_512_RSA_PKCS, CKM.SHA3_512],
]);

const HASHED_PSS: ReadonlyMap<number, number> = new Map([
  [CKM.SHA1_RSA_PKCS_PSS, CKM.SHA_1],
  [CKM.SHA224_RSA_PKCS_PSS, CKM.SHA224],
  [CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256],
  [CKM.SHA384_RSA_PKCS_PSS, CKM.SHA384],
  [CKM.SHA512_RSA_PKCS_PSS, CKM.SHA512],
  [CKM.SHA3_224_RSA_PKCS_PSS, CKM.SHA3_224],
  [CKM.SHA3_256_RSA_PKCS_PSS, CKM.SHA3_256],
  [CKM.SHA3_384_RSA_PKCS_PSS, CKM.SHA3_384],
  [CKM.SHA3_512_RSA_PKCS_PSS, CKM.SHA3_512],
]);

interface RsaKey {
  tag: 'rsa';
  cls: 'private' | 'public';
  bits: number;
  /** Modulus length in bytes. */
  k: number;
  n: bigint;
  priv?: KeyObject;
  pub: KeyObject;
}

const stripZeros = (b: Buffer): Buffer => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

function rsaKey(key: KeyRef | null): RsaKey {
  if (!key) throw new CkError(CKR.KEY_HANDLE_INVALID);
  if (keyTypeOf(key) !== CKK.RSA) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  return cached(key, 'rsa', () => {
    const a = key.attrs;
    const n = stripZeros(requireAttr(a, CKA.MODULUS));
    const nInt = bytesToInt(n);
    const bits = nInt.toString(2).length;
    if (bits < OP_MIN_BITS || bits > OP_MAX_BITS) throw new CkError(CKR.KEY_SIZE_RANGE);
    const cls = keyClassOf(key, CKA.PRIVATE_EXPONENT);
    const jwk: JsonWebKey = { kty: 'RSA', n: b64u(n), e: b64u(stripZeros(requireAttr(a, CKA.PUBLIC_EXPONENT))) };
    try {
      if (cls === 'public') return { tag: 'rsa', cls, bits, k: Math.ceil(bits / 8), n: nInt, pub: createPublicKey({ key: jwk, format: 'jwk' }) };
      // node imports private keys only with their CRT components.
      const parts: Array<[keyof JsonWebKey, number]> = [
        ['d', CKA.PRIVATE_EXPONENT],
        ['p', CKA.PRIME_1],
        ['q', CKA.PRIME_2],
        ['dp', CKA.EXPONENT_1],
        ['dq', CKA.EXPONENT_2],
        ['qi', CKA.COEFFICIENT],
      ];
      for (const [name, attr] of parts) (jwk as Record<string, unknown>)[name] = b64u(stripZeros(requireAttr(a, attr)));
      const priv = createPrivateKey({ key: jwk, format: 'jwk' });
      return { tag: 'rsa', cls, bits, k: Math.ceil(bits / 8), n: nInt, priv, pub: createPublicKey(priv) };
    } catch (e) {
      if (e instanceof CkError) throw e;
      throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'RSA key components do not form a key');
    }
  });
}

function needPrivate(k: RsaKey): KeyObject {
  if (k.cls !== 'private' || !k.priv) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'operation needs a private key');
  return k.priv;
}

/** The node key of an RSA private key object, for C_WrapKey's PKCS#8 encoding (pkcs8.ts). */
export function rsaPrivateKeyObject(key: KeyRef): KeyObject {
  return needPrivate(rsaKey(key));
}

const leftPad = (b: Buffer, len: number): Buffer => (b.length >= len ? b : Buffer.concat([Buffer.alloc(len - b.length), b]));

/** m^d mod n for a k-byte block already known to be < n (or rejected by OpenSSL). */
async function rawPrivate(k: RsaKey, block: Buffer, rvOnFailure: number): Promise<Buffer> {
  try {
    return leftPad(await privateDecryptOffloaded({ key: needPrivate(k), padding: constants.RSA_NO_PADDING }, block), k.k);
  } catch {
    throw new CkError(rvOnFailure);
  }
}

/** s^e mod n; undefined when s is not a valid input (s >= n). */
function rawPublic(k: RsaKey, block: Buffer): Buffer | undefined {
  try {
    return leftPad(publicEncrypt({ key: k.pub, padding: constants.RSA_NO_PADDING }, block), k.k);
  } catch {
    return undefined;
  }
}

function emsaPkcs1(k: RsaKey, t: Buffer): Buffer {
  if (t.length > k.k - PKCS1_OVERHEAD) throw new CkError(CKR.DATA_LEN_RANGE);
  return Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(k.k - t.length - 3, 0xff), Buffer.from([0]), t]);
}

function mgf1(h: HashAlg, seed: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  for (let c = 0, have = 0; have < len; c++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(c);
    const b = createHash(h.node).update(seed).update(ctr).digest();
    out.push(b);
    have += b.length;
  }
  return Buffer.concat(out).subarray(0, len);
}

interface PssParams {
  hash: HashAlg;
  mgfHash: HashAlg;
  saltLen: number;
}

/** RFC 8017 §9.1.1 EMSA-PSS-ENCODE, left-padded to k bytes for the raw operation. */
function emsaPssEncode(k: RsaKey, p: PssParams, mHash: Buffer): Buffer {
  const emBits = k.bits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = p.hash.len;
  if (emLen < hLen + p.saltLen + 2) throw paramInvalid('salt too long for this key');
  const salt = randomBytes(p.saltLen);
  const h = createHash(p.hash.node).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - p.saltLen - hLen - 2), Buffer.from([1]), salt]);
  const mask = mgf1(p.mgfHash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return leftPad(Buffer.concat([db, h, Buffer.from([0xbc])]), k.k);
}

/** RFC 8017 §9.1.2 EMSA-PSS-VERIFY on the k-byte result of the public operation. */
function emsaPssVerify(k: RsaKey, p: PssParams, mHash: Buffer, m: Buffer): boolean {
  const emBits = k.bits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = p.hash.len;
  if (emLen < hLen + p.saltLen + 2) return false;
  for (let i = 0; i < k.k - emLen; i++) if (m[i] !== 0) return false;
  const em = m.subarray(k.k - emLen);
  if (em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if ((db[0]! & ~(0xff >> (8 * emLen - emBits)) & 0xff) !== 0) return false;
  const mask = mgf1(p.mgfHash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const psLen = emLen - hLen - p.saltLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 1) return false;
  const salt = db.subarray(db.length - p.saltLen);
  const h2 = createHash(p.hash.node).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return timingSafeEqual(h, h2);
}

function pssParams(mech: Mechanism, mechHash: HashAlg | undefined): PssParams {
  const p = mech.param;
  let v: { hashAlg: number; mgf: number; saltLen: number } | undefined;
  if (p.kind === 'pss') v = p;
  else if (p.kind === 'bytes') {
    const u = ulongsFromBytes(p.data, 3);
    if (u) v = { hashAlg: u[0]!, mgf: u[1]!, saltLen: u[2]! };
  }
  if (!v) throw paramInvalid('expected CK_RSA_PKCS_PSS_PARAMS');
  const hash = hashByCkm(v.hashAlg);
  const mgfHash = hashByMgf(v.mgf);
  if (!hash || !hash.mgf || !mgfHash) throw paramInvalid('unsupported PSS hash or MGF');
  if (mechHash && mechHash.ckm !== hash.ckm) throw paramInvalid('PSS hashAlg must match the mechanism');
  return { hash, mgfHash, saltLen: v.saltLen };
}

function verifyLen(k: RsaKey, sig: Buffer | undefined): Buffer {
  if (!sig) throw new CkError(CKR.ARGUMENTS_BAD, 'verify needs a signature');
  if (sig.length !== k.k) throw new CkError(CKR.SIGNATURE_LEN_RANGE);
  return sig;
}

/** Sign/verify where `encode` maps the (hashed) input to the encoded message: for
 * PKCS#1 v1.5 verification re-encodes and compares, PSS has its own check. */
function signatureOp(
  kind: OpKind,
  k: RsaKey,
  hash: HashAlg | undefined,
  encode: (input: Buffer) => Buffer,
  check?: (input: Buffer, m: Buffer) => boolean,
): Operation {
  if (kind === 'sign') needPrivate(k);
  const finish = async (input: Buffer, signature?: Buffer): Promise<Buffer> => {
    if (kind === 'sign') return rawPrivate(k, encode(input), CKR.FUNCTION_FAILED);
    const sig = verifyLen(k, signature);
    const m = rawPublic(k, sig);
    if (!m) throw new CkError(CKR.SIGNATURE_INVALID);
    let ok: boolean;
    if (check) ok = check(input, m);
    else ok = timingSafeEqual(encode(input), m);
    if (!ok) throw new CkError(CKR.SIGNATURE_INVALID);
    return EMPTY;
  };
  if (!hash) return bufferedOperation(finish);
  // Hashed mechanisms stream: only the digest waits for Final.
  const hasher = createHash(hash.node);
  return {
    oneShot: (data, sig) => finish(hasher.update(data).digest(), sig),
    async update(data) {
      hasher.update(data);
      return EMPTY;
    },
    final: (sig) => finish(hasher.digest(), sig),
  };
}

// ---- encryption ----

interface OaepParams {
  hash: HashAlg;
  label: Buffer;
}

function oaepParams(mech: Mechanism): OaepParams {
  const p = mech.param;
  if (p.kind !== 'oaep') throw paramInvalid('expected CK_RSA_PKCS_OAEP_PARAMS');
  const hash = hashByCkm(p.hashAlg);
  const mgfHash = hashByMgf(p.mgf);
  if (!hash || !hash.mgf || !mgfHash) throw paramInvalid('unsupported OAEP hash or MGF');
  // OpenSSL through node uses the OAEP hash for MGF1 as well.
  if (mgfHash.ckm !== hash.ckm) throw paramInvalid('OAEP MGF1 hash must equal the OAEP hash');
  if (p.source !== CKZ.DATA_SPECIFIED && !(p.source === 0 && p.sourceData.length === 0)) throw paramInvalid('unsupported OAEP source');
  return { hash, label: p.sourceData };
}

/** RSAES-PKCS1-v1_5 decoding without data-dependent branches over the padding.
 * The outcome (valid or not) is still reported, as CKM_RSA_PKCS decryption must. */
function pkcs1Unpad(em: Buffer): Buffer | undefined {
  let bad = (em[0]! | (em[1]! ^ 2)) & 0xff;
  let sep = 0;
  let found = 0;
  for (let i = 2; i < em.length; i++) {
    const isZero = ((em[i]! - 1) >> 8) & 1; // 1 iff em[i] == 0
    const first = isZero & (found ^ 1);
    sep |= -first & i;
    found |= isZero;
  }
  bad |= found ^ 1;
  bad |= sep < 10 ? 1 : 0; // at least 8 bytes of padding
  return bad ? undefined : Buffer.from(em.subarray(sep + 1));
}

function cipherOp(kind: 'encrypt' | 'decrypt', mech: Mechanism, k: RsaKey): Operation {
  if (kind === 'decrypt') needPrivate(k);
  const oaep = mech.type === CKM.RSA_PKCS_OAEP ? oaepParams(mech) : undefined;
  if (!oaep) expectNoParam(mech);
  return bufferedOperation(async (data) => {
    if (kind === 'encrypt') {
      switch (mech.type) {
        case CKM.RSA_X_509: {
          if (data.length > k.k) throw new CkError(CKR.DATA_LEN_RANGE);
          const out = rawPublic(k, leftPad(data, k.k));
          if (!out) throw new CkError(CKR.DATA_LEN_RANGE);
          return out;
        }
        case CKM.RSA_PKCS:
          if (data.length > k.k - PKCS1_OVERHEAD) throw new CkError(CKR.DATA_LEN_RANGE);
          return publicEncrypt({ key: k.pub, padding: constants.RSA_PKCS1_PADDING }, data);
        default:
          if (data.length > k.k - 2 * oaep!.hash.len - 2) throw new CkError(CKR.DATA_LEN_RANGE);
          return publicEncrypt({ key: k.pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaep!.hash.node, oaepLabel: oaep!.label }, data);
      }
    }
    if (data.length !== k.k) throw new CkError(CKR.ENCRYPTED_DATA_LEN_RANGE);
    switch (mech.type) {
      case CKM.RSA_X_509:
        return rawPrivate(k, data, CKR.ENCRYPTED_DATA_INVALID);
      case CKM.RSA_PKCS: {
        // node refuses PKCS#1 v1.5 private decryption (Marvin); decode here instead.
        const em = await rawPrivate(k, data, CKR.ENCRYPTED_DATA_INVALID);
        const out = pkcs1Unpad(em);
        em.fill(0);
        if (!out) throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
        return out;
      }
      default:
        try {
          return await privateDecryptOffloaded(
            { key: k.priv!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaep!.hash.node, oaepLabel: oaep!.label },
            data,
          );
        } catch {
          throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
        }
    }
  });
}

const SIGN_VERIFY = CKF.SIGN | CKF.VERIFY;
const CRYPT = CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP;

export class RsaFamily implements MechanismFamily {
  readonly name = 'rsa';

  mechanisms(): MechanismInfo[] {
    const info = (type: number, flags: number): MechanismInfo => ({ type, minKeySize: OP_MIN_BITS, maxKeySize: OP_MAX_BITS, flags });
    return [
      { type: CKM.RSA_PKCS_KEY_PAIR_GEN, minKeySize: GEN_MIN_BITS, maxKeySize: GEN_MAX_BITS, flags: CKF.GENERATE_KEY_PAIR },
      info(CKM.RSA_PKCS, CRYPT | SIGN_VERIFY),
      info(CKM.RSA_X_509, CRYPT | SIGN_VERIFY),
      info(CKM.RSA_PKCS_OAEP, CRYPT),
      info(CKM.RSA_PKCS_PSS, SIGN_VERIFY),
      ...[...HASHED_PKCS1.keys(), ...HASHED_PSS.keys()].map((m) => info(m, SIGN_VERIFY)),
    ];
  }

  createOperation(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
    const t = mech.type;
    const known = t === CKM.RSA_PKCS || t === CKM.RSA_X_509 || t === CKM.RSA_PKCS_OAEP || t === CKM.RSA_PKCS_PSS || HASHED_PKCS1.has(t) || HASHED_PSS.has(t);
    if (!known) throw new CkError(CKR.MECHANISM_INVALID);
    if (kind === 'encrypt' || kind === 'decrypt') {
      if (t !== CKM.RSA_PKCS && t !== CKM.RSA_X_509 && t !== CKM.RSA_PKCS_OAEP) throw new CkError(CKR.MECHANISM_INVALID, 'signature-only mechanism');
      return cipherOp(kind, mech, rsaKey(key));
    }
    if (kind !== 'sign' && kind !== 'verify') throw new CkError(CKR.MECHANISM_INVALID);
    if (t === CKM.RSA_PKCS_OAEP) throw new CkError(CKR.MECHANISM_INVALID, 'OAEP does not sign');
    if (t === CKM.RSA_PKCS_PSS || HASHED_PSS.has(t)) {
      const mechHash = HASHED_PSS.has(t) ? hashByCkm(HASHED_PSS.get(t)!) : undefined;
      const p = pssParams(mech, mechHash);
      const k = rsaKey(key);
      const checkLen = (h: Buffer): void => {
        if (h.length !== p.hash.len) throw new CkError(CKR.DATA_LEN_RANGE, 'input must be a digest of the PSS hash');
      };
      return signatureOp(
        kind,
        k,
        mechHash,
        (h) => (checkLen(h), emsaPssEncode(k, p, h)),
        (h, m) => (checkLen(h), emsaPssVerify(k, p, h, m)),
      );
    }
    expectNoParam(mech);
    const k = rsaKey(key);
    if (t === CKM.RSA_X_509) {
      // Raw RSA: the input is the whole block, left-padded with zeros.
      return signatureOp(kind, k, undefined, (d) => {
        if (d.length > k.k || bytesToInt(d) >= k.n) throw new CkError(CKR.DATA_LEN_RANGE);
        return leftPad(d, k.k);
      });
    }
    if (t === CKM.RSA_PKCS) return signatureOp(kind, k, undefined, (t) => emsaPkcs1(k, t));
    const h = hashByCkm(HASHED_PKCS1.get(t)!)!;
    return signatureOp(kind, k, h, (digest) => emsaPkcs1(k, digestInfo(h, digest)));
  }

  async generateKeyPair(mech: Mechanism, publicTemplate: AttrMap, _privateTemplate: AttrMap): Promise<{ publicKey: AttrMap; privateKey: AttrMap }> {
    if (mech.type !== CKM.RSA_PKCS_KEY_PAIR_GEN) throw new CkError(CKR.MECHANISM_INVALID);
    expectNoParam(mech);
    const bits = optUlong(publicTemplate, CKA.MODULUS_BITS);
    if (bits === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_MODULUS_BITS is required');
    if (bits < GEN_MIN_BITS || bits > GEN_MAX_BITS) throw new CkError(CKR.KEY_SIZE_RANGE);
    const eAttr = publicTemplate.get(CKA.PUBLIC_EXPONENT);
    const e = eAttr ? bytesToInt(eAttr) : BigInt(DEFAULT_E);
    // node takes the exponent as a 32-bit number; even or tiny exponents are not RSA.
    if (e < 3n || e % 2n === 0n || e > 0xffffffffn) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, 'unsupported public exponent');
    const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: Number(e) });
    await pairwiseTest('sha256', { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING }, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING });
    const j = privateKey.export({ format: 'jwk' });
    const n = fromB64u(j.n);
    const eBytes = fromB64u(j.e);
    return {
      publicKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.RSA)],
        [CKA.MODULUS, n],
        [CKA.PUBLIC_EXPONENT, eBytes],
        [CKA.MODULUS_BITS, ulongAttr(bits)],
      ]),
      privateKey: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.RSA)],
        [CKA.MODULUS, Buffer.from(n)],
        [CKA.PUBLIC_EXPONENT, Buffer.from(eBytes)],
        [CKA.PRIVATE_EXPONENT, fromB64u(j.d)],
        [CKA.PRIME_1, fromB64u(j.p)],
        [CKA.PRIME_2, fromB64u(j.q)],
        [CKA.EXPONENT_1, fromB64u(j.dp)],
        [CKA.EXPONENT_2, fromB64u(j.dq)],
        [CKA.COEFFICIENT, fromB64u(j.qi)],
      ]),
    };
  }

  /** Key transport of secret keys (their CKA_VALUE). */
  async wrap(mech: Mechanism, wrappingKey: KeyRef, key: KeyRef): Promise<Buffer> {
    return wrapSecretValue(key, () => this.transportOp('encrypt', mech, wrappingKey), 'key too long for this wrapping key');
  }

  async unwrap(mech: Mechanism, unwrappingKey: KeyRef, wrapped: Buffer, template: AttrMap): Promise<AttrMap> {
    const value = await unwrapSecretValue(template, 'RSA', () => this.transportOp('decrypt', mech, unwrappingKey), wrapped);
    return new Map([[CKA.VALUE, value]]);
  }

  private transportOp(kind: 'encrypt' | 'decrypt', mech: Mechanism, key: KeyRef): Operation {
    if (mech.type !== CKM.RSA_PKCS && mech.type !== CKM.RSA_PKCS_OAEP && mech.type !== CKM.RSA_X_509) throw new CkError(CKR.MECHANISM_INVALID);
    try {
      return cipherOp(kind, mech, rsaKey(key));
    } catch (e) {
      if (e instanceof CkError && e.rv === CKR.KEY_TYPE_INCONSISTENT)
        throw new CkError(kind === 'encrypt' ? CKR.WRAPPING_KEY_TYPE_INCONSISTENT : CKR.UNWRAPPING_KEY_TYPE_INCONSISTENT);
      if (e instanceof CkError && e.rv === CKR.KEY_SIZE_RANGE)
        throw new CkError(kind === 'encrypt' ? CKR.WRAPPING_KEY_SIZE_RANGE : CKR.UNWRAPPING_KEY_SIZE_RANGE);
      throw e;
    }
  }
}

