// craton-trace classification goes through the daemon's policy table: a table of what
// the kernel reports → the verdict and action printed; strict-mode block rules.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '../../../hsm-daemon/src/policy/table.js';
import { blockRules, classify, CT_MASK_INTERNAL, CT_OP, remediation, type NidInfo } from '../../../tracer/src/classify.js';
import type { RawCrypto } from '../../../tracer/src/events.js';

const S = (over: Partial<PolicySettings> = {}): PolicySettings => ({ ...DEFAULT_POLICY_SETTINGS, ...over });
const raw = (over: Partial<RawCrypto>): RawCrypto => ({
  event_type: 'crypto_op',
  ts_us: 1_700_000_000_000_000,
  pid: 42,
  tid: 42,
  ppid: 1,
  uid: 0,
  cgroup_id: 1,
  process: 'app',
  probe: 'EVP_DigestInit_ex',
  operation: 'DIGEST',
  nid: 0,
  internal: false,
  blocked: false,
  would_block: false,
  exempt: false,
  signal_error: false,
  ...over,
});

// what the probe saw → [algorithm, approved, action]
const CASES: Array<[string, Partial<RawCrypto>, Partial<PolicySettings>, string, boolean, string]> = [
  ['MD5 digest', { nid: 4, sn: 'MD5', ln: 'md5' }, {}, 'MD5', false, 'WARNED'],
  ['MD5 stopped by the kernel', { nid: 4, sn: 'MD5', ln: 'md5', blocked: true }, {}, 'MD5', false, 'BLOCKED'],
  ['SHA-256 digest', { nid: 672, sn: 'SHA256', ln: 'sha256' }, {}, 'SHA-256', true, 'ALLOWED'],
  ['SHA-1 digest', { nid: 64, sn: 'SHA1', ln: 'sha1' }, {}, 'SHA-1', false, 'WARNED'],
  ['AES-256-GCM encrypt', { probe: 'EVP_EncryptInit_ex', operation: 'ENCRYPT', nid: 901, sn: 'id-aes256-GCM', ln: 'aes-256-gcm' }, {}, 'AES-GCM', true, 'ALLOWED'],
  ['AES-128-ECB: approved mode, gated by allow_aes_ecb', { probe: 'EVP_CipherInit_ex', operation: 'ENCRYPT', nid: 418, sn: 'AES-128-ECB', ln: 'aes-128-ecb' }, {}, 'AES-ECB', true, 'WARNED'],
  ['AES-128-ECB allowed by allow_aes_ecb', { operation: 'ENCRYPT', nid: 418, sn: 'AES-128-ECB' }, { allow_aes_ecb: true }, 'AES-ECB', true, 'ALLOWED'],
  ['RC4 low-level', { probe: 'RC4_set_key', operation: 'CIPHER', nid: 5, sn: 'RC4', ln: 'rc4', key_bits: 128 }, {}, 'RC4', false, 'WARNED'],
  ['DES low-level', { probe: 'DES_set_key_checked', operation: 'CIPHER', nid: 29, sn: 'DES-ECB', ln: 'des-ecb' }, {}, 'DES', false, 'WARNED'],
  ['TLS 1.3 suite', { probe: 'SSL_get_current_cipher', operation: 'TLS_CIPHER', name: 'TLS_AES_256_GCM_SHA384' }, {}, 'AES-GCM', true, 'ALLOWED'],
  ['sign with digest name', { probe: 'EVP_DigestSignInit_ex', operation: 'SIGN', name: 'SHA2-256' }, {}, 'SHA-256', true, 'ALLOWED'],
  ['MD5 allowed when not approved-only', { nid: 4, sn: 'MD5' }, { fips_approved_only: false }, 'MD5', false, 'ALLOWED'],
  ['unknown NID', { nid: 1056, sn: 'BLAKE2b512', ln: 'blake2b512' }, {}, 'BLAKE2b512', false, 'WARNED'],
];

describe('classify (daemon policy table)', () => {
  it.each(CASES)('%s', (_n, r, settings, algorithm, approved, action) => {
    const c = classify(raw(r), S(settings));
    expect(c.algorithm).toBe(algorithm);
    expect(c.approved).toBe(approved);
    expect(c.action).toBe(action);
    if (!approved || action !== 'ALLOWED') expect(c.remediation).toBeTruthy();
  });

  it('sign/verify digests without a key type are judged by the digest row', () => {
    const v = raw({ probe: 'EVP_DigestVerifyInit', operation: 'VERIFY', nid: 64, sn: 'SHA1' });
    expect(classify(v, S()).algorithm).toBe('SHA-1');
    expect(classify(v, S()).allowed).toBe(false);
  });

  it('remediation hints follow seed 000', () => {
    expect(remediation('MD5', 'DIGEST')).toMatch(/SHA-256/);
    expect(remediation('RC4', 'CIPHER')).toMatch(/AES-GCM/);
    expect(remediation('DES', 'ENCRYPT')).toMatch(/AES-GCM/);
    expect(remediation('3DES', 'ENCRYPT')).toMatch(/AES-GCM/);
  });
});

const NIDS: NidInfo[] = [
  { nid: 4, kind: 'digest', sn: 'MD5', ln: 'md5' },
  { nid: 64, kind: 'digest', sn: 'SHA1', ln: 'sha1' },
  { nid: 672, kind: 'digest', sn: 'SHA256', ln: 'sha256' },
  { nid: 418, kind: 'cipher', sn: 'AES-128-ECB', ln: 'aes-128-ecb' },
  { nid: 901, kind: 'cipher', sn: 'id-aes256-GCM', ln: 'aes-256-gcm' },
  { nid: 5, kind: 'cipher', sn: 'RC4', ln: 'rc4' },
  { nid: 6, kind: 'other', sn: 'rsaEncryption', ln: 'rsaEncryption' },
];
const bit = (op: keyof typeof CT_OP, internal = false) => 1 << (CT_OP[op] + (internal ? CT_MASK_INTERNAL : 0));
const ruleMask = (rules: string[], key: string): number | undefined => {
  const r = rules.find((x) => x.startsWith(key + ':'));
  return r === undefined ? undefined : Number(r.split(':')[1]);
};

describe('strict-mode block rules', () => {
  const r = blockRules(NIDS, S());
  it('stops MD5 everywhere, application and library-internal use', () => {
    const m = ruleMask(r.nids, '4')!;
    for (const op of ['DIGEST', 'SIGN', 'VERIFY'] as const) {
      expect(m & bit(op)).toBeTruthy();
      expect(m & bit(op, true)).toBeTruthy();
    }
  });
  it('tolerates SHA-1 and AES-ECB inside libcrypto (X.509 ids, CTR-DRBG) but not from the application', () => {
    const sha1 = ruleMask(r.nids, '64')!;
    expect(sha1 & bit('DIGEST')).toBeTruthy();
    expect(sha1 & bit('DIGEST', true)).toBe(0);
    const ecb = ruleMask(r.nids, '418')!;
    expect(ecb & bit('ENCRYPT')).toBeTruthy();
    expect(ecb & bit('ENCRYPT', true)).toBe(0);
  });
  it('never blocks approved algorithms or non-algorithm NIDs', () => {
    expect(ruleMask(r.nids, '672')).toBeUndefined();
    expect(ruleMask(r.nids, '901')).toBeUndefined();
    expect(ruleMask(r.nids, '6')).toBeUndefined();
  });
  it('RC4 for every cipher direction, including the low-level CIPHER op', () => {
    const m = ruleMask(r.nids, '5')!;
    for (const op of ['ENCRYPT', 'DECRYPT', 'CIPHER'] as const) expect(m & bit(op)).toBeTruthy();
  });
  it('an [algorithms] allow entry lifts the rule', () => {
    expect(ruleMask(blockRules(NIDS, S({ allow: ['CKM_MD5'] })).nids, '4')).toBeUndefined();
  });
  it('digest names for …SignInit_ex / VerifyInit_ex', () => {
    expect(ruleMask(r.names, 'md5')).toBeTruthy();
    expect(ruleMask(r.names, 'sha2-256')).toBeUndefined();
  });
  it('follows the settings: fips_approved_only = false leaves only gated modes (AES-ECB)', () => {
    expect(blockRules(NIDS, S({ fips_approved_only: false })).nids.map((n) => n.split(':')[0])).toEqual(['418']);
    expect(blockRules(NIDS, S({ fips_approved_only: false, allow_aes_ecb: true })).nids).toEqual([]);
  });
});

describe('key types (EVP_PKEY of sign/verify/derive inits)', () => {
  const kex = (over: Partial<RawCrypto>) => raw({ probe: 'EVP_PKEY_derive_init_ex', operation: 'KEY_EXCHANGE', ...over });
  it('KEY_EXCHANGE: X25519 is non-approved, ECDH on P-256/P-384/P-521 approved, DH non-approved', () => {
    expect(classify(kex({ nid: 1034, name: 'X25519', key_type: 'X25519', key_nid: 1034 }), S())).toMatchObject({ algorithm: 'X25519', approved: false, action: 'WARNED' });
    for (const c of ['prime256v1', 'secp384r1', 'secp521r1'])
      expect(classify(kex({ nid: 408, name: 'EC', key_type: 'EC', key_curve: c }), S())).toMatchObject({ algorithm: 'ECDH', approved: true, action: 'ALLOWED' });
    expect(classify(kex({ nid: 408, name: 'EC', key_type: 'EC', key_curve: 'secp256k1' }), S())).toMatchObject({ algorithm: 'ECDH', approved: false, action: 'WARNED' });
    expect(classify(kex({ nid: 28, name: 'DH', key_type: 'DH' }), S())).toMatchObject({ algorithm: 'DH', approved: false });
    expect(classify(kex({ nid: 920, name: 'DHX', key_type: 'DHX' }), S())).toMatchObject({ algorithm: 'DH', approved: false });
    // a legacy key: only its NID
    expect(classify(kex({ nid: 1034, key_nid: 1034, key_sn: 'X25519' }), S())).toMatchObject({ algorithm: 'X25519', approved: false });
  });
  it('SIGN/VERIFY with SHA-1 on an EC key: verify-only, allowed for VERIFY only with allow_sha1_verify', () => {
    const sig = (operation: 'SIGN' | 'VERIFY') => raw({ probe: `EVP_Digest${operation === 'SIGN' ? 'Sign' : 'Verify'}Init_ex`, operation, name: 'sha1', key_type: 'EC', key_curve: 'prime256v1' });
    expect(classify(sig('VERIFY'), S())).toMatchObject({ algorithm: 'ECDSA with SHA-1', approved: false, allowed: false, action: 'WARNED' });
    expect(classify(sig('VERIFY'), S({ allow_sha1_verify: true }))).toMatchObject({ algorithm: 'ECDSA with SHA-1', approved: true, allowed: true, action: 'ALLOWED' });
    expect(classify(sig('SIGN'), S({ allow_sha1_verify: true }))).toMatchObject({ algorithm: 'ECDSA with SHA-1', approved: false, allowed: false, action: 'WARNED' });
  });
  it('SIGN with approved digests and key types: RSA, RSA-PSS, EC, Ed25519; MD5 stays the digest verdict', () => {
    const s = (over: Partial<RawCrypto>) => classify(raw({ probe: 'EVP_DigestSignInit', operation: 'SIGN', ...over }), S());
    expect(s({ nid: 672, sn: 'SHA256', key_type: 'RSA' })).toMatchObject({ algorithm: 'RSA-PKCS1-v1_5 with SHA-256', approved: true });
    expect(s({ nid: 672, sn: 'SHA256', key_type: 'RSA-PSS' })).toMatchObject({ algorithm: 'RSA-PSS with SHA-256', approved: true });
    expect(s({ nid: 673, sn: 'SHA384', key_type: 'EC', key_curve: 'secp384r1' })).toMatchObject({ algorithm: 'ECDSA with SHA-384', approved: true });
    expect(s({ key_type: 'ED25519' })).toMatchObject({ algorithm: 'EdDSA', approved: true });
    expect(s({ nid: 64, sn: 'SHA1', key_type: 'RSA' })).toMatchObject({ algorithm: 'RSA-PKCS1-v1_5 with SHA-1', approved: false });
    expect(s({ nid: 4, sn: 'MD5', key_type: 'RSA' })).toMatchObject({ algorithm: 'MD5', approved: false });
  });
  it('block rules: X25519/DH key agreement stopped by name and NID; SHA-1 VERIFY passes with allow_sha1_verify', () => {
    const r = blockRules(NIDS, S());
    expect(ruleMask(r.names, 'x25519')! & bit('KEY_EXCHANGE')).toBeTruthy();
    expect(ruleMask(r.nids, '1034')! & bit('KEY_EXCHANGE')).toBeTruthy();
    expect(ruleMask(r.names, 'dh')! & bit('KEY_EXCHANGE')).toBeTruthy();
    expect(ruleMask(r.names, 'ec')).toBeUndefined();
    expect(ruleMask(r.nids, '64')! & bit('VERIFY')).toBeTruthy();
    const lax = blockRules(NIDS, S({ allow_sha1_verify: true }));
    expect(ruleMask(lax.nids, '64')! & bit('VERIFY')).toBe(0);
    expect(ruleMask(lax.nids, '64')! & bit('SIGN')).toBeTruthy();
    expect(ruleMask(lax.names, 'sha1')! & bit('VERIFY')).toBe(0);
  });
});
