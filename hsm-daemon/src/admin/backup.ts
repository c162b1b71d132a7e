// token.backup and token.restore (docs/backup.md). The daemon encrypts and decrypts; the
// CLI only carries the opaque file, so no secret (the audit key, its daemon key, the token
// record's verifiers) leaves the daemon unencrypted.
//
// Backup needs the SO PIN of the token (an SO function, checked through Token so it counts
// towards the lockout). Restore checks the whole file — structure, passphrase, GCM tag,
// payload schema, that every device-sealed public object opens with the backup's device
// key — and then the target (no session open, and the target's SO PIN unless it is
// uninitialised) before it changes anything. Then, in this order:
//   0. device-sealed public objects are sealed again under this data directory's device key
//      (in memory; the key file is created if this host had none);
//   1. GCM counters of the restored keys: max(current, backed-up mark + [nonce] restore_gap)
//      under a new random IV epoch, durable (before any key of the new state is reachable);
//   2. the token adopts the backed-up record (Token.adoptRecord, durable; logins end);
//   3. counters of the target's previous keys that are gone are dropped;
//   4. unless keep_audit_key: the backed-up audit checkpoint key is installed through a
//      key change recorded in the log (audit/key-change.ts).
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import { randomBytes } from '../drbg/index.js';
import type { AuditLog } from '../audit/index.js';
import { exportCheckpointKey, signerFromPkcs8 } from '../audit/checkpoint.js';
import { installCheckpointKey, type KeyChangeResult } from '../audit/key-change.js';
import { backupDigest, decryptBackup, encryptBackup, isBackupFileError, type BackupFileError } from '../store/backup-file.js';
import { PayloadError, decodePayload, encodePayload, type BackedUpCounter } from '../store/backup-payload.js';
import { ResealError } from '../store/object-seal.js';
import type { TokenRecord } from '../store/token-file.js';
import { BadRequest, daemonVersion, notInErrorState, pinArg, reqInt, requireInitialized, type AdminContext, type Args } from './commands.js';
import { MAX_LINE_BYTES } from './protocol.js';

export const MIN_PASSPHRASE_BYTES = 12;
const MAX_PASSPHRASE_BYTES = 1024;
/** Room in the response line for everything but the base64 file. */
const RESPONSE_OVERHEAD = 4096;

/** Slots with a backup or restore running: one at a time per slot. */
const busy = new Set<number>();

function passphraseArg(args: Args): Buffer {
  const v = args.passphrase;
  if (typeof v !== 'string' || v.length === 0) throw new BadRequest('passphrase is required');
  const b = Buffer.from(v, 'utf8');
  if (b.length < MIN_PASSPHRASE_BYTES || b.length > MAX_PASSPHRASE_BYTES) {
    b.fill(0);
    throw new BadRequest(`passphrase: ${MIN_PASSPHRASE_BYTES} to ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  return b;
}

function boolArg(args: Args, name: string): boolean {
  const v = args[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new BadRequest(`${name}: expected true or false`);
  return v;
}

async function exclusive<T>(slot: number, fn: () => Promise<T>): Promise<T> {
  if (busy.has(slot)) throw new CkError(CKR.OPERATION_ACTIVE, `a backup or restore of slot ${slot} is already running`);
  busy.add(slot);
  try {
    return await fn();
  } finally {
    busy.delete(slot);
  }
}

/** The SO PIN check of backup and restore, with a message that says whose PIN it was. */
async function checkSoPin(ctx: AdminContext, slot: number, pin: Buffer, pid: number, what: string): Promise<void> {
  try {
    await ctx.core.token(slot).verifySoPin(pin, { app: `admin:${pid}:${what}` });
  } catch (e) {
    if (e instanceof CkError && e.rv === CKR.PIN_INCORRECT) throw new CkError(CKR.PIN_INCORRECT, `the SO PIN of the token in slot ${slot} is incorrect`);
    throw e;
  }
}

// ---- backup ------------------------------------------------------------------------------

export async function tokenBackup(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const soPin = pinArg(args, 'so_pin', true);
  let passphrase: Buffer | null = null;
  try {
    passphrase = passphraseArg(args);
    notInErrorState();
    const t = ctx.core.token(slot);
    requireInitialized(t);
    const pass = passphrase;
    return await exclusive(slot, async () => {
      await checkSoPin(ctx, slot, soPin, pid, 'backup');
      // One synchronous read of the token and its counters: a consistent snapshot.
      const token = t.record();
      const uids = new Set(token.objects.map((o) => o.uid));
      const prefix = `slot-${slot}/`;
      const counters: BackedUpCounter[] = ctx.core.gcm.counters
        .marks(prefix)
        .map((m) => ({ uid: m.key.slice(prefix.length), reserved: m.reserved, alerted: m.alerted }))
        .filter((c) => uids.has(c.uid));
      const auditKey = exportCheckpointKey(ctx.config.daemon.data_dir);
      // Public objects' secrets are sealed under this host's device key: the target needs it
      // to seal them again under its own (inside the encrypted payload only).
      const deviceKey = t.deviceKeyForBackup(token);
      let plain: Buffer | null = null;
      let file: Buffer;
      const createdAt = new Date();
      try {
        plain = encodePayload({ token, gcm: { limit: ctx.core.gcm.counters.limit, counters }, auditKeyId: auditKey?.keyId ?? null }, auditKey?.der ?? null, deviceKey);
        file = await encryptBackup(plain, pass, {
          source: { slot, serial: token.serial, label: token.label, daemon_version: daemonVersion(), objects: token.objects.length },
          iterations: ctx.config.backup.pbkdf2_iterations,
          createdAt,
        });
      } finally {
        plain?.fill(0);
        auditKey?.der.fill(0);
        deviceKey?.fill(0);
      }
      const b64 = file.toString('base64');
      if (b64.length + RESPONSE_OVERHEAD > MAX_LINE_BYTES) {
        throw new CkError(
          CKR.DEVICE_MEMORY,
          `the backup is ${file.length} bytes, more than the admin protocol carries (${MAX_LINE_BYTES} bytes per line, base64); see docs/backup.md "Size"`,
        );
      }
      return {
        slot,
        serial: token.serial,
        label: token.label,
        objects: token.objects.length,
        gcm_counters: counters.length,
        audit_key: auditKey !== null,
        created_at: createdAt.toISOString(),
        bytes: file.length,
        sha256: backupDigest(file),
        backup: b64,
      };
    });
  } finally {
    soPin.fill(0);
    passphrase?.fill(0);
  }
}

// ---- restore -----------------------------------------------------------------------------

/** BackupFileError / PayloadError → the CK_RV the admin answer carries (docs/backup.md). */
function refusal(e: unknown): never {
  if (isBackupFileError(e)) {
    const k = (e as BackupFileError).kind;
    const rv = k === 'wrong_passphrase' ? CKR.PIN_INCORRECT : k === 'not_a_backup' ? CKR.ENCRYPTED_DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_INVALID;
    throw new CkError(rv, `${e.message}; nothing was changed`);
  }
  if (e instanceof PayloadError) throw new CkError(CKR.DATA_INVALID, `${e.message}; nothing was changed`);
  throw e;
}

export async function tokenRestore(ctx: AdminContext, audit: AuditLog, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const b64 = args.backup;
  if (typeof b64 !== 'string' || b64.length === 0) throw new BadRequest('backup (the file, base64) is required');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new BadRequest('backup: not base64');
  const keepAuditKey = boolArg(args, 'keep_audit_key');
  const soPin = pinArg(args, 'so_pin', false);
  let passphrase: Buffer | null = null;
  let plain: Buffer | null = null;
  try {
    passphrase = passphraseArg(args);
    notInErrorState();
    const t = ctx.core.token(slot);
    const pass = passphrase;
    return await exclusive(slot, async () => {
      // 1. The file: everything is checked before anything changes.
      const file = Buffer.from(b64, 'base64');
      let header;
      try {
        const d = await decryptBackup(file, pass);
        header = d.header;
        plain = d.plaintext;
      } catch (e) {
        refusal(e);
      }
      let decoded;
      try {
        decoded = decodePayload(plain!, { maxObjects: ctx.config.limits.max_objects_per_token });
      } catch (e) {
        refusal(e);
      }
      const { payload, auditKeyDer, deviceKey: sourceDeviceKey } = decoded;
      try {
        t.resealForThisDevice(payload.token, sourceDeviceKey, true);
      } catch (e) {
        if (e instanceof ResealError) refusal(new PayloadError(e.message));
        throw e;
      }
      if (auditKeyDer && !keepAuditKey) {
        try {
          if (signerFromPkcs8(auditKeyDer).keyId !== payload.auditKeyId) throw new Error('key id mismatch');
        } catch {
          throw new CkError(CKR.DATA_INVALID, "the backup's audit checkpoint key is not a usable P-256 key; nothing was changed (--keep-audit-key restores without it)");
        }
      }
      // 2. The target.
      const noSessions = () => {
        if (ctx.core.sessions.onSlot(slot).length > 0) throw new CkError(CKR.SESSION_EXISTS, `close every session on slot ${slot} first (like C_InitToken); nothing was changed`);
      };
      noSessions();
      const wasInitialized = t.isInitialized;
      if (wasInitialized) {
        if (!soPin) throw new CkError(CKR.USER_NOT_LOGGED_IN, `the token in slot ${slot} is initialised: give its current SO PIN to replace it; nothing was changed`);
        await checkSoPin(ctx, slot, soPin, pid, 'restore');
      }
      noSessions(); // again: the PIN check awaited

      // Synchronous, and nothing of the token changes if it throws.
      let record: TokenRecord;
      try {
        record = t.resealForThisDevice(payload.token, sourceDeviceKey);
      } catch (e) {
        throw new CkError(CKR.DEVICE_ERROR, `cannot seal the restored public objects under this host's device key: ${(e as Error).message}; nothing was changed`);
      }

      // 3. Counters first: no restored key can be used before its counter is past the gap.
      const prefix = `slot-${slot}/`;
      const gap = ctx.config.nonce.restore_gap;
      const epoch = randomBytes(8).toString('hex');
      const counters = ctx.core.gcm.counters;
      let raised: Array<{ key: string; before: number; after: number }>;
      try {
        raised = await counters.raise(
          prefix,
          { epoch, start: gap },
          payload.gcm.counters.map((c) => ({ key: prefix + c.uid, atLeast: c.reserved + gap, alerted: c.alerted })),
        );
      } catch (e) {
        throw new CkError(CKR.DEVICE_ERROR, `cannot persist the GCM counters: ${(e as Error).message}; the token was not changed`);
      }
      noSessions(); // the counter write awaited

      // 4. The token state.
      const replacedObjects = t.objectCount;
      const before = wasInitialized || replacedObjects > 0 ? t.record() : null;
      try {
        await t.adoptRecord(record);
      } catch (e) {
        if (before) await t.adoptRecord(before).catch(() => undefined);
        throw new CkError(CKR.DEVICE_ERROR, `cannot write the token store: ${(e as Error).message}; the token file is unchanged`);
      }
      const uids = new Set(payload.token.objects.map((o) => o.uid));
      await counters.forget((id) => id.startsWith(prefix) && !uids.has(id.slice(prefix.length)));

      // 5. The audit signing key.
      let auditKeyResult: (KeyChangeResult & { installed: boolean; reason?: string }) | { installed: false; reason: string };
      if (!auditKeyDer) auditKeyResult = { installed: false, reason: 'the backup holds no audit key' };
      else if (keepAuditKey) auditKeyResult = { installed: false, reason: 'kept the current key (keep_audit_key)' };
      else if (!audit.writer) auditKeyResult = { installed: false, reason: 'the audit log is disabled ([audit] log_level = "none")' };
      else {
        try {
          const r = await installCheckpointKey(audit.writer, ctx.config.daemon.data_dir, auditKeyDer, {
            reason: 'restore',
            slot,
            source_serial: header!.source.serial,
            backup_created_at: header!.created_at,
          });
          auditKeyResult = { ...r, installed: true };
        } catch (e) {
          auditKeyResult = { installed: false, reason: `not installed: ${(e as Error).message}` };
        }
      }
      const raisedBy = raised.map((r) => r.after);
      return {
        slot,
        serial: payload.token.serial,
        label: payload.token.label,
        source: header!.source,
        created_at: header!.created_at,
        replaced_initialized_token: wasInitialized,
        replaced_objects: replacedObjects,
        objects: payload.token.objects.length,
        gcm: { restore_gap: gap, counters_raised: raised.length, lowest: raisedBy.length ? Math.min(...raisedBy) : null, epoch_set: true },
        audit_key: auditKeyResult,
      };
    });
  } finally {
    soPin?.fill(0);
    passphrase?.fill(0);
    (plain as Buffer | null)?.fill(0);
  }
}

/** What the audit entry of a backup or restore says (never the passphrase, PIN or file). */
export function backupAuditDetails(cmd: 'token.backup' | 'token.restore', args: Args, result: unknown): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  const r = result as Record<string, unknown> | null;
  if (cmd === 'token.backup') {
    if (r) Object.assign(d, { serial: r.serial, objects: r.objects, gcm_counters: r.gcm_counters, audit_key_included: r.audit_key, bytes: r.bytes, output_sha256: r.sha256 });
    return d;
  }
  d.keep_audit_key = args.keep_audit_key === true;
  if (r) {
    const src = r.source as { serial: string; slot: number };
    const g = r.gcm as { counters_raised: number; restore_gap: number };
    const ak = r.audit_key as { installed: boolean; new_key_id?: string; reason?: string };
    Object.assign(d, {
      source_serial: src.serial,
      source_slot: src.slot,
      backup_created_at: r.created_at,
      objects: r.objects,
      counters_raised: g.counters_raised,
      restore_gap: g.restore_gap,
      replaced_initialized_token: r.replaced_initialized_token,
      replaced_objects: r.replaced_objects,
      audit_checkpoint_key: ak.installed ? ak.new_key_id : `unchanged (${ak.reason ?? ''})`,
    });
  }
  return d;
}
