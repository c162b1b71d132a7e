// Encrypt, decrypt, digest, sign and verify: init / single-part / update / final.
// The state rules (PKCS#11 2.40 §5.8–5.12): one active operation of each kind per
// session; a single-part call or Final ends it; any error other than
// CKR_BUFFER_TOO_SMALL ends it (the module answers BUFFER_TOO_SMALL without us).
import { CKA, CKF, CKO, CKR } from '../../pkcs11/index.js';
import { CkError } from '../../errors.js';
import type { Mechanism, OpKind } from '../../mechanisms/types.js';
import type { HsmObject } from '../../objects/object.js';
import type { HsmCore } from '../core.js';
import type { Session, ActiveOperation } from '../../session/session.js';
import type { Call, CallNote, Handler } from '../call.js';
import { GcmNonceGuard } from '../../nonce/index.js';
import type { Admission } from '../../nonce/guard.js';
import { checkKeyDates } from '../../lifecycle/index.js';

const USAGE: Record<Exclude<OpKind, 'digest'>, { attr: number; flag: number }> = {
  encrypt: { attr: CKA.ENCRYPT, flag: CKF.ENCRYPT },
  decrypt: { attr: CKA.DECRYPT, flag: CKF.DECRYPT },
  sign: { attr: CKA.SIGN, flag: CKF.SIGN },
  verify: { attr: CKA.VERIFY, flag: CKF.VERIFY },
};

function init(kind: OpKind): Handler {
  return async ({ app, req, core, note, out }) => {
    const h = req.ulong(true);
    const mech = req.mechanism();
    const keyHandle = kind === 'digest' ? null : req.ulong(true);
    req.end();
    note.session = h;
    note.mechanism = mech.type;
    if (keyHandle !== null) note.key = keyHandle;
    const s = core.session(app.id, h);
    if (s.ops.has(kind)) throw new CkError(CKR.OPERATION_ACTIVE);
    const info = core.mechanisms.info(mech.type);
    const family = core.mechanisms.family(mech.type);
    const flag = kind === 'digest' ? CKF.DIGEST : USAGE[kind].flag;
    if (!info || !family?.createOperation || !(info.flags & flag)) throw new CkError(CKR.MECHANISM_INVALID);
    const key = keyHandle === null ? null : core.key(s, keyHandle, USAGE[kind as Exclude<OpKind, 'digest'>].attr, mech.type);
    if (key && kind !== 'digest') checkKeyDates(key.attrs, kind, core.config.lifecycle.processing_after_end_date);
    const { approved } = core.policy.checkKeyUse(mech, kind, key, note);
    let op = family.createOperation(kind, mech, key);
    const inputGate = core.policy.inputGate(mech, kind, key);
    let callerIv = false;
    if (key && GcmNonceGuard.governs(kind, mech)) {
      // Counted (durably, for token keys) before any ciphertext can exist; refused at the limit.
      // caller_iv = "generate": the token's IV, returned to the module (protocol 2) for pIv.
      const gen = await admitGcm(core, key, mech, (app.protocol ?? 1) >= 2, note);
      if (s.ops.has(kind)) throw new CkError(CKR.OPERATION_ACTIVE);
      if (gen.iv && mech.param.kind === 'gcm') {
        op = family.createOperation(kind, { ...mech, param: { ...mech.param, iv: gen.iv, ivBits: gen.iv.length * 8 } }, key);
        out.bytes(gen.iv);
      }
      // An IV chosen outside the module: its uniqueness is not the module's (SP 800-38D §8, IG C.H).
      callerIv = gen.callerIv;
      if (callerIv) note.approved = false;
    }
    s.ops.set(kind, {
      op,
      mechanism: mech.type,
      key: keyHandle,
      updated: false,
      needsContextLogin: key !== null && key.objectClass === CKO.PRIVATE_KEY && key.flag(CKA.ALWAYS_AUTHENTICATE),
      approved: approved && !callerIv,
      ...(inputGate ? { inputGate } : {}),
    });
  };
}

/** core.gcm.admit, with the key's invocation count written on the note for the audit entry:
 * the count this call reached, or at a refusal by the limit the count that refused it. */
export async function admitGcm(core: HsmCore, key: HsmObject, mech: Mechanism, canReturnIv: boolean, note: CallNote): Promise<Admission> {
  try {
    const gen = await core.gcm.admit(key, mech, canReturnIv);
    note.gcm = { key: gen.key, used: gen.used, limit: gen.limit };
    return gen;
  } catch (err) {
    const u = err instanceof CkError && err.refusal === 'gcm_limit' ? core.gcm.usageOf(key) : undefined;
    if (u) note.gcm = u;
    throw err;
  }
}

function active(c: Call, kind: OpKind): { s: Session; a: ActiveOperation } {
  const h = c.req.ulong(true);
  c.note.session = h;
  const s = c.core.session(c.app.id, h);
  const a = s.ops.get(kind);
  if (!a) throw new CkError(CKR.OPERATION_NOT_INITIALIZED);
  c.note.mechanism = a.mechanism;
  c.note.approved = a.approved;
  if (a.key !== null) c.note.key = a.key;
  if (a.needsContextLogin) {
    s.ops.delete(kind);
    throw new CkError(CKR.USER_NOT_LOGGED_IN, 'this key needs a CKU_CONTEXT_SPECIFIC login before each use');
  }
  return { s, a };
}

/** Runs one step; any failure ends the operation, success ends it when `last`. */
async function step<T>(s: Session, kind: OpKind, last: boolean, run: () => Promise<T>): Promise<T> {
  try {
    const r = await run();
    if (last) s.ops.delete(kind);
    return r;
  } catch (err) {
    s.ops.delete(kind);
    throw err;
  }
}

function single(kind: OpKind): Handler {
  return async (c) => {
    const { s, a } = active(c, kind);
    const data = c.req.bytes();
    const signature = kind === 'verify' ? c.req.bytes() : undefined;
    c.req.end();
    if (a.updated) throw new CkError(CKR.OPERATION_ACTIVE, 'a multi-part operation is in progress; finish it with Final');
    const out = await step(s, kind, true, () => (a.inputGate?.check(c.note, data), a.op.oneShot(data, signature)));
    if (kind !== 'verify') c.out.bytes(out);
  };
}

function update(kind: OpKind, hasOutput: boolean): Handler {
  return async (c) => {
    const { s, a } = active(c, kind);
    const data = c.req.bytes();
    c.req.end();
    a.updated = true;
    const out = await step(s, kind, false, () => (a.inputGate?.update(data), a.op.update(data)));
    if (hasOutput) c.out.bytes(out);
  };
}

function final(kind: OpKind): Handler {
  return async (c) => {
    const { s, a } = active(c, kind);
    const signature = kind === 'verify' ? c.req.bytes() : undefined;
    c.req.end();
    const out = await step(s, kind, true, () => (a.inputGate?.check(c.note), a.op.final(signature)));
    if (kind !== 'verify') c.out.bytes(out);
  };
}

export const encryptInit = init('encrypt');
export const encrypt = single('encrypt');
export const encryptUpdate = update('encrypt', true);
export const encryptFinal = final('encrypt');
export const decryptInit = init('decrypt');
export const decrypt = single('decrypt');
export const decryptUpdate = update('decrypt', true);
export const decryptFinal = final('decrypt');
export const digestInit = init('digest');
export const digest = single('digest');
export const digestUpdate = update('digest', false);
export const digestFinal = final('digest');
export const signInit = init('sign');
export const sign = single('sign');
export const signUpdate = update('sign', false);
export const signFinal = final('sign');
export const verifyInit = init('verify');
export const verify = single('verify');
export const verifyUpdate = update('verify', false);
export const verifyFinal = final('verify');

export const digestKey: Handler = async (c) => {
  const { s, a } = active(c, 'digest');
  const keyHandle = c.req.ulong(true);
  c.req.end();
  c.note.key = keyHandle;
  const key = c.core.object(s, keyHandle, CKR.KEY_HANDLE_INVALID);
  if (key.objectClass !== CKO.SECRET_KEY) throw new CkError(CKR.KEY_INDIGESTIBLE);
  if (!a.op.updateKey) throw new CkError(CKR.KEY_INDIGESTIBLE);
  a.updated = true;
  await step(s, 'digest', false, () => a.op.updateKey!(key));
};
