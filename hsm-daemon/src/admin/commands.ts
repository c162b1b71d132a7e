// What each admin socket command does (docs/admin.md "Commands"). The server (server.ts)
// authenticates the peer, parses lines and audits; here only the work and its rules.
//
// Authentication model (PKCS#11 semantics, decided in docs/admin.md):
//   - status, token.info, selftest, audit.rotate: the peer check alone (root or the daemon's user).
//   - token.init: the SO PIN (the current one when the token is already initialised), and
//     no session open on the token, like C_InitToken.
//   - key.list: without a PIN, public token objects only; with the user PIN, all token objects.
//   - key.delete: the user PIN (objects belong to the user; the SO cannot see private ones).
//   - pin.change: the old PIN of the role being changed.
//   - pin.reset: the SO PIN; clears the user PIN's lockout (optionally sets a new user PIN).
// PIN checks go through Token, so they count towards the lockout like C_Login does.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CKA, CKF, CKR } from '../pkcs11/index.js';
import { className, keyTypeLabel } from '../pkcs11/names.js';
import { readBool } from '../pkcs11/values.js';
import { CkError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { HsmCore } from '../dispatch/core.js';
import type { HsmObject } from '../objects/object.js';
import type { Role, Token } from '../token/token.js';
import { keyId } from '../nonce/index.js';
import { drbgStatus } from '../drbg/index.js';
import { errorState, type SelfTestReport } from '../selftest/index.js';
import { repoRoot } from '../paths.js';
import { ADMIN_PROTOCOL_VERSION } from './protocol.js';
import type { CheckpointSigner } from '../audit/checkpoint.js';

/** A malformed request: answered with BAD_REQUEST, audited as CKR_ARGUMENTS_BAD. */
export class BadRequest extends Error {}

export interface AdminContext {
  config: Config;
  core: HsmCore;
  /** The power-on self-test report, replaced by every `selftest` run. */
  selfTest: SelfTestReport;
  rerunSelfTests(): Promise<SelfTestReport>;
  /** null when [audit] log_level = "none". */
  audit: { healthy(): boolean; rotate(reason?: string): Promise<void> } | null;
  /** Open PKCS#11 connections (the wire server), when main.ts passes it. */
  connections?: () => number;
  /** The /readyz verdict (metrics/registry.ts readiness()), also without [metrics] enabled. */
  readiness?: () => { ready: boolean; checks: Record<string, string | null> };
  /** The audit checkpoint key's evidence-signing capability (admin/evidence-sign.ts); null without one. */
  evidenceSigner?: () => Pick<CheckpointSigner, 'keyId' | 'publicKeyPem' | 'signEvidence'> | null;
  startedAt: Date;
}

/** A unique application id for the admin's transient logins (never a wire app id, which is hex). */
let nextAdminApp = 1;
const adminApp = (pid: number) => `admin:${pid}:${nextAdminApp++}`;

let cachedVersion: string | undefined;
export function daemonVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    cachedVersion = 'unknown';
  }
  return cachedVersion;
}

// ---- argument helpers -------------------------------------------------------------

export type Args = Record<string, unknown>;

function optInt(args: Args, name: string): number | undefined {
  const v = args[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BadRequest(`${name}: expected a non-negative integer`);
  return v;
}

export function reqInt(args: Args, name: string): number {
  const v = optInt(args, name);
  if (v === undefined) throw new BadRequest(`${name} is required`);
  return v;
}

function optString(args: Args, name: string): string | undefined {
  const v = args[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadRequest(`${name}: expected a string`);
  return v;
}

function reqString(args: Args, name: string): string {
  const v = optString(args, name);
  if (v === undefined) throw new BadRequest(`${name} is required`);
  return v;
}

/** A PIN argument as bytes (UTF-8). The caller zeroes the buffer when done. */
export function pinArg(args: Args, name: string, required: true): Buffer;
export function pinArg(args: Args, name: string, required: false): Buffer | undefined;
export function pinArg(args: Args, name: string, required: boolean): Buffer | undefined {
  const v = optString(args, name);
  if (v === undefined) {
    if (required) throw new BadRequest(`${name} is required`);
    return undefined;
  }
  if (v.length === 0) throw new BadRequest(`${name} is empty`);
  return Buffer.from(v, 'utf8');
}

function roleArg(args: Args): Role {
  const v = optString(args, 'role') ?? 'user';
  if (v !== 'user' && v !== 'so') throw new BadRequest('role: expected "user" or "so"');
  return v;
}

function slotsOf(core: HsmCore, slot: number | undefined): Token[] {
  if (slot === undefined) return core.tokens;
  return [core.token(slot)];
}

/** Refuses PIN, key and token work in the FIPS error state, as the module does. */
export function notInErrorState(): void {
  const e = errorState();
  if (e) throw new CkError(CKR.GENERAL_ERROR, `the daemon is in the error state (${e.kind}: ${e.reason}); run \`craton-hsm-admin selftest\``);
}

export function requireInitialized(t: Token): void {
  if (!t.isInitialized) throw new CkError(CKR.TOKEN_NOT_RECOGNIZED, `the token in slot ${t.slotId} is not initialised`);
}

/** Runs `fn` with a transient login of `role` on `t` for the admin, logging out after. */
export async function asRole<T>(t: Token, role: Role, pin: Buffer, pid: number, fn: (app: string) => Promise<T> | T): Promise<T> {
  const app = adminApp(pid);
  try {
    await t.login(app, role, pin);
  } finally {
    pin.fill(0);
  }
  try {
    return await fn(app);
  } finally {
    t.logout(app);
  }
}

// ---- status / token info ----------------------------------------------------------

const FLAG_NAMES: Array<[number, string]> = [
  [CKF.TOKEN_INITIALIZED, 'TOKEN_INITIALIZED'],
  [CKF.USER_PIN_INITIALIZED, 'USER_PIN_INITIALIZED'],
  [CKF.USER_PIN_COUNT_LOW, 'USER_PIN_COUNT_LOW'],
  [CKF.USER_PIN_FINAL_TRY, 'USER_PIN_FINAL_TRY'],
  [CKF.USER_PIN_LOCKED, 'USER_PIN_LOCKED'],
  [CKF.SO_PIN_COUNT_LOW, 'SO_PIN_COUNT_LOW'],
  [CKF.SO_PIN_FINAL_TRY, 'SO_PIN_FINAL_TRY'],
  [CKF.SO_PIN_LOCKED, 'SO_PIN_LOCKED'],
];

function slotInfo(ctx: AdminContext, t: Token) {
  const sessions = ctx.core.sessions.onSlot(t.slotId);
  const apps = new Set(sessions.map((s) => s.app));
  let user = 0;
  let so = 0;
  for (const a of apps) {
    const r = t.roleOf(a);
    if (r === 'user') user++;
    else if (r === 'so') so++;
  }
  const flags = t.flags();
  return {
    slot: t.slotId,
    label: t.tokenLabel,
    serial: t.serialNumber,
    initialized: t.isInitialized,
    user_pin_initialized: t.userPinInitialized,
    sessions: sessions.length,
    rw_sessions: sessions.filter((s) => s.readWrite).length,
    applications: apps.size,
    logged_in: { user, so, total: user + so },
    objects: t.objectCount,
    failed_logins: { user: t.failedLogins('user'), so: t.failedLogins('so'), max: ctx.config.security.max_failed_logins },
    user_pin_locked: (flags & CKF.USER_PIN_LOCKED) !== 0,
    so_pin_locked: (flags & CKF.SO_PIN_LOCKED) !== 0,
    flags: FLAG_NAMES.filter(([f]) => (flags & f) !== 0).map(([, n]) => n),
  };
}

function gcmUsage(ctx: AdminContext) {
  return ctx.core.gcm.counters.all().map((u) => {
    const m = /^slot-(\d+)\/(.*)$/.exec(u.key);
    return {
      key: u.key,
      slot: m ? Number(m[1]) : null,
      uid: m ? m[2]! : null,
      used: u.used,
      limit: u.limit,
      percent: Math.round(u.percent * 1000) / 1000,
      persistent: u.persistent,
    };
  });
}

function selfTestSummary(r: SelfTestReport) {
  return {
    passed: r.passed,
    started_at: r.startedAt,
    duration_ms: r.durationMs,
    known_answer_tests: r.kats.length,
    known_answer_tests_passed: r.kats.filter((k) => k.ok).length,
    failed: r.kats.filter((k) => !k.ok).map((k) => ({ name: k.name, error: k.error ?? null })),
    integrity: r.integrity,
    drbg: r.drbg,
    failure: r.failure ?? null,
  };
}

export function status(ctx: AdminContext) {
  const c = ctx.config;
  const slots = ctx.core.tokens.map((t) => slotInfo(ctx, t));
  return {
    daemon: {
      up: true,
      name: 'craton-hsmd',
      version: daemonVersion(),
      admin_protocol: ADMIN_PROTOCOL_VERSION,
      pid: process.pid,
      uid: process.getuid?.() ?? null,
      started_at: ctx.startedAt.toISOString(),
      uptime_s: Math.floor((Date.now() - ctx.startedAt.getTime()) / 1000),
      socket_path: c.daemon.socket_path,
      admin_socket_path: c.daemon.admin_socket_path,
      data_dir: c.daemon.data_dir,
      connections: ctx.connections ? ctx.connections() : null,
    },
    self_test: selfTestSummary(ctx.selfTest),
    readiness: ctx.readiness ? ctx.readiness() : null,
    error_state: errorState(),
    drbg: drbgStatus(),
    audit: { level: c.audit.log_level, path: c.audit.log_path, healthy: ctx.audit ? ctx.audit.healthy() : false },
    sessions: slots.reduce((n, s) => n + s.sessions, 0),
    logged_in_apps: slots.reduce((n, s) => n + s.logged_in.total, 0),
    slots,
    gcm: { limit: c.nonce.gcm_invocation_limit, thresholds: c.nonce.alert_thresholds, keys: gcmUsage(ctx) },
  };
}

export function tokenInfo(ctx: AdminContext, args: Args) {
  const sec = ctx.config.security;
  return {
    tokens: slotsOf(ctx.core, optInt(args, 'slot')).map((t) => ({
      ...slotInfo(ctx, t),
      pin_min_length: sec.pin_min_length,
      pin_max_length: sec.pin_max_length,
      max_objects: ctx.config.limits.max_objects_per_token,
    })),
  };
}

// ---- selftest ----------------------------------------------------------------------

export async function selftest(ctx: AdminContext) {
  const before = errorState();
  const r = await ctx.rerunSelfTests();
  ctx.selfTest = r;
  return { ...selfTestSummary(r), error_state_before: before, error_state: errorState() };
}

// ---- token init ----------------------------------------------------------------------

export async function tokenInit(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const label = reqString(args, 'label');
  if (Buffer.byteLength(label, 'utf8') > 32) throw new BadRequest('label: at most 32 bytes (UTF-8)');
  if (/ $/.test(label)) throw new BadRequest('label: trailing blanks are padding in PKCS#11; remove them');
  const soPin = pinArg(args, 'so_pin', true);
  try {
    notInErrorState();
    const t = ctx.core.token(slot);
    if (ctx.core.sessions.onSlot(slot).length > 0) throw new CkError(CKR.SESSION_EXISTS, 'close every session on this token first');
    const was = t.isInitialized;
    const held = t.objectCount;
    await t.initToken(soPin, label, { app: adminApp(pid) });
    return { slot, label, serial: t.serialNumber, reinitialized: was, destroyed_objects: held };
  } finally {
    soPin.fill(0);
  }
}

// ---- keys ----------------------------------------------------------------------------

function hexAttr(o: HsmObject, type: number): string | null {
  const v = o.attrs.get(type);
  return v ? v.toString('hex') : null;
}

function describeObject(ctx: AdminContext, o: HsmObject) {
  const label = o.attrs.get(CKA.LABEL);
  const kt = o.keyType;
  const usage = ctx.core.gcm.counters.usage(keyId(o));
  const flag = (a: number) => readBool(o.attrs.get(a)) ?? null;
  return {
    slot: o.slotId,
    handle: o.handle,
    uid: o.uid,
    class: className(o.objectClass),
    key_type: kt === undefined ? null : keyTypeLabel(kt),
    label: label ? label.toString('utf8') : '',
    id: hexAttr(o, CKA.ID) ?? '',
    token: o.isToken,
    private: o.isPrivate,
    sensitive: flag(CKA.SENSITIVE),
    extractable: flag(CKA.EXTRACTABLE),
    destroyable: flag(CKA.DESTROYABLE),
    gcm: usage ? { used: usage.used, limit: usage.limit, percent: Math.round(usage.percent * 1000) / 1000 } : null,
  };
}

export async function keyList(ctx: AdminContext, args: Args, pid: number) {
  const slot = optInt(args, 'slot');
  const userPin = pinArg(args, 'user_pin', false);
  try {
    const tokens = slotsOf(ctx.core, slot);
    if (userPin) {
      notInErrorState();
      if (tokens.length !== 1) throw new BadRequest('slot is required with user_pin (a PIN belongs to one token)');
    }
    const out = [];
    for (const t of tokens) {
      const list = (app: string) => {
        const objs = t.visibleTo(app).filter((o) => o.isToken);
        objs.sort((a, b) => a.handle - b.handle);
        return {
          slot: t.slotId,
          label: t.tokenLabel,
          initialized: t.isInitialized,
          scope: userPin ? ('all' as const) : ('public' as const),
          objects: objs.map((o) => describeObject(ctx, o)),
          // Private objects (without the user PIN) and applications' session objects.
          not_listed: Math.max(0, t.objectCount - objs.length),
        };
      };
      if (userPin) {
        requireInitialized(t);
        out.push(await asRole(t, 'user', Buffer.from(userPin), pid, list));
      } else {
        out.push(list(adminApp(pid)));
      }
    }
    return { slots: out };
  } finally {
    userPin?.fill(0);
  }
}

export async function keyDelete(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const uid = reqString(args, 'uid');
  const userPin = pinArg(args, 'user_pin', true);
  notInErrorState();
  const t = ctx.core.token(slot);
  requireInitialized(t);
  return asRole(t, 'user', userPin, pid, async (app) => {
    const o = t.visibleTo(app).find((x) => x.isToken && x.uid === uid);
    if (!o) throw new CkError(CKR.OBJECT_HANDLE_INVALID, `no token object with uid ${uid} in slot ${slot}`);
    if (readBool(o.attrs.get(CKA.DESTROYABLE)) === false) throw new CkError(CKR.ACTION_PROHIBITED, 'the object is not destroyable (CKA_DESTROYABLE false)');
    const described = describeObject(ctx, o);
    await t.destroyObject(o); // its GCM counter goes with it (Token.onObjectGone)
    return { deleted: described };
  });
}

// ---- PINs ----------------------------------------------------------------------------

export async function pinChange(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const role = roleArg(args);
  const oldPin = pinArg(args, 'old_pin', true);
  const newPin = pinArg(args, 'new_pin', true);
  try {
    notInErrorState();
    const t = ctx.core.token(slot);
    requireInitialized(t);
    await t.setPin(role, oldPin, newPin, { app: adminApp(pid) });
    return { slot, role, changed: true };
  } finally {
    oldPin.fill(0);
    newPin.fill(0);
  }
}

export async function pinReset(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const soPin = pinArg(args, 'so_pin', true);
  const newUserPin = pinArg(args, 'new_user_pin', false);
  try {
    notInErrorState();
    const t = ctx.core.token(slot);
    requireInitialized(t);
    const failedBefore = t.failedLogins('user');
    const lockedBefore = (t.flags() & CKF.USER_PIN_LOCKED) !== 0;
    await asRole(t, 'so', soPin, pid, async () => {
      if (newUserPin) await t.initUserPin(newUserPin); // C_InitPIN: also clears the lockout
      else if (failedBefore > 0) await t.resetPinLockout('user');
    });
    return {
      slot,
      role: 'user',
      failed_before: failedBefore,
      was_locked: lockedBefore,
      user_pin_set: newUserPin !== undefined,
      failed_logins: t.failedLogins('user'),
    };
  } finally {
    soPin.fill(0);
    newUserPin?.fill(0);
  }
}

// ---- audit -----------------------------------------------------------------------------

export async function auditRotate(ctx: AdminContext) {
  if (!ctx.audit) throw new CkError(CKR.FUNCTION_NOT_SUPPORTED, 'the audit log is disabled ([audit] log_level = "none")');
  if (!ctx.audit.healthy()) throw new CkError(CKR.DEVICE_ERROR, 'the audit log is not writable right now');
  await ctx.audit.rotate('admin');
  return { rotated: true, log_path: ctx.config.audit.log_path };
}
