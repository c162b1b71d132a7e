// One pass over the audit segments: everything the evidence document reports about the
// period [since, until] (unix seconds, inclusive — the log's resolution), plus what came
// before it that the period depends on (the policy in force when it began).
import type { Json } from '../../../hsm-daemon/src/audit/canonical.js';
import type { ParsedEntry } from '../../../hsm-daemon/src/audit/segments.js';
import { KEY_CHANGE_OPERATION } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { CALL_DETAILS_VERSION, isPkcs11CallEntry } from '../../../hsm-daemon/src/audit/entry.js';
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
  type ObjectClassCounts,
  type PolicyRecord,
  PID_LIST_MAX,
  REFUSAL_KINDS,
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
const CREATING = new Set(['GenerateKey', 'GenerateKeyPair', 'UnwrapKey', 'DeriveKey', 'CreateObject', 'CopyObject', 'AdminKeyImport', 'AdminTokenRestore']);
const DESTROYING = new Set(['DestroyObject', 'AdminKeyDelete']);
/** What the policy enforcer answers when it refuses (policy/enforcer.ts); only for entries of
 * older versions, which did not record refused_by. */
const POLICY_RVS = new Set(['CKR_MECHANISM_INVALID', 'CKR_KEY_SIZE_RANGE', 'CKR_DATA_INVALID']);

const CLASS_BUCKET: Record<string, keyof ObjectClassCounts> = {
  CKO_SECRET_KEY: 'secret_keys',
  CKO_PRIVATE_KEY: 'private_keys',
  CKO_PUBLIC_KEY: 'public_keys',
  CKO_CERTIFICATE: 'certificates',
};
const noObjects = (): ObjectClassCounts => ({ key_pairs: 0, secret_keys: 0, private_keys: 0, public_keys: 0, certificates: 0, other: 0, unknown: 0 });
const bucketOfClass = (cls: string | null): keyof ObjectClassCounts => (cls === null ? 'unknown' : (CLASS_BUCKET[cls] ?? 'other'));

/** The objects a successful creating or destroying entry stands for, by class (null: not
 * recorded). GenerateKey and DeriveKey always make a secret key, GenerateKeyPair a public and
 * a private key; the others say so in their details since this version. */
export function objectsOf(e: Pick<ParsedEntry, 'operation' | 'details'>): { classes: Array<string | null>; pair: boolean } {
  const d = e.details ?? {};
  const cls = typeof d.class === 'string' ? d.class : null;
  switch (e.operation) {
    case 'GenerateKeyPair':
      return { classes: ['CKO_PUBLIC_KEY', 'CKO_PRIVATE_KEY'], pair: true };
    case 'GenerateKey':
    case 'DeriveKey':
      return { classes: [cls ?? 'CKO_SECRET_KEY'], pair: false };
    case 'AdminKeyImport': {
      if (Array.isArray(d.objects)) return { classes: d.objects.map((o) => (o && typeof o === 'object' && typeof (o as Record<string, unknown>).class === 'string' ? ((o as Record<string, unknown>).class as string) : null)), pair: false };
      const n = int(d.requested) ?? 1;
      return { classes: Array<null>(n).fill(null), pair: false };
    }
    case 'AdminTokenRestore':
      // The restore names the object count only: private objects' classes are sealed in the backup.
      return { classes: Array<null>(Math.max(0, int(d.objects) ?? 0)).fill(null), pair: false };
    default:
      return { classes: [cls], pair: false };
  }
}

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
/** One client per uid + executable, as the anomaly detector groups them (anomaly/identity.ts). */
const clientKey = (c: Client) => `${c.uid}\u0000${c.exe}`;

/** A call made by a client (PKCS#11 or the admin socket), as opposed to a daemon event. Call
 * entries may carry details since this version, so this goes by the operation's name. */
const isClientCall = (e: ParsedEntry): boolean => isPkcs11CallEntry(e) || e.details?.via === 'admin-socket';

/** How an older version's refused call entry (no details.refused_by) is classified: from its
 * CK_RV, the refused PolicyViolation entry of the same mechanism before it, and the mechanism.
 * Null when it is none of the kinds. Entries of this version are never inferred. */
function inferRefusal(rv: string, mech: string | null, policyQueued: boolean): RefusalKind | null {
  if (POLICY_RVS.has(rv) && policyQueued) return 'policy';
  if (rv === 'CKR_PIN_LOCKED') return 'lockout';
  if (rv === 'CKR_KEY_FUNCTION_NOT_PERMITTED' && mech === 'CKM_AES_GCM') return 'gcm_limit';
  return null;
}

const REFUSAL_REASON: Record<RefusalKind, string> = {
  policy: 'refused by the FIPS policy',
  lockout: 'PIN locked after repeated wrong PINs',
  gcm_limit: 'AES-GCM invocation limit of the key reached',
  key_dates: 'outside the key\'s CKA_START_DATE / CKA_END_DATE',
};

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
  const refusalCounts: Record<RefusalKind, number> = { policy: 0, lockout: 0, gcm_limit: 0, key_dates: 0 };
  /** The daemon writing the entries records refused_by (its Startup said so, or an entry
   * carried call details): a refused entry without it is no refusal by a control. */
  let recordsRefusals = false;
  const auth: EvidenceDocument['authentication'] = { failed_logins: 0, lockouts: [], unlocks: 0 };
  const violations = new Map<string, { algorithm: string; refused: number; warned: number }>();
  let violationsTotal = 0;
  let violationsRefused = 0;
  /** Refused PolicyViolation events waiting for the call entry that carries the client. */
  const pendingViolations = new Map<string, string[]>();
  const keyEvents: KeyEvent[] = [];
  let keyEventsTotal = 0;
  const keyCounts = { created: 0, destroyed: 0, rotated: 0 };
  const createdByClass = noObjects();
  const destroyedByClass = noObjects();
  const pidsOf = new Map<ClientRow, Set<number>>();
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
    if (!row) {
      clients.set(k, (row = { uid: c.uid, exe: c.exe, pids: 0, pid_list: [], calls: 0, operations: 0, approved: 0, non_approved: 0, refused: 0, failed_logins: 0 }));
      pidsOf.set(row, new Set());
    }
    if (c.pid !== null) pidsOf.get(row)!.add(c.pid);
    return row;
  };
  const refuse = (e: ParsedEntry, kind: RefusalKind, reason: string | null, classified: Refusal['classified']) => {
    refusalCounts[kind]++;
    if (kind === 'gcm_limit') gcm.limit_refusals++;
    clientRow(e).refused++;
    bucketOf(e).refusals++;
    if (refusals.length < maxListed)
      refusals.push({ seq: e.seq, timestamp: isoOf(e.timestamp), kind, classified, operation: e.operation, mechanism: str(e.mechanism), result: resultOf(e), reason, ...clientOf(e) });
  };
  const keyEvent = (e: ParsedEntry, action: KeyEvent['action'], detail: string | null, classes: Array<string | null> = [], pair = false) => {
    const objects = action === 'rotated' ? 1 : classes.length;
    keyCounts[action] += objects;
    keyEventsTotal++;
    if (action !== 'rotated') {
      const by = action === 'created' ? createdByClass : destroyedByClass;
      for (const c of classes) by[bucketOfClass(c)]++;
      if (pair) by.key_pairs++;
    }
    if (keyEvents.length < maxListed)
      keyEvents.push({ seq: e.seq, timestamp: isoOf(e.timestamp), action, operation: e.operation, mechanism: str(e.mechanism), key_handle: int(e.key_id), objects, detail, ...clientOf(e) });
  };
  const gcmPeak = (key: string, used: number, limit: number) => {
    const peak = gcm.peaks.get(key);
    if (!peak || used > peak.used) gcm.peaks.set(key, { key, used, limit, percent: limit > 0 ? Math.floor((used * 100) / limit) : 0 });
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
    if (e.operation === 'Startup') recordsRefusals = (int(d.call_details) ?? 0) >= CALL_DETAILS_VERSION;
    else if (e.details && isPkcs11CallEntry(e)) recordsRefusals = true;
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
      // The key's GCM invocation count this call reached (or was refused at), exact.
      const gKey = str(d.gcm_key);
      const gUsed = int(d.gcm_used);
      if (gKey && gUsed !== null) gcmPeak(gKey, gUsed, int(d.gcm_limit) ?? 0);
      if (!ok) {
        const queue = mech ? pendingViolations.get(mech) : undefined;
        const recorded = str(d.refused_by) as RefusalKind | null;
        if (recorded && REFUSAL_KINDS.includes(recorded)) {
          const queued = recorded === 'policy' && queue && queue.length > 0 ? queue.shift()! : null;
          refuse(e, recorded, recorded === 'policy' ? (str(d.policy_violation) ?? queued ?? REFUSAL_REASON.policy) : REFUSAL_REASON[recorded], 'recorded');
        } else if (!recordsRefusals) {
          // Written by a version before refused_by existed: classified from the CK_RV.
          const kind = inferRefusal(rv, mech, !!queue && queue.length > 0);
          if (kind) refuse(e, kind, kind === 'policy' ? queue!.shift()! : REFUSAL_REASON[kind], 'inferred');
        }
        if (rv === 'CKR_PIN_INCORRECT') {
          auth.failed_logins++;
          row.failed_logins++;
        }
      }
      if (ok && (CREATING.has(e.operation) || DESTROYING.has(e.operation))) {
        const { classes, pair } = objectsOf(e);
        const detail = pair ? `key pair${str(d.key_type) ? ` ${str(d.key_type)}` : ''}` : classes.length === 1 && classes[0] ? [classes[0], str(d.key_type)].filter(Boolean).join(' ') : null;
        keyEvent(e, CREATING.has(e.operation) ? 'created' : 'destroyed', detail, classes, pair);
      }
      // Objects that went with a token: re-initialised (C_InitToken, admin token init) or
      // replaced by a restore. Their classes are not recorded (private ones are sealed).
      const gone = ok ? (int(d.destroyed_objects) ?? int(d.replaced_objects) ?? 0) : 0;
      if (gone > 0) keyEvent(e, 'destroyed', `${gone} object(s) ${e.operation === 'AdminTokenRestore' ? 'replaced by the restore' : 'destroyed by token re-initialisation'}`, Array<null>(gone).fill(null), false);
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
        gcmPeak(key, used, limit);
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
  const refusalsTotal = REFUSAL_KINDS.reduce((n, k) => n + refusalCounts[k], 0);
  for (const [row, pids] of pidsOf) {
    const sorted = [...pids].sort((a, b) => a - b);
    row.pids = sorted.length;
    row.pid_list = sorted.slice(0, PID_LIST_MAX);
  }
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
      by_client: [...clients.values()].sort((a, b) => b.calls - a.calls || (a.uid ?? -1) - (b.uid ?? -1) || String(a.exe).localeCompare(String(b.exe))),
    },
    refusals: { total: refusalsTotal, by_kind: refusalCounts, entries: refusals, omitted: refusalsTotal - refusals.length },
    authentication: auth,
    policy_violations: {
      total: violationsTotal,
      refused: violationsRefused,
      warned: violationsTotal - violationsRefused,
      by_algorithm: [...violations.values()].sort((a, b) => b.refused + b.warned - (a.refused + a.warned) || a.algorithm.localeCompare(b.algorithm)),
    },
    keys: { ...keyCounts, created_by_class: createdByClass, destroyed_by_class: destroyedByClass, events: keyEvents, omitted: Math.max(0, keyEventsTotal - keyEvents.length) },
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
