// HMAC over the SHA-1/2/3 hashes, full-length and *_HMAC_GENERAL, plus generic
// secret key generation (the usual home of HMAC keys).
import { createHmac } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { randomBytes } from '../drbg/index.js';
import { keyTypeOf, optUlong, ulongAttr } from './attrs.js';
import { EMPTY, checkMac, expectNoParam, hashByCkm, paramInvalid, ulongsFromBytes, type HashAlg } from './common.js';
import type { GeneratedKey, KeyRef, Mechanism, MechanismFamily, MechanismInfo, OpKind, Operation } from './types.js';

/** HMAC key sizes in bytes. The lower bound is the mechanism's; the policy layer
 * raises it (e.g. to 112 bits) where it must. */
const MIN_KEY = 1;
const MAX_KEY = 4096;

interface HmacMech {
  mac: number;
  general: number;
  hash: number;
  /** The dedicated CKK_*_HMAC key type, where PKCS#11 defines one. */
  keyType?: number;
}

const TABLE: readonly HmacMech[] = [
  { mac: CKM.SHA_1_HMAC, general: CKM.SHA_1_HMAC_GENERAL, hash: CKM.SHA_1, keyType: CKK.SHA_1_HMAC },
  { mac: CKM.SHA224_HMAC, general: CKM.SHA224_HMAC_GENERAL, hash: CKM.SHA224, keyType: CKK.SHA224_HMAC },
  { mac: CKM.SHA256_HMAC, general: CKM.SHA256_HMAC_GENERAL, hash: CKM.SHA256, keyType: CKK.SHA256_HMAC },
  { mac: CKM.SHA384_HMAC, general: CKM.SHA384_HMAC_GENERAL, hash: CKM.SHA384, keyType: CKK.SHA384_HMAC },
  { mac: CKM.SHA512_HMAC, general: CKM.SHA512_HMAC_GENERAL, hash: CKM.SHA512, keyType: CKK.SHA512_HMAC },
  { mac: CKM.SHA3_224_HMAC, general: CKM.SHA3_224_HMAC_GENERAL, hash: CKM.SHA3_224 },
  { mac: CKM.SHA3_256_HMAC, general: CKM.SHA3_256_HMAC_GENERAL, hash: CKM.SHA3_256 },
  { mac: CKM.SHA3_384_HMAC, general: CKM.SHA3_384_HMAC_GENERAL, hash: CKM.SHA3_384 },
  { mac: CKM.SHA3_512_HMAC, general: CKM.SHA3_512_HMAC_GENERAL, hash: CKM.SHA3_512 },
];

/** Generic secret sizes for CKM_GENERIC_SECRET_KEY_GEN; PKCS#11 states its
 * CK_MECHANISM_INFO range in bits. */
const GEN_MIN_BITS = 8 * MIN_KEY;
const GEN_MAX_BITS = 8 * MAX_KEY;

function macLength(mech: Mechanism, general: boolean, h: HashAlg): number {
  if (!general) {
    expectNoParam(mech);
    return h.len;
  }
  const p = mech.param;
  let len: number | undefined;
  if (p.kind === 'macGeneral') len = p.macLen;
  else if (p.kind === 'bytes') len = ulongsFromBytes(p.data, 1)?.[0];
  if (len === undefined) throw paramInvalid('expected CK_MAC_GENERAL_PARAMS');
  if (len < 1 || len > h.len) throw paramInvalid('MAC length out of range');
  return len;
}

/** An HMAC (or CMAC) computed incrementally, truncated to `len`; shared by sign and verify. */
export function macOperation(kind: OpKind, len: number, mac: { update(d: Buffer): unknown; digest(): Buffer }): Operation {
  const finish = (signature?: Buffer): Buffer => {
    const full = mac.digest();
    const tag = full.subarray(0, len);
    if (kind === 'sign') return Buffer.from(tag);
    try {
      return checkMac(tag, signature);
    } finally {
      full.fill(0);
    }
  };
  return {
    async oneShot(data, signature) {
      mac.update(data);
      return finish(signature);
    },
    async update(data) {
      mac.update(data);
      return EMPTY;
    },
    async final(signature) {
      return finish(signature);
    },
  };
}

export class HmacFamily implements MechanismFamily {
  readonly name = 'hmac';

  mechanisms(): MechanismInfo[] {
    const out: MechanismInfo[] = [];
    for (const m of TABLE) {
      out.push({ type: m.mac, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags: CKF.SIGN | CKF.VERIFY });
      out.push({ type: m.general, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags: CKF.SIGN | CKF.VERIFY });
    }
    out.push({ type: CKM.GENERIC_SECRET_KEY_GEN, minKeySize: GEN_MIN_BITS, maxKeySize: GEN_MAX_BITS, flags: CKF.GENERATE });
    return out;
  }

  createOperation(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
    const m = TABLE.find((x) => x.mac === mech.type || x.general === mech.type);
    if (!m) throw new CkError(CKR.MECHANISM_INVALID);
    if (kind !== 'sign' && kind !== 'verify') throw new CkError(CKR.MECHANISM_INVALID, 'HMAC only signs and verifies');
    const h = hashByCkm(m.hash)!;
    const len = macLength(mech, mech.type === m.general, h);
    if (!key) throw new CkError(CKR.KEY_HANDLE_INVALID);
    const kt = keyTypeOf(key);
    if (kt !== CKK.GENERIC_SECRET && kt !== m.keyType) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
    const value = key.attrs.get(CKA.VALUE);
    if (!value) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'secret key without a value');
    if (value.length < MIN_KEY || value.length > MAX_KEY) throw new CkError(CKR.KEY_SIZE_RANGE);
    return macOperation(kind, len, createHmac(h.node, value));
  }

  async generateKey(mech: Mechanism, template: Map<number, Buffer>): Promise<GeneratedKey> {
    if (mech.type !== CKM.GENERIC_SECRET_KEY_GEN) throw new CkError(CKR.MECHANISM_INVALID);
    expectNoParam(mech);
    const len = optUlong(template, CKA.VALUE_LEN);
    if (len === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE_LEN is required');
    if (len < MIN_KEY || len > MAX_KEY) throw new CkError(CKR.KEY_SIZE_RANGE);
    const kt = optUlong(template, CKA.KEY_TYPE) ?? CKK.GENERIC_SECRET;
    if (kt !== CKK.GENERIC_SECRET && !TABLE.some((x) => x.keyType === kt)) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
    return {
      attrs: new Map([
        [CKA.KEY_TYPE, ulongAttr(kt)],
        [CKA.VALUE, randomBytes(len)],
        [CKA.VALUE_LEN, ulongAttr(len)],
      ]),
    };
  }
}
