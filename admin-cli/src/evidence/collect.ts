// One pass over the audit segments: everything the evidence document reports about the
// period [since, until] (unix seconds, inclusive — the log's resolution), plus what came
// before it that the period depends on (the policy in force when it began).
import type { Json } from '../../../hsm-daemon/src/audit/canonical.js';
import type { ParsedEntry } from '../../../hsm-daemon/src/audit/segments.js';
import { KEY_CHANGE_OPERATION } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { policyHash } from '../../../hsm-daemon/src/policy/fingerprint.js';
import { entriesOf } from '../audit/commands.js';
import {
  isoOf,
  rate,
  type AlertRecord,
  type Bucket,
  type Client,
  type ClientRow,
  type EvidenceDocument,
  type GcmThreshold,
  type KeyEvent,
  type MechanismRow,
  type PolicyRecord,
  type Refusal,
  type RefusalKind,
  type SelfTestRun,
} from './document.js';

/** Calls that complete a cryptographic operation (Init and Update only prepare one). */
const COMPLETING = new Set([
  'Encrypt', 'EncryptFinal', 'Decrypt', 'DecryptFinal', 'Digest', 'DigestFinal',
  'Sign', 'SignFinal', 'SignRecover', 'Verify', 'VerifyFinal', 'VerifyRecover',
  'GenerateKey', 'GenerateKeyPair', 'WrapKey', 'UnwrapKey', 'DeriveKey',
]);
const CREATING = new Set(['GenerateKey', 'GenerateKeyPair', 'UnwrapKey', 'DeriveKey', 'CreateObject', 'CopyObject']);
const DESTROYING = new Set(['DestroyObject', 'AdminKeyDelete']);
/** What the policy enforcer answers when it refuses (policy/enforcer.ts). */
const POLICY_RVS = new Set(['CKR_MECHANISM_INVALID', 'CKR_KEY_SIZE_RANGE', 'CKR_DATA_INVALID']);

export interface CollectOptions {
  since: number;
  until: number;
  /** Longest list of individual refusals / key events / alerts kept (the counts stay exact). */
  maxListed?: number;
}

export type AuditSections = Pick<EvidenceDocument, 'self_tests' | 'operations' | 'refusals' | 'authentication' | 'policy_violations' | 'keys' | 'gcm' | 'alerts' | 'timeline'> & {
  policyInForce: PolicyRecord[];
  entriesTotal: number;
  lastSeqRead: number | null;
  entriesInPeriod: number;
  firstSeqInPeriod: number | null;
  lastSeqInPeriod: number | null;
  checkpointsInPeriod: number;
  unparseable: number;
};

const resultOf = (e: ParsedEntry): string => {
  const r = e.result as Record<string, unknown> | undefined;
  if (r && typeof r === 'object' && 'Failure' in r) return String(r.Failure);
  return 'CKR_OK';
};
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
const clientOf = (e: ParsedEntry): Client => ({ pid: int(e.pid), uid: int(e.uid), exe: str(e.exe) });
const clientKey = (c: Client) => `${c.pid}\u0000${c.uid}\u0000${c.exe}`;

/** A call made by a client (PKCS#11 or the admin socket), as opposed to a daemon event. */
const isClientCall = (e: ParsedEntry): boolean => e.details === undefined || e.details?.via === 'admin-socket';

/** A bucket width (seconds) giving at most 60 buckets over the span. */
export function bucketWidth(span: number): number {
  for (const w of [1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400]) if (Math.ceil((span + 1) / w) <= 60) return w;
  return Math.ceil((span + 1) / 60);
}

function policyRecordOf(e: ParsedEntry): PolicyRecord | null {
  const d = e.details ?? {};
  const settings = d.settings;
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return null;
  const s = settings as Record<string, Json>;
  const logged = str(d.policy_hash) ?? '';
  return { source: 'audit', seq: e.seq, timestamp: isoOf(e.timestamp), reason: str(d.reason), settings: s, policy_hash: logged, table_hash: str(d.table_hash), hash_ok: policyHash(s) === logged };
}

export async function collectAudit(files: string[], o: CollectOptions): Promise<AuditSections> {
  const { since, until } = o;
  const maxListed = o.maxListed ?? 1000;
  const inPeriod = (e: ParsedEntry) => typeof e.timestamp === 'number' && e.timestamp >= since && e.timestamp <= until;

  let entriesTotal = 0;
  let unparseable = 0;
  let lastSeqRead: number | null = null;
  let entriesInPeriod = 0;
  let firstSeqInPeriod: number | null = null;
  let lastSeqInPeriod: number | null = null;
  let checkpointsInPeriod = 0;

  let policyBefore: PolicyRecord | null = null;
  const policyDuring: PolicyRecord[] = [];

  const runs: SelfTestRun[] = [];
  const errorStates: EvidenceDocument['self_tests']['error_states'] = [];
  const mechs = new Map<string, MechanismRow>();
  const clients = new Map<string, ClientRow>();
  const ops = { total: 0, approved: 0, non_approved: 0, unknown: 0, failed: 0 };
  const refusals: Refusal[] = [];
  const refusalCounts: Record<RefusalKind, number> = { policy: 0, lockout: 0, gcm_limit: 0 };
  const auth: EvidenceDocument['authentication'] = { failed_logins: 0, lockouts: [], unlocks: 0 };
  const violations = new Map<string, { algorithm: string; refused: number; warned: number }>();
  let violationsTotal = 0;
  let violationsRefused = 0;
  /** Refused PolicyViolation events waiting for the call entry that carries the client. */
  const pendingViolations = new Map<string, string[]>();
  const keyEvents: KeyEvent[] = [];
  const keyCounts = { created: 0, destroyed: 0, rotated: 0 };
  let checkpointKey: string | null = null;
  const gcm = { encryptions: 0, limit_refusals: 0, thresholds: [] as GcmThreshold[], peaks: new Map<string, { key: string; used: number; limit: number; percent: number }>() };
  const alerts: AlertRecord[] = [];
  const alertKinds = new Map<string, number>();
  let alertsTotal = 0;

  const width = bucketWidth(until - since);
  const nBuckets = Math.max(1, Math.ceil((until - since + 1) / width));
  const buckets: Bucket[] = Array.from({ length: nBuckets }, (_, i) => ({
    start: isoOf(since + i * width),
    end: isoOf(Math.min(until + 1, since + (i + 1) * width)),
    operations: 0,
    approved: 0,
    non_approved: 0,
    refusals: 0,
    approval_rate: null,
  }));
  const bucketOf = (e: ParsedEntry) => buckets[Math.min(nBuckets - 1, Math.floor((e.timestamp - since) / width))]!;

  const clientRow = (e: ParsedEntry): ClientRow => {
    const c = clientOf(e);
    const k = clientKey(c);
    let row = clients.get(k);
    if (!row) clients.set(k, (row = { ...c, calls: 0, operations: 0, approved: 0, non_approved: 0, refused: 0, failed_logins: 0 }));
    return row;
  };
  const refuse = (e: ParsedEntry, kind: RefusalKind, reason: string | null) => {
    refusalCounts[kind]++;
    clientRow(e).refused++;
    bucketOf(e).refusals++;
    if (refusals.length < maxListed)
      refusals.push({ seq: e.seq, timestamp: isoOf(e.timestamp), kind, operation: e.operation, mechanism: str(e.mechanism), result: resultOf(e), reason, ...clientOf(e) });
  };
  const keyEvent = (e: ParsedEntry, action: KeyEvent['action'], detail: string | null) => {
    keyCounts[action]++;
    if (keyEvents.length < maxListed)
      keyEvents.push({ seq: e.seq, timestamp: isoOf(e.timestamp), action, operation: e.operation, mechanism: str(e.mechanism), key_handle: int(e.key_id), detail, ...clientOf(e) });
  };

  for await (const { entry: e } of entriesOf(files)) {
    if (!e) {
      unparseable++;
      continue;
    }
    entriesTotal++;
    lastSeqRead = e.seq;
    const d = e.details ?? {};
    // The audit signing key in use: a CheckpointKeyChange entry (a backup restore hands over
    // to a new key), or a daemon starting with another key than the last one. Checkpoint
    // entries are not looked at: the one closing a key change is still signed by the old key.
    const cpKey = e.operation === 'Startup' ? str(d.checkpoint_key_id) : e.operation === KEY_CHANGE_OPERATION ? str(d.new_key_id) : null;
    const rotatedFrom = cpKey && checkpointKey && cpKey !== checkpointKey ? checkpointKey : null;
    if (cpKey) checkpointKey = cpKey;

    if (!inPeriod(e)) {
      if (e.timestamp < since && e.operation === 'PolicyInForce') policyBefore = policyRecordOf(e) ?? policyBefore;
      continue;
    }
    entriesInPeriod++;
    firstSeqInPeriod ??= e.seq;
    lastSeqInPeriod = e.seq;
    const rv = resultOf(e);
    const ok = rv === 'CKR_OK';
    const mech = str(e.mechanism);

    if (rotatedFrom) keyEvent(e, 'rotated', `audit signing key ${rotatedFrom.slice(0, 16)}… → ${cpKey!.slice(0, 16)}…`);
    else if (/KeyRotat|RotateKey|Rekey/i.test(e.operation) && ok) keyEvent(e, 'rotated', null);

    if (isClientCall(e)) {
      const row = clientRow(e);
      row.calls++;
      if (mech) {
        let m = mechs.get(mech);
        if (!m) mechs.set(mech, (m = { mechanism: mech, operations: 0, approved: 0, non_approved: 0, unknown: 0, failed: 0, calls: 0 }));
        m.calls++;
        if (COMPLETING.has(e.operation)) {
          if (ok) {
            const b = bucketOf(e);
            m.operations++;
            ops.total++;
            row.operations++;
            b.operations++;
            if (e.fips_approved === true) {
              m.approved++;
              ops.approved++;
              row.approved++;
              b.approved++;
            } else if (e.fips_approved === false) {
              m.non_approved++;
              ops.non_approved++;
              row.non_approved++;
              b.non_approved++;
            } else {
              m.unknown++;
              ops.unknown++;
            }
            if (mech === 'CKM_AES_GCM' && (e.operation === 'Encrypt' || e.operation === 'EncryptFinal')) gcm.encryptions++;
          } else {
            m.failed++;
            ops.failed++;
          }
        }
      }
      if (!ok) {
        const queue = mech ? pendingViolations.get(mech) : undefined;
        if (POLICY_RVS.has(rv) && queue && queue.length > 0) refuse(e, 'policy', queue.shift()!);
        else if (rv === 'CKR_PIN_LOCKED') refuse(e, 'lockout', 'PIN locked after repeated wrong PINs');
        else if (rv === 'CKR_KEY_FUNCTION_NOT_PERMITTED' && mech === 'CKM_AES_GCM') {
          gcm.limit_refusals++;
          refuse(e, 'gcm_limit', 'AES-GCM invocation limit of the key reached');
        }
        if (rv === 'CKR_PIN_INCORRECT') {
          auth.failed_logins++;
          row.failed_logins++;
        }
      }
      if (ok && (CREATING.has(e.operation) || /^Admin\w*Import/.test(e.operation))) keyEvent(e, 'created', e.operation === 'GenerateKeyPair' ? 'key pair' : null);
      if (ok && DESTROYING.has(e.operation)) keyEvent(e, 'destroyed', e.operation === 'AdminKeyDelete' ? str(d.class) : null);
      if (e.operation === 'AdminSelfTest' && ok)
        runs.push({ seq: e.seq, timestamp: isoOf(e.timestamp), trigger: 'admin', passed: d.passed === true, known_answer_tests: null, failed: Array.isArray(d.failed) ? d.failed.map(String) : [], integrity: null, drbg: null, duration_ms: null });
      continue;
    }

    switch (e.operation) {
      case 'SelfTest':
        runs.push({
          seq: e.seq,
          timestamp: isoOf(e.timestamp),
          trigger: 'startup',
          passed: d.passed === true,
          known_answer_tests: int(d.known_answer_tests),
          failed: Array.isArray(d.failed) ? d.failed.map(String) : [],
          integrity: typeof d.integrity === 'boolean' ? d.integrity : null,
          drbg: typeof d.drbg === 'boolean' ? d.drbg : null,
          duration_ms: int(d.duration_ms),
        });
        break;
      case 'ErrorState':
        errorStates.push({ seq: e.seq, timestamp: isoOf(e.timestamp), kind: String(d.kind ?? ''), reason: String(d.reason ?? '') });
        break;
      case 'PolicyInForce': {
        const p = policyRecordOf(e);
        if (p) policyDuring.push(p);
        break;
      }
      case 'PolicyViolation': {
        violationsTotal++;
        const alg = String(d.algorithm ?? d.mechanism ?? '?');
        const v = violations.get(alg) ?? violations.set(alg, { algorithm: alg, refused: 0, warned: 0 }).get(alg)!;
        if (d.refused === true) {
          violationsRefused++;
          v.refused++;
          const m = str(d.mechanism);
          if (m) (pendingViolations.get(m) ?? pendingViolations.set(m, []).get(m)!).push(`${alg}: ${String(d.reason ?? 'not allowed')}`);
        } else v.warned++;
        break;
      }
      case 'Lockout':
        auth.lockouts.push({ seq: e.seq, timestamp: isoOf(e.timestamp), slot: int(d.slot), role: str(d.role), transition: d.transition === true });
        break;
      case 'Unlock':
        auth.unlocks++;
        break;
      case 'NonceThreshold':
      case 'NonceExhausted': {
        const key = String(d.key ?? '?');
        const used = int(d.used) ?? 0;
        const limit = int(d.limit) ?? 0;
        const exhausted = e.operation === 'NonceExhausted';
        const percent = exhausted ? 100 : (int(d.percent) ?? 0);
        gcm.thresholds.push({ seq: e.seq, timestamp: isoOf(e.timestamp), key, percent, used, limit, exhausted });
        const peak = gcm.peaks.get(key);
        if (!peak || used > peak.used) gcm.peaks.set(key, { key, used, limit, percent: limit > 0 ? Math.floor((used * 100) / limit) : 0 });
        break;
      }
      case 'AlertRaised': {
        alertsTotal++;
        const kind = String(d.kind ?? '?');
        alertKinds.set(kind, (alertKinds.get(kind) ?? 0) + 1);
        if (alerts.length < maxListed) alerts.push({ seq: e.seq, timestamp: isoOf(e.timestamp), kind, severity: String(d.severity ?? ''), summary: String(d.summary ?? '') });
        break;
      }
      case 'Checkpoint':
        checkpointsInPeriod++;
        break;
    }
  }

  for (const b of buckets) b.approval_rate = rate(b.approved, b.approved + b.non_approved);
  const refusalsTotal = refusalCounts.policy + refusalCounts.lockout + refusalCounts.gcm_limit;
  const byCountDesc = <T extends { mechanism?: string; exe?: string | null }>(a: T & { operations?: number; calls?: number }, b: T & { operations?: number; calls?: number }) =>
    (b.calls ?? 0) - (a.calls ?? 0) || String(a.mechanism ?? a.exe ?? '').localeCompare(String(b.mechanism ?? b.exe ?? ''));

  return {
    policyInForce: [...(policyBefore ? [policyBefore] : []), ...policyDuring],
    entriesTotal,
    lastSeqRead,
    entriesInPeriod,
    firstSeqInPeriod,
    lastSeqInPeriod,
    checkpointsInPeriod,
    unparseable,
    self_tests: { runs, all_passed: runs.every((r) => r.passed) && errorStates.length === 0, error_states: errorStates },
    operations: {
      ...ops,
      by_mechanism: [...mechs.values()].sort(byCountDesc),
      by_client: [...clients.values()].sort((a, b) => b.calls - a.calls || (a.pid ?? 0) - (b.pid ?? 0)),
    },
    refusals: { total: refusalsTotal, by_kind: refusalCounts, entries: refusals, omitted: refusalsTotal - refusals.length },
    authentication: auth,
    policy_violations: {
      total: violationsTotal,
      refused: violationsRefused,
      warned: violationsTotal - violationsRefused,
      by_algorithm: [...violations.values()].sort((a, b) => b.refused + b.warned - (a.refused + a.warned) || a.algorithm.localeCompare(b.algorithm)),
    },
    keys: { ...keyCounts, events: keyEvents, omitted: keyCounts.created + keyCounts.destroyed + keyCounts.rotated - keyEvents.length },
    gcm: { encryptions: gcm.encryptions, limit_refusals: gcm.limit_refusals, thresholds: gcm.thresholds, peaks: [...gcm.peaks.values()].sort((a, b) => b.used - a.used || a.key.localeCompare(b.key)) },
    alerts: {
      total: alertsTotal,
      by_kind: [...alertKinds].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind)),
      entries: alerts,
      omitted: alertsTotal - alerts.length,
    },
    timeline: { bucket_seconds: width, buckets },
  };
}
