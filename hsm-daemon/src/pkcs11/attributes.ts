// The one table of attribute value types. The wire layer needs it to convert CK_ULONG
// values between a client's native layout and canonical form; the object layer needs it
// to validate value lengths. Keeping one table means the two can never disagree.
import { CKA, CKF } from './constants.generated.js';

export type AttrKind = 'ulong' | 'bool' | 'date' | 'ulongArray' | 'attrArray' | 'bytes';

// PKCS#11 3.0 §4.1 attributes the packaged 2.40 header does not define yet; the generated
// table wins as soon as the header (or craton_pkcs11.h) provides them.
const CKA_EXTRA = CKA as Readonly<Record<string, number>>;
const CKA_PROFILE_ID = CKA_EXTRA['PROFILE_ID'] ?? 0x601;

const ULONG: readonly number[] = [
  CKA.CLASS,
  CKA.KEY_TYPE,
  CKA.CERTIFICATE_TYPE,
  CKA.CERTIFICATE_CATEGORY,
  CKA.JAVA_MIDP_SECURITY_DOMAIN,
  CKA.NAME_HASH_ALGORITHM,
  CKA.VALUE_LEN,
  CKA.MODULUS_BITS,
  CKA.PRIME_BITS,
  CKA.SUB_PRIME_BITS,
  CKA.VALUE_BITS,
  CKA.KEY_GEN_MECHANISM,
  CKA.AUTH_PIN_FLAGS,
  CKA.OTP_FORMAT,
  CKA.OTP_LENGTH,
  CKA.OTP_TIME_INTERVAL,
  CKA.OTP_CHALLENGE_REQUIREMENT,
  CKA.OTP_TIME_REQUIREMENT,
  CKA.OTP_COUNTER_REQUIREMENT,
  CKA.OTP_PIN_REQUIREMENT,
  CKA.HW_FEATURE_TYPE,
  CKA.PIXEL_X,
  CKA.PIXEL_Y,
  CKA.RESOLUTION,
  CKA.CHAR_ROWS,
  CKA.CHAR_COLUMNS,
  CKA.BITS_PER_PIXEL,
  CKA.MECHANISM_TYPE,
  CKA_PROFILE_ID,
];

const BOOL: readonly number[] = [
  CKA.TOKEN,
  CKA.PRIVATE,
  CKA.TRUSTED,
  CKA.SENSITIVE,
  CKA.ENCRYPT,
  CKA.DECRYPT,
  CKA.WRAP,
  CKA.UNWRAP,
  CKA.SIGN,
  CKA.SIGN_RECOVER,
  CKA.VERIFY,
  CKA.VERIFY_RECOVER,
  CKA.DERIVE,
  CKA.EXTRACTABLE,
  CKA.LOCAL,
  CKA.NEVER_EXTRACTABLE,
  CKA.ALWAYS_SENSITIVE,
  CKA.MODIFIABLE,
  CKA.COPYABLE,
  CKA.DESTROYABLE,
  CKA.SECONDARY_AUTH,
  CKA.ALWAYS_AUTHENTICATE,
  CKA.WRAP_WITH_TRUSTED,
  CKA.OTP_USER_FRIENDLY_MODE,
  CKA.RESET_ON_INIT,
  CKA.HAS_RESET,
  CKA.COLOR,
];

const DATE: readonly number[] = [CKA.START_DATE, CKA.END_DATE];

// CKA_ALLOWED_MECHANISMS carries CKF_ARRAY_ATTRIBUTE in its number although its value is
// an array of CK_MECHANISM_TYPE, not of CK_ATTRIBUTE: it must be listed before the flag test.
const ULONG_ARRAY: readonly number[] = [CKA.ALLOWED_MECHANISMS];

const KINDS = new Map<number, AttrKind>();
for (const t of ULONG) KINDS.set(t, 'ulong');
for (const t of BOOL) KINDS.set(t, 'bool');
for (const t of DATE) KINDS.set(t, 'date');
for (const t of ULONG_ARRAY) KINDS.set(t, 'ulongArray');

/** How an attribute's value is laid out. Unknown and vendor attributes are 'bytes'
 * unless they carry CKF_ARRAY_ATTRIBUTE, which PKCS#11 reserves for CK_ATTRIBUTE arrays. */
export function attrKind(type: number): AttrKind {
  const k = KINDS.get(type);
  if (k !== undefined) return k;
  // Attribute types are CK_ULONG; compare as unsigned 32-bit-or-more without the sign trap of `&`.
  return Math.floor(type / CKF.ARRAY_ATTRIBUTE) % 2 === 1 ? 'attrArray' : 'bytes';
}

/** Canonical value lengths for the fixed-size kinds (bytes). */
export const CANONICAL_LENGTH: Readonly<Partial<Record<AttrKind, number>>> = {
  ulong: 8,
  bool: 1,
  date: 8,
};
