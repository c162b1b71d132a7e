// Canonical attribute values (see mechanisms/types.ts AttrMap): the one place that
// knows CK_ULONG is 8 bytes little-endian and CK_BBOOL one byte inside the daemon.

/** CK_UNAVAILABLE_INFORMATION stored in a CK_ULONG attribute (e.g. CKA_KEY_GEN_MECHANISM). */
export const ULONG_UNAVAILABLE = Buffer.alloc(8, 0xff);

export function ulongValue(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Reads a canonical CK_ULONG; undefined when the buffer is not 8 bytes. Values beyond
 * 2^53 (only CK_UNAVAILABLE_INFORMATION in practice) come back as -1. */
export function readUlong(b: Buffer | undefined): number | undefined {
  if (!b || b.length !== 8) return undefined;
  const v = b.readBigUInt64LE(0);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

/** A fresh buffer each time: attribute values are owned by their object (and secret
 * ones are zeroed in place), so none may be shared. */
export function boolValue(v: boolean): Buffer {
  return Buffer.from([v ? 1 : 0]);
}

/** Reads a canonical CK_BBOOL; undefined when the buffer is not 1 byte. Any non-zero is true. */
export function readBool(b: Buffer | undefined): boolean | undefined {
  if (!b || b.length !== 1) return undefined;
  return b[0] !== 0;
}
