// The compliance evidence document (docs/evidence.md): its shape, and the canonical form
// its signature covers. Every number is an integer (rates are decimal strings) so the
// document has exactly one canonical serialization (audit/canonical.ts), the same bytes
// the daemon's audit chain uses.
import { createHash } from 'node:crypto';
import { canonicalJson, type Json } from '../../../hsm-daemon/src/audit/canonical.js';
import { EVIDENCE_FORMAT } from '../../../hsm-daemon/src/audit/checkpoint.js';
import type { EvidenceSignature } from '../../../hsm-daemon/src/admin/evidence-sign.js';

export { EVIDENCE_FORMAT, evidenceStatementBytes } from '../../../hsm-daemon/src/audit/checkpoint.js';

/** Who did something, as the kernel reported it to the daemon (SO_PEERCRED + /proc/pid/exe). */
export interface Client {
  pid: number | null;
  uid: number | null;
  exe: string | null;
}

export interface PolicyRecord {
  /** 'audit': a PolicyInForce entry of the log; 'configuration': the config file read now. */
  source: 'audit' | 'configuration';
  seq: number | null;
  timestamp: string | null;
  reason: string | null;
  /** The [algorithms] settings. */
  settings: Record<string, Json>;
  /** SHA-256 of canonicalJson(settings). */
  policy_hash: string;
  /** SHA-256 of canonicalJson(policy table rows) of the build that logged it. */
  table_hash: string | null;
  /** Recomputed from `settings` by the CLI: false means the logged hash does not match. */
  hash_ok: boolean;
}

export interface SelfTestRun {
  seq: number;
  timestamp: string;
  /** 'startup' (power-on, the SelfTest entry after Startup) or 'admin' (craton-hsm-admin selftest). */
  trigger: 'startup' | 'admin';
  passed: boolean;
  known_answer_tests: number | null;
  failed: string[];
  integrity: boolean | null;
  drbg: boolean | null;
  duration_ms: number | null;
}

export interface MechanismRow {
  mechanism: string;
  /** Completed operations (one-shot or Final, key generation, wrap/unwrap/derive) that succeeded. */
  operations: number;
  approved: number;
  non_approved: number;
  /** fips_approved was null (no verdict recorded). */
  unknown: number;
  /** Completed operations that returned an error (refusals at C_*Init are under refusals). */
  failed: number;
  /** Every audited call naming this mechanism (C_*Init, Update, …). */
  calls: number;
}

/** One client = one executable run by one uid (the grouping of anomaly/identity.ts): a
 * service restarted many times is one row, not one per pid. */
export interface ClientRow {
  uid: number | null;
  exe: string | null;
  /** Distinct pids seen for this uid + exe in the period. */
  pids: number;
  /** Those pids, ascending, at most PID_LIST_MAX of them. */
  pid_list: number[];
  calls: number;
  operations: number;
  approved: number;
  non_approved: number;
  refused: number;
  failed_logins: number;
}

export type RefusalKind = 'policy' | 'lockout' | 'gcm_limit' | 'key_dates';
export const REFUSAL_KINDS: readonly RefusalKind[] = ['policy', 'lockout', 'gcm_limit', 'key_dates'];
/** Longest pid list of a ClientRow. */
export const PID_LIST_MAX = 32;

export interface Refusal extends Client {
  seq: number;
  timestamp: string;
  kind: RefusalKind;
  /** 'recorded': the entry's details.refused_by (this version on); 'inferred': an entry
   * written by an older version, classified from its CK_RV (collect.ts). */
  classified: 'recorded' | 'inferred';
  operation: string;
  mechanism: string | null;
  result: string;
  reason: string | null;
}

export interface KeyEvent extends Client {
  seq: number;
  timestamp: string;
  action: 'created' | 'destroyed' | 'rotated';
  operation: string;
  mechanism: string | null;
  key_handle: number | null;
  /** Objects this entry created or destroyed (2 for a key pair, n for an import or restore). */
  objects: number;
  detail: string | null;
}

/** Objects by CKO_ class. `key_pairs` counts C_GenerateKeyPair calls, whose two halves are
 * also in public_keys and private_keys; the other members add up to the total. `unknown`:
 * entries that do not name the class (written by older versions, or a restore). */
export interface ObjectClassCounts {
  key_pairs: number;
  secret_keys: number;
  private_keys: number;
  public_keys: number;
  certificates: number;
  other: number;
  unknown: number;
}

export interface GcmThreshold {
  seq: number;
  timestamp: string;
  key: string;
  percent: number;
  used: number;
  limit: number;
  exhausted: boolean;
}

export interface AlertRecord {
  seq: number;
  timestamp: string;
  kind: string;
  severity: string;
  summary: string;
}

export interface Bucket {
  start: string;
  end: string;
  operations: number;
  approved: number;
  non_approved: number;
  refusals: number;
  /** approved / (approved + non_approved), percent with two decimals; null without operations. */
  approval_rate: string | null;
}

export interface TraceProcess {
  pid: number;
  process: string;
  binary: string | null;
  operations: number;
  approved: number;
  non_approved: number;
  blocked: number;
  warned: number;
  approval_rate: string | null;
}

export interface TraceSection {
  files: Array<{ path: string; sha256: string; lines: number; unparseable: number }>;
  total_operations: number;
  approved_operations: number;
  non_approved_operations: number;
  blocked_operations: number;
  warned_operations: number;
  approval_rate: string | null;
  blocked_algorithms: Array<{ algorithm: string; count: number }>;
  warned_algorithms: Array<{ algorithm: string; count: number }>;
  processes: TraceProcess[];
}

export interface ChainVerification {
  ok: boolean;
  /** Segment files verified, oldest first. */
  segments: string[];
  entries_total: number;
  first_seq: number | null;
  last_seq: number | null;
  last_chain: string | null;
  entries_in_period: number;
  first_seq_in_period: number | null;
  last_seq_in_period: number | null;
  checkpoints_verified: number;
  /** Checkpoint entries inside the period (signed statements over the chain head). */
  checkpoints_in_period: number;
  layers: string[];
  hmac_key: string | null;
  public_key: string | null;
  head_file: string | null;
  /** Every entry the figures below were computed from lies in the verified range. */
  covers_period: boolean;
  warnings: string[];
  failure: { file: string; line: number; seq: number | null; what: string } | null;
}

/** The signature block the daemon returns (admin evidence.sign) and the document embeds. */
export type SignatureBlock = EvidenceSignature;

export interface EvidenceDocument {
  format: typeof EVIDENCE_FORMAT;
  generated_at: string;
  generator: { tool: string; version: string; host: string };
  period: { since: string; until: string; since_unix: number; until_unix: number };
  sources: { log_path: string; data_dir: string };
  summary: {
    operations: number;
    approved: number;
    non_approved: number;
    approval_rate: string | null;
    refusals: number;
    failed_logins: number;
    keys_created: number;
    keys_destroyed: number;
    keys_rotated: number;
    alerts: number;
    self_tests: number;
    self_tests_failed: number;
    chain_ok: boolean;
  };
  policy: {
    /** The policy in force when the period began, then each change during it. */
    in_force: PolicyRecord[];
    /** The configuration file as read when the document was made. */
    configured_now: PolicyRecord;
    /** The newest policy of the period equals the configured one. */
    matches_configuration: boolean;
  };
  self_tests: { runs: SelfTestRun[]; all_passed: boolean; error_states: Array<{ seq: number; timestamp: string; kind: string; reason: string }> };
  audit_chain: ChainVerification;
  operations: { total: number; approved: number; non_approved: number; unknown: number; failed: number; by_mechanism: MechanismRow[]; by_client: ClientRow[] };
  refusals: { total: number; by_kind: Record<RefusalKind, number>; entries: Refusal[]; omitted: number };
  authentication: {
    failed_logins: number;
    lockouts: Array<{ seq: number; timestamp: string; slot: number | null; role: string | null; transition: boolean }>;
    unlocks: number;
  };
  policy_violations: { total: number; refused: number; warned: number; by_algorithm: Array<{ algorithm: string; refused: number; warned: number }> };
  /** created / destroyed count objects (a key pair is 2), by_class splits them. */
  keys: { created: number; destroyed: number; rotated: number; created_by_class: ObjectClassCounts; destroyed_by_class: ObjectClassCounts; events: KeyEvent[]; omitted: number };
  gcm: {
    encryptions: number;
    limit_refusals: number;
    thresholds: GcmThreshold[];
    /** Highest invocation count per key in the period: from the GCM call entries' gcm_used
     * (exact), and from threshold entries for logs written by older versions. */
    peaks: Array<{ key: string; used: number; limit: number; percent: number }>;
  };
  alerts: { total: number; by_kind: Array<{ kind: string; count: number }>; entries: AlertRecord[]; omitted: number };
  timeline: { bucket_seconds: number; buckets: Bucket[] };
  trace: TraceSection | null;
  signature?: SignatureBlock | null;
}

/** approved / total as a percent string with two decimals (integers only in the document). */
export function rate(approved: number, total: number): string | null {
  if (total <= 0) return null;
  const bp = Math.round((approved * 10000) / total);
  return `${Math.floor(bp / 100)}.${String(bp % 100).padStart(2, '0')}`;
}

export const isoOf = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z');

/** The bytes the signature covers: the document without its signature block. */
export function canonicalBody(doc: EvidenceDocument | Record<string, unknown>): string {
  const { signature: _omit, ...body } = doc as Record<string, unknown>;
  return canonicalJson(body as Json);
}

export function digestOf(doc: EvidenceDocument | Record<string, unknown>): string {
  return createHash('sha256').update(canonicalBody(doc)).digest('hex');
}
