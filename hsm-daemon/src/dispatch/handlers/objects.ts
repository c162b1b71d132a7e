// Object management: create, copy, destroy, attributes, search (PKCS#11 2.40 §5.7).
import { CKA, CKR } from '../../pkcs11/index.js';
import { readBool, readUlong } from '../../pkcs11/values.js';
import { CkError } from '../../errors.js';
import { randomBytes } from '../../drbg/index.js';
import { applyChanges, buildNewObject, matches, parseTemplate } from '../../objects/template.js';
import { secretAttributes } from '../../objects/rules.js';
import type { AttrMap } from '../../mechanisms/types.js';
import type { AttrAnswer, Attr } from '../../wire/contract.js';
import type { HsmObject } from '../../objects/object.js';
import type { Session } from '../../session/session.js';
import type { HsmCore } from '../core.js';
import type { CallNote, Handler } from '../call.js';
import { admitKey } from '../../policy/key-admission.js';

export const newUid = () => randomBytes(16).toString('hex');

export interface NewObject {
  attrs: AttrMap;
  arrays: Map<number, Attr[]>;
}

/** Adds finished attribute sets as new objects owned by the session, enforcing the
 * session's right to create each; all of them reach the token in one durable change.
 * Shared with key generation, unwrap and derive. */
export async function addObjects(core: HsmCore, s: Session, list: NewObject[]): Promise<HsmObject[]> {
  let sessionObjects = 0;
  const items = list.map(({ attrs, arrays }) => {
    const isToken = readBool(attrs.get(CKA.TOKEN)) === true;
    const isPrivate = readBool(attrs.get(CKA.PRIVATE)) === true;
    core.checkWriteAccess(s, isToken, isPrivate);
    if (!isToken) sessionObjects++;
    const owner = isToken ? { session: null, app: null } : { session: s.handle, app: s.app };
    return { uid: newUid(), attrs, arrays, owner };
  });
  if (sessionObjects > 0) {
    // Session objects live in daemon memory: one application must not exhaust it.
    const limit = core.config.limits.max_session_objects_per_app;
    const held = core.tokens.reduce((n, t) => n + t.sessionObjectCount(s.app), 0);
    if (held + sessionObjects > limit) throw new CkError(CKR.DEVICE_MEMORY, `at most ${limit} session objects per application ([limits] max_session_objects_per_app)`);
  }
  return core.tokenOf(s).addObjects(items);
}

/** Records on the call's note which kind of object it created or destroyed (class and key
 * type are not secret; the audit entry carries them so evidence counts objects by class). */
export function noteObject(note: CallNote, o: HsmObject): void {
  note.objectClass = o.objectClass;
  const kt = readUlong(o.attrs.get(CKA.KEY_TYPE));
  if (kt !== undefined) note.keyType = kt;
}

export async function addObject(core: HsmCore, s: Session, attrs: AttrMap, arrays: Map<number, Attr[]>): Promise<HsmObject> {
  const [obj] = await addObjects(core, s, [{ attrs, arrays }]);
  return obj!;
}

/**
 * What C_CreateObject does with a template before storing it: build the object (attribute
 * rules, CKA_LOCAL false …) and admit its key material under the policy. The admin
 * `key.import` command (admin/key-import.ts) prepares through here too, so both refuse and
 * build exactly alike. Returns the new object's attributes and, in warn mode, the policy's
 * objection it let through.
 */
export function prepareFromTemplate(core: HsmCore, template: Attr[], note: CallNote): NewObject & { warning?: string } {
  const built = buildNewObject(parseTemplate(template), new Map(), { how: 'create' });
  const warning = admitKey(core.policy, built.attrs, note);
  return warning === undefined ? built : { ...built, warning };
}

export const createObject: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const template = req.template();
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  const { attrs, arrays } = prepareFromTemplate(core, template, note);
  const obj = await addObject(core, s, attrs, arrays);
  note.object = obj.handle;
  noteObject(note, obj);
  out.ulong(obj.handle);
};

export const copyObject: Handler = async ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const src = req.ulong(true);
  const template = req.template();
  req.end();
  note.session = h;
  note.object = src;
  const s = core.session(app.id, h);
  const o = core.object(s, src);
  if (readBool(o.attrs.get(CKA.COPYABLE)) === false) throw new CkError(CKR.ACTION_PROHIBITED, 'the object is not copyable');
  const changed = applyChanges(o.attrs, parseTemplate(template), true);
  const attrs: AttrMap = new Map([...changed.attrs].map(([t, v]) => [t, Buffer.from(v)]));
  const copy = await addObject(core, s, attrs, new Map(o.arrays));
  noteObject(note, copy);
  out.ulong(copy.handle);
};

export const destroyObject: Handler = async ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const handle = req.ulong(true);
  req.end();
  note.session = h;
  note.object = handle;
  const s = core.session(app.id, h);
  const o = core.object(s, handle);
  if (o.isToken && !s.readWrite) throw new CkError(CKR.SESSION_READ_ONLY);
  if (readBool(o.attrs.get(CKA.DESTROYABLE)) === false) throw new CkError(CKR.ACTION_PROHIBITED, 'the object is not destroyable');
  noteObject(note, o);
  await core.tokenOf(s).destroyObject(o);
};

export const getObjectSize: Handler = ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const handle = req.ulong(true);
  req.end();
  note.session = h;
  const o = core.object(core.session(app.id, h), handle);
  let size = 0;
  for (const v of o.attrs.values()) size += 8 + v.length;
  out.ulong(size);
};

function answerNested(list: Attr[]): AttrAnswer[] {
  return list.map((a) => ({ type: a.type, value: a.nested ? null : a.value, nested: a.nested ? answerNested(a.nested) : undefined }));
}

export const getAttributeValue: Handler = ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const handle = req.ulong(true);
  const types = req.attrTypes();
  req.end();
  note.session = h;
  note.object = handle;
  const o = core.object(core.session(app.id, h), handle);
  const secret = secretAttributes(o.objectClass);
  const hidden = o.flag(CKA.SENSITIVE) || readBool(o.attrs.get(CKA.EXTRACTABLE)) === false;
  let rv: number = CKR.OK;
  const answers: AttrAnswer[] = types.map((type) => {
    const nested = o.arrays.get(type);
    if (nested) return { type, value: Buffer.alloc(0), nested: answerNested(nested) };
    const value = o.attrs.get(type);
    if (value === undefined) {
      rv = rv === CKR.OK ? CKR.ATTRIBUTE_TYPE_INVALID : rv;
      return { type, value: null };
    }
    if (secret.has(type) && hidden) {
      rv = CKR.ATTRIBUTE_SENSITIVE;
      return { type, value: null };
    }
    return { type, value };
  });
  out.attrValues(answers);
  return rv;
};

export const setAttributeValue: Handler = async ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const handle = req.ulong(true);
  const template = req.template();
  req.end();
  note.session = h;
  note.object = handle;
  const s = core.session(app.id, h);
  const o = core.object(s, handle);
  if (o.isToken && !s.readWrite) throw new CkError(CKR.SESSION_READ_ONLY);
  const changed = applyChanges(o.attrs, parseTemplate(template), false);
  await core.tokenOf(s).updateObject(o, changed.attrs);
};

export const findObjectsInit: Handler = ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const template = req.template();
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  if (s.find) throw new CkError(CKR.OPERATION_ACTIVE);
  const search: AttrMap = new Map(template.filter((a) => !a.nested).map((a) => [a.type, a.value]));
  const results = core
    .tokenOf(s)
    .visibleTo(app.id)
    .filter((o) => matches(o.attrs, search))
    .map((o) => o.handle);
  s.find = { results, position: 0 };
};

export const findObjects: Handler = ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const max = req.ulong(true);
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  if (!s.find) throw new CkError(CKR.OPERATION_NOT_INITIALIZED);
  const t = core.tokenOf(s);
  const page: number[] = [];
  while (page.length < max && s.find.position < s.find.results.length) {
    const handle = s.find.results[s.find.position++]!;
    if (t.find(handle)) page.push(handle); // skip objects destroyed since the search began
  }
  out.ulongList(page);
};

export const findObjectsFinal: Handler = ({ app, req, core, note }) => {
  const h = req.ulong(true);
  req.end();
  note.session = h;
  const s = core.session(app.id, h);
  if (!s.find) throw new CkError(CKR.OPERATION_NOT_INITIALIZED);
  s.find = null;
};
