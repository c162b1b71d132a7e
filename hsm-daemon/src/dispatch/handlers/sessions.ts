// Sessions and the login state machine (PKCS#11 2.40 §5.6, §5.7 and the session state
// tables of §2.6).
import { CKF, CKR, CKU } from '../../pkcs11/index.js';
import { CkError } from '../../errors.js';
import { USER_TYPES } from '../../token/token.js';
import type { CallNote, Handler } from '../call.js';

export const openSession: Handler = ({ app, req, out, core, note }) => {
  const slot = req.ulong(true);
  const flags = req.ulong(true);
  req.end();
  const t = core.token(slot);
  if (!(flags & CKF.SERIAL_SESSION)) throw new CkError(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
  if (!t.isInitialized) throw new CkError(CKR.TOKEN_NOT_RECOGNIZED, 'initialise the token first (C_InitToken)');
  const rw = (flags & CKF.RW_SESSION) !== 0;
  if (!rw && t.roleOf(app.id) === 'so') throw new CkError(CKR.SESSION_READ_WRITE_SO_EXISTS);
  const s = core.sessions.open(slot, app.id, rw);
  note.session = s.handle;
  out.ulong(s.handle);
};

export const closeSession: Handler = ({ app, req, core, note }) => {
  const h = req.ulong(true);
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  const t = core.tokenOf(s);
  t.dropSessionObjects(s.handle);
  core.sessions.close(s);
  // Closing the application's last session on a token logs it out (PKCS#11 §5.6).
  if (core.sessions.ofApp(app.id, s.slotId).length === 0) t.logout(app.id);
};

export const closeAllSessions: Handler = ({ app, req, core }) => {
  const slot = req.ulong(true);
  req.end();
  const t = core.token(slot);
  for (const s of core.sessions.ofApp(app.id, slot)) {
    t.dropSessionObjects(s.handle);
    core.sessions.close(s);
  }
  t.logout(app.id);
};

export const getSessionInfo: Handler = ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  out
    .ulong(s.slotId)
    .ulong(core.state(s))
    .ulong(CKF.SERIAL_SESSION | (s.readWrite ? CKF.RW_SESSION : 0))
    .ulong(0);
};

/** CKR_PIN_LOCKED from the token is, by definition, the lockout control refusing the call
 * (the token decides it; the audit entry says so in details.refused_by). */
function noteLockout(note: CallNote, err: unknown): void {
  if (err instanceof CkError && err.rv === CKR.PIN_LOCKED) note.refusal = 'lockout';
}

export const login: Handler = async ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const userType = req.ulong(true);
  const pin = req.optBytes();
  req.end();
  note.session = h;
  try {
    const s = core.session(app.id, h);
    const t = core.tokenOf(s);
    if (!pin) throw new CkError(CKR.ARGUMENTS_BAD, 'no protected authentication path: a PIN is required');
    if (userType === CKU.CONTEXT_SPECIFIC) {
      const pending = [...s.ops.values()].filter((o) => o.needsContextLogin);
      if (pending.length === 0) throw new CkError(CKR.OPERATION_NOT_INITIALIZED);
      if (t.roleOf(app.id) !== 'user') throw new CkError(CKR.USER_NOT_LOGGED_IN);
      await t.verifyUserPin(pin, { app: app.id, session: h });
      for (const o of pending) o.needsContextLogin = false;
      return;
    }
    const role = USER_TYPES.get(userType);
    if (!role) throw new CkError(CKR.USER_TYPE_INVALID);
    const current = t.roleOf(app.id);
    if (current === role) throw new CkError(CKR.USER_ALREADY_LOGGED_IN);
    if (current) throw new CkError(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    if (role === 'so' && core.sessions.ofApp(app.id, s.slotId).some((x) => !x.readWrite)) {
      throw new CkError(CKR.SESSION_READ_ONLY_EXISTS);
    }
    await t.login(app.id, role, pin, h);
  } catch (err) {
    noteLockout(note, err);
    throw err;
  } finally {
    pin?.fill(0);
  }
};

export const logout: Handler = ({ app, req, core, note }) => {
  const h = req.ulong(true);
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  const t = core.tokenOf(s);
  if (!t.roleOf(app.id)) throw new CkError(CKR.USER_NOT_LOGGED_IN);
  t.logout(app.id);
  // Operations begun while logged in must not outlive the login (no C_Sign after C_Logout).
  for (const x of core.sessions.ofApp(app.id, s.slotId)) x.endOperations();
};

export const initToken: Handler = async ({ app, req, core, note }) => {
  const slot = req.ulong(true);
  const soPin = req.optBytes();
  const label = req.padded(32);
  req.end();
  try {
    const t = core.token(slot);
    if (!soPin) throw new CkError(CKR.ARGUMENTS_BAD, 'no protected authentication path: an SO PIN is required');
    if (core.sessions.onSlot(slot).length > 0) throw new CkError(CKR.SESSION_EXISTS, 'close every session on this token first');
    // Blank-padded per the spec; some clients (pkcs11js) NUL-terminate instead and leave
    // garbage after the NUL, so the label ends at the first NUL too.
    const nul = label.indexOf(0);
    const held = t.objectCount;
    await t.initToken(soPin, (nul >= 0 ? label.subarray(0, nul) : label).toString('utf8').replace(/ +$/, ''), { app: app.id });
    note.destroyedObjects = held;
  } finally {
    soPin?.fill(0);
  }
};

export const initPin: Handler = async ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const pin = req.optBytes();
  req.end();
  note.session = h;
  try {
    const s = core.session(app.id, h);
    const t = core.tokenOf(s);
    if (t.roleOf(app.id) !== 'so') throw new CkError(CKR.USER_NOT_LOGGED_IN, 'C_InitPIN needs an SO login');
    if (!pin) throw new CkError(CKR.ARGUMENTS_BAD, 'no protected authentication path: a PIN is required');
    await t.initUserPin(pin);
  } finally {
    pin?.fill(0);
  }
};

export const setPin: Handler = async ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const oldPin = req.optBytes();
  const newPin = req.optBytes();
  req.end();
  note.session = h;
  try {
    const s = core.session(app.id, h);
    const t = core.tokenOf(s);
    if (!s.readWrite) throw new CkError(CKR.SESSION_READ_ONLY);
    if (!oldPin || !newPin) throw new CkError(CKR.ARGUMENTS_BAD, 'no protected authentication path: PINs are required');
    await t.setPin(t.roleOf(app.id) ?? 'user', oldPin, newPin, { app: app.id, session: h });
  } catch (err) {
    noteLockout(note, err);
    throw err;
  } finally {
    oldPin?.fill(0);
    newPin?.fill(0);
  }
};
