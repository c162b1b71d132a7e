// THE FIPS policy table: one row per algorithm, naming the PKCS#11 mechanisms that
// implement it, the OpenSSL identifiers that reveal it in a traced process, its
// FIPS 140-3 status with the reason, and the size rule that applies. The daemon's
// enforcer and the tracer (craton-trace) both classify through the pure functions
// at the bottom, so this file imports nothing but the PKCS#11 constants.
//
// "approved" is this module's approved-service indicator: FIPS 140-3 lets a module's
// security policy offer fewer approved services than NIST permits, and Craton does
// (SHA-1 and HMAC-SHA-1 are still allowed by NIST for non-signature uses, but not
// offered as approved here). docs/policy.md lists every row; a unit test keeps it true.
import { CKM } from '../pkcs11/constants.generated.js';

export type Category =
  | 'digest'
  | 'mac'
  | 'cipher'
  | 'aead'
  | 'key-wrap'
  | 'signature'
  | 'asymmetric-encryption'
  | 'key-agreement'
  | 'kdf'
  | 'key-generation';

/** approved; verify-only: only to verify legacy signatures (allow_sha1_verify);
 * non-approved: never an approved service. */
export type FipsStatus = 'approved' | 'verify-only' | 'non-approved';

/** rsa: modulus bits; ec: a NIST prime curve; edwards: Ed25519/Ed448; hmac: key bits;
 * aes: 128, 192 or 256 bits. */
export type SizeRule = 'rsa' | 'ec' | 'edwards' | 'hmac' | 'aes';

/** A [algorithms] switch that must be on before the row is allowed, approved or not. */
export type Gate = 'allow_aes_ecb' | 'allow_raw_rsa';

/** 'import': a key that enters the token from outside (C_CreateObject, C_UnwrapKey, admin key import). */
export type PolicyOp = 'sign' | 'verify' | 'encrypt' | 'decrypt' | 'digest' | 'derive' | 'wrap' | 'unwrap' | 'generate' | 'import';

export interface OpenSslId {
  nid?: number;
  /** SN, LN and provider names (EVP_MD_get0_name / EVP_CIPHER_get0_name); matched case-insensitively. */
  names: readonly string[];
  /** What the identifier itself fixes (aes-128-gcm → 128). */
  keyBits?: number;
  curve?: string;
}

export interface PolicyRow {
  algorithm: string;
  category: Category;
  status: FipsStatus;
  reason: string;
  mechanisms: readonly number[];
  openssl: readonly OpenSslId[];
  /** TLS cipher suites (OpenSSL and IANA names) whose bulk cipher or MAC is this row. */
  tls?: readonly string[];
  size?: SizeRule;
  gate?: Gate;
  /** Sign/verify of a caller-built EMSA-PKCS1-v1_5 DigestInfo (CKM_RSA_PKCS): approved,
   * and exempt from the gate, when the DigestInfo names an approved hash. The enforcer
   * decides on the data at C_Sign/C_Verify (PolicyContext.digestInfo). */
  digestInfoSign?: true;
}

/** Mirrors config [algorithms] (hsm-daemon/src/config/types.ts). */
export interface PolicySettings {
  fips_approved_only: boolean;
  enforce: 'strict' | 'warn';
  /** Mechanism names ("CKM_AES_ECB"): permitted even if not approved (sizes still apply). */
  allow: readonly string[];
  /** Mechanism names: always refused. */
  deny: readonly string[];
  rsa_min_bits: number;
  ec_min_bits: number;
  hmac_min_key_bits: number;
  allow_sha1_verify: boolean;
  allow_aes_ecb: boolean;
  allow_raw_rsa: boolean;
}

/** The shipped defaults (config/craton_hsm.toml). */
export const DEFAULT_POLICY_SETTINGS: Readonly<PolicySettings> = Object.freeze({
  fips_approved_only: true,
  enforce: 'strict',
  allow: [],
  deny: [],
  rsa_min_bits: 2048,
  ec_min_bits: 256,
  hmac_min_key_bits: 112,
  allow_sha1_verify: false,
  allow_aes_ecb: false,
  allow_raw_rsa: false,
});

export interface PolicyContext {
  keyBits?: number;
  /** Canonical curve name (P-256, Ed25519, X25519 …; see curveName()). */
  curve?: string;
  op?: PolicyOp;
  /** Canonical name of a hash chosen by the mechanism parameter (PSS, OAEP, ECDH KDF, HKDF PRF). */
  hash?: string;
  /** Rows with digestInfoSign, once the data is known: the digest row's algorithm named by
   * the input's DER DigestInfo ('SHA-256', 'SHA-1', 'MD5' …), or '' when the input is not
   * a well-formed DigestInfo with a digest of the right length. Undefined at C_*Init. */
  digestInfo?: string;
}

/** Why a verdict is not allowed: the enforcer maps 'size' to CKR_KEY_SIZE_RANGE and
 * everything else to CKR_MECHANISM_INVALID. */
export type Refusal = 'not-approved' | 'denied' | 'gated' | 'size';

export interface Verdict {
  algorithm: string;
  approved: boolean;
  allowed: boolean;
  reason: string;
  refusal?: Refusal;
}

/** The floors of FIPS 140-3 itself (SP 800-131A Rev.2, SP 800-186); config minimums
 * may be higher and then decide `allowed` but not `approved`. */
export const FIPS_FLOORS = { rsaBits: 2048, hmacKeyBits: 112 } as const;

/** Curves by canonical name: bits, and whether SP 800-186 approves them for ECDSA/ECDH. */
export const CURVES: Readonly<Record<string, { bits: number; nist: boolean; family: 'weierstrass' | 'edwards' | 'montgomery'; aliases: readonly string[] }>> = {
  'P-224': { bits: 224, nist: true, family: 'weierstrass', aliases: ['secp224r1', 'nistp224'] },
  'P-256': { bits: 256, nist: true, family: 'weierstrass', aliases: ['prime256v1', 'secp256r1', 'nistp256'] },
  'P-384': { bits: 384, nist: true, family: 'weierstrass', aliases: ['secp384r1', 'nistp384'] },
  'P-521': { bits: 521, nist: true, family: 'weierstrass', aliases: ['secp521r1', 'nistp521'] },
  secp256k1: { bits: 256, nist: false, family: 'weierstrass', aliases: [] },
  Ed25519: { bits: 255, nist: true, family: 'edwards', aliases: ['edwards25519', 'ED25519'] },
  Ed448: { bits: 448, nist: true, family: 'edwards', aliases: ['edwards448', 'ED448'] },
  X25519: { bits: 255, nist: false, family: 'montgomery', aliases: ['curve25519'] },
  X448: { bits: 448, nist: false, family: 'montgomery', aliases: ['curve448'] },
};

const CURVE_OIDS: ReadonlyArray<[string, string]> = [
  ['06052b81040021', 'P-224'],
  ['06082a8648ce3d030107', 'P-256'],
  ['06052b81040022', 'P-384'],
  ['06052b81040023', 'P-521'],
  ['06052b8104000a', 'secp256k1'],
  ['06032b6570', 'Ed25519'],
  ['06032b6571', 'Ed448'],
  ['06032b656e', 'X25519'],
  ['06032b656f', 'X448'],
];

/** A canonical curve name from an alias or from DER CKA_EC_PARAMS (a named-curve OID
 * or a PrintableString such as "edwards25519"); undefined if unknown. */
export function curveName(id: string | Uint8Array): string | undefined {
  if (typeof id !== 'string') {
    const hex = Buffer.from(id).toString('hex');
    const byOid = CURVE_OIDS.find(([oid]) => oid === hex)?.[1];
    if (byOid) return byOid;
    // PrintableString (0x13) with a short length: PKCS#11 3.0 names Edwards/Montgomery curves this way.
    if (id.length >= 2 && id[0] === 0x13 && id[1] === id.length - 2) return curveName(Buffer.from(id.subarray(2)).toString('latin1'));
    return undefined;
  }
  const lower = id.toLowerCase();
  for (const [name, c] of Object.entries(CURVES)) {
    if (name.toLowerCase() === lower || c.aliases.some((a) => a.toLowerCase() === lower)) return name;
  }
  return undefined;
}

const SHA1_LEGACY =
  'SHA-1 signatures are disallowed for generation (SP 800-131A Rev.2 §9); verifying legacy signatures is allowed only with allow_sha1_verify';

const ids = (nid: number, ...names: string[]): OpenSslId => ({ nid, names });
const sized = (keyBits: number, nid: number, ...names: string[]): OpenSslId => ({ nid, names, keyBits });

export const POLICY_TABLE: readonly PolicyRow[] = [
  // ── digests ──
  { algorithm: 'SHA-224', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA224], openssl: [ids(675, 'SHA224', 'sha224', 'SHA2-224', 'SHA-224')] },
  { algorithm: 'SHA-256', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA256], openssl: [ids(672, 'SHA256', 'sha256', 'SHA2-256', 'SHA-256')] },
  { algorithm: 'SHA-384', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA384], openssl: [ids(673, 'SHA384', 'sha384', 'SHA2-384', 'SHA-384')] },
  { algorithm: 'SHA-512', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA512], openssl: [ids(674, 'SHA512', 'sha512', 'SHA2-512', 'SHA-512')] },
  { algorithm: 'SHA-512/224', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA512_224], openssl: [ids(1094, 'SHA512-224', 'sha512-224', 'SHA2-512/224', 'SHA-512/224')] },
  { algorithm: 'SHA-512/256', category: 'digest', status: 'approved', reason: 'FIPS 180-4', mechanisms: [CKM.SHA512_256], openssl: [ids(1095, 'SHA512-256', 'sha512-256', 'SHA2-512/256', 'SHA-512/256')] },
  { algorithm: 'SHA3-224', category: 'digest', status: 'approved', reason: 'FIPS 202', mechanisms: [CKM.SHA3_224], openssl: [ids(1096, 'SHA3-224', 'sha3-224')] },
  { algorithm: 'SHA3-256', category: 'digest', status: 'approved', reason: 'FIPS 202', mechanisms: [CKM.SHA3_256], openssl: [ids(1097, 'SHA3-256', 'sha3-256')] },
  { algorithm: 'SHA3-384', category: 'digest', status: 'approved', reason: 'FIPS 202', mechanisms: [CKM.SHA3_384], openssl: [ids(1098, 'SHA3-384', 'sha3-384')] },
  { algorithm: 'SHA3-512', category: 'digest', status: 'approved', reason: 'FIPS 202', mechanisms: [CKM.SHA3_512], openssl: [ids(1099, 'SHA3-512', 'sha3-512')] },
  {
    algorithm: 'SHA-1',
    category: 'digest',
    status: 'non-approved',
    reason: 'not offered as an approved service: collisions are practical and NIST retires SHA-1 by 2030; it exists only so policy can refuse or allow it',
    mechanisms: [CKM.SHA_1],
    openssl: [ids(64, 'SHA1', 'sha1', 'SHA-1', 'SSL3-SHA1')],
  },
  { algorithm: 'MD5', category: 'digest', status: 'non-approved', reason: 'broken hash, never approved', mechanisms: [CKM.MD5], openssl: [ids(4, 'MD5', 'md5', 'SSL3-MD5'), ids(114, 'MD5-SHA1', 'md5-sha1')] },
  { algorithm: 'MD2', category: 'digest', status: 'non-approved', reason: 'broken hash, never approved', mechanisms: [CKM.MD2], openssl: [ids(3, 'MD2', 'md2')] },
  { algorithm: 'MD4', category: 'digest', status: 'non-approved', reason: 'broken hash, never approved', mechanisms: [], openssl: [ids(257, 'MD4', 'md4')] },
  { algorithm: 'RIPEMD-160', category: 'digest', status: 'non-approved', reason: 'not a FIPS 180-4/202 hash', mechanisms: [CKM.RIPEMD160], openssl: [ids(117, 'RIPEMD160', 'ripemd160', 'RIPEMD-160', 'RMD160')] },

  // ── MACs ──
  { algorithm: 'HMAC-SHA-224', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 180-4', mechanisms: [CKM.SHA224_HMAC, CKM.SHA224_HMAC_GENERAL], openssl: [ids(798, 'hmacWithSHA224')], size: 'hmac' },
  { algorithm: 'HMAC-SHA-256', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 180-4', mechanisms: [CKM.SHA256_HMAC, CKM.SHA256_HMAC_GENERAL], openssl: [ids(799, 'hmacWithSHA256')], size: 'hmac' },
  { algorithm: 'HMAC-SHA-384', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 180-4', mechanisms: [CKM.SHA384_HMAC, CKM.SHA384_HMAC_GENERAL], openssl: [ids(800, 'hmacWithSHA384')], size: 'hmac' },
  { algorithm: 'HMAC-SHA-512', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 180-4', mechanisms: [CKM.SHA512_HMAC, CKM.SHA512_HMAC_GENERAL], openssl: [ids(801, 'hmacWithSHA512')], size: 'hmac' },
  { algorithm: 'HMAC-SHA3-224', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 202', mechanisms: [CKM.SHA3_224_HMAC, CKM.SHA3_224_HMAC_GENERAL], openssl: [ids(1102, 'id-hmacWithSHA3-224', 'hmac-sha3-224')], size: 'hmac' },
  { algorithm: 'HMAC-SHA3-256', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 202', mechanisms: [CKM.SHA3_256_HMAC, CKM.SHA3_256_HMAC_GENERAL], openssl: [ids(1103, 'id-hmacWithSHA3-256', 'hmac-sha3-256')], size: 'hmac' },
  { algorithm: 'HMAC-SHA3-384', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 202', mechanisms: [CKM.SHA3_384_HMAC, CKM.SHA3_384_HMAC_GENERAL], openssl: [ids(1104, 'id-hmacWithSHA3-384', 'hmac-sha3-384')], size: 'hmac' },
  { algorithm: 'HMAC-SHA3-512', category: 'mac', status: 'approved', reason: 'FIPS 198-1 with FIPS 202', mechanisms: [CKM.SHA3_512_HMAC, CKM.SHA3_512_HMAC_GENERAL], openssl: [ids(1105, 'id-hmacWithSHA3-512', 'hmac-sha3-512')], size: 'hmac' },
  {
    algorithm: 'HMAC-SHA-1',
    category: 'mac',
    status: 'non-approved',
    reason: 'NIST still permits it (SP 800-131A Rev.2 §10) but this module offers no approved SHA-1 services; allow explicitly with allow = ["CKM_SHA_1_HMAC"]',
    mechanisms: [CKM.SHA_1_HMAC, CKM.SHA_1_HMAC_GENERAL],
    openssl: [ids(781, 'HMAC-SHA1', 'hmac-sha1'), ids(163, 'hmacWithSHA1')],
    size: 'hmac',
  },
  { algorithm: 'HMAC-MD5', category: 'mac', status: 'non-approved', reason: 'MD5 is never approved', mechanisms: [CKM.MD5_HMAC, CKM.MD5_HMAC_GENERAL], openssl: [ids(780, 'HMAC-MD5', 'hmac-md5'), ids(797, 'hmacWithMD5')] },
  { algorithm: 'AES-CMAC', category: 'mac', status: 'approved', reason: 'SP 800-38B', mechanisms: [CKM.AES_CMAC, CKM.AES_CMAC_GENERAL], openssl: [ids(894, 'CMAC', 'cmac')], size: 'aes' },

  // ── key generation ──
  { algorithm: 'AES key generation', category: 'key-generation', status: 'approved', reason: 'SP 800-133 Rev.2 from the SP 800-90A DRBG', mechanisms: [CKM.AES_KEY_GEN], openssl: [], size: 'aes' },
  {
    algorithm: 'Generic secret key generation',
    category: 'key-generation',
    status: 'approved',
    reason: 'SP 800-133 Rev.2; the keys are HMAC keys, so the HMAC minimum applies',
    mechanisms: [CKM.GENERIC_SECRET_KEY_GEN],
    openssl: [],
    size: 'hmac',
  },
  { algorithm: 'RSA key generation', category: 'key-generation', status: 'approved', reason: 'FIPS 186-5 §A.1', mechanisms: [CKM.RSA_PKCS_KEY_PAIR_GEN], openssl: [ids(6, 'rsaEncryption', 'RSA')], size: 'rsa' },
  { algorithm: 'EC key generation', category: 'key-generation', status: 'approved', reason: 'FIPS 186-5 §A.2 on SP 800-186 curves', mechanisms: [CKM.EC_KEY_PAIR_GEN], openssl: [ids(408, 'id-ecPublicKey', 'EC')], size: 'ec' },
  {
    algorithm: 'RSA-X9.31',
    category: 'signature',
    status: 'non-approved',
    reason: 'ANSI X9.31 RSA was removed in FIPS 186-5',
    mechanisms: [CKM.RSA_X9_31_KEY_PAIR_GEN, CKM.RSA_X9_31, CKM.SHA1_RSA_X9_31],
    openssl: [],
  },

  // ── block ciphers and modes ──
  {
    algorithm: 'AES-ECB',
    category: 'cipher',
    status: 'approved',
    reason: 'SP 800-38A, but equal plaintext blocks give equal ciphertext: refused unless allow_aes_ecb',
    mechanisms: [CKM.AES_ECB],
    openssl: [sized(128, 418, 'AES-128-ECB', 'aes-128-ecb'), sized(192, 422, 'AES-192-ECB', 'aes-192-ecb'), sized(256, 426, 'AES-256-ECB', 'aes-256-ecb')],
    size: 'aes',
    gate: 'allow_aes_ecb',
  },
  {
    algorithm: 'AES-CBC',
    category: 'cipher',
    status: 'approved',
    reason: 'SP 800-38A',
    mechanisms: [CKM.AES_CBC, CKM.AES_CBC_PAD],
    openssl: [sized(128, 419, 'AES-128-CBC', 'aes-128-cbc', 'AES128'), sized(192, 423, 'AES-192-CBC', 'aes-192-cbc', 'AES192'), sized(256, 427, 'AES-256-CBC', 'aes-256-cbc', 'AES256')],
    tls: ['AES128-SHA', 'AES256-SHA', 'AES128-SHA256', 'AES256-SHA256', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-ECDSA-AES256-SHA384'],
    size: 'aes',
  },
  {
    algorithm: 'AES-CTR',
    category: 'cipher',
    status: 'approved',
    reason: 'SP 800-38A',
    mechanisms: [CKM.AES_CTR],
    openssl: [sized(128, 904, 'AES-128-CTR', 'aes-128-ctr'), sized(192, 905, 'AES-192-CTR', 'aes-192-ctr'), sized(256, 906, 'AES-256-CTR', 'aes-256-ctr')],
    size: 'aes',
  },
  {
    algorithm: 'AES-OFB/CFB',
    category: 'cipher',
    status: 'approved',
    reason: 'SP 800-38A',
    mechanisms: [CKM.AES_OFB, CKM.AES_CFB1, CKM.AES_CFB8, CKM.AES_CFB64, CKM.AES_CFB128],
    openssl: [
      sized(128, 420, 'AES-128-OFB', 'aes-128-ofb'), sized(192, 424, 'AES-192-OFB', 'aes-192-ofb'), sized(256, 428, 'AES-256-OFB', 'aes-256-ofb'),
      sized(128, 421, 'AES-128-CFB', 'aes-128-cfb'), sized(192, 425, 'AES-192-CFB', 'aes-192-cfb'), sized(256, 429, 'AES-256-CFB', 'aes-256-cfb'),
      sized(128, 650, 'AES-128-CFB1', 'aes-128-cfb1'), sized(192, 651, 'AES-192-CFB1', 'aes-192-cfb1'), sized(256, 652, 'AES-256-CFB1', 'aes-256-cfb1'),
      sized(128, 653, 'AES-128-CFB8', 'aes-128-cfb8'), sized(192, 654, 'AES-192-CFB8', 'aes-192-cfb8'), sized(256, 655, 'AES-256-CFB8', 'aes-256-cfb8'),
    ],
    size: 'aes',
  },
  {
    algorithm: 'AES-XTS',
    category: 'cipher',
    status: 'approved',
    reason: 'SP 800-38E, for storage devices only (no PKCS#11 2.40 mechanism)',
    mechanisms: [],
    openssl: [sized(128, 913, 'AES-128-XTS', 'aes-128-xts'), sized(256, 914, 'AES-256-XTS', 'aes-256-xts')],
  },
  {
    algorithm: 'AES-GCM',
    category: 'aead',
    status: 'approved',
    reason: 'SP 800-38D with module-generated or counted IVs',
    mechanisms: [CKM.AES_GCM],
    openssl: [sized(128, 895, 'id-aes128-GCM', 'aes-128-gcm', 'AES-128-GCM'), sized(192, 898, 'id-aes192-GCM', 'aes-192-gcm', 'AES-192-GCM'), sized(256, 901, 'id-aes256-GCM', 'aes-256-gcm', 'AES-256-GCM')],
    tls: [
      'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384',
      'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
      'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384',
    ],
    size: 'aes',
  },
  {
    algorithm: 'AES-CCM',
    category: 'aead',
    status: 'approved',
    reason: 'SP 800-38C',
    mechanisms: [CKM.AES_CCM],
    openssl: [sized(128, 896, 'id-aes128-CCM', 'aes-128-ccm', 'AES-128-CCM'), sized(192, 899, 'id-aes192-CCM', 'aes-192-ccm', 'AES-192-CCM'), sized(256, 902, 'id-aes256-CCM', 'aes-256-ccm', 'AES-256-CCM')],
    tls: ['TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256', 'ECDHE-ECDSA-AES128-CCM', 'ECDHE-ECDSA-AES256-CCM'],
    size: 'aes',
  },
  {
    algorithm: 'AES-KW',
    category: 'key-wrap',
    status: 'approved',
    reason: 'SP 800-38F KW (RFC 3394)',
    mechanisms: [CKM.AES_KEY_WRAP],
    openssl: [sized(128, 788, 'id-aes128-wrap', 'AES-128-WRAP', 'aes128-wrap'), sized(192, 789, 'id-aes192-wrap', 'AES-192-WRAP', 'aes192-wrap'), sized(256, 790, 'id-aes256-wrap', 'AES-256-WRAP', 'aes256-wrap')],
    size: 'aes',
  },
  {
    algorithm: 'AES-KWP',
    category: 'key-wrap',
    status: 'approved',
    reason: 'SP 800-38F KWP (RFC 5649); CKM_AES_KEY_WRAP_PAD is the same construction here',
    mechanisms: [CKM.AES_KEY_WRAP_KWP, CKM.AES_KEY_WRAP_PAD],
    openssl: [sized(128, 897, 'id-aes128-wrap-pad', 'AES-128-WRAP-PAD', 'aes128-wrap-pad'), sized(192, 900, 'id-aes192-wrap-pad', 'AES-192-WRAP-PAD', 'aes192-wrap-pad'), sized(256, 903, 'id-aes256-wrap-pad', 'AES-256-WRAP-PAD', 'aes256-wrap-pad')],
    size: 'aes',
  },
  {
    algorithm: 'DES',
    category: 'cipher',
    status: 'non-approved',
    reason: '56-bit key; withdrawn (FIPS 46-3 withdrawn 2005)',
    mechanisms: [CKM.DES_KEY_GEN, CKM.DES_ECB, CKM.DES_CBC, CKM.DES_CBC_PAD, CKM.DES_MAC, CKM.DES_MAC_GENERAL, CKM.DES_OFB64, CKM.DES_OFB8, CKM.DES_CFB64, CKM.DES_CFB8],
    openssl: [ids(29, 'DES-ECB', 'des-ecb'), ids(31, 'DES-CBC', 'des-cbc', 'DES'), ids(30, 'DES-CFB', 'des-cfb'), ids(45, 'DES-OFB', 'des-ofb'), ids(80, 'DESX-CBC', 'desx-cbc')],
    tls: ['DES-CBC-SHA', 'EDH-RSA-DES-CBC-SHA'],
  },
  {
    algorithm: '3DES',
    category: 'cipher',
    status: 'non-approved',
    reason: 'TDEA encryption is disallowed after 2023 (SP 800-131A Rev.2 §2, SP 800-67 Rev.2 withdrawn)',
    mechanisms: [
      CKM.DES2_KEY_GEN, CKM.DES3_KEY_GEN, CKM.DES3_ECB, CKM.DES3_CBC, CKM.DES3_CBC_PAD,
      CKM.DES3_MAC, CKM.DES3_MAC_GENERAL, CKM.DES3_CMAC, CKM.DES3_CMAC_GENERAL,
    ],
    openssl: [
      ids(33, 'DES-EDE3', 'des-ede3', 'DES-EDE3-ECB'), ids(44, 'DES-EDE3-CBC', 'des-ede3-cbc', 'DES3'),
      ids(32, 'DES-EDE', 'des-ede', 'DES-EDE-ECB'), ids(43, 'DES-EDE-CBC', 'des-ede-cbc'),
      ids(61, 'DES-EDE3-CFB', 'des-ede3-cfb'), ids(63, 'DES-EDE3-OFB', 'des-ede3-ofb'),
    ],
    tls: ['DES-CBC3-SHA', 'ECDHE-RSA-DES-CBC3-SHA', 'EDH-RSA-DES-CBC3-SHA', 'TLS_RSA_WITH_3DES_EDE_CBC_SHA'],
  },
  {
    algorithm: 'RC4',
    category: 'cipher',
    status: 'non-approved',
    reason: 'never approved; biased keystream (RFC 7465 prohibits it in TLS)',
    mechanisms: [CKM.RC4_KEY_GEN, CKM.RC4],
    openssl: [ids(5, 'RC4', 'rc4'), ids(97, 'RC4-40', 'rc4-40'), ids(915, 'RC4-HMAC-MD5', 'rc4-hmac-md5')],
    tls: ['RC4-SHA', 'RC4-MD5', 'ECDHE-RSA-RC4-SHA', 'TLS_RSA_WITH_RC4_128_SHA', 'TLS_RSA_WITH_RC4_128_MD5'],
  },
  {
    algorithm: 'ChaCha20',
    category: 'cipher',
    status: 'non-approved',
    reason: 'not a NIST algorithm',
    mechanisms: [],
    openssl: [ids(1019, 'ChaCha20', 'chacha20')],
  },
  {
    algorithm: 'ChaCha20-Poly1305',
    category: 'aead',
    status: 'non-approved',
    reason: 'not a NIST algorithm (RFC 8439); no PKCS#11 2.40 mechanism',
    mechanisms: [],
    openssl: [ids(1018, 'ChaCha20-Poly1305', 'chacha20-poly1305')],
    tls: ['TLS_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'DHE-RSA-CHACHA20-POLY1305'],
  },

  // ── signatures and RSA encryption ──
  {
    algorithm: 'RSA-PKCS1-v1_5',
    category: 'signature',
    status: 'approved',
    reason: 'FIPS 186-5 §5.4 with SHA-2/SHA-3',
    mechanisms: [
      CKM.SHA224_RSA_PKCS, CKM.SHA256_RSA_PKCS, CKM.SHA384_RSA_PKCS, CKM.SHA512_RSA_PKCS,
      CKM.SHA3_224_RSA_PKCS, CKM.SHA3_256_RSA_PKCS, CKM.SHA3_384_RSA_PKCS, CKM.SHA3_512_RSA_PKCS,
    ],
    openssl: [
      ids(671, 'RSA-SHA224', 'sha224WithRSAEncryption'), ids(668, 'RSA-SHA256', 'sha256WithRSAEncryption'),
      ids(669, 'RSA-SHA384', 'sha384WithRSAEncryption'), ids(670, 'RSA-SHA512', 'sha512WithRSAEncryption'),
      ids(1116, 'id-rsassa-pkcs1-v1_5-with-sha3-224', 'RSA-SHA3-224'), ids(1117, 'id-rsassa-pkcs1-v1_5-with-sha3-256', 'RSA-SHA3-256'),
      ids(1118, 'id-rsassa-pkcs1-v1_5-with-sha3-384', 'RSA-SHA3-384'), ids(1119, 'id-rsassa-pkcs1-v1_5-with-sha3-512', 'RSA-SHA3-512'),
    ],
    size: 'rsa',
  },
  {
    algorithm: 'RSA-PKCS1-v1_5-SHA-1',
    category: 'signature',
    status: 'verify-only',
    reason: SHA1_LEGACY,
    mechanisms: [CKM.SHA1_RSA_PKCS],
    openssl: [ids(65, 'RSA-SHA1', 'sha1WithRSAEncryption'), ids(115, 'RSA-SHA1-2', 'sha1WithRSA')],
    size: 'rsa',
  },
  {
    algorithm: 'RSA-PKCS1-v1_5-MD5',
    category: 'signature',
    status: 'non-approved',
    reason: 'MD5/MD2 are never approved',
    mechanisms: [CKM.MD5_RSA_PKCS, CKM.MD2_RSA_PKCS],
    openssl: [ids(8, 'RSA-MD5', 'md5WithRSAEncryption')],
  },
  {
    algorithm: 'RSA-PSS',
    category: 'signature',
    status: 'approved',
    reason: 'FIPS 186-5 §5.4 with SHA-2/SHA-3',
    mechanisms: [
      CKM.RSA_PKCS_PSS, CKM.SHA224_RSA_PKCS_PSS, CKM.SHA256_RSA_PKCS_PSS, CKM.SHA384_RSA_PKCS_PSS, CKM.SHA512_RSA_PKCS_PSS,
      CKM.SHA3_224_RSA_PKCS_PSS, CKM.SHA3_256_RSA_PKCS_PSS, CKM.SHA3_384_RSA_PKCS_PSS, CKM.SHA3_512_RSA_PKCS_PSS,
    ],
    openssl: [ids(912, 'RSASSA-PSS', 'rsassaPss', 'RSA-PSS')],
    size: 'rsa',
  },
  { algorithm: 'RSA-PSS-SHA-1', category: 'signature', status: 'verify-only', reason: SHA1_LEGACY, mechanisms: [CKM.SHA1_RSA_PKCS_PSS], openssl: [], size: 'rsa' },
  {
    algorithm: 'RSA-PKCS1-v1_5-raw',
    category: 'signature',
    status: 'non-approved',
    reason:
      'sign/verify of a DER DigestInfo of SHA-2/SHA-3 is FIPS 186-5 §5.4 RSASSA-PKCS1-v1_5 and approved (checked on the data at C_Sign/C_Verify: otherwise CKR_DATA_INVALID); any other input, and v1.5 encryption (disallowed for key transport after 2023, SP 800-131A Rev.2 §6; a padding oracle), only with allow_raw_rsa',
    mechanisms: [CKM.RSA_PKCS],
    openssl: [],
    size: 'rsa',
    gate: 'allow_raw_rsa',
    digestInfoSign: true,
  },
  {
    algorithm: 'RSA-X.509',
    category: 'signature',
    status: 'non-approved',
    reason: 'the bare RSA primitive without padding is no approved scheme; refused unless allow_raw_rsa',
    mechanisms: [CKM.RSA_X_509],
    openssl: [],
    size: 'rsa',
    gate: 'allow_raw_rsa',
  },
  {
    algorithm: 'RSA-OAEP',
    category: 'asymmetric-encryption',
    status: 'approved',
    reason: 'SP 800-56B Rev.2 KTS-OAEP with SHA-2/SHA-3',
    mechanisms: [CKM.RSA_PKCS_OAEP],
    openssl: [ids(919, 'RSAES-OAEP', 'rsaesOaep')],
    size: 'rsa',
  },
  {
    algorithm: 'ECDSA',
    category: 'signature',
    status: 'approved',
    reason: 'FIPS 186-5 §6 on SP 800-186 curves with SHA-2/SHA-3',
    mechanisms: [
      CKM.ECDSA, CKM.ECDSA_SHA224, CKM.ECDSA_SHA256, CKM.ECDSA_SHA384, CKM.ECDSA_SHA512,
      CKM.ECDSA_SHA3_224, CKM.ECDSA_SHA3_256, CKM.ECDSA_SHA3_384, CKM.ECDSA_SHA3_512,
    ],
    openssl: [
      ids(793, 'ecdsa-with-SHA224'), ids(794, 'ecdsa-with-SHA256'), ids(795, 'ecdsa-with-SHA384'), ids(796, 'ecdsa-with-SHA512'),
      ids(1112, 'id-ecdsa-with-sha3-224', 'ecdsa_with_SHA3-224'), ids(1113, 'id-ecdsa-with-sha3-256', 'ecdsa_with_SHA3-256'),
      ids(1114, 'id-ecdsa-with-sha3-384', 'ecdsa_with_SHA3-384'), ids(1115, 'id-ecdsa-with-sha3-512', 'ecdsa_with_SHA3-512'),
      { nid: 713, names: ['secp224r1', 'P-224'], curve: 'P-224' }, { nid: 415, names: ['prime256v1', 'P-256'], curve: 'P-256' },
      { nid: 715, names: ['secp384r1', 'P-384'], curve: 'P-384' }, { nid: 716, names: ['secp521r1', 'P-521'], curve: 'P-521' },
      { nid: 714, names: ['secp256k1'], curve: 'secp256k1' },
    ],
    size: 'ec',
  },
  { algorithm: 'ECDSA-SHA-1', category: 'signature', status: 'verify-only', reason: SHA1_LEGACY, mechanisms: [CKM.ECDSA_SHA1], openssl: [ids(416, 'ecdsa-with-SHA1')], size: 'ec' },
  {
    algorithm: 'EdDSA',
    category: 'signature',
    status: 'approved',
    reason: 'FIPS 186-5 §7 (Ed25519, Ed448)',
    mechanisms: [CKM.EC_EDWARDS_KEY_PAIR_GEN, CKM.EDDSA],
    openssl: [{ nid: 1087, names: ['ED25519', 'Ed25519'], curve: 'Ed25519' }, { nid: 1088, names: ['ED448', 'Ed448'], curve: 'Ed448' }],
    size: 'edwards',
  },
  {
    algorithm: 'DSA',
    category: 'signature',
    status: 'verify-only',
    reason: 'FIPS 186-5 keeps DSA only to verify legacy signatures',
    mechanisms: [CKM.DSA_KEY_PAIR_GEN, CKM.DSA, CKM.DSA_SHA1, CKM.DSA_SHA224, CKM.DSA_SHA256, CKM.DSA_SHA384, CKM.DSA_SHA512],
    openssl: [ids(116, 'DSA', 'dsaEncryption')],
  },

  // ── key agreement and KDFs ──
  {
    algorithm: 'ECDH',
    category: 'key-agreement',
    status: 'approved',
    reason: 'SP 800-56A Rev.3 ECC CDH on SP 800-186 curves',
    mechanisms: [CKM.ECDH1_DERIVE, CKM.ECDH1_COFACTOR_DERIVE],
    // EVP_PKEY_derive on an EC key (craton-trace names it ECDH; the curve comes in PolicyContext)
    openssl: [{ names: ['ECDH'] }],
    size: 'ec',
  },
  {
    algorithm: 'X25519',
    category: 'key-agreement',
    status: 'non-approved',
    reason: 'SP 800-56A Rev.3 has no Montgomery curves (RFC 7748)',
    mechanisms: [CKM.EC_MONTGOMERY_KEY_PAIR_GEN],
    openssl: [{ nid: 1034, names: ['X25519'], curve: 'X25519' }, { nid: 1035, names: ['X448'], curve: 'X448' }],
  },
  {
    algorithm: 'DH',
    category: 'key-agreement',
    status: 'non-approved',
    reason: 'FFC DH is approved only with SP 800-56A Rev.3 safe-prime groups, which this module does not offer',
    mechanisms: [CKM.DH_PKCS_KEY_PAIR_GEN, CKM.DH_PKCS_DERIVE, CKM.X9_42_DH_KEY_PAIR_GEN, CKM.X9_42_DH_DERIVE],
    openssl: [ids(28, 'dhKeyAgreement', 'DH'), ids(920, 'dhpublicnumber', 'DHX', 'X9.42 DH')],
  },
  {
    algorithm: 'HKDF',
    category: 'kdf',
    status: 'approved',
    reason: 'SP 800-56C Rev.2 two-step KDF with HMAC',
    mechanisms: [CKM.HKDF_DERIVE, CKM.HKDF_DATA, CKM.HKDF_KEY_GEN],
    openssl: [ids(1036, 'HKDF', 'hkdf')],
    size: 'hmac',
  },
  { algorithm: 'PBKDF2', category: 'kdf', status: 'approved', reason: 'SP 800-132 (password-based, storage only)', mechanisms: [CKM.PKCS5_PBKD2], openssl: [ids(69, 'PBKDF2')] },
];

// ── lookups ──

const byMechanism = new Map<number, PolicyRow>();
const byNid = new Map<number, { row: PolicyRow; id: OpenSslId }>();
const byName = new Map<string, { row: PolicyRow; id?: OpenSslId }>();
for (const row of POLICY_TABLE) {
  for (const m of row.mechanisms) {
    if (byMechanism.has(m)) throw new Error(`policy table: mechanism 0x${m.toString(16)} in two rows`);
    byMechanism.set(m, row);
  }
  for (const id of row.openssl) {
    if (id.nid !== undefined) byNid.set(id.nid, { row, id });
    for (const n of id.names) byName.set(n.toLowerCase(), { row, id });
  }
  for (const t of row.tls ?? []) byName.set(t.toLowerCase(), { row });
}

export function rowForMechanism(mech: number): PolicyRow | undefined {
  return byMechanism.get(mech);
}

export function rowByAlgorithm(algorithm: string): PolicyRow | undefined {
  return POLICY_TABLE.find((r) => r.algorithm === algorithm);
}

// Name ↔ value for the allow/deny lists, without importing the names module.
// Every CKM_ name for a value (CKM_EC_KEY_PAIR_GEN and CKM_ECDSA_KEY_PAIR_GEN are one).
const CKM_NAMES = new Map<number, string[]>();
for (const [k, v] of Object.entries(CKM)) CKM_NAMES.set(v, [...(CKM_NAMES.get(v) ?? []), `CKM_${k}`]);
const ckmNames = (mech: number): string[] => CKM_NAMES.get(mech) ?? [];
export const mechName = (mech: number): string => CKM_NAMES.get(mech)?.[0] ?? `CKM_0x${mech.toString(16).padStart(8, '0')}`;

const listed = (list: readonly string[], mech: number): boolean => ckmNames(mech).some((n) => list.includes(n));

// ── classification ──

const SHA1_NAMES = new Set(['SHA-1', 'SHA1']);

/** Approved-ness and size of a row for a context, before the settings speak. */
function evaluate(row: PolicyRow, ctx: PolicyContext, s: PolicySettings): Verdict & { fipsSizeOk: boolean; sizeReason?: string } {
  let algorithm = row.algorithm;
  let status = row.status;
  let reason = row.reason;
  // A SHA-1 chosen through parameters (PSS/OAEP hashAlg, ECDH KDF, HKDF PRF) makes the row a SHA-1 use.
  if (ctx.hash && SHA1_NAMES.has(ctx.hash.toUpperCase()) && status === 'approved') {
    algorithm = `${row.algorithm} with SHA-1`;
    status = row.category === 'signature' ? 'verify-only' : 'non-approved';
    reason = row.category === 'signature' ? SHA1_LEGACY : 'this module offers no approved SHA-1 services';
  }
  // X25519 through CKM_ECDH1_DERIVE is still X25519.
  if (ctx.curve && CURVES[ctx.curve]?.family === 'montgomery' && row.algorithm !== 'X25519') {
    const x = rowByAlgorithm('X25519')!;
    algorithm = ctx.curve;
    status = x.status;
    reason = x.reason;
  }
  // CKM_RSA_PKCS signing over a DigestInfo: the hash inside decides (approved at C_*Init,
  // where the data is not known yet; the enforcer decides again on the data).
  if (row.digestInfoSign && (ctx.op === 'sign' || ctx.op === 'verify')) {
    const d = ctx.digestInfo;
    const h = d ? rowByAlgorithm(d) : undefined;
    if (d === undefined) {
      algorithm = 'RSA-PKCS1-v1_5 (DigestInfo)';
      status = 'approved';
      reason = 'FIPS 186-5 §5.4 when the input is a DER DigestInfo of SHA-2/SHA-3; checked at C_Sign/C_Verify';
    } else if (!h || h.category !== 'digest') {
      reason = 'the input is not a DER DigestInfo of a known hash with a digest of the right length; allowed only with allow_raw_rsa';
    } else {
      algorithm = `RSA-PKCS1-v1_5 (DigestInfo ${h.algorithm})`;
      if (h.status === 'approved') {
        status = 'approved';
        reason = `FIPS 186-5 §5.4 with ${h.algorithm}`;
      } else if (SHA1_NAMES.has(h.algorithm)) {
        status = 'verify-only';
        reason = SHA1_LEGACY;
      } else reason = `${h.algorithm} is never approved for signatures`;
    }
  }
  let approved = status === 'approved' || (status === 'verify-only' && ctx.op === 'verify' && s.allow_sha1_verify);
  if (status === 'verify-only' && approved) reason = `legacy verification: ${reason}`;

  // Sizes: the FIPS floor decides `approved`, the configured minimum `allowed`.
  let fipsSizeOk = true;
  let sizeReason: string | undefined;
  const bits = ctx.keyBits;
  switch (row.size) {
    case 'rsa':
      if (bits !== undefined) {
        if (bits < FIPS_FLOORS.rsaBits) fipsSizeOk = false;
        if (bits < s.rsa_min_bits) sizeReason = `RSA-${bits} is below rsa_min_bits = ${s.rsa_min_bits}`;
      }
      break;
    case 'hmac':
      if (bits !== undefined) {
        if (bits < FIPS_FLOORS.hmacKeyBits) fipsSizeOk = false;
        if (bits < s.hmac_min_key_bits) sizeReason = `a ${bits}-bit key is below hmac_min_key_bits = ${s.hmac_min_key_bits}`;
      }
      break;
    case 'aes':
      // AES itself has only 128/192/256-bit keys: another length is not a policy
      // question but an invalid key, which the mechanism refuses with its own CK_RV.
      break;
    case 'ec': {
      const c = ctx.curve ? CURVES[ctx.curve] : undefined;
      if (c && c.family === 'weierstrass') {
        if (!c.nist) fipsSizeOk = false;
        if (!c.nist) sizeReason = `${ctx.curve} is not an SP 800-186 curve`;
        else if (c.bits < s.ec_min_bits) sizeReason = `${ctx.curve} is below ec_min_bits = ${s.ec_min_bits}`;
      } else if (!c && bits !== undefined && bits < s.ec_min_bits) {
        sizeReason = `a ${bits}-bit curve is below ec_min_bits = ${s.ec_min_bits}`;
      }
      break;
    }
    case 'edwards': {
      const c = ctx.curve ? CURVES[ctx.curve] : undefined;
      if (c && c.family !== 'edwards') {
        fipsSizeOk = false;
        sizeReason = `${ctx.curve} is not an Edwards curve`;
      }
      break;
    }
  }
  if (!fipsSizeOk) approved = false;
  return { algorithm, approved, allowed: false, reason, fipsSizeOk, sizeReason };
}

function decide(row: PolicyRow | undefined, mechNameForLists: number | undefined, ctx: PolicyContext, s: PolicySettings, label: string): Verdict {
  const inList = (list: readonly string[]) => mechNameForLists !== undefined && listed(list, mechNameForLists);
  if (mechNameForLists !== undefined && inList(s.deny)) {
    const approved = row ? evaluate(row, ctx, s).approved : false;
    return { algorithm: row?.algorithm ?? label, approved, allowed: false, reason: `${mechName(mechNameForLists)} is in [algorithms] deny`, refusal: 'denied' };
  }
  if (!row) {
    const allowed = !s.fips_approved_only || inList(s.allow);
    return {
      algorithm: label,
      approved: false,
      allowed,
      reason: 'not in the FIPS policy table',
      ...(allowed ? {} : { refusal: 'not-approved' as const }),
    };
  }
  const v = evaluate(row, ctx, s);
  const base = { algorithm: v.algorithm, approved: v.approved };
  if (v.sizeReason) return { ...base, allowed: false, reason: v.sizeReason, refusal: 'size' };
  if (inList(s.allow)) return { ...base, allowed: true, reason: `${v.reason}; permitted by [algorithms] allow` };
  // An approved DigestInfo signature does not need the raw-RSA switch.
  if (row.gate && !(row.digestInfoSign && v.approved && (ctx.op === 'sign' || ctx.op === 'verify'))) {
    return s[row.gate]
      ? { ...base, allowed: true, reason: `${v.reason}; permitted by ${row.gate}` }
      : { ...base, allowed: false, reason: v.reason, refusal: 'gated' };
  }
  if (v.approved) return { ...base, allowed: true, reason: v.reason };
  if (!v.fipsSizeOk) {
    // Below the FIPS floor but above a lowered configured minimum: approved-only mode still refuses.
    return s.fips_approved_only
      ? { ...base, allowed: false, reason: `${v.reason}; key size below the FIPS 140-3 minimum`, refusal: 'size' }
      : { ...base, allowed: true, reason: `${v.reason}; key size below the FIPS 140-3 minimum` };
  }
  return s.fips_approved_only
    ? { ...base, allowed: false, reason: v.reason, refusal: 'not-approved' }
    : { ...base, allowed: true, reason: `${v.reason}; fips_approved_only = false` };
}

/** The verdict on a PKCS#11 mechanism used as ctx describes. */
export function classifyMechanism(mech: number, ctx: PolicyContext, settings: PolicySettings): Verdict {
  return decide(rowForMechanism(mech), mech, ctx, settings, mechName(mech));
}

/** The verdict on an algorithm an OpenSSL process uses, by NID or by name (SN, LN,
 * provider name or TLS cipher suite). Allow/deny lists name mechanisms: they apply
 * through the row's first mechanism's list membership when the row has mechanisms. */
export function classifyOpenSSL(id: { nid?: number; name?: string }, ctx: PolicyContext, settings: PolicySettings): Verdict {
  const hit = (id.nid !== undefined ? byNid.get(id.nid) : undefined) ?? (id.name ? byName.get(id.name.toLowerCase()) : undefined);
  const label = id.name ?? (id.nid !== undefined ? `NID ${id.nid}` : 'unknown');
  if (!hit) return decide(undefined, undefined, ctx, settings, label);
  const full: PolicyContext = { ...ctx };
  if (full.keyBits === undefined && hit.id?.keyBits !== undefined) full.keyBits = hit.id.keyBits;
  if (full.curve === undefined && hit.id?.curve !== undefined) full.curve = hit.id.curve;
  // A row is denied/allowed by name when any of its mechanisms is.
  const m = hit.row.mechanisms.find((x) => listed(settings.deny, x)) ?? hit.row.mechanisms.find((x) => listed(settings.allow, x));
  return decide(hit.row, m, full, settings, label);
}
