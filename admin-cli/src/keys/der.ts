// Just enough DER for key import: walk TLVs and hand back exact byte slices (a
// certificate's issuer, subject and serial number must be stored byte for byte as they
// appear in the certificate, so nothing here re-encodes).

export interface Tlv {
  tag: number;
  /** The whole element: header and body. */
  der: Buffer;
  body: Buffer;
}

/** One element at the start of `buf`, or undefined when it is not well-formed DER. */
export function readTlv(buf: Buffer): Tlv | undefined {
  if (buf.length < 2) return undefined;
  const tag = buf[0]!;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: not used by the structures read here
  let len = buf[1]!;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || buf.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
    off = 2 + n;
  }
  if (off + len > buf.length) return undefined;
  return { tag, der: buf.subarray(0, off + len), body: buf.subarray(off, off + len) };
}

/** The elements inside a constructed element's body, or undefined when any is malformed. */
export function children(body: Buffer): Tlv[] | undefined {
  const out: Tlv[] = [];
  let rest = body;
  while (rest.length > 0) {
    const t = readTlv(rest);
    if (!t) return undefined;
    out.push(t);
    rest = rest.subarray(t.der.length);
  }
  return out;
}

export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, OID: 0x06, SEQUENCE: 0x30, CONTEXT_0: 0xa0 } as const;

/** A DER element from a tag and body. */
export function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else if (n < 0x100) head = [tag, 0x81, n];
  else if (n < 0x10000) head = [tag, 0x82, n >> 8, n & 0xff];
  else head = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from(head), body]);
}

/** The sequence's children when `der` is exactly one SEQUENCE. */
export function sequence(der: Buffer): Tlv[] | undefined {
  const t = readTlv(der);
  if (!t || t.tag !== TAG.SEQUENCE || t.der.length !== der.length) return undefined;
  return children(t.body);
}
