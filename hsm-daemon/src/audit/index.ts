// The audit log attached to the dispatcher: one entry per logged C_* call (after the
// handler, before the reply: the reply waits for the entry's fsync) and per daemon
// event. See docs/audit.md for the format, the levels and what each integrity layer detects.
//
// main.ts wiring:
//   const audit = await attachAudit(dispatcher, config, log);   // after new Dispatcher(core)
//   await audit.close();                                         // in stop(), after server.close()
import { realpathSync } from 'node:fs';
import { CKR } from '../pkcs11/index.js';
import { className, keyTypeName, mechanismName, rvName } from '../pkcs11/names.js';
import { CkError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { CallRecord, Dispatcher } from '../dispatch/dispatcher.js';
import type { Json } from './canonical.js';
import { CALL_CLASS, CALL_DETAILS_VERSION, EVENT_CLASS, levelWrites, type AuditLevel } from './entry.js';
import { loadOrCreateSigner, type CheckpointSigner } from './checkpoint.js';
import { resolvePendingCheckpointKey } from './key-change.js';
import { AuditWriter, type Draft, type LogFn, type OpenReport } from './writer.js';

export { AuditWriter, AuditUnavailableError } from './writer.js';
export type { LogFn } from './writer.js';

/** The CK_RV of calls refused while the audit log cannot be written (fail_closed):
 * CKR_DEVICE_ERROR — the device cannot currently do its job, and may recover (disk
 * space freed, permissions fixed) without a restart, unlike CKR_GENERAL_ERROR. */
export const AUDIT_FAILURE_RV = CKR.DEVICE_ERROR;

/** Calls still allowed while the log is down: they only release state. */
const ALWAYS_ALLOWED = new Set(['C_Finalize', 'C_CloseSession', 'C_CloseAllSessions', 'C_Logout']);

/** A change in whether the audit log is being written (events.ts pages on it). */
export interface AuditHealth {
  healthy: boolean;
  /** Why the log is unavailable (null when healthy again). */
  reason: string | null;
  logPath: string;
  failClosed: boolean;
}

export interface AuditLog {
  /** A daemon event (Startup, SelfTest, ErrorState, PolicyViolation, Lockout, ...).
   * Never rejects: a failure is logged at error level (and fails closed as configured). */
  recordEvent(kind: string, details: Record<string, unknown>): Promise<void>;
  /** Shutdown entry + signed checkpoint, then closes the file. */
  close(): Promise<void>;
  /** Rotation now (SIGUSR1, admin command). */
  rotate(reason?: string): Promise<void>;
  readonly writer: AuditWriter | null;
  /** True while entries are being written. */
  healthy(): boolean;
  /** Called when the log becomes unwritable (open or write failure) and when writing
   * recovers; a listener added while the log is down is called at once. Not called for
   * the clean shutdown. Listeners must not throw (errors are swallowed). */
  onHealthChange(listener: (h: AuditHealth) => void): void;
}

/** JSON-safe copy of event details; byte buffers are never written, only their length. */
export function sanitize(v: unknown, depth = 0): Json {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : String(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `[${v.length} bytes not logged]`;
  if (v instanceof Error) return v.message;
  if (depth > 6) return '[nested too deep]';
  if (Array.isArray(v)) return v.map((x) => sanitize(x, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      out[k] = /pin|secret|password|key_value|plaintext/i.test(k) ? '[redacted]' : sanitize(x, depth + 1);
    }
    return out;
  }
  return String(v);
}

/** The facts about a call that the seed-003 fields have no place for (docs/audit.md, "Call
 * entry details"): all non-secret integers and names. Undefined for most calls, whose
 * entries stay exactly in the seed-003 shape. */
export function callDetails(rec: CallRecord): Record<string, Json> | undefined {
  const n = rec.note;
  const d: Record<string, Json> = {};
  if (rec.rv !== CKR.OK && n.refusal) d.refused_by = n.refusal;
  if (rec.rv !== CKR.OK && n.refusal === 'policy' && n.policyViolation) d.policy_violation = n.policyViolation;
  if (rec.rv === CKR.OK && n.objectClass !== undefined) d.class = className(n.objectClass);
  if (rec.rv === CKR.OK && n.keyType !== undefined) d.key_type = keyTypeName(n.keyType);
  if (n.gcm) Object.assign(d, { gcm_key: n.gcm.key, gcm_used: n.gcm.used, gcm_limit: n.gcm.limit });
  if (rec.rv === CKR.OK && n.destroyedObjects) d.destroyed_objects = n.destroyedObjects;
  return Object.keys(d).length > 0 ? d : undefined;
}

export function draftForCall(rec: CallRecord, now: number): Draft {
  const n = rec.note;
  const details = callDetails(rec);
  return {
    timestamp: now,
    session_handle: n.session ?? 0,
    operation: rec.fn.startsWith('C_') ? rec.fn.slice(2) : rec.fn,
    key_id: n.key ?? n.object ?? null,
    result: rec.rv === CKR.OK ? { Success: null } : { Failure: rvName(rec.rv) },
    pid: rec.app.peer.pid,
    uid: rec.app.peer.uid,
    exe: rec.app.peer.exe,
    mechanism: n.mechanism === undefined ? null : mechanismName(n.mechanism),
    fips_approved: n.approved ?? null,
    ...(details ? { details } : {}),
  };
}

function selfExe(): string | null {
  try {
    return realpathSync('/proc/self/exe');
  } catch {
    return process.execPath ?? null;
  }
}

export async function attachAudit(dispatcher: Dispatcher, config: Config, log: LogFn): Promise<AuditLog> {
  const level = config.audit.log_level as AuditLevel;
  if (level === 'none') {
    log('warn', 'audit log disabled ([audit] log_level = "none")');
    return {
      recordEvent: async () => undefined,
      close: async () => undefined,
      rotate: async () => undefined,
      writer: null,
      healthy: () => false,
      onHealthChange: () => undefined,
    };
  }
  const failClosed = config.audit.fail_closed;
  let signer: CheckpointSigner | null = null;
  try {
    resolvePendingCheckpointKey(config.daemon.data_dir, config.audit.log_path, (m) => log('warn', m));
    signer = loadOrCreateSigner(config.daemon.data_dir, (m) => log('warn', m));
  } catch (e) {
    log('error', `audit checkpoint signing key unusable, checkpoints will be unsigned: ${(e as Error).message}`);
  }
  const writer = new AuditWriter({
    logPath: config.audit.log_path,
    dataDir: config.daemon.data_dir,
    maxSegmentBytes: config.audit.max_segment_bytes,
    checkpointInterval: config.audit.checkpoint_interval_entries,
    signer,
    log,
    actor: { pid: process.pid, uid: process.getuid?.() ?? -1, exe: selfExe() },
  });

  let closing = false;
  let recovering: Promise<void> | null = null;
  let lastAttempt = 0;
  let retryTimer: NodeJS.Timeout | null = null;

  const healthListeners: Array<(h: AuditHealth) => void> = [];
  let reportedHealthy = true; // nothing to report until the first failure
  let downReason: string | null = null;
  const health = (): AuditHealth => ({ healthy: reportedHealthy, reason: reportedHealthy ? null : downReason, logPath: config.audit.log_path, failClosed });
  const reportHealth = (ok: boolean, reason: string | null): void => {
    if (closing || ok === reportedHealthy) return;
    reportedHealthy = ok;
    downReason = ok ? null : (reason ?? 'audit log unavailable');
    for (const l of healthListeners) {
      try {
        l(health());
      } catch {
        // a listener's problem must not stop the audit log
      }
    }
  };
  writer.onFailure = (msg) => reportHealth(false, msg);

  const writeOpenEvents = async (report: OpenReport, why: string): Promise<void> => {
    const pending: Promise<void>[] = [];
    if (report.needSegmentStart)
      pending.push(writer.event('SegmentStart', { reason: 'open', previous_seq: report.lastSeq, previous_chain: writer.chainHead, previous_segment: report.previousSegment }));
    if (report.torn || report.unclean || report.missing || writer.lost > 0) {
      pending.push(
        writer.event('Recovery', {
          reason: why,
          unclean_shutdown: report.unclean,
          torn_bytes: report.torn?.bytes ?? 0,
          quarantine_file: report.torn?.file ?? null,
          missing_seqs: report.missing ? [report.missing[0], report.missing[1]] : null,
          entries_not_recorded: writer.lost,
        }),
      );
    }
    await Promise.all(pending);
    writer.lost = 0;
  };

  const tryOpen = async (why: string): Promise<void> => {
    lastAttempt = Date.now();
    try {
      const report = await writer.open();
      await writeOpenEvents(report, why);
      if (!writer.healthy) throw new Error(writer.lastError ?? 'audit log write failed');
      if (retryTimer) clearInterval(retryTimer);
      retryTimer = null;
      if (why !== 'startup') log('warn', `audit log available again at ${config.audit.log_path}`);
      reportHealth(true, null);
    } catch (e) {
      writer.healthy = false;
      writer.lastError = `audit log unavailable: ${(e as Error).message}`;
      log('error', `${writer.lastError}${failClosed ? '; cryptographic and object calls are refused (fail_closed)' : '; continuing WITHOUT audit (fail_closed = false)'}`);
      reportHealth(false, writer.lastError);
      scheduleRetry();
    }
  };

  const scheduleRetry = () => {
    if (retryTimer || closing) return;
    retryTimer = setInterval(() => kick(), 5000);
    retryTimer.unref();
  };

  const kick = (): void => {
    if (closing || writer.healthy || recovering || Date.now() - lastAttempt < 1000) return;
    recovering = tryOpen('audit log write failure').finally(() => (recovering = null));
  };

  await tryOpen('startup');

  dispatcher.gate((_app, fn) => {
    if (writer.healthy || closing) return;
    kick();
    if (!failClosed || ALWAYS_ALLOWED.has(fn) || !(fn in CALL_CLASS)) return;
    throw new CkError(AUDIT_FAILURE_RV, `audit log unavailable (${writer.lastError ?? 'not open'})`);
  });

  dispatcher.observe(async (rec) => {
    const cls = CALL_CLASS[rec.fn];
    if (!cls || !levelWrites(level, cls)) return;
    try {
      await writer.append(draftForCall(rec, writer.now()));
    } catch (e) {
      if (!writer.lastError) writer.lastError = (e as Error).message;
      scheduleRetry();
      if (failClosed && !ALWAYS_ALLOWED.has(rec.fn)) {
        throw new CkError(AUDIT_FAILURE_RV, `${rec.fn} not recorded in the audit log: ${(e as Error).message}`);
      }
    }
  });

  const recordEvent = async (kind: string, details: Record<string, unknown>): Promise<void> => {
    if (!levelWrites(level, EVENT_CLASS[kind] ?? 'event')) return;
    try {
      await writer.event(kind, sanitize(details) as Record<string, Json>);
    } catch (e) {
      log('error', `audit event ${kind} not recorded: ${(e as Error).message}`);
      scheduleRetry();
    }
  };

  const rotate = async (reason = 'admin'): Promise<void> => {
    try {
      await writer.segment('rotate', reason);
    } catch (e) {
      log('error', `audit log rotation failed: ${(e as Error).message}`);
    }
  };
  const onUsr1 = () => void rotate('SIGUSR1');
  const onHup = () =>
    void writer.segment('reopen', 'SIGHUP').catch((e: Error) => log('error', `audit log reopen failed: ${e.message}`));
  process.on('SIGUSR1', onUsr1);
  process.on('SIGHUP', onHup);

  await recordEvent('Startup', {
    daemon_pid: process.pid,
    log_level: level,
    fail_closed: failClosed,
    log_path: config.audit.log_path,
    checkpoint_key_id: signer?.keyId ?? null,
    call_details: CALL_DETAILS_VERSION,
  });

  return {
    recordEvent,
    rotate,
    writer,
    healthy: () => writer.healthy,
    onHealthChange(listener) {
      healthListeners.push(listener);
      if (!reportedHealthy && !closing) {
        try {
          listener(health());
        } catch {
          // see reportHealth
        }
      }
    },
    async close() {
      if (closing) return;
      process.off('SIGUSR1', onUsr1);
      process.off('SIGHUP', onHup);
      if (retryTimer) clearInterval(retryTimer);
      if (writer.healthy) {
        writer.beginClose();
        await recordEvent('Shutdown', { reason: 'clean shutdown' });
        await writer.checkpoint('shutdown').catch((e: Error) => log('error', `audit shutdown checkpoint failed: ${e.message}`));
      }
      closing = true;
      await writer.close();
    },
  };
}
