// Slot, token and mechanism information, and C_Finalize.
import { CK_UNAVAILABLE_INFORMATION, CKF, CKR } from '../../pkcs11/index.js';
import { CkError } from '../../errors.js';
import type { Handler } from '../call.js';

const MANUFACTURER = 'Craton HSM';
const VERSION: [number, number] = [0, 1];

export const finalize: Handler = ({ app, req, core }) => {
  req.end();
  core.endApp(app.id);
};

export const getSlotList: Handler = ({ req, out, core }) => {
  req.u8();
  req.end();
  out.ulongList(core.tokens.map((t) => t.slotId));
};

export const getSlotInfo: Handler = ({ req, out, core }) => {
  const slot = req.ulong(true);
  req.end();
  const t = core.token(slot);
  out
    .padded(`Craton HSM slot ${t.slotId}`, 64)
    .padded(MANUFACTURER, 32)
    .ulong(CKF.TOKEN_PRESENT)
    .version(...VERSION)
    .version(...VERSION);
};

function utcTime(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}00`;
}

export const getTokenInfo: Handler = ({ req, out, core }) => {
  const slot = req.ulong(true);
  req.end();
  const t = core.token(slot);
  const sessions = core.sessions.onSlot(slot);
  const limits = core.config.limits;
  const sec = core.config.security;
  out
    .padded(t.tokenLabel, 32)
    .padded(MANUFACTURER, 32)
    .padded('craton-hsmd', 16)
    .padded(t.serialNumber, 16)
    .ulong(t.flags())
    .ulong(limits.max_sessions_per_app)
    .ulong(sessions.length)
    .ulong(limits.max_sessions_per_app)
    .ulong(sessions.filter((s) => s.readWrite).length)
    .ulong(sec.pin_max_length)
    .ulong(sec.pin_min_length)
    .ulong(CK_UNAVAILABLE_INFORMATION)
    .ulong(CK_UNAVAILABLE_INFORMATION)
    .ulong(CK_UNAVAILABLE_INFORMATION)
    .ulong(CK_UNAVAILABLE_INFORMATION)
    .version(...VERSION)
    .version(...VERSION)
    .padded(utcTime(), 16);
};

export const getMechanismList: Handler = ({ req, out, core }) => {
  const slot = req.ulong(true);
  req.end();
  core.token(slot);
  out.ulongList(core.mechanisms.list().filter((m) => core.policy.listed(m.type)).map((m) => m.type));
};

export const getMechanismInfo: Handler = ({ req, out, core }) => {
  const slot = req.ulong(true);
  const type = req.ulong(true);
  req.end();
  core.token(slot);
  const found = core.mechanisms.info(type);
  const info = found && core.policy.mechanismInfo(found);
  if (!info) throw new CkError(CKR.MECHANISM_INVALID);
  out.ulong(info.minKeySize).ulong(info.maxKeySize).ulong(info.flags);
};
