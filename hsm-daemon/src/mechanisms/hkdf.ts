// HKDF (RFC 5869) as PKCS#11 3.0 defines it: CKM_HKDF_DERIVE for keys,
// CKM_HKDF_DATA for data objects, CKM_HKDF_KEY_GEN for CKK_HKDF base keys.
// Extract and expand are separable, so both are done here with HMAC rather than
// node's hkdf(), which always runs both steps.
import { createHmac } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { randomBytes } from '../drbg/index.js';
import { keyTypeOf, optUlong, ulongAttr } from './attrs.js';
import { expectNoParam, hashByCkm, paramInvalid, type HashAlg } from './common.js';
import type { AttrMap, GeneratedKey, KeyRef, Mechanism, MechanismFamily, MechanismInfo } from './types.js';

const MIN_KEY = 1;
const MAX_KEY = 4096;
/** Base key types HKDF accepts: the dedicated one and generic secrets. */
const BASE_TYPES = new Set<number>([CKK.HKDF, CKK.GENERIC_SECRET]);
const PRFS = new Set<number>([CKM.SHA_1, CKM.SHA224, CKM.SHA256, CKM.SHA384, CKM.SHA512, CKM.SHA3_224, CKM.SHA3_256, CKM.SHA3_384, CKM.SHA3_512]);

export function hkdfExtract(h: HashAlg, salt: Buffer, ikm: Buffer): Buffer {
  return createHmac(h.node, salt.length ? salt : Buffer.alloc(h.len)).update(ikm).digest();
}

export function hkdfExpand(h: HashAlg, prk: Buffer, info: Buffer, len: number): Buffer {
  const blocks: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1, have = 0; have < len; i++) {
    t = createHmac(h.node, prk).update(t).update(info).update(Buffer.from([i])).digest();
    blocks.push(t);
    have += t.length;
  }
  const all = Buffer.concat(blocks);
  const out = Buffer.from(all.subarray(0, len));
  all.fill(0);
  for (const b of blocks) b.fill(0);
  return out;
}

export class HkdfFamily implements MechanismFamily {
  readonly name = 'hkdf';

  mechanisms(): MechanismInfo[] {
    return [
      { type: CKM.HKDF_DERIVE, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags: CKF.DERIVE },
      { type: CKM.HKDF_DATA, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags: CKF.DERIVE },
      { type: CKM.HKDF_KEY_GEN, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags: CKF.GENERATE },
    ];
  }

  async generateKey(mech: Mechanism, template: AttrMap): Promise<GeneratedKey> {
    if (mech.type !== CKM.HKDF_KEY_GEN) throw new CkError(CKR.MECHANISM_INVALID);
    expectNoParam(mech);
    const len = optUlong(template, CKA.VALUE_LEN);
    if (len === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE_LEN is required');
    if (len < MIN_KEY || len > MAX_KEY) throw new CkError(CKR.KEY_SIZE_RANGE);
    return {
      attrs: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.HKDF)],
        [CKA.VALUE, randomBytes(len)],
        [CKA.VALUE_LEN, ulongAttr(len)],
      ]),
    };
  }

  async derive(mech: Mechanism, baseKey: KeyRef, template: AttrMap): Promise<AttrMap> {
    if (mech.type !== CKM.HKDF_DERIVE && mech.type !== CKM.HKDF_DATA) throw new CkError(CKR.MECHANISM_INVALID);
    const p = mech.param;
    if (p.kind !== 'hkdf') throw paramInvalid('expected CK_HKDF_PARAMS');
    if (!p.extract && !p.expand) throw paramInvalid('HKDF needs extract, expand or both');
    const h = PRFS.has(p.prf) ? hashByCkm(p.prf) : undefined;
    if (!h) throw paramInvalid('unsupported HKDF PRF');
    if (!BASE_TYPES.has(keyTypeOf(baseKey))) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
    const ikm = baseKey.attrs.get(CKA.VALUE);
    if (!ikm) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'base key without a value');

    let salt: Buffer = Buffer.alloc(0);
    if (p.extract) {
      if (p.saltType === CKF.HKDF_SALT_DATA) {
        if (!p.salt.length) throw paramInvalid('CKF_HKDF_SALT_DATA needs salt bytes');
        salt = p.salt;
      } else if (p.saltType === CKF.HKDF_SALT_KEY) {
        // The dispatcher resolved hSaltKey to the key object (types.ts, saltKeyRef).
        const sk = p.saltKeyRef;
        if (!sk) throw paramInvalid('CKF_HKDF_SALT_KEY needs a salt key');
        if (optUlong(sk.attrs, CKA.CLASS) !== CKO.SECRET_KEY || !BASE_TYPES.has(keyTypeOf(sk))) throw paramInvalid('the HKDF salt key must be a CKK_HKDF or generic secret key');
        const v = sk.attrs.get(CKA.VALUE);
        if (!v || !v.length) throw paramInvalid('the HKDF salt key has no value');
        salt = v;
      } else if (p.saltType !== CKF.HKDF_SALT_NULL) {
        throw paramInvalid('unsupported HKDF salt type');
      }
    }

    const prk = p.extract ? hkdfExtract(h, salt, ikm) : Buffer.from(ikm);
    try {
      let value: Buffer;
      const want = optUlong(template, CKA.VALUE_LEN);
      if (!p.expand) {
        if (want !== undefined && want !== prk.length) throw new CkError(CKR.TEMPLATE_INCONSISTENT, 'extract-only output is one hash long');
        value = Buffer.from(prk);
      } else {
        const kt = optUlong(template, CKA.KEY_TYPE);
        const len = want;
        if (len === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE_LEN is required');
        if (len < 1 || len > 255 * h.len) throw new CkError(CKR.TEMPLATE_INCONSISTENT, 'HKDF output length out of range');
        if (kt === CKK.AES && ![16, 24, 32].includes(len)) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
        value = hkdfExpand(h, prk, p.info, len);
      }
      return new Map([
        [CKA.VALUE, value],
        [CKA.VALUE_LEN, ulongAttr(value.length)],
      ]);
    } finally {
      prk.fill(0);
    }
  }
}
