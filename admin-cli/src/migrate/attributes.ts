// Which attributes `migrate` carries over, per object class and key type (the attribute
// tables of PKCS#11 2.40 §4). Left out on purpose: what the token sets itself (CKA_LOCAL,
// CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_UNIQUE_ID), what it
// derives (CKA_MODULUS_BITS, CKA_CHECK_VALUE, CKA_PUBLIC_KEY_INFO), key material (it travels
// wrapped, never as an attribute), attribute-array templates, and CKA_TRUSTED (only the SO
// may set it; reported instead).
import { CKA, CKK, CKO } from '../../../hsm-daemon/src/pkcs11/index.js';

const STORAGE = [CKA.LABEL, CKA.PRIVATE, CKA.MODIFIABLE, CKA.COPYABLE, CKA.DESTROYABLE];
const KEY = [CKA.ID, CKA.START_DATE, CKA.END_DATE, CKA.DERIVE, CKA.ALLOWED_MECHANISMS];
const PUBLIC_KEY = [CKA.SUBJECT, CKA.ENCRYPT, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.WRAP];
const PRIVATE_KEY = [
  CKA.SUBJECT, CKA.SENSITIVE, CKA.DECRYPT, CKA.SIGN, CKA.SIGN_RECOVER, CKA.UNWRAP, CKA.EXTRACTABLE, CKA.WRAP_WITH_TRUSTED,
  CKA.ALWAYS_AUTHENTICATE,
];
const SECRET_KEY = [
  CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP, CKA.EXTRACTABLE, CKA.WRAP_WITH_TRUSTED,
  CKA.VALUE_LEN,
];
const DATA = [CKA.APPLICATION, CKA.OBJECT_ID, CKA.VALUE];
const CERTIFICATE = [
  CKA.CERTIFICATE_TYPE, CKA.CERTIFICATE_CATEGORY, CKA.START_DATE, CKA.END_DATE, CKA.SUBJECT, CKA.ID, CKA.ISSUER,
  CKA.SERIAL_NUMBER, CKA.VALUE, CKA.URL, CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY,
  CKA.JAVA_MIDP_SECURITY_DOMAIN, CKA.NAME_HASH_ALGORITHM,
];

const EC_TYPES = new Set<number>([CKK.EC, CKK.EC_EDWARDS, CKK.EC_MONTGOMERY]);

/** Public key values are copied as attributes; private EC keys state their curve in the
 * unwrap template (the wrapped PKCS#8 carries it too, and the target checks they agree). */
function keyTypeSpecific(cls: number, keyType: number | undefined): number[] {
  if (keyType === undefined) return [];
  if (cls === CKO.PUBLIC_KEY) {
    if (keyType === CKK.RSA) return [CKA.MODULUS, CKA.PUBLIC_EXPONENT];
    if (EC_TYPES.has(keyType)) return [CKA.EC_PARAMS, CKA.EC_POINT];
  }
  if (cls === CKO.PRIVATE_KEY && EC_TYPES.has(keyType)) return [CKA.EC_PARAMS];
  return [];
}

/** The attributes to read from the source and give the target, CKA_CLASS/CKA_KEY_TYPE aside. */
export function attributesToCopy(cls: number, keyType: number | undefined): number[] {
  switch (cls) {
    case CKO.DATA:
      return [...STORAGE, ...DATA];
    case CKO.CERTIFICATE:
      return [...STORAGE, ...CERTIFICATE];
    case CKO.PUBLIC_KEY:
      return [...STORAGE, ...KEY, ...PUBLIC_KEY, ...keyTypeSpecific(cls, keyType)];
    case CKO.PRIVATE_KEY:
      return [...STORAGE, ...KEY, ...PRIVATE_KEY, ...keyTypeSpecific(cls, keyType)];
    case CKO.SECRET_KEY:
      return [...STORAGE, ...KEY, ...SECRET_KEY];
    default:
      return [];
  }
}

/** Objects whose key material must travel wrapped. */
export const isWrappedClass = (cls: number): boolean => cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;

/** Classes with a CKA_ID, which then takes part in the "already present" match. */
export const hasId = (cls: number): boolean => cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY || cls === CKO.CERTIFICATE;
