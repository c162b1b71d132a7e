// Pieces every family shares: the hash table (one place that knows which PKCS#11
// digest is which node hash), parameter checks, and operation shells.
import { timingSafeEqual } from 'node:crypto';
import { CKA, CKG, CKM, CKO, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import type { AttrMap, KeyRef, Mechanism, Operation } from './types.js';
import { optUlong, readUlong } from './attrs.js';

export const EMPTY = Buffer.alloc(0);

/** Multi-part operations that cannot stream (raw RSA/ECDSA, GCM decrypt, EC hashed
 * signing) keep their input; this bounds what one session can make us hold. */
export const MAX_BUFFERED = 64 * 1024 * 1024;

export interface HashAlg {
  ckm: number;
  node: string;
  len: number;
  /** DER body of the AlgorithmIdentifier OID, for PKCS#1 v1.5 DigestInfo. */
  oid: number[];
  /** The CKG_MGF1_* that uses this hash, where PKCS#11 defines one. */
  mgf?: number;
}

const NIST_HASH_ARC = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];

export const HASHES: readonly HashAlg[] = [
  { ckm: CKM.MD5, node: 'md5', len: 16, oid: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05] },
  { ckm: CKM.SHA_1, node: 'sha1', len: 20, oid: [0x2b, 0x0e, 0x03, 0x02, 0x1a], mgf: CKG.MGF1_SHA1 },
  { ckm: CKM.SHA224, node: 'sha224', len: 28, oid: [...NIST_HASH_ARC, 0x04], mgf: CKG.MGF1_SHA224 },
  { ckm: CKM.SHA256, node: 'sha256', len: 32, oid: [...NIST_HASH_ARC, 0x01], mgf: CKG.MGF1_SHA256 },
  { ckm: CKM.SHA384, node: 'sha384', len: 48, oid: [...NIST_HASH_ARC, 0x02], mgf: CKG.MGF1_SHA384 },
  { ckm: CKM.SHA512, node: 'sha512', len: 64, oid: [...NIST_HASH_ARC, 0x03], mgf: CKG.MGF1_SHA512 },
  { ckm: CKM.SHA3_224, node: 'sha3-224', len: 28, oid: [...NIST_HASH_ARC, 0x07] },
  { ckm: CKM.SHA3_256, node: 'sha3-256', len: 32, oid: [...NIST_HASH_ARC, 0x08] },
  { ckm: CKM.SHA3_384, node: 'sha3-384', len: 48, oid: [...NIST_HASH_ARC, 0x09] },
  { ckm: CKM.SHA3_512, node: 'sha3-512', len: 64, oid: [...NIST_HASH_ARC, 0x0a] },
];

export function hashByCkm(ckm: number): HashAlg | undefined {
  return HASHES.find((h) => h.ckm === ckm);
}

export function hashByMgf(mgf: number): HashAlg | undefined {
  return HASHES.find((h) => h.mgf === mgf);
}

export function hashByName(node: string): HashAlg {
  const h = HASHES.find((x) => x.node === node);
  if (!h) throw new Error(`unknown hash ${node}`);
  return h;
}

export function paramInvalid(msg: string): CkError {
  return new CkError(CKR.MECHANISM_PARAM_INVALID, msg);
}

/** Mechanisms without parameters: an empty byte string is what some clients send. */
export function expectNoParam(mech: Mechanism): void {
  const p = mech.param;
  if (p.kind === 'none' || (p.kind === 'bytes' && p.data.length === 0)) return;
  throw paramInvalid('mechanism takes no parameter');
}

/** A flat struct of CK_ULONGs the wire layer passed through undecoded, in canonical
 * (8-byte little-endian) layout. Returns undefined if the size does not match. */
export function ulongsFromBytes(data: Buffer, count: number): number[] | undefined {
  if (data.length !== 8 * count) return undefined;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = data.readBigUInt64LE(8 * i);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    out.push(Number(v));
  }
  return out;
}

/** Constant-time comparison with the PKCS#11 error split between length and value. */
export function checkMac(expected: Buffer, got: Buffer | undefined): Buffer {
  if (!got) throw new CkError(CKR.ARGUMENTS_BAD, 'verify needs a signature');
  if (got.length !== expected.length) throw new CkError(CKR.SIGNATURE_LEN_RANGE);
  if (!timingSafeEqual(expected, got)) throw new CkError(CKR.SIGNATURE_INVALID);
  return EMPTY;
}

/** An operation whose primitive needs the whole input: update() collects, final()
 * runs the one-shot body. The collected copy is zeroed afterwards because it may be
 * plaintext. */
export function bufferedOperation(finish: (data: Buffer, signature?: Buffer) => Promise<Buffer>): Operation {
  let parts: Buffer[] = [];
  let total = 0;
  return {
    oneShot: (data, signature) => finish(data, signature),
    async update(data) {
      total += data.length;
      if (total > MAX_BUFFERED) throw new CkError(CKR.DATA_LEN_RANGE, 'multi-part input too large');
      parts.push(Buffer.from(data));
      return EMPTY;
    },
    async final(signature) {
      const all = Buffer.concat(parts);
      for (const p of parts) p.fill(0);
      parts = [];
      try {
        return await finish(all, signature);
      } finally {
        all.fill(0);
      }
    },
  };
}

/** Minimal DER helpers: just the shapes PKCS#11 attributes need. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derTlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

export interface Tlv {
  tag: number;
  /** The whole element: header and body. */
  der: Buffer;
  body: Buffer;
}

/** One DER element at the start of `buf` (low tag numbers, minimal lengths), or undefined
 * when it is not well-formed. */
export function readTlv(buf: Buffer): Tlv | undefined {
  if (buf.length < 2) return undefined;
  const tag = buf[0]!;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: no structure read here uses them
  let len = buf[1]!;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || buf.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
    off += n;
    if (len < 0x80) return undefined; // non-minimal length: not DER
  }
  if (buf.length < off + len) return undefined;
  return { tag, der: buf.subarray(0, off + len), body: buf.subarray(off, off + len) };
}

/** Parses one TLV with tag `tag` at the start of `buf`; returns undefined on any malformation. */
export function derRead(buf: Buffer, tag: number): { body: Buffer; rest: Buffer } | undefined {
  const t = readTlv(buf);
  if (!t || t.tag !== tag) return undefined;
  return { body: t.body, rest: buf.subarray(t.der.length) };
}

export const DER = { INTEGER: 0x02, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, PRINTABLE: 0x13, SEQUENCE: 0x30 } as const;

/** DigestInfo for EMSA-PKCS1-v1_5 (RFC 8017 §9.2). */
export function digestInfo(h: HashAlg, digest: Buffer): Buffer {
  const algId = derTlv(DER.SEQUENCE, Buffer.concat([derTlv(DER.OID, Buffer.from(h.oid)), Buffer.from([DER.NULL, 0])]));
  return derTlv(DER.SEQUENCE, Buffer.concat([algId, derTlv(DER.OCTET_STRING, digest)]));
}

/** The hash of an EMSA-PKCS1-v1_5 DigestInfo (RFC 8017 §9.2) given as a whole input: the
 * exact DER encoding digestInfo() produces (NULL parameters) with a digest of the hash's
 * length and nothing after it; undefined for anything else. */
export function digestInfoHash(data: Buffer): HashAlg | undefined {
  for (const h of HASHES) {
    const template = digestInfo(h, Buffer.alloc(h.len));
    if (data.length !== template.length) continue;
    const prefix = template.subarray(0, template.length - h.len);
    if (prefix.equals(data.subarray(0, prefix.length))) return h;
  }
  return undefined;
}

// ---- key wrapping shells (AES-KW/KWP/CBC and RSA key transport share them) ----

/** Wraps a secret key's CKA_VALUE with an encrypt operation built for the wrapping key;
 * only secret keys are wrappable by the families that use this. */
export async function wrapSecretValue(key: KeyRef, op: () => Operation, tooLong: string): Promise<Buffer> {
  const cls = key.attrs.get(CKA.CLASS);
  const value = key.attrs.get(CKA.VALUE);
  if ((cls && readUlong(cls) !== CKO.SECRET_KEY) || !value) throw new CkError(CKR.KEY_NOT_WRAPPABLE);
  return encryptWrapPlaintext(op(), value, tooLong);
}

/** Encrypts a key's wrap plaintext (a secret value, a PKCS#8 blob): an input length the
 * mechanism cannot take is, for C_WrapKey, the size of the key being wrapped. */
export async function encryptWrapPlaintext(encrypt: Operation, plain: Buffer, tooLong: string): Promise<Buffer> {
  try {
    return await encrypt.oneShot(plain);
  } catch (e) {
    if (e instanceof CkError && e.rv === CKR.DATA_LEN_RANGE) throw new CkError(CKR.KEY_SIZE_RANGE, tooLong);
    throw e;
  }
}

/** Unwraps to a secret key value with a decrypt operation. */
export async function unwrapSecretValue(template: AttrMap, family: string, op: () => Operation, wrapped: Buffer): Promise<Buffer> {
  const cls = optUlong(template, CKA.CLASS);
  if (cls !== undefined && cls !== CKO.SECRET_KEY) throw new CkError(CKR.TEMPLATE_INCONSISTENT, `${family} unwraps secret keys only`);
  return decryptWrapped(op, wrapped);
}

/** Decrypts a wrapped key (secret value or PKCS#8 blob), mapping cipher errors to the
 * wrapped-key codes C_UnwrapKey must return. */
export async function decryptWrapped(op: () => Operation, wrapped: Buffer): Promise<Buffer> {
  const decrypt = op();
  try {
    return await decrypt.oneShot(wrapped);
  } catch (e) {
    if (e instanceof CkError && e.rv === CKR.ENCRYPTED_DATA_LEN_RANGE) throw new CkError(CKR.WRAPPED_KEY_LEN_RANGE);
    if (e instanceof CkError && e.rv === CKR.ENCRYPTED_DATA_INVALID) throw new CkError(CKR.WRAPPED_KEY_INVALID);
    throw e;
  }
}
