import { describe, expect, it } from 'vitest';
import { attrKind } from '../../../hsm-daemon/src/pkcs11/attributes.js';
import { CKA, CKF, CKM, CKO, CK_UNAVAILABLE_INFORMATION } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import { encodeTemplate, ProtocolError, Reader, Writer } from '../../../hsm-daemon/src/wire/codec.js';
import type { ClientLayout } from '../../../hsm-daemon/src/wire/contract.js';

const LAYOUTS: ClientLayout[] = [
  { ulongSize: 8, littleEndian: true },
  { ulongSize: 4, littleEndian: true },
  { ulongSize: 8, littleEndian: false },
  { ulongSize: 4, littleEndian: false },
];
const name = (l: ClientLayout) => `${l.ulongSize * 8}-bit ${l.littleEndian ? 'LE' : 'BE'}`;

function nativeUlong(v: number, l: ClientLayout): Buffer {
  const b = Buffer.alloc(l.ulongSize);
  if (l.ulongSize === 8) l.littleEndian ? b.writeBigUInt64LE(BigInt(v)) : b.writeBigUInt64BE(BigInt(v));
  else l.littleEndian ? b.writeUInt32LE(v) : b.writeUInt32BE(v);
  return b;
}
function canonical(...v: number[]): Buffer {
  const b = Buffer.alloc(8 * v.length);
  v.forEach((x, i) => b.writeBigUInt64LE(BigInt(x), 8 * i));
  return b;
}

describe('attrKind', () => {
  it('classifies the table and the CKF_ARRAY_ATTRIBUTE rule', () => {
    expect(attrKind(CKA.CLASS)).toBe('ulong');
    expect(attrKind(CKA.VALUE_LEN)).toBe('ulong');
    expect(attrKind(CKA.TOKEN)).toBe('bool');
    expect(attrKind(CKA.START_DATE)).toBe('date');
    expect(attrKind(CKA.ALLOWED_MECHANISMS)).toBe('ulongArray');
    expect(attrKind(CKA.WRAP_TEMPLATE)).toBe('attrArray');
    expect(attrKind(CKA.DERIVE_TEMPLATE)).toBe('attrArray');
    expect(attrKind(CKA.VENDOR_DEFINED + CKF.ARRAY_ATTRIBUTE + 5)).toBe('attrArray');
    expect(attrKind(CKA.VALUE)).toBe('bytes');
    expect(attrKind(CKA.VENDOR_DEFINED + 1)).toBe('bytes');
  });
});

describe('Reader / Writer primitives', () => {
  it('round-trips every encoding', () => {
    const l = LAYOUTS[0]!;
    const w = new Writer(l)
      .u8(7)
      .u32(0xdeadbeef)
      .ulong(Number.MAX_SAFE_INTEGER)
      .bytes(Buffer.from('abc'))
      .ulongList([1, 2, 3])
      .padded('label', 8)
      .version(2, 40);
    // opt_bytes as the module sends it: absent, then present
    const buf = Buffer.concat([w.finish(), Buffer.of(0, 1, 0, 0, 0, 2, 9, 9)]);
    const r = new Reader(buf, l);
    expect(r.u8()).toBe(7);
    expect(r.u32()).toBe(0xdeadbeef);
    expect(r.ulong()).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.bytes().toString()).toBe('abc');
    expect(r.ulongList()).toEqual([1, 2, 3]);
    expect(r.padded(8).toString()).toBe('label   ');
    expect([r.u8(), r.u8()]).toEqual([2, 40]);
    expect(r.optBytes()).toBeNull();
    expect(r.optBytes()).toEqual(Buffer.of(9, 9));
    r.end();
  });

  it('rejects short, trailing and out-of-range input with ProtocolError', () => {
    const l = LAYOUTS[0]!;
    expect(() => new Reader(Buffer.of(1, 2, 3), l).u32()).toThrow(ProtocolError);
    expect(() => new Reader(Buffer.of(0, 0, 0, 5, 1), l).bytes()).toThrow(ProtocolError);
    expect(() => new Reader(Buffer.of(1), l).end()).toThrow(ProtocolError);
    expect(() => new Reader(Buffer.of(2), l).optBytes()).toThrow(ProtocolError);
    const huge = Buffer.alloc(8, 0xff);
    expect(() => new Reader(huge, l).ulong()).toThrow(ProtocolError);
    expect(new Reader(huge, l).ulong(true)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('checks counts against the remaining bytes before allocating', () => {
    const l = LAYOUTS[0]!;
    const bigCount = Buffer.of(0xff, 0xff, 0xff, 0xff);
    expect(() => new Reader(bigCount, l).ulongList()).toThrow(ProtocolError);
    expect(() => new Reader(bigCount, l).attrTypes()).toThrow(ProtocolError);
    expect(() => new Reader(bigCount, l).template()).toThrow(ProtocolError);
    // 2 attributes declared, bytes for 1
    const t = Buffer.concat([Buffer.of(0, 0, 0, 2), Buffer.alloc(12)]);
    expect(() => new Reader(t, l).template()).toThrow(ProtocolError);
  });

  it('bounds template nesting', () => {
    const l = LAYOUTS[0]!;
    const deep = (n: number): Buffer => {
      const w = new Writer(l).u32(1).ulong(CKA.WRAP_TEMPLATE);
      return Buffer.concat([w.finish(), n === 0 ? Buffer.of(0, 0, 0, 0) : deep(n - 1)]);
    };
    expect(() => new Reader(deep(3), l).template()).not.toThrow(); // 4 nested levels, as the module allows
    expect(() => new Reader(deep(4), l).template()).toThrow(ProtocolError);
    expect(() => new Reader(deep(10), l).template()).toThrow(ProtocolError);
  });

  it('pads and truncates padded text without splitting UTF-8', () => {
    const l = LAYOUTS[0]!;
    expect(new Writer(l).padded('x', 3).finish()).toEqual(Buffer.from('x  '));
    expect(new Writer(l).padded('abcdef', 3).finish()).toEqual(Buffer.from('abc'));
    expect(new Writer(l).padded('aé', 2).finish()).toEqual(Buffer.from('a '));
  });

  it('writes CK_UNAVAILABLE_INFORMATION and refuses out-of-range values', () => {
    const l = LAYOUTS[0]!;
    expect(new Writer(l).ulong(CK_UNAVAILABLE_INFORMATION).finish()).toEqual(Buffer.alloc(8, 0xff));
    expect(() => new Writer(l).ulong(-1)).toThrow(RangeError);
    expect(() => new Writer(l).u8(256)).toThrow(RangeError);
  });
});

for (const l of LAYOUTS) {
  describe(`templates and attribute values, ${name(l)}`, () => {
    it('converts native templates to canonical form', () => {
      const wire = encodeTemplate(
        [
          { type: CKA.CLASS, value: nativeUlong(CKO.SECRET_KEY, l) },
          { type: CKA.TOKEN, value: Buffer.of(1) },
          { type: CKA.LABEL, value: Buffer.from('k1') },
          { type: CKA.START_DATE, value: Buffer.from('20260101') },
          { type: CKA.ALLOWED_MECHANISMS, value: Buffer.concat([nativeUlong(CKM.AES_GCM, l), nativeUlong(CKM.AES_CBC, l)]) },
          { type: CKA.WRAP_TEMPLATE, value: Buffer.alloc(0), nested: [{ type: CKA.VALUE_LEN, value: nativeUlong(32, l) }] },
        ],
        l,
      );
      const r = new Reader(wire, l);
      const t = r.template();
      r.end();
      expect(t).toEqual([
        { type: CKA.CLASS, value: canonical(CKO.SECRET_KEY) },
        { type: CKA.TOKEN, value: Buffer.of(1) },
        { type: CKA.LABEL, value: Buffer.from('k1') },
        { type: CKA.START_DATE, value: Buffer.from('20260101') },
        { type: CKA.ALLOWED_MECHANISMS, value: canonical(CKM.AES_GCM, CKM.AES_CBC) },
        { type: CKA.WRAP_TEMPLATE, value: Buffer.alloc(0), nested: [{ type: CKA.VALUE_LEN, value: canonical(32) }] },
      ]);
    });

    it('passes mismatched lengths through so the object layer rejects them', () => {
      const wire = encodeTemplate(
        [
          { type: CKA.CLASS, value: Buffer.of(1, 2, 3) },
          { type: CKA.ALLOWED_MECHANISMS, value: Buffer.of(1, 2, 3) },
          { type: CKA.VALUE_LEN, value: Buffer.alloc(l.ulongSize === 4 ? 8 : 4) },
        ],
        l,
      );
      const t = new Reader(wire, l).template();
      expect(t[0]!.value).toEqual(Buffer.of(1, 2, 3));
      expect(t[1]!.value).toEqual(Buffer.of(1, 2, 3));
      // never a length that would pass as canonical
      expect(t[2]!.value.length).not.toBe(8);
    });

    it('encodes attr_values in native layout, with unavailable values and nested templates', () => {
      const out = new Writer(l)
        .attrValues([
          { type: CKA.CLASS, value: canonical(CKO.PRIVATE_KEY) },
          { type: CKA.SENSITIVE, value: Buffer.of(1) },
          { type: CKA.VALUE, value: null },
          { type: CKA.ALLOWED_MECHANISMS, value: canonical(CKM.RSA_PKCS_PSS) },
          { type: CKA.UNWRAP_TEMPLATE, value: Buffer.alloc(0), nested: [{ type: CKA.KEY_TYPE, value: canonical(0x1f) }] },
          { type: CKA.MODULUS_BITS, value: canonical(2 ** 40) },
        ])
        .finish();
      const r = new Reader(out, l);
      expect(r.u32()).toBe(6);
      expect(r.ulong()).toBe(CKA.CLASS);
      expect(r.ulong()).toBe(l.ulongSize);
      expect(r.padded(l.ulongSize)).toEqual(nativeUlong(CKO.PRIVATE_KEY, l));
      expect([r.ulong(), r.ulong(), r.u8()]).toEqual([CKA.SENSITIVE, 1, 1]);
      expect(r.ulong()).toBe(CKA.VALUE);
      expect(r.ulong(true)).toBe(Number.MAX_SAFE_INTEGER); // CK_UNAVAILABLE_INFORMATION
      expect(r.ulong()).toBe(CKA.ALLOWED_MECHANISMS);
      expect(r.ulong()).toBe(l.ulongSize);
      expect(r.padded(l.ulongSize)).toEqual(nativeUlong(CKM.RSA_PKCS_PSS, l));
      expect(r.ulong()).toBe(CKA.UNWRAP_TEMPLATE);
      const nestedLen = r.ulong();
      const nested = new Reader(r.padded(nestedLen), l);
      expect(nested.template()).toEqual([{ type: CKA.KEY_TYPE, value: canonical(0x1f) }]);
      nested.end();
      expect(r.ulong()).toBe(CKA.MODULUS_BITS);
      if (l.ulongSize === 8) {
        expect(r.ulong()).toBe(8);
        expect(r.padded(8)).toEqual(l.littleEndian ? canonical(2 ** 40) : Buffer.from(canonical(2 ** 40)).reverse());
      } else {
        expect(r.ulong(true)).toBe(Number.MAX_SAFE_INTEGER); // does not fit: unavailable
      }
      r.end();
    });
  });
}
