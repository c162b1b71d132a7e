// Canonical attribute values (see mechanisms/types.ts AttrMap): the one place that
// knows CK_ULONG is 8 bytes little-endian and CK_BBOOL one byte inside the daemon.
export const CK_TRUE = Buffer.from([1]);
export const CK_FALSE = Buffer.from([0]);

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

export function boolValue(v: boolean): Buffer {
  return v ? CK_TRUE : CK_FALSE;
}

/** Reads a canonical CK_BBOOL; undefined when the buffer is not 1 byte. Any non-zero is true. */
export function readBool(b: Buffer | undefined): boolean | undefined {
  if (!b || b.length !== 1) return undefined;
  return b[0] !== 0;
}
