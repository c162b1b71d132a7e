// Which keys may enter the token from outside: C_CreateObject, C_UnwrapKey and the admin
// `key.import` command. A key is judged by the size and curve rules of the policy-table row
// that would generate a key of its type here (RSA → RSA key generation, EC → EC key
// generation, Edwards → EdDSA, CKK_SHA*_HMAC → that HMAC), so a key the token would refuse
// to make cannot be brought in either. Only size and curve refusals count: whether an
// algorithm is approved is decided when the key is used, as before.
//
// CK_RVs: C_CreateObject and C_UnwrapKey may not return CKR_KEY_SIZE_RANGE (PKCS#11 3.0
// §5.7, §5.18), so a refused size is CKR_ATTRIBUTE_VALUE_INVALID (the value of CKA_MODULUS /
// CKA_VALUE is what the token refuses) and a refused or unknown curve CKR_CURVE_NOT_SUPPORTED
// (docs/policy.md "Keys that enter the token").
import { CKA, CKK, CKM, CKO, CKR } from '../pkcs11/constants.generated.js';
import { keyTypeLabel } from '../pkcs11/names.js';
import { readUlong } from '../pkcs11/values.js';
import { CkError } from '../errors.js';
import type { AttrMap } from '../mechanisms/types.js';
import type { CallNote } from '../dispatch/call.js';
import { keyContext, type PolicyEnforcer } from './enforcer.js';
import { CURVES, curveName, type PolicyContext } from './table.js';

/** The row (by its mechanism) whose size rule a key of this type must meet. */
const RULE_FOR_KEY_TYPE: ReadonlyMap<number, number> = new Map([
  [CKK.RSA, CKM.RSA_PKCS_KEY_PAIR_GEN],
  [CKK.EC, CKM.EC_KEY_PAIR_GEN],
  [CKK.EC_EDWARDS, CKM.EC_EDWARDS_KEY_PAIR_GEN],
  [CKK.SHA224_HMAC, CKM.SHA224_HMAC],
  [CKK.SHA256_HMAC, CKM.SHA256_HMAC],
  [CKK.SHA384_HMAC, CKM.SHA384_HMAC],
  [CKK.SHA512_HMAC, CKM.SHA512_HMAC],
  [CKK.SHA_1_HMAC, CKM.SHA_1_HMAC],
]);

/** Key types whose CKA_EC_PARAMS must name a curve of this family. */
const CURVE_FAMILY: ReadonlyMap<number, string> = new Map([
  [CKK.EC, 'weierstrass'],
  [CKK.EC_EDWARDS, 'edwards'],
  [CKK.EC_MONTGOMERY, 'montgomery'],
]);

/** Dotted form of a DER OBJECT IDENTIFIER (for messages about curves the table does not know). */
function oidText(der: Buffer): string | undefined {
  if (der.length < 3 || der[0] !== 0x06 || der[1] !== der.length - 2) return undefined;
  const parts: number[] = [];
  let v = 0;
  for (let i = 2; i < der.length; i++) {
    v = v * 128 + (der[i]! & 0x7f);
    if ((der[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** Names for a few curves OpenSSL can produce but the table does not list, so a refusal says which one. */
const UNLISTED_CURVES: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10045.3.1.1', 'P-192 (prime192v1)'],
  ['1.3.132.0.31', 'secp192k1'],
  ['1.3.36.3.3.2.8.1.1.7', 'brainpoolP256r1'],
  ['1.3.36.3.3.2.8.1.1.11', 'brainpoolP384r1'],
  ['1.3.36.3.3.2.8.1.1.13', 'brainpoolP512r1'],
]);

function describeParams(params: Buffer): string {
  const oid = oidText(params);
  if (!oid) return 'CKA_EC_PARAMS that name no known curve';
  const name = UNLISTED_CURVES.get(oid);
  return name ? `curve ${name}, OID ${oid},` : `curve OID ${oid}`;
}

/**
 * Admits or refuses a new key built from outside material (`attrs` is the finished
 * attribute set). Returns undefined when the policy allows it, the reason when warn mode
 * lets a violation through (also recorded on `note` and told to the violation listeners,
 * like every other policy decision); throws CkError when the key is refused.
 */
export function admitKey(policy: PolicyEnforcer, attrs: AttrMap, note: CallNote): string | undefined {
  const cls = readUlong(attrs.get(CKA.CLASS));
  if (cls !== CKO.PRIVATE_KEY && cls !== CKO.PUBLIC_KEY && cls !== CKO.SECRET_KEY) return undefined;
  const kt = readUlong(attrs.get(CKA.KEY_TYPE));
  if (kt === undefined) return undefined;

  // A curve the table does not know is no policy question: the token cannot use such a
  // key at all, in either mode.
  const family = CURVE_FAMILY.get(kt);
  const params = attrs.get(CKA.EC_PARAMS);
  if (family && params && params.length > 0) {
    const curve = curveName(params);
    if (!curve || CURVES[curve]?.family !== family) {
      throw new CkError(CKR.CURVE_NOT_SUPPORTED, `${curve ?? describeParams(params)} is not a curve this token supports for ${keyTypeLabel(kt)} keys`);
    }
  }

  const mech = RULE_FOR_KEY_TYPE.get(kt);
  if (mech === undefined) return undefined;
  const ctx: PolicyContext = { op: 'import', ...keyContext(attrs) };
  const v = policy.classify(mech, ctx);
  if (v.allowed || v.refusal !== 'size') return undefined;
  const reason = `the key is refused by the policy: ${v.reason}`;
  if (policy.report(mech, ctx, v, note)) throw new CkError(family ? CKR.CURVE_NOT_SUPPORTED : CKR.ATTRIBUTE_VALUE_INVALID, reason, 'policy');
  return v.reason;
}
