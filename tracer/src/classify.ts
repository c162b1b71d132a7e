// FIPS verdicts for traced OpenSSL calls. There is no table here: every verdict comes
// from the daemon's policy table (hsm-daemon/src/policy/table.ts, classifyOpenSSL), with
// the same [algorithms] settings the daemon runs with. This file only maps what the
// kernel saw onto that API, decides the action (ALLOWED / WARNED / BLOCKED), and builds
// the block rules strict mode hands to the kernel.
import { classifyOpenSSL, curveName, POLICY_TABLE, type PolicyContext, type PolicyOp, type PolicySettings, type Verdict } from '../../hsm-daemon/src/policy/table.js';
import type { Action, Operation, RawCrypto } from './events.js';

export type EnforceMode = 'off' | 'warn' | 'strict' | 'dry-run';

const OP_TO_POLICY: Record<Operation, PolicyOp | undefined> = {
  DIGEST: 'digest',
  ENCRYPT: 'encrypt',
  DECRYPT: 'decrypt',
  SIGN: 'sign',
  VERIFY: 'verify',
  CIPHER: 'encrypt',
  TLS_CIPHER: undefined,
  KEY_EXCHANGE: 'derive',
};

/** Mirrors enum ct_op in tracer/bpf/craton_trace.h (bit positions of the block masks). */
export const CT_OP: Record<'DIGEST' | 'ENCRYPT' | 'DECRYPT' | 'SIGN' | 'VERIFY' | 'TLS_CIPHER' | 'CIPHER' | 'KEY_EXCHANGE', number> = {
  DIGEST: 1,
  ENCRYPT: 2,
  DECRYPT: 3,
  SIGN: 4,
  VERIFY: 5,
  TLS_CIPHER: 6,
  CIPHER: 7,
  KEY_EXCHANGE: 8,
};
/** CT_MASK_INTERNAL in craton_trace.h: the mask bits for calls made inside libcrypto. */
export const CT_MASK_INTERNAL = 16;

export interface Classified {
  algorithm: string;
  openssl_name?: string;
  approved: boolean;
  allowed: boolean;
  action: Action;
  reason: string;
  remediation?: string;
}

/** The name OpenSSL knows the algorithm by, as the probe saw it. */
export function opensslName(e: Pick<RawCrypto, 'sn' | 'ln' | 'name' | 'nid'>): string | undefined {
  return e.name || e.sn || e.ln || (e.nid > 0 ? `NID ${e.nid}` : undefined);
}

type VerdictInput = Pick<RawCrypto, 'sn' | 'ln' | 'name' | 'nid' | 'operation' | 'key_bits'> &
  Partial<Pick<RawCrypto, 'key_type' | 'key_sn' | 'key_nid' | 'key_curve'>>;

/** The key's type as OpenSSL's key manager names it (EC, X25519, RSA-PSS, ED25519, DH …), upper case. */
export function keyType(e: Partial<Pick<RawCrypto, 'key_type' | 'key_sn'>>): string | undefined {
  const k = e.key_type || e.key_sn;
  if (!k) return undefined;
  const u = k.toUpperCase();
  // legacy keys only carry a NID: its short name
  return u === 'ID-ECPUBLICKEY' ? 'EC' : u === 'RSAENCRYPTION' ? 'RSA' : u === 'RSASSA-PSS' ? 'RSA-PSS' : u === 'DHKEYAGREEMENT' ? 'DH' : u;
}

/** KEY_EXCHANGE: the key type decides (EC → ECDH on the key's curve, X25519/X448, DH/DHX). */
function keyExchangeVerdict(e: VerdictInput, settings: PolicySettings): Verdict {
  const kt = keyType(e) ?? e.name?.toUpperCase();
  const ctx: PolicyContext = { op: 'derive' };
  const curve = e.key_curve ? curveName(e.key_curve) : undefined;
  if (curve) ctx.curve = curve;
  if (kt === 'EC') return classifyOpenSSL({ name: 'ECDH' }, ctx, settings);
  const id: { nid?: number; name?: string } = {};
  if (kt) id.name = kt;
  if (e.key_nid && e.key_nid > 0) id.nid = e.key_nid;
  else if (!kt && e.nid > 0) id.nid = e.nid;
  return classifyOpenSSL(id, ctx, settings);
}

/** A table name of the signature scheme a key type signs with (the digest comes separately). */
const SIG_NAME: Record<string, string> = {
  RSA: 'RSA-SHA256', // RSA-PKCS1-v1_5 (PSS padding is chosen after the init: not seen)
  'RSA-PSS': 'RSASSA-PSS',
  EC: 'ecdsa-with-SHA256',
  ED25519: 'ED25519',
  ED448: 'ED448',
  DSA: 'DSA',
};
const APPROVED_HASH = /^(SHA-(224|256|384|512)(\/(224|256))?|SHA3-(224|256|384|512))$/;

/**
 * SIGN / VERIFY with the key type known: the scheme's row decides, with the digest as
 * its hash, so SHA-1 becomes e.g. ECDSA with SHA-1, verify-only (allow_sha1_verify).
 * Without a key type, or with a digest that is never approved (MD5 …), the digest decides.
 */
function signatureVerdict(e: VerdictInput, digest: Verdict | undefined, settings: PolicySettings, op: PolicyOp): Verdict | undefined {
  const kt = keyType(e);
  const sig = kt ? SIG_NAME[kt] : undefined;
  if (!kt || !sig) return undefined;
  const ctx: PolicyContext = { op };
  const curve = e.key_curve ? curveName(e.key_curve) : kt === 'ED25519' ? 'Ed25519' : kt === 'ED448' ? 'Ed448' : undefined;
  if (curve) ctx.curve = curve;
  if (kt === 'ED25519' || kt === 'ED448') return classifyOpenSSL({ name: sig }, ctx, settings); // no separate digest
  if (digest) {
    if (digest.algorithm === 'SHA-1') ctx.hash = 'SHA-1';
    else if (!APPROVED_HASH.test(digest.algorithm)) return undefined;
  }
  const v = classifyOpenSSL({ name: sig }, ctx, settings);
  // the table says "ECDSA with SHA-1" itself; name the approved hash the same way
  if (digest && ctx.hash === undefined && !v.algorithm.includes(' with ')) return { ...v, algorithm: `${v.algorithm} with ${digest.algorithm}` };
  return v;
}

export function verdictFor(e: VerdictInput, settings: PolicySettings): Verdict {
  if (e.operation === 'KEY_EXCHANGE') return keyExchangeVerdict(e, settings);
  const hasDigest = e.nid > 0 || !!e.name || !!e.sn || !!e.ln;
  if ((e.operation === 'SIGN' || e.operation === 'VERIFY') && keyType(e)) {
    const d = hasDigest ? digestVerdict(e, settings) : undefined;
    const s = signatureVerdict(e, d, settings, e.operation === 'SIGN' ? 'sign' : 'verify');
    if (s) return s;
    if (d) return d;
  }
  return digestVerdict(e, settings);
}

function digestVerdict(e: VerdictInput, settings: PolicySettings): Verdict {
  const name = opensslName(e);
  const id: { nid?: number; name?: string } = {};
  if (e.nid > 0) id.nid = e.nid;
  if (name !== undefined) id.name = name;
  const ctx: { keyBits?: number; op?: PolicyOp } = {};
  const op = OP_TO_POLICY[e.operation];
  if (op) ctx.op = op;
  if (e.key_bits !== undefined) ctx.keyBits = e.key_bits;
  let v = classifyOpenSSL(id, ctx, settings);
  // an LN the table lacks may still be known by the SN (and vice versa)
  if (v.reason === 'not in the FIPS policy table' && e.sn && e.ln) {
    const alt = classifyOpenSSL({ name: id.name === e.sn ? e.ln : e.sn }, ctx, settings);
    if (alt.reason !== 'not in the FIPS policy table') v = alt;
  }
  return v;
}

/** The remediation hint an alert carries (seed 000: MD5 → SHA-256, RC4/DES → AES-GCM). */
export function remediation(algorithm: string, operation: Operation): string {
  const a = algorithm.toUpperCase();
  if (operation === 'TLS_CIPHER') return 'restrict the TLS configuration to TLS 1.2+/1.3 suites with AES-GCM and ECDHE (FIPS-approved)';
  if (/^(MD2|MD4|MD5|RIPEMD|SHA-?1\b|SHA1|MDC2|WHIRLPOOL|SM3|BLAKE)/.test(a)) return 'use SHA-256 (or SHA-384/SHA-512, SHA3-256)';
  if (/^(HMAC-MD5|HMAC-SHA-?1)/.test(a)) return 'use HMAC-SHA-256';
  if (/(RC2|RC4|RC5|DES|3DES|DES-EDE|BF|BLOWFISH|CAST|IDEA|SEED|CAMELLIA|ARIA|SM4|CHACHA)/.test(a)) return 'use AES-GCM (AES-256-GCM)';
  if (/AES-ECB|ECB/.test(a)) return 'use AES-GCM (or AES-CBC/CTR with a MAC); ECB leaks patterns';
  if (/RSA/.test(a)) return 'use RSA with a 2048-bit or larger modulus and SHA-256, or ECDSA P-256';
  return 'use a FIPS-approved algorithm (docs/policy.md lists them)';
}

/**
 * What happened to the call. BLOCKED only when the kernel actually stopped it; a call
 * the policy does not allow but that ran (warn mode, dry run, allowlisted binary,
 * monitoring without enforcement, library-internal use strict tolerates) is WARNED.
 */
export function classify(e: RawCrypto, settings: PolicySettings): Classified {
  const v = verdictFor(e, settings);
  const name = opensslName(e);
  const action: Action = e.blocked ? 'BLOCKED' : v.allowed ? 'ALLOWED' : 'WARNED';
  const out: Classified = { algorithm: v.algorithm, approved: v.approved, allowed: v.allowed, action, reason: v.reason };
  if (name !== undefined) out.openssl_name = name;
  if (!v.allowed || !v.approved) out.remediation = remediation(v.algorithm, e.operation);
  if (e.blocked && v.allowed) out.reason = `${v.reason}; stopped by a rule the current settings no longer make (stale block list?)`;
  return out;
}

// ── strict mode: block rules for the kernel ──

export interface NidInfo {
  nid: number;
  kind: 'digest' | 'cipher' | 'other';
  sn: string;
  ln: string;
}

/**
 * Algorithms strict mode tolerates when libcrypto itself uses them as a building block:
 * AES-ECB inside CTR-DRBG / key wrap, SHA-1 for X.509 key identifiers and certificate
 * fingerprints. Blocking those would kill every TLS client. An application asking for
 * them directly is still stopped.
 */
export const INTERNAL_TOLERATED = /^(AES-ECB|SHA-1)$/;

/** Key types EVP_PKEY_derive_init_ex reports, with their legacy NIDs. */
const KEX_KEY_TYPES: ReadonlyArray<[string, number]> = [['X25519', 1034], ['X448', 1035], ['DH', 28], ['DHX', 920], ['EC', 408]];

export interface BlockRules {
  /** "NID:MASK" for --block-nid */
  nids: string[];
  /** "name:MASK" for --block-name (digest names given to …SignInit_ex / VerifyInit_ex) */
  names: string[];
  /** algorithm → the operations it is stopped for (for the docs / --explain) */
  summary: Record<string, string[]>;
}

function maskFor(ops: Operation[], opName: (op: Operation) => { allowed: boolean; algorithm: string }): { mask: number; algorithm: string; blockedOps: string[] } {
  let mask = 0;
  let algorithm = '';
  const blockedOps: string[] = [];
  for (const op of ops) {
    const v = opName(op);
    algorithm = v.algorithm;
    if (v.allowed) continue;
    const bit = CT_OP[op as keyof typeof CT_OP];
    if (bit === undefined) continue;
    mask |= 1 << bit;
    blockedOps.push(op);
    if (!INTERNAL_TOLERATED.test(v.algorithm)) mask |= 1 << (bit + CT_MASK_INTERNAL);
  }
  return { mask, algorithm, blockedOps };
}

/** Which NIDs / names strict mode stops, for which operations, under these settings. */
export function blockRules(nids: readonly NidInfo[], settings: PolicySettings): BlockRules {
  const rules: BlockRules = { nids: [], names: [], summary: {} };
  const note = (alg: string, ops: string[]) => {
    const s = (rules.summary[alg] ??= []);
    for (const o of ops) if (!s.includes(o)) s.push(o);
  };
  for (const n of nids) {
    if (n.kind === 'other') continue;
    const ops: Operation[] = n.kind === 'digest' ? ['DIGEST', 'SIGN', 'VERIFY'] : ['ENCRYPT', 'DECRYPT', 'CIPHER'];
    // sign/verify rules cannot see the key: judged as an ECDSA/RSA signature with this digest
    // (the same for both), so SHA-1 verification passes when allow_sha1_verify is set
    const m = maskFor(ops, (op) => verdictFor({ nid: n.nid, sn: n.sn, ln: n.ln, operation: op, ...(op === 'SIGN' || op === 'VERIFY' ? { key_type: 'EC' } : {}) }, settings));
    if (m.mask) {
      rules.nids.push(`${n.nid}:0x${m.mask.toString(16)}`);
      note(m.algorithm, m.blockedOps);
    }
  }
  // digest names as …SignInit_ex / VerifyInit_ex receive them: every table name of a digest row
  const seen = new Set<string>();
  for (const row of POLICY_TABLE) {
    if (row.category !== 'digest') continue;
    for (const id of row.openssl) {
      for (const name of id.names) {
        const key = name.toLowerCase();
        if (seen.has(key) || key.length > 31) continue;
        seen.add(key);
        const m = maskFor(['SIGN', 'VERIFY'], (op) => verdictFor({ nid: 0, name, operation: op, key_type: 'EC' }, settings));
        if (m.mask) rules.names.push(`${key}:0x${m.mask.toString(16)}`);
      }
    }
  }
  // key agreement by key type: the kernel sees the key manager's name (legacy keys: the NID).
  // An EC key's curve is not checked in the kernel: ECDH is stopped only when ECDH itself is refused.
  for (const [kt, nid] of KEX_KEY_TYPES) {
    const m = maskFor(['KEY_EXCHANGE'], () => keyExchangeVerdict({ nid: 0, operation: 'KEY_EXCHANGE', key_type: kt }, settings));
    if (!m.mask) continue;
    rules.names.push(`${kt.toLowerCase()}:0x${m.mask.toString(16)}`);
    rules.nids.push(`${nid}:0x${m.mask.toString(16)}`);
    note(m.algorithm, m.blockedOps);
  }
  return rules;
}
