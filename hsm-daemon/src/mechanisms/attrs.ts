// Canonical attribute encoding helpers (see AttrMap in types.ts): CK_ULONG is an
// 8-byte little-endian value, CK_BBOOL one byte. Families only ever read and write
// attributes through these so the layout lives in one place.
import { CKA, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import type { AttrMap, KeyRef } from './types.js';

// Writing is shared with the object layer (pkcs11/values.ts); reading here is strict
// because a malformed key attribute must fail the operation with a CK_RV.
export { ulongValue as ulongAttr, boolValue as boolAttr } from '../pkcs11/values.js';

/** Reads a canonical CK_ULONG. Values beyond 2^53 do not occur for the attributes
 * families read (lengths, bit sizes, enum values), so a number is returned. */
export function readUlong(buf: Buffer): number {
  if (buf.length !== 8) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, 'CK_ULONG attribute must be 8 bytes');
  const v = buf.readBigUInt64LE(0);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, 'CK_ULONG out of range');
  return Number(v);
}

export function readBool(buf: Buffer): boolean {
  if (buf.length !== 1) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, 'CK_BBOOL attribute must be 1 byte');
  return buf[0] !== 0;
}

export function optUlong(attrs: AttrMap, type: number): number | undefined {
  const v = attrs.get(type);
  return v === undefined ? undefined : readUlong(v);
}

/** The key's CKA_KEY_TYPE; a key without one cannot be used by any family. */
export function keyTypeOf(key: KeyRef): number {
  const v = key.attrs.get(CKA.KEY_TYPE);
  if (v === undefined) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'key has no CKA_KEY_TYPE');
  return readUlong(v);
}

export function requireAttr(attrs: AttrMap, type: number, rv: number = CKR.KEY_TYPE_INCONSISTENT): Buffer {
  const v = attrs.get(type);
  if (v === undefined || v.length === 0) throw new CkError(rv, 'key is missing a required component');
  return v;
}

export function attrMap(entries: Array<[number, Buffer]>): AttrMap {
  return new Map(entries);
}
