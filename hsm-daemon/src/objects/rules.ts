// Which attributes each object class and key type may carry, which are secret, which
// the token alone sets, and which may change after creation (PKCS#11 2.40 §4, the
// attribute tables of the current-mechanisms document). One table so C_CreateObject,
// C_GenerateKey(Pair), C_CopyObject, C_SetAttributeValue and C_GetAttributeValue agree.
import { CKA, CKO, CKK } from '../pkcs11/index.js';

const S = (...a: number[]) => new Set(a);

const STORAGE = [CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.MODIFIABLE, CKA.LABEL, CKA.COPYABLE, CKA.DESTROYABLE, CKA.UNIQUE_ID];
const KEY = [CKA.KEY_TYPE, CKA.ID, CKA.START_DATE, CKA.END_DATE, CKA.DERIVE, CKA.LOCAL, CKA.KEY_GEN_MECHANISM, CKA.ALLOWED_MECHANISMS];
const PUBLIC = [CKA.SUBJECT, CKA.ENCRYPT, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.WRAP, CKA.TRUSTED, CKA.WRAP_TEMPLATE, CKA.PUBLIC_KEY_INFO];
const PRIVATE = [
  CKA.SUBJECT, CKA.SENSITIVE, CKA.DECRYPT, CKA.SIGN, CKA.SIGN_RECOVER, CKA.UNWRAP, CKA.EXTRACTABLE, CKA.ALWAYS_SENSITIVE,
  CKA.NEVER_EXTRACTABLE, CKA.WRAP_WITH_TRUSTED, CKA.UNWRAP_TEMPLATE, CKA.ALWAYS_AUTHENTICATE, CKA.PUBLIC_KEY_INFO,
];
const SECRET = [
  CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP, CKA.EXTRACTABLE, CKA.ALWAYS_SENSITIVE,
  CKA.NEVER_EXTRACTABLE, CKA.CHECK_VALUE, CKA.WRAP_WITH_TRUSTED, CKA.TRUSTED, CKA.WRAP_TEMPLATE, CKA.UNWRAP_TEMPLATE,
  CKA.VALUE, CKA.VALUE_LEN,
];
const DATA = [CKA.APPLICATION, CKA.OBJECT_ID, CKA.VALUE];
const CERT = [
  CKA.CERTIFICATE_TYPE, CKA.TRUSTED, CKA.CERTIFICATE_CATEGORY, CKA.CHECK_VALUE, CKA.START_DATE, CKA.END_DATE,
  CKA.PUBLIC_KEY_INFO, CKA.SUBJECT, CKA.ID, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.VALUE, CKA.URL,
  CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY, CKA.JAVA_MIDP_SECURITY_DOMAIN, CKA.NAME_HASH_ALGORITHM,
];

const RSA_PUBLIC = [CKA.MODULUS, CKA.MODULUS_BITS, CKA.PUBLIC_EXPONENT];
const RSA_PRIVATE = [
  CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT,
];
const EC_PUBLIC = [CKA.EC_PARAMS, CKA.EC_POINT];
const EC_PRIVATE = [CKA.EC_PARAMS, CKA.VALUE];

const SECRET_KEY_TYPES = S(
  CKK.AES, CKK.GENERIC_SECRET, CKK.SHA256_HMAC, CKK.SHA384_HMAC, CKK.SHA512_HMAC, CKK.SHA224_HMAC, CKK.SHA_1_HMAC, CKK.HKDF,
);
const EC_KEY_TYPES = S(CKK.EC, CKK.EC_EDWARDS, CKK.EC_MONTGOMERY);

export const isSecretKeyType = (k: number) => SECRET_KEY_TYPES.has(k);

/** The attributes an object of this class (and key type) may carry, or undefined when
 * the class/key type is not supported (CKR_TEMPLATE_INCONSISTENT / CKR_ATTRIBUTE_VALUE_INVALID). */
export function allowedAttributes(cls: number, keyType: number | undefined): Set<number> | undefined {
  switch (cls) {
    case CKO.DATA:
      return S(...STORAGE, ...DATA);
    case CKO.CERTIFICATE:
      return S(...STORAGE, ...CERT);
    case CKO.PUBLIC_KEY:
      if (keyType === CKK.RSA) return S(...STORAGE, ...KEY, ...PUBLIC, ...RSA_PUBLIC);
      if (keyType !== undefined && EC_KEY_TYPES.has(keyType)) return S(...STORAGE, ...KEY, ...PUBLIC, ...EC_PUBLIC);
      return undefined;
    case CKO.PRIVATE_KEY:
      if (keyType === CKK.RSA) return S(...STORAGE, ...KEY, ...PRIVATE, ...RSA_PRIVATE);
      if (keyType !== undefined && EC_KEY_TYPES.has(keyType)) return S(...STORAGE, ...KEY, ...PRIVATE, ...EC_PRIVATE);
      return undefined;
    case CKO.SECRET_KEY:
      if (keyType !== undefined && SECRET_KEY_TYPES.has(keyType)) return S(...STORAGE, ...KEY, ...SECRET);
      return undefined;
    default:
      return undefined;
  }
}

/** Attributes that carry key material: never returned when the key is sensitive or
 * unextractable, and sealed at rest (token key, or the device key for public objects). */
export function secretAttributes(cls: number): Set<number> {
  if (cls === CKO.PRIVATE_KEY) {
    return S(CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT, CKA.VALUE);
  }
  if (cls === CKO.SECRET_KEY) return S(CKA.VALUE);
  return S();
}

/** Set only by the token; a template naming them gets CKR_ATTRIBUTE_READ_ONLY. */
export const TOKEN_SET = S(CKA.LOCAL, CKA.KEY_GEN_MECHANISM, CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.UNIQUE_ID);

/** Changeable by C_SetAttributeValue / C_CopyObject when CKA_MODIFIABLE is true. */
export const MODIFIABLE_AFTER_CREATION = S(
  CKA.LABEL, CKA.ID, CKA.SUBJECT, CKA.START_DATE, CKA.END_DATE, CKA.APPLICATION, CKA.OBJECT_ID,
  CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.SIGN_RECOVER, CKA.VERIFY_RECOVER, CKA.WRAP, CKA.UNWRAP, CKA.DERIVE,
  CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.WRAP_WITH_TRUSTED, CKA.ISSUER, CKA.SERIAL_NUMBER,
);

/** Attributes that may only move one way: to true (SENSITIVE, WRAP_WITH_TRUSTED) or to
 * false (EXTRACTABLE). Value = the direction allowed. */
export const ONE_WAY: ReadonlyMap<number, boolean> = new Map([
  [CKA.SENSITIVE, true],
  [CKA.WRAP_WITH_TRUSTED, true],
  [CKA.EXTRACTABLE, false],
]);

/** Attributes a new object gets when the template is silent. Private and secret keys are
 * sensitive and unextractable by default: the HSM's promise is that keys stay inside. */
export function defaultAttributes(cls: number): Array<[number, boolean]> {
  const storage: Array<[number, boolean]> = [
    [CKA.TOKEN, false], [CKA.MODIFIABLE, true], [CKA.COPYABLE, true], [CKA.DESTROYABLE, true],
  ];
  switch (cls) {
    case CKO.PUBLIC_KEY:
      return [...storage, [CKA.PRIVATE, false], [CKA.DERIVE, false], [CKA.ENCRYPT, true], [CKA.VERIFY, true],
        [CKA.VERIFY_RECOVER, true], [CKA.WRAP, true], [CKA.TRUSTED, false]];
    case CKO.PRIVATE_KEY:
      return [...storage, [CKA.PRIVATE, true], [CKA.DERIVE, false], [CKA.SENSITIVE, true], [CKA.DECRYPT, true],
        [CKA.SIGN, true], [CKA.SIGN_RECOVER, true], [CKA.UNWRAP, true], [CKA.EXTRACTABLE, false],
        [CKA.WRAP_WITH_TRUSTED, false], [CKA.ALWAYS_AUTHENTICATE, false]];
    case CKO.SECRET_KEY:
      return [...storage, [CKA.PRIVATE, true], [CKA.DERIVE, false], [CKA.SENSITIVE, true], [CKA.ENCRYPT, true],
        [CKA.DECRYPT, true], [CKA.SIGN, true], [CKA.VERIFY, true], [CKA.WRAP, true], [CKA.UNWRAP, true],
        [CKA.EXTRACTABLE, false], [CKA.WRAP_WITH_TRUSTED, false], [CKA.TRUSTED, false]];
    case CKO.CERTIFICATE:
      return [...storage, [CKA.PRIVATE, false], [CKA.TRUSTED, false]];
    default:
      return [...storage, [CKA.PRIVATE, false]];
  }
}

/** What C_CreateObject requires (beyond CKA_CLASS and, for keys, CKA_KEY_TYPE). */
export function requiredForCreate(cls: number, keyType: number | undefined): number[] {
  if (cls === CKO.CERTIFICATE) return [CKA.CERTIFICATE_TYPE, CKA.VALUE];
  if (cls === CKO.SECRET_KEY) return [CKA.VALUE];
  if (cls === CKO.PUBLIC_KEY) return keyType === CKK.RSA ? [CKA.MODULUS, CKA.PUBLIC_EXPONENT] : [CKA.EC_PARAMS, CKA.EC_POINT];
  if (cls === CKO.PRIVATE_KEY) {
    return keyType === CKK.RSA
      ? [CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT]
      : [CKA.EC_PARAMS, CKA.VALUE];
  }
  return [];
}

/** Attributes C_CreateObject must not be given because the token derives them
 * (PKCS#11: "must not be specified when the object is created with C_CreateObject"). */
export function forbiddenForCreate(cls: number, keyType: number | undefined): number[] {
  if (cls === CKO.SECRET_KEY) return [CKA.VALUE_LEN];
  if (cls === CKO.PUBLIC_KEY && keyType === CKK.RSA) return [CKA.MODULUS_BITS];
  return [];
}

/** Lengths of CKA_VALUE a secret key of this type can have, or undefined for any
 * non-empty length. */
export function secretValueLengths(keyType: number): readonly number[] | undefined {
  return keyType === CKK.AES ? [16, 24, 32] : undefined;
}
