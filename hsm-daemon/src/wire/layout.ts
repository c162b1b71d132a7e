// Conversion between a client's native CK_ULONG layout (declared in HELLO) and the
// daemon's canonical form (8-byte little-endian). Only fixed, known structures pass
// through here; everything else travels as opaque bytes.
import type { ClientLayout } from './contract.js';

export const CANONICAL_ULONG = 8;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Reads one native CK_ULONG at `off` as a bigint. The caller has checked the bounds. */
export function readNativeBig(buf: Buffer, off: number, layout: ClientLayout): bigint {
  if (layout.ulongSize === 8) return layout.littleEndian ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off);
  return BigInt(layout.littleEndian ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
}

/** A native CK_ULONG as a number; values beyond 2^53 - 1 saturate there, because no valid
 * parameter is that large and the mechanism family then rejects it. */
export function readNativeUlong(buf: Buffer, off: number, layout: ClientLayout): number {
  const v = readNativeBig(buf, off, layout);
  return v > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** n native CK_ULONGs (value.length === n × ulongSize) → n × 8-byte LE. */
export function nativeUlongsToCanonical(value: Buffer, layout: ClientLayout): Buffer {
  const n = value.length / layout.ulongSize;
  const out = Buffer.alloc(n * CANONICAL_ULONG);
  for (let i = 0; i < n; i++) out.writeBigUInt64LE(readNativeBig(value, i * layout.ulongSize, layout), i * CANONICAL_ULONG);
  return out;
}

/** n × 8-byte LE → n native CK_ULONGs; null when a value does not fit a 4-byte CK_ULONG. */
export function canonicalUlongsToNative(value: Buffer, layout: ClientLayout): Buffer | null {
  const n = value.length / CANONICAL_ULONG;
  const out = Buffer.alloc(n * layout.ulongSize);
  for (let i = 0; i < n; i++) {
    const v = value.readBigUInt64LE(i * CANONICAL_ULONG);
    const off = i * layout.ulongSize;
    if (layout.ulongSize === 8) {
      if (layout.littleEndian) out.writeBigUInt64LE(v, off);
      else out.writeBigUInt64BE(v, off);
    } else {
      if (v > 0xffffffffn) return null;
      if (layout.littleEndian) out.writeUInt32LE(Number(v), off);
      else out.writeUInt32BE(Number(v), off);
    }
  }
  return out;
}
