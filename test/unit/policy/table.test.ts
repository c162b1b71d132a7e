// The policy table: every row classifies as documented, sizes, allow/deny lists,
// SHA-1 verify-only, OpenSSL identifiers, and docs/policy.md kept in step.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CKM } from '../../../hsm-daemon/src/pkcs11/index.js';
import { MechanismRegistry, defaultFamilies } from '../../../hsm-daemon/src/mechanisms/registry.js';
import {
  DEFAULT_POLICY_SETTINGS,
  POLICY_TABLE,
  classifyMechanism,
  classifyOpenSSL,
  CURVES,
  curveName,
  rowForMechanism,
  type PolicySettings,
} from '../../../hsm-daemon/src/policy/table.js';
import { DOC_BEGIN, DOC_END, renderPolicyTable } from '../../../hsm-daemon/src/policy/doc.js';

const S = (over: Partial<PolicySettings> = {}): PolicySettings => ({ ...DEFAULT_POLICY_SETTINGS, ...over });
const strict = S();
const permissive = S({ fips_approved_only: false });

describe('every row classifies as documented (default settings)', () => {
  for (const row of POLICY_TABLE) {
    it(row.algorithm, () => {
      // A digestInfoSign row's status is what it says for an input that is no DigestInfo.
      const raw = row.digestInfoSign ? { digestInfo: '' } : {};
      for (const m of row.mechanisms) {
        const sign = classifyMechanism(m, { op: 'sign', ...raw }, strict);
        expect(sign.algorithm).toBe(row.algorithm);
        expect(sign.approved).toBe(row.status === 'approved');
        expect(sign.allowed).toBe(row.status === 'approved' && !row.gate);
        if (!sign.allowed) expect(sign.refusal).toBe(row.gate ? 'gated' : 'not-approved');
        // With approved-only off, only gated rows stay refused.
        expect(classifyMechanism(m, { op: 'sign', ...raw }, permissive).allowed).toBe(!row.gate);
      }
      for (const id of row.openssl) {
        if (id.nid !== undefined) expect(classifyOpenSSL({ nid: id.nid }, {}, strict).algorithm).toBe(row.algorithm);
        for (const name of id.names) {
          const v = classifyOpenSSL({ name }, {}, strict);
          expect(v.algorithm, name).toBe(row.algorithm);
          expect(v.approved, name).toBe(row.status === 'approved' && (!id.curve || CURVES[id.curve]!.nist));
        }
      }
      for (const t of row.tls ?? []) expect(classifyOpenSSL({ name: t }, {}, strict).algorithm).toBe(row.algorithm);
    });
  }

  it('every mechanism the daemon offers has a row', () => {
    const reg = new MechanismRegistry(defaultFamilies());
    const missing = reg.list().filter((m) => !rowForMechanism(m.type));
    expect(missing.map((m) => m.type.toString(16))).toEqual([]);
  });

  it('the issue\'s named algorithms are rows with the expected status', () => {
    const status = (a: string) => POLICY_TABLE.find((r) => r.algorithm === a)?.status;
    expect(status('SHA-256')).toBe('approved');
    expect(status('AES-GCM')).toBe('approved');
    expect(status('RSA-PSS')).toBe('approved');
    expect(status('ECDSA')).toBe('approved');
    expect(status('EdDSA')).toBe('approved');
    expect(status('HMAC-SHA-256')).toBe('approved');
    expect(status('ECDSA-SHA-1')).toBe('verify-only');
    expect(status('RSA-PKCS1-v1_5-SHA-1')).toBe('verify-only');
    for (const a of ['SHA-1', 'MD5', 'DES', '3DES', 'RC4', 'ChaCha20-Poly1305', 'X25519']) expect(status(a), a).toBe('non-approved');
  });

  it('an unknown mechanism or OpenSSL id is non-approved', () => {
    expect(classifyMechanism(0x7fff0001, {}, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'not-approved' });
    expect(classifyMechanism(0x7fff0001, {}, permissive)).toMatchObject({ approved: false, allowed: true });
    expect(classifyOpenSSL({ name: 'SM4-CBC' }, {}, strict)).toMatchObject({ algorithm: 'SM4-CBC', approved: false, allowed: false });
  });
});

describe('sizes', () => {
  it('RSA: below rsa_min_bits → size; the FIPS floor decides approved', () => {
    expect(classifyMechanism(CKM.SHA256_RSA_PKCS, { op: 'sign', keyBits: 1024 }, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'size' });
    expect(classifyMechanism(CKM.RSA_PKCS_KEY_PAIR_GEN, { op: 'generate', keyBits: 2048 }, strict)).toMatchObject({ approved: true, allowed: true });
    const high = S({ rsa_min_bits: 3072 });
    expect(classifyMechanism(CKM.RSA_PKCS_PSS, { op: 'sign', keyBits: 2048 }, high)).toMatchObject({ approved: true, allowed: false, refusal: 'size' });
    expect(classifyMechanism(CKM.RSA_PKCS_PSS, { op: 'sign', keyBits: 3072 }, high).allowed).toBe(true);
    // A lowered minimum still does not make RSA-1024 approved, nor allowed in approved-only mode.
    const low = S({ rsa_min_bits: 1024 });
    expect(classifyMechanism(CKM.SHA256_RSA_PKCS, { op: 'sign', keyBits: 1024 }, low)).toMatchObject({ approved: false, allowed: false, refusal: 'size' });
    expect(classifyMechanism(CKM.SHA256_RSA_PKCS, { op: 'sign', keyBits: 1024 }, { ...low, fips_approved_only: false })).toMatchObject({ approved: false, allowed: true });
  });

  it('EC: P-256/384/521 allowed; P-224 below ec_min_bits; secp256k1 not approved', () => {
    for (const c of ['P-256', 'P-384', 'P-521']) expect(classifyMechanism(CKM.ECDSA_SHA256, { op: 'sign', curve: c }, strict)).toMatchObject({ approved: true, allowed: true });
    expect(classifyMechanism(CKM.EC_KEY_PAIR_GEN, { op: 'generate', curve: 'P-224' }, strict)).toMatchObject({ approved: true, allowed: false, refusal: 'size' });
    expect(classifyMechanism(CKM.EC_KEY_PAIR_GEN, { op: 'generate', curve: 'P-224' }, S({ ec_min_bits: 224 })).allowed).toBe(true);
    expect(classifyMechanism(CKM.ECDSA, { op: 'sign', curve: 'secp256k1' }, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'size' });
    expect(classifyOpenSSL({ nid: 714 }, { op: 'sign' }, strict)).toMatchObject({ algorithm: 'ECDSA', approved: false });
  });

  it('EdDSA on Ed25519 is approved; ECDH over X25519 is X25519 (non-approved)', () => {
    expect(classifyMechanism(CKM.EDDSA, { op: 'sign', curve: 'Ed25519' }, strict)).toMatchObject({ approved: true, allowed: true });
    expect(classifyMechanism(CKM.ECDH1_DERIVE, { op: 'derive', curve: 'X25519' }, strict)).toMatchObject({ algorithm: 'X25519', approved: false, allowed: false });
    expect(classifyMechanism(CKM.ECDH1_DERIVE, { op: 'derive', curve: 'P-384' }, strict)).toMatchObject({ algorithm: 'ECDH', approved: true });
  });

  it('HMAC keys below hmac_min_key_bits; AES lengths left to the mechanism', () => {
    expect(classifyMechanism(CKM.SHA256_HMAC, { op: 'sign', keyBits: 80 }, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'size' });
    expect(classifyMechanism(CKM.SHA256_HMAC, { op: 'sign', keyBits: 112 }, strict)).toMatchObject({ approved: true, allowed: true });
    expect(classifyMechanism(CKM.GENERIC_SECRET_KEY_GEN, { op: 'generate', keyBits: 64 }, strict).refusal).toBe('size');
    expect(classifyMechanism(CKM.HKDF_DERIVE, { op: 'derive', keyBits: 64 }, strict).refusal).toBe('size');
    for (const b of [128, 192, 256]) expect(classifyMechanism(CKM.AES_GCM, { op: 'encrypt', keyBits: b }, strict).allowed).toBe(true);
    // 136 bits is no AES key at all: the AES family answers CKR_ATTRIBUTE_VALUE_INVALID, not the policy
    expect(classifyMechanism(CKM.AES_KEY_GEN, { op: 'generate', keyBits: 136 }, strict).refusal).toBeUndefined();
    expect(classifyOpenSSL({ name: 'aes-256-gcm' }, {}, strict)).toMatchObject({ algorithm: 'AES-GCM', approved: true, allowed: true });
  });

  it('curve names from aliases and CKA_EC_PARAMS', () => {
    expect(curveName('prime256v1')).toBe('P-256');
    expect(curveName(Buffer.from('06082a8648ce3d030107', 'hex'))).toBe('P-256');
    expect(curveName(Buffer.from('06052b81040022', 'hex'))).toBe('P-384');
    expect(curveName(Buffer.from('06032b6570', 'hex'))).toBe('Ed25519');
    expect(curveName(Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519')]))).toBe('Ed25519');
    expect(curveName(Buffer.from('0601ff', 'hex'))).toBeUndefined();
  });
});

describe('allow and deny lists, gates', () => {
  it('deny refuses an approved mechanism and wins over allow', () => {
    const s = S({ deny: ['CKM_AES_GCM'], allow: ['CKM_AES_GCM'] });
    expect(classifyMechanism(CKM.AES_GCM, { op: 'encrypt' }, s)).toMatchObject({ approved: true, allowed: false, refusal: 'denied' });
    expect(classifyOpenSSL({ name: 'aes-128-gcm' }, {}, s)).toMatchObject({ allowed: false, refusal: 'denied' });
  });

  it('allow permits a non-approved mechanism without calling it approved; sizes still apply', () => {
    const s = S({ allow: ['CKM_MD5', 'CKM_SHA_1_HMAC'] });
    expect(classifyMechanism(CKM.MD5, { op: 'digest' }, s)).toMatchObject({ approved: false, allowed: true });
    expect(classifyMechanism(CKM.SHA_1, { op: 'digest' }, s).allowed).toBe(false);
    expect(classifyMechanism(CKM.SHA_1_HMAC, { op: 'sign', keyBits: 64 }, s).refusal).toBe('size');
  });

  it('aliases: CKM_ECDSA_KEY_PAIR_GEN names the same mechanism as CKM_EC_KEY_PAIR_GEN', () => {
    expect(classifyMechanism(CKM.EC_KEY_PAIR_GEN, { op: 'generate' }, S({ deny: ['CKM_ECDSA_KEY_PAIR_GEN'] })).refusal).toBe('denied');
  });

  it('AES-ECB is approved but gated by allow_aes_ecb; raw RSA by allow_raw_rsa', () => {
    expect(classifyMechanism(CKM.AES_ECB, { op: 'encrypt', keyBits: 128 }, strict)).toMatchObject({ approved: true, allowed: false, refusal: 'gated' });
    expect(classifyMechanism(CKM.AES_ECB, { op: 'encrypt', keyBits: 128 }, S({ allow_aes_ecb: true }))).toMatchObject({ approved: true, allowed: true });
    expect(classifyMechanism(CKM.AES_ECB, { op: 'encrypt' }, permissive).allowed).toBe(false);
    for (const m of [CKM.RSA_PKCS, CKM.RSA_X_509]) {
      expect(classifyMechanism(m, { op: 'decrypt', keyBits: 2048 }, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'gated' });
      expect(classifyMechanism(m, { op: 'sign', keyBits: 2048, digestInfo: '' }, strict)).toMatchObject({ approved: false, allowed: false, refusal: 'gated' });
      expect(classifyMechanism(m, { op: 'sign', keyBits: 2048, digestInfo: '' }, S({ allow_raw_rsa: true }))).toMatchObject({ approved: false, allowed: true });
      expect(classifyMechanism(m, { op: 'sign', keyBits: 1024 }, S({ allow_raw_rsa: true })).refusal).toBe('size');
    }
  });

  it('CKM_RSA_PKCS sign/verify over a DigestInfo: the hash inside decides, the gate stays for the rest', () => {
    const at = (ctx: Parameters<typeof classifyMechanism>[1], s = strict) => classifyMechanism(CKM.RSA_PKCS, { keyBits: 2048, ...ctx }, s);
    // C_SignInit: the data is not known yet; approved pending the check on the data.
    for (const op of ['sign', 'verify'] as const) expect(at({ op })).toMatchObject({ approved: true, allowed: true, algorithm: 'RSA-PKCS1-v1_5 (DigestInfo)' });
    for (const op of ['encrypt', 'decrypt', 'wrap', 'unwrap'] as const) expect(at({ op })).toMatchObject({ allowed: false, refusal: 'gated' });
    for (const h of ['SHA-224', 'SHA-256', 'SHA-384', 'SHA-512', 'SHA3-224', 'SHA3-256', 'SHA3-384', 'SHA3-512']) {
      expect(at({ op: 'sign', digestInfo: h })).toMatchObject({ approved: true, allowed: true, algorithm: `RSA-PKCS1-v1_5 (DigestInfo ${h})` });
    }
    expect(at({ op: 'sign', digestInfo: 'SHA-1' })).toMatchObject({ approved: false, allowed: false, refusal: 'gated' });
    expect(at({ op: 'verify', digestInfo: 'SHA-1' })).toMatchObject({ approved: false, allowed: false });
    expect(at({ op: 'verify', digestInfo: 'SHA-1' }, S({ allow_sha1_verify: true }))).toMatchObject({ approved: true, allowed: true });
    expect(at({ op: 'sign', digestInfo: 'MD5' })).toMatchObject({ approved: false, allowed: false, refusal: 'gated' });
    expect(at({ op: 'sign', digestInfo: '' })).toMatchObject({ approved: false, allowed: false, refusal: 'gated' });
    expect(at({ op: 'sign', digestInfo: '' }, S({ allow_raw_rsa: true }))).toMatchObject({ approved: false, allowed: true });
    expect(at({ op: 'sign', digestInfo: 'SHA-256' }, S({ allow_raw_rsa: true }))).toMatchObject({ approved: true, allowed: true });
    expect(at({ op: 'sign', keyBits: 1024, digestInfo: 'SHA-256' }).refusal).toBe('size');
    expect(classifyMechanism(CKM.RSA_PKCS, { op: 'sign', digestInfo: 'SHA-256' }, S({ deny: ['CKM_RSA_PKCS'] })).refusal).toBe('denied');
  });
});

describe('SHA-1 signatures verify only', () => {
  const sha1Sigs = [CKM.SHA1_RSA_PKCS, CKM.SHA1_RSA_PKCS_PSS, CKM.ECDSA_SHA1];
  it('refused by default, for sign and verify', () => {
    for (const m of sha1Sigs) for (const op of ['sign', 'verify'] as const) expect(classifyMechanism(m, { op }, strict)).toMatchObject({ approved: false, allowed: false });
  });
  it('allow_sha1_verify: verify is approved legacy use, sign stays refused', () => {
    const s = S({ allow_sha1_verify: true });
    for (const m of sha1Sigs) {
      expect(classifyMechanism(m, { op: 'verify' }, s)).toMatchObject({ approved: true, allowed: true });
      expect(classifyMechanism(m, { op: 'sign' }, s)).toMatchObject({ approved: false, allowed: false, refusal: 'not-approved' });
    }
    // The SHA-1 digest itself is not a signature verification.
    expect(classifyMechanism(CKM.SHA_1, { op: 'digest' }, s).allowed).toBe(false);
  });
  it('a SHA-1 hash chosen by a parameter makes the use a SHA-1 use', () => {
    expect(classifyMechanism(CKM.RSA_PKCS_PSS, { op: 'sign', hash: 'SHA-1' }, strict)).toMatchObject({ algorithm: 'RSA-PSS with SHA-1', approved: false, allowed: false });
    expect(classifyMechanism(CKM.RSA_PKCS_PSS, { op: 'verify', hash: 'SHA-1' }, S({ allow_sha1_verify: true }))).toMatchObject({ approved: true, allowed: true });
    expect(classifyMechanism(CKM.HKDF_DERIVE, { op: 'derive', hash: 'SHA-1' }, strict)).toMatchObject({ approved: false, allowed: false });
  });
});

describe('docs/policy.md', () => {
  const doc = readFileSync(path.resolve(__dirname, '../../../docs/policy.md'), 'utf8');
  it('carries the generated table unchanged (regenerate: npx vite-node test/unit/policy/write-doc.ts)', () => {
    const start = doc.indexOf(DOC_BEGIN);
    const end = doc.indexOf(DOC_END);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(doc.slice(start, end + DOC_END.length)).toBe(renderPolicyTable());
  });
  it('lists every row', () => {
    for (const r of POLICY_TABLE) expect(doc).toContain(`| ${r.algorithm} | ${r.category} |`);
  });
});
