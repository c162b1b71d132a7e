// What one audit entry holds, which calls are logged at which [audit] log_level, and the
// hash layers every entry carries. Shared by the daemon's writer and the admin CLI's
// verifier, so both compute exactly the same bytes.
import { createHash, createHmac } from 'node:crypto';
import { canonicalJson, canonicalMembers, compareCodePoints, type Json } from './canonical.js';

export const ZERO_HASH = '0'.repeat(64);

/** Seed 003's fields, plus ours. Every line of the log is canonicalJson(entry) + "\n". */
export interface AuditEntry {
  // --- seed 003 ---
  timestamp: number;
  session_handle: number;
  operation: string;
  key_id: number | null;
  result: { Success: null } | { Failure: string };
  previous_hash: string;
  // --- investigators' fields ---
  seq: number;
  pid: number;
  uid: number;
  exe: string | null;
  mechanism: string | null;
  fips_approved: boolean | null;
  /** Daemon events (Startup, Shutdown, Recovery, Rotation, Checkpoint, ...) and admin
   * actions (via: "admin-socket"); on a C_* call entry only the few facts audit/index.ts
   * callDetails adds (refused_by, class, gcm_used, ...), absent for most calls. */
  details?: Record<string, Json>;
  // --- integrity layers ---
  /** SHA-256(prev chain bytes || canonical(entry without chain and hmac)), cumulative. */
  chain: string;
  /** HMAC-SHA-256(k_seq, canonical(entry without hmac)); k evolves by hashing. */
  hmac: string;
}

export type AuditClass = 'crypto' | 'auth' | 'admin' | 'session' | 'event';
export type AuditLevel = 'all' | 'crypto' | 'auth' | 'admin' | 'none';

/** The C_* calls that get an entry, and their class. Calls not listed (slot/token/
 * mechanism/session info, C_GetAttributeValue, C_GetObjectSize, C_FindObjects,
 * C_FindObjectsFinal, unsupported functions) are informational and never logged. */
export const CALL_CLASS: Readonly<Record<string, AuditClass>> = {
  // crypto
  C_EncryptInit: 'crypto', C_Encrypt: 'crypto', C_EncryptUpdate: 'crypto', C_EncryptFinal: 'crypto',
  C_DecryptInit: 'crypto', C_Decrypt: 'crypto', C_DecryptUpdate: 'crypto', C_DecryptFinal: 'crypto',
  C_DigestInit: 'crypto', C_Digest: 'crypto', C_DigestUpdate: 'crypto', C_DigestKey: 'crypto', C_DigestFinal: 'crypto',
  C_SignInit: 'crypto', C_Sign: 'crypto', C_SignUpdate: 'crypto', C_SignFinal: 'crypto',
  C_SignRecoverInit: 'crypto', C_SignRecover: 'crypto',
  C_VerifyInit: 'crypto', C_Verify: 'crypto', C_VerifyUpdate: 'crypto', C_VerifyFinal: 'crypto',
  C_VerifyRecoverInit: 'crypto', C_VerifyRecover: 'crypto',
  C_GenerateKey: 'crypto', C_GenerateKeyPair: 'crypto', C_WrapKey: 'crypto', C_UnwrapKey: 'crypto', C_DeriveKey: 'crypto',
  C_GenerateRandom: 'crypto', C_SeedRandom: 'crypto',
  // auth: logins, PIN changes by the user, lockouts (event)
  C_Login: 'auth', C_Logout: 'auth', C_SetPIN: 'auth',
  // admin: object lifecycle, token init, PIN reset by the SO
  C_InitToken: 'admin', C_InitPIN: 'admin', C_CreateObject: 'admin', C_CopyObject: 'admin',
  C_DestroyObject: 'admin', C_SetAttributeValue: 'admin',
  // session bookkeeping: only at level all
  C_OpenSession: 'session', C_CloseSession: 'session', C_CloseAllSessions: 'session', C_Finalize: 'session',
  C_FindObjectsInit: 'session',
};

/** Version of the call entries' details (audit/index.ts callDetails), written in the Startup
 * entry as details.call_details: from 1 on, a refusal by a control always says so in
 * details.refused_by, so readers (evidence) infer nothing for entries after such a Startup. */
export const CALL_DETAILS_VERSION = 1;

/** True for the entry of a C_* call made through the PKCS#11 module, as opposed to a daemon
 * event or an admin action. By operation name, not by the absence of `details`: call
 * entries may carry details (refused_by, class, gcm_used …) since this version. */
export function isPkcs11CallEntry(e: { operation: string; details?: Record<string, unknown> | undefined }): boolean {
  return Object.prototype.hasOwnProperty.call(CALL_CLASS, `C_${e.operation}`) && e.details?.via === undefined;
}

/** Event kinds that belong to a class other than 'event' (written at that level too). */
export const EVENT_CLASS: Readonly<Record<string, AuditClass>> = {
  Lockout: 'auth',
  PinLocked: 'auth',
};

/** Daemon lifecycle and integrity events (Startup, Shutdown, Recovery, SegmentStart,
 * Checkpoint, AuditError, PolicyViolation, ...) are written at every level but none:
 * without them the log cannot be verified or interpreted. */
export function levelWrites(level: AuditLevel, cls: AuditClass): boolean {
  if (level === 'none') return false;
  if (level === 'all' || cls === 'event') return true;
  return level === cls;
}

export const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Seed 003: previous_hash of the next entry = SHA-256(canonical(entry without previous_hash)). */
export function seedHash(entry: Record<string, unknown>): string {
  const { previous_hash: _omit, ...body } = entry;
  return sha256hex(canonicalJson(body as Json));
}

export function chainOf(prevChain: string, entry: Record<string, unknown>): string {
  const { chain: _c, hmac: _h, ...body } = entry;
  return createHash('sha256').update(Buffer.from(prevChain, 'hex')).update(canonicalJson(body as Json)).digest('hex');
}

export function hmacOf(key: Buffer, entry: Record<string, unknown>): string {
  const { hmac: _h, ...body } = entry;
  return createHmac('sha256', key).update(canonicalJson(body as Json)).digest('hex');
}

const KEY_LABEL = Buffer.from('craton-hsm audit key evolution v1\0');

/** k_1 = H(label || K_initial); k_{n+1} = H(label || k_n). The entry with seq n uses k_n. */
export function evolveKey(k: Buffer): Buffer {
  return createHash('sha256').update(KEY_LABEL).update(k).digest();
}

/** The key for entry `seq` from the initial key (verifier side). */
export function keyForSeq(initial: Buffer, seq: number): Buffer {
  let k = evolveKey(initial);
  for (let i = 1; i < seq; i++) k = evolveKey(k);
  return k;
}

export function serializeEntry(entry: AuditEntry): string {
  return canonicalJson(entry as unknown as Json) + '\n';
}

/** What the writer needs for a new entry, from one serialization of its fields: the same
 * values as chainOf, hmacOf, serializeEntry and seedHash on the completed entry
 * (test/unit/audit/writer.test.ts checks the equivalence). */
export function sealEntry(prevChain: string, key: Buffer, entry: Omit<AuditEntry, 'chain' | 'hmac'>): { line: string; chain: string; hmac: string; seedHash: string } {
  const members = canonicalMembers(entry as unknown as { [k: string]: Json });
  const join = (ms: Array<[string, string]>) => '{' + ms.map((m) => m[1]).join(',') + '}';
  const body = join(members);
  const chain = createHash('sha256').update(Buffer.from(prevChain, 'hex')).update(body).digest('hex');
  const withChain = insertMember(members, ['chain', `"chain":"${chain}"`]);
  const hmac = createHmac('sha256', key).update(join(withChain)).digest('hex');
  const full = insertMember(withChain, ['hmac', `"hmac":"${hmac}"`]);
  const seed = sha256hex(join(full.filter((m) => m[0] !== 'previous_hash')));
  return { line: join(full) + '\n', chain, hmac, seedHash: seed };
}

function insertMember(ms: Array<[string, string]>, m: [string, string]): Array<[string, string]> {
  const i = ms.findIndex((x) => compareCodePoints(x[0], m[0]) > 0);
  return i < 0 ? [...ms, m] : [...ms.slice(0, i), m, ...ms.slice(i)];
}
