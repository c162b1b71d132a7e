// Protocol v1 payload encodings (protocol.md "Encodings") and the conversion of
// attribute values between the client's native layout and canonical form.
// Every read is bounds-checked before anything is allocated: a count is trusted only
// once count × (smallest element size) fits in the bytes that remain.
import type { Mechanism } from '../mechanisms/types.js';
import { attrKind } from '../pkcs11/attributes.js';
import { CK_UNAVAILABLE_INFORMATION, CKF } from '../pkcs11/constants.generated.js';
import type { Attr, AttrAnswer, ClientLayout, ReplyWriter, RequestReader } from './contract.js';
import { ProtocolError } from './errors.js';
import { CANONICAL_ULONG, canonicalUlongsToNative, nativeUlongsToCanonical } from './layout.js';
import { decodeFlat, decodeStruct, FORM_FLAT, FORM_NONE, FORM_STRUCT } from './params.js';

export { ProtocolError } from './errors.js';

/** Nested templates allowed below the outermost template or attr_values list (the
 * module's MAX_NESTING). PKCS#11 needs one (a CKA_WRAP_TEMPLATE in a template); the
 * limit keeps recursion bounded whatever the peer sends. */
export const MAX_TEMPLATE_NESTING = 4;

const ULONG_BYTES = 8;
const U32_BYTES = 4;
// Smallest encoded attribute: ulong type + u32 (value length or nested count).
const MIN_ATTR_BYTES = ULONG_BYTES + U32_BYTES;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U64_MAX = 0xffffffffffffffffn;
const ARRAY_BIT = BigInt(CKF.ARRAY_ATTRIBUTE);

function toNumber(v: bigint): number {
  return v > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Whether an attribute's value is encoded as a nested template: the type carries
 * CKF_ARRAY_ATTRIBUTE and is not CKA_ALLOWED_MECHANISMS (a CK_ULONG array despite the flag).
 * Decided on the full 64-bit type so that saturation never changes the encoding. */
function isNestedType(type: bigint, asNumber: number): boolean {
  return (type & ARRAY_BIT) !== 0n && attrKind(asNumber) !== 'ulongArray';
}

/** Native attribute value → canonical (see contract.ts Attr). */
export function attrToCanonical(type: number, value: Buffer, layout: ClientLayout): Buffer {
  const kind = attrKind(type);
  const u = layout.ulongSize;
  if (kind === 'ulong') {
    if (value.length === u) return nativeUlongsToCanonical(value, layout);
    // A wrong-length value for a 4-byte client could be exactly 8 bytes and would then
    // look canonical; an empty value is one the object layer always rejects.
    if (value.length === CANONICAL_ULONG) return Buffer.alloc(0);
    return Buffer.from(value);
  }
  if (kind === 'ulongArray' && value.length % u === 0) return nativeUlongsToCanonical(value, layout);
  return Buffer.from(value);
}

/** Canonical attribute value → native; null when it cannot be represented (a value
 * above 2^32 - 1 for a 4-byte client), answered as CK_UNAVAILABLE_INFORMATION. */
export function attrToNative(type: number, value: Buffer, layout: ClientLayout): Buffer | null {
  const kind = attrKind(type);
  if ((kind === 'ulong' && value.length === CANONICAL_ULONG) || (kind === 'ulongArray' && value.length % CANONICAL_ULONG === 0)) {
    return canonicalUlongsToNative(value, layout);
  }
  return value;
}

export class Reader implements RequestReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly layout: ClientLayout,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) throw new ProtocolError(`payload too short for ${what} (need ${n} bytes, ${this.remaining} left)`);
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(U32_BYTES, 'u32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += U32_BYTES;
    return v;
  }

  private big(): bigint {
    this.need(ULONG_BYTES, 'ulong');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += ULONG_BYTES;
    return v;
  }

  ulong(allowHuge = false): number {
    const v = this.big();
    if (v > MAX_SAFE && !allowHuge) throw new ProtocolError(`ulong ${v} out of range`);
    return toNumber(v);
  }

  bytes(): Buffer {
    const n = this.u32();
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  optBytes(): Buffer | null {
    const present = this.u8();
    if (present === 0) return null;
    if (present !== 1) throw new ProtocolError(`opt_bytes presence byte ${present} (expected 0 or 1)`);
    return this.bytes();
  }

  private count(elementBytes: number, what: string): number {
    const n = this.u32();
    this.need(n * elementBytes, `${n} × ${what}`);
    return n;
  }

  ulongList(): number[] {
    const n = this.count(ULONG_BYTES, 'ulong');
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.ulong(true);
    return out;
  }

  padded(n: number): Buffer {
    this.need(n, `padded(${n})`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  template(): Attr[] {
    return this.templateAt(0);
  }

  private templateAt(depth: number): Attr[] {
    if (depth > MAX_TEMPLATE_NESTING) throw new ProtocolError(`templates nested more than ${MAX_TEMPLATE_NESTING} levels deep`);
    const n = this.count(MIN_ATTR_BYTES, 'attribute');
    const out: Attr[] = [];
    for (let i = 0; i < n; i++) {
      const big = this.big();
      const type = toNumber(big);
      if (isNestedType(big, type)) {
        out.push({ type, value: Buffer.alloc(0), nested: this.templateAt(depth + 1) });
      } else {
        // Copied: template values outlive the request (stored objects), the frame must not.
        out.push({ type, value: attrToCanonical(type, this.bytes(), this.layout) });
      }
    }
    return out;
  }

  attrTypes(): number[] {
    return this.ulongList();
  }

  mechanism(): Mechanism {
    const type = this.ulong(true);
    const form = this.u8();
    switch (form) {
      case FORM_NONE:
        return { type, param: { kind: 'none' } };
      case FORM_FLAT:
        return { type, param: decodeFlat(type, this.bytes(), this.layout) };
      case FORM_STRUCT: {
        const sub = new Reader(this.bytes(), this.layout);
        const param = decodeStruct(type, sub);
        sub.end();
        return { type, param };
      }
      default:
        throw new ProtocolError(`mechanism parameter form ${form} (expected 0, 1 or 2)`);
    }
  }

  end(): void {
    if (this.remaining !== 0) throw new ProtocolError(`${this.remaining} trailing bytes after the payload`);
  }
}

function checkU32(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
  return v;
}

export class Writer implements ReplyWriter {
  private readonly chunks: Buffer[] = [];

  constructor(private readonly layout: ClientLayout) {}

  private push(b: Buffer): this {
    this.chunks.push(b);
    return this;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    return this.push(Buffer.of(v));
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(U32_BYTES);
    b.writeUInt32BE(checkU32(v));
    return this.push(b);
  }

  ulong(v: number | bigint): this {
    if (typeof v === 'number' && (!Number.isInteger(v) || v < 0)) throw new RangeError(`ulong out of range: ${v}`);
    const big = BigInt(v);
    if (big < 0n || big > U64_MAX) throw new RangeError(`ulong out of range: ${v}`);
    const b = Buffer.allocUnsafe(ULONG_BYTES);
    b.writeBigUInt64BE(big);
    return this.push(b);
  }

  bytes(b: Buffer): this {
    this.u32(b.length);
    return this.push(b);
  }

  ulongList(v: number[]): this {
    this.u32(v.length);
    for (const x of v) this.ulong(x);
    return this;
  }

  padded(text: string | Buffer, n: number): this {
    const out = Buffer.alloc(n, 0x20);
    let src = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    if (src.length > n) {
      let cut = n;
      // Never split a UTF-8 sequence: back up over continuation bytes.
      if (typeof text === 'string') while (cut > 0 && (src[cut]! & 0xc0) === 0x80) cut--;
      src = src.subarray(0, cut);
    }
    src.copy(out);
    return this.push(out);
  }

  version(major: number, minor: number): this {
    return this.u8(major).u8(minor);
  }

  attrValues(values: AttrAnswer[]): this {
    this.u32(values.length);
    for (const a of values) {
      this.ulong(a.type);
      if (a.value === null) {
        this.ulong(CK_UNAVAILABLE_INFORMATION);
        continue;
      }
      if (attrKind(a.type) === 'attrArray') {
        const nested = new Writer(this.layout).nestedTemplate(a.nested ?? [], 1).finish();
        this.ulong(nested.length).push(nested);
        continue;
      }
      const native = attrToNative(a.type, a.value, this.layout);
      if (native === null) this.ulong(CK_UNAVAILABLE_INFORMATION);
      else this.ulong(native.length).push(native);
    }
    return this;
  }

  /** The `template` encoding, for array attributes inside attr_values. A nested value the
   * object layer could not produce is sent empty: `template` has no "unavailable". */
  private nestedTemplate(attrs: AttrAnswer[], depth: number): this {
    if (depth > MAX_TEMPLATE_NESTING) throw new RangeError(`attribute templates nested more than ${MAX_TEMPLATE_NESTING} levels deep`);
    this.u32(attrs.length);
    for (const a of attrs) {
      this.ulong(a.type);
      if (attrKind(a.type) === 'attrArray') this.nestedTemplate(a.nested ?? [], depth + 1);
      else this.bytes((a.value && attrToNative(a.type, a.value, this.layout)) ?? Buffer.alloc(0));
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Test and client-side helper: encodes a template the way the module does (native values). */
export function encodeTemplate(attrs: Attr[], layout: ClientLayout): Buffer {
  const w = new Writer(layout);
  const enc = (list: Attr[]): void => {
    w.u32(list.length);
    for (const a of list) {
      w.ulong(a.type);
      if (a.nested) enc(a.nested);
      else w.bytes(a.value);
    }
  };
  enc(attrs);
  return w.finish();
}
