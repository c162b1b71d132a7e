// Just enough DER for key import: walk TLVs and hand back exact byte slices (a
// certificate's issuer, subject and serial number must be stored byte for byte as they
// appear in the certificate, so nothing here re-encodes).

import { readTlv, type Tlv } from '../../../hsm-daemon/src/mechanisms/common.js';

export { readTlv, type Tlv };

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
export { derTlv as tlv } from '../../../hsm-daemon/src/mechanisms/common.js';

/** The sequence's children when `der` is exactly one SEQUENCE. */
export function sequence(der: Buffer): Tlv[] | undefined {
  const t = readTlv(der);
  if (!t || t.tag !== TAG.SEQUENCE || t.der.length !== der.length) return undefined;
  return children(t.body);
}
