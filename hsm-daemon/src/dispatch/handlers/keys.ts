// Key generation, wrapping, unwrapping and derivation. The mechanism family produces the
// key values; the object layer turns them plus the caller's template into objects.
import { CKA, CKF, CKO, CKR } from '../../pkcs11/index.js';
import { readBool, readUlong, ulongValue } from '../../pkcs11/values.js';
import { CkError } from '../../errors.js';
import { buildNewObject, parseTemplate } from '../../objects/template.js';
import type { AttrMap } from '../../mechanisms/types.js';
import type { Handler } from '../call.js';
import { addObject, addObjects, noteObject } from './objects.js';
import { admitGcm } from './crypto.js';
import type { HsmObject } from '../../objects/object.js';
import { checkKeyDates } from '../../lifecycle/index.js';
import { admitKey } from '../../policy/key-admission.js';
import { GcmNonceGuard } from '../../nonce/guard.js';

function familyFor(core: Parameters<Handler>[0]['core'], type: number, flag: number) {
  const info = core.mechanisms.info(type);
  const family = core.mechanisms.family(type);
  if (!info || !family || !(info.flags & flag)) throw new CkError(CKR.MECHANISM_INVALID);
  return family;
}

/** Checks before the (possibly slow) generation that the result could be stored. */
function precheck(core: Parameters<Handler>[0]['core'], s: Parameters<typeof addObject>[1], attrs: AttrMap, defaultPrivate: boolean): void {
  const isToken = readBool(attrs.get(CKA.TOKEN)) === true;
  const isPrivate = readBool(attrs.get(CKA.PRIVATE)) ?? defaultPrivate;
  core.checkWriteAccess(s, isToken, isPrivate);
}

export const generateKey: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const mech = req.mechanism();
  const template = req.template();
  req.end();
  note.session = h;
  note.mechanism = mech.type;
  const s = core.session(app.id, h);
  const family = familyFor(core, mech.type, CKF.GENERATE);
  if (!family.generateKey) throw new CkError(CKR.MECHANISM_INVALID);
  const tpl = parseTemplate(template);
  core.policy.checkGenerate(mech, [tpl.attrs], note);
  const cls = readUlong(tpl.attrs.get(CKA.CLASS));
  if (cls !== undefined && cls !== CKO.SECRET_KEY) throw new CkError(CKR.TEMPLATE_INCONSISTENT, 'C_GenerateKey makes secret keys');
  precheck(core, s, tpl.attrs, true);
  const generated = await family.generateKey(mech, tpl.attrs);
  const implied: AttrMap = new Map([[CKA.CLASS, ulongValue(CKO.SECRET_KEY)], ...generated.attrs]);
  const built = buildNewObject(tpl, implied, { how: 'generate', mechanism: mech.type });
  const obj = await addObject(core, s, built.attrs, built.arrays);
  note.key = obj.handle;
  noteObject(note, obj);
  out.ulong(obj.handle);
};

export const generateKeyPair: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const mech = req.mechanism();
  const pubTemplate = req.template();
  const privTemplate = req.template();
  req.end();
  note.session = h;
  note.mechanism = mech.type;
  const s = core.session(app.id, h);
  const family = familyFor(core, mech.type, CKF.GENERATE_KEY_PAIR);
  if (!family.generateKeyPair) throw new CkError(CKR.MECHANISM_INVALID);
  const pubTpl = parseTemplate(pubTemplate);
  const privTpl = parseTemplate(privTemplate);
  core.policy.checkGenerate(mech, [pubTpl.attrs, privTpl.attrs], note);
  const pubCls = readUlong(pubTpl.attrs.get(CKA.CLASS));
  const privCls = readUlong(privTpl.attrs.get(CKA.CLASS));
  if (pubCls !== undefined && pubCls !== CKO.PUBLIC_KEY) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
  if (privCls !== undefined && privCls !== CKO.PRIVATE_KEY) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
  precheck(core, s, pubTpl.attrs, false);
  precheck(core, s, privTpl.attrs, true);
  const pair = await family.generateKeyPair(mech, pubTpl.attrs, privTpl.attrs);
  const gen = { how: 'generate' as const, mechanism: mech.type };
  const pub = buildNewObject(pubTpl, new Map([[CKA.CLASS, ulongValue(CKO.PUBLIC_KEY)], ...pair.publicKey]), gen);
  const priv = buildNewObject(privTpl, new Map([[CKA.CLASS, ulongValue(CKO.PRIVATE_KEY)], ...pair.privateKey]), gen);
  const [pubObj, privObj] = (await addObjects(core, s, [pub, priv])) as [HsmObject, HsmObject];
  note.key = privObj.handle;
  // Always one CKO_PUBLIC_KEY and one CKO_PRIVATE_KEY: the entry names the key type only.
  const kt = readUlong(privObj.attrs.get(CKA.KEY_TYPE));
  if (kt !== undefined) note.keyType = kt;
  out.ulong(pubObj.handle).ulong(privObj.handle);
};

export const wrapKey: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const mech = req.mechanism();
  const wrappingHandle = req.ulong(true);
  const keyHandle = req.ulong(true);
  req.end();
  note.session = h;
  note.mechanism = mech.type;
  note.key = keyHandle;
  const s = core.session(app.id, h);
  const family = familyFor(core, mech.type, CKF.WRAP);
  if (!family.wrap) throw new CkError(CKR.MECHANISM_INVALID);
  const wrapping = core.key(s, wrappingHandle, CKA.WRAP, mech.type, CKR.WRAPPING_KEY_HANDLE_INVALID);
  core.policy.checkKeyUse(mech, 'wrap', wrapping, note);
  checkKeyDates(wrapping.attrs, 'wrap', core.config.lifecycle.processing_after_end_date);
  const key = core.object(s, keyHandle, CKR.KEY_HANDLE_INVALID);
  if (key.objectClass !== CKO.SECRET_KEY && key.objectClass !== CKO.PRIVATE_KEY) throw new CkError(CKR.KEY_NOT_WRAPPABLE);
  if (readBool(key.attrs.get(CKA.EXTRACTABLE)) !== true) throw new CkError(CKR.KEY_UNEXTRACTABLE);
  if (key.flag(CKA.WRAP_WITH_TRUSTED) && !wrapping.flag(CKA.TRUSTED)) throw new CkError(CKR.KEY_NOT_WRAPPABLE);
  if (GcmNonceGuard.governs('wrap', mech)) {
    // Counted and IV-checked like C_EncryptInit. The wrap reply has no room for a generated
    // IV, so under caller_iv = "generate" the guard refuses (CKR_MECHANISM_PARAM_INVALID).
    const gen = await admitGcm(core, wrapping, mech, false, note);
    if (gen.callerIv) note.approved = false;
  }
  out.bytes(await family.wrap(mech, wrapping, key));
};

export const unwrapKey: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const mech = req.mechanism();
  const unwrappingHandle = req.ulong(true);
  const wrapped = req.bytes();
  const template = req.template();
  req.end();
  note.session = h;
  note.mechanism = mech.type;
  const s = core.session(app.id, h);
  const family = familyFor(core, mech.type, CKF.UNWRAP);
  if (!family.unwrap) throw new CkError(CKR.MECHANISM_INVALID);
  const unwrapping = core.key(s, unwrappingHandle, CKA.UNWRAP, mech.type, CKR.UNWRAPPING_KEY_HANDLE_INVALID);
  core.policy.checkKeyUse(mech, 'unwrap', unwrapping, note);
  checkKeyDates(unwrapping.attrs, 'unwrap', core.config.lifecycle.processing_after_end_date);
  const tpl = parseTemplate(template);
  if (!tpl.attrs.has(CKA.CLASS) || !tpl.attrs.has(CKA.KEY_TYPE)) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS and CKA_KEY_TYPE are required');
  precheck(core, s, tpl.attrs, true);
  const values = await family.unwrap(mech, unwrapping, wrapped, tpl.attrs);
  const implied = new Map(values);
  if (readUlong(tpl.attrs.get(CKA.CLASS)) === CKO.SECRET_KEY && values.has(CKA.VALUE) && !implied.has(CKA.VALUE_LEN)) {
    implied.set(CKA.VALUE_LEN, ulongValue(values.get(CKA.VALUE)!.length));
  }
  const built = buildNewObject(tpl, implied, { how: 'unwrap' });
  admitKey(core.policy, built.attrs, note);
  const obj = await addObject(core, s, built.attrs, built.arrays);
  note.key = obj.handle;
  noteObject(note, obj);
  out.ulong(obj.handle);
};

export const deriveKey: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const mech = req.mechanism();
  const baseHandle = req.ulong(true);
  const template = req.template();
  req.end();
  note.session = h;
  note.mechanism = mech.type;
  const s = core.session(app.id, h);
  const family = familyFor(core, mech.type, CKF.DERIVE);
  if (!family.derive) throw new CkError(CKR.MECHANISM_INVALID);
  const base = core.key(s, baseHandle, CKA.DERIVE, mech.type);
  // The one parameter that names an object (CK_HKDF_PARAMS.hSaltKey): resolved here, since families never see handles.
  if (mech.param.kind === 'hkdf' && mech.param.extract && mech.param.saltType === CKF.HKDF_SALT_KEY) {
    mech.param.saltKeyRef = core.key(s, mech.param.saltKey, CKA.DERIVE, mech.type, CKR.MECHANISM_PARAM_INVALID);
  }
  core.policy.checkKeyUse(mech, 'derive', base, note);
  const tpl = parseTemplate(template);
  precheck(core, s, tpl.attrs, true);
  const values = await family.derive(mech, base, tpl.attrs);
  const implied: AttrMap = new Map([[CKA.CLASS, ulongValue(CKO.SECRET_KEY)], ...values]);
  const built = buildNewObject(tpl, implied, { how: 'derive', mechanism: mech.type });
  const obj = await addObject(core, s, built.attrs, built.arrays);
  note.key = obj.handle;
  noteObject(note, obj);
  out.ulong(obj.handle);
};
