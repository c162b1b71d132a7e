// Turns a caller's template into a complete, consistent attribute set, with the
// PKCS#11 error codes for each way a template can be wrong. Used by C_CreateObject,
// C_GenerateKey(Pair), C_UnwrapKey, C_DeriveKey, C_CopyObject, C_SetAttributeValue.
import type { AttrMap } from '../mechanisms/types.js';
import type { Attr } from '../wire/contract.js';
import { CKA, CKO, CKR } from '../pkcs11/index.js';
import { attrKind } from '../pkcs11/attributes.js';
import { boolValue, readBool, readUlong, ulongValue, ULONG_UNAVAILABLE } from '../pkcs11/values.js';
import { CkError } from '../errors.js';
import {
  allowedAttributes, defaultAttributes, forbiddenForCreate, MODIFIABLE_AFTER_CREATION, ONE_WAY, requiredForCreate, secretValueLengths, TOKEN_SET,
} from './rules.js';

export interface ParsedTemplate {
  attrs: AttrMap;
  arrays: Map<number, Attr[]>;
}

/** Checks each value's encoding and folds duplicates (same value twice is harmless,
 * two different values is CKR_TEMPLATE_INCONSISTENT). */
export function parseTemplate(template: Attr[]): ParsedTemplate {
  const attrs: AttrMap = new Map();
  const arrays = new Map<number, Attr[]>();
  for (const a of template) {
    const kind = attrKind(a.type);
    if (kind === 'attrArray') {
      arrays.set(a.type, a.nested ?? []);
      continue;
    }
    const badLength =
      (kind === 'ulong' && a.value.length !== 8) ||
      (kind === 'bool' && a.value.length !== 1) ||
      (kind === 'date' && a.value.length !== 8 && a.value.length !== 0) ||
      (kind === 'ulongArray' && a.value.length % 8 !== 0);
    if (badLength) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, `attribute 0x${a.type.toString(16)} has a value of the wrong size`);
    const seen = attrs.get(a.type);
    if (seen && !seen.equals(a.value)) throw new CkError(CKR.TEMPLATE_INCONSISTENT, `attribute 0x${a.type.toString(16)} given twice`);
    attrs.set(a.type, a.value);
  }
  return { attrs, arrays };
}

export type Creation =
  | { how: 'create' }
  | { how: 'generate'; mechanism: number }
  | { how: 'unwrap' }
  | { how: 'derive'; mechanism: number };

/**
 * Builds a new object's attributes. `implied` holds what the operation fixes (class,
 * key type, generated values); the caller's template may repeat but not contradict it.
 */
export function buildNewObject(tpl: ParsedTemplate, implied: AttrMap, creation: Creation): ParsedTemplate {
  const attrs: AttrMap = new Map();
  for (const [t, v] of tpl.attrs) {
    if (TOKEN_SET.has(t)) throw new CkError(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${t.toString(16)} is set by the token`);
    const fixed = implied.get(t);
    if (fixed && !fixed.equals(v)) {
      throw new CkError(CKR.TEMPLATE_INCONSISTENT, `attribute 0x${t.toString(16)} contradicts the operation`);
    }
    attrs.set(t, v);
  }
  for (const [t, v] of implied) attrs.set(t, v);

  const cls = readUlong(attrs.get(CKA.CLASS));
  if (cls === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS is required');
  const isKey = cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;
  const keyType = readUlong(attrs.get(CKA.KEY_TYPE));
  if (isKey && keyType === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_KEY_TYPE is required for keys');
  const allowed = allowedAttributes(cls, isKey ? keyType : undefined);
  if (!allowed) {
    throw new CkError(
      isKey ? CKR.TEMPLATE_INCONSISTENT : CKR.ATTRIBUTE_VALUE_INVALID,
      isKey ? 'unsupported key type for this class' : 'unsupported object class',
    );
  }
  for (const t of [...attrs.keys(), ...tpl.arrays.keys()]) {
    if (!allowed.has(t)) throw new CkError(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${t.toString(16)} is not valid for this object`);
  }
  if (creation.how === 'create') {
    for (const t of forbiddenForCreate(cls, keyType)) {
      if (attrs.has(t)) throw new CkError(CKR.TEMPLATE_INCONSISTENT, `attribute 0x${t.toString(16)} is derived by the token`);
    }
    for (const t of requiredForCreate(cls, keyType)) {
      if (!attrs.has(t)) throw new CkError(CKR.TEMPLATE_INCOMPLETE, `attribute 0x${t.toString(16)} is required`);
    }
  }

  const value = attrs.get(CKA.VALUE);
  if (cls === CKO.SECRET_KEY && value && keyType !== undefined) {
    const lengths = secretValueLengths(keyType);
    if (value.length === 0 || (lengths && !lengths.includes(value.length))) {
      throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_VALUE of ${value.length} bytes is not a valid key of this type`);
    }
    if (!attrs.has(CKA.VALUE_LEN)) attrs.set(CKA.VALUE_LEN, ulongValue(value.length));
  }

  for (const [t, v] of defaultAttributes(cls)) if (!attrs.has(t) && allowed.has(t)) attrs.set(t, boolValue(v));
  for (const t of [CKA.LABEL, CKA.ID, CKA.SUBJECT, CKA.START_DATE, CKA.END_DATE, CKA.APPLICATION, CKA.OBJECT_ID]) {
    if (!attrs.has(t) && allowed.has(t)) attrs.set(t, Buffer.alloc(0));
  }
  if (isKey) {
    const local = creation.how === 'generate';
    attrs.set(CKA.LOCAL, boolValue(local));
    attrs.set(CKA.KEY_GEN_MECHANISM, creation.how === 'generate' ? ulongValue(creation.mechanism) : Buffer.from(ULONG_UNAVAILABLE));
    if (cls !== CKO.PUBLIC_KEY) {
      const sensitive = readBool(attrs.get(CKA.SENSITIVE)) === true;
      const extractable = readBool(attrs.get(CKA.EXTRACTABLE)) === true;
      // Keys that arrived in the clear (created, or derived/unwrapped) were never
      // guaranteed secret, so ALWAYS_SENSITIVE/NEVER_EXTRACTABLE start false for them.
      const bornInside = creation.how === 'generate';
      attrs.set(CKA.ALWAYS_SENSITIVE, boolValue(bornInside && sensitive));
      attrs.set(CKA.NEVER_EXTRACTABLE, boolValue(bornInside && !extractable));
    }
  }
  return { attrs, arrays: new Map(tpl.arrays) };
}

/**
 * Applies a C_SetAttributeValue / C_CopyObject template to existing attributes.
 * `copy` additionally allows CKA_TOKEN and CKA_PRIVATE (and CKA_MODIFIABLE true→false).
 */
export function applyChanges(current: AttrMap, changes: ParsedTemplate, copy: boolean): ParsedTemplate {
  const cls = readUlong(current.get(CKA.CLASS)) ?? -1;
  const keyType = readUlong(current.get(CKA.KEY_TYPE));
  const allowed = allowedAttributes(cls, keyType) ?? new Set<number>();
  const modifiable = readBool(current.get(CKA.MODIFIABLE)) !== false;
  const next: AttrMap = new Map(current);
  for (const [t, v] of changes.attrs) {
    if (!allowed.has(t)) throw new CkError(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${t.toString(16)} is not valid for this object`);
    const old = current.get(t);
    if (old && old.equals(v)) continue;
    if (copy && (t === CKA.TOKEN || t === CKA.PRIVATE)) {
      next.set(t, v);
      continue;
    }
    if (t === CKA.MODIFIABLE && copy && readBool(v) === false) {
      next.set(t, v);
      continue;
    }
    if (!MODIFIABLE_AFTER_CREATION.has(t)) throw new CkError(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${t.toString(16)} cannot be changed`);
    if (!modifiable && !copy) throw new CkError(CKR.ATTRIBUTE_READ_ONLY, 'the object is not modifiable (CKA_MODIFIABLE is false)');
    const direction = ONE_WAY.get(t);
    if (direction !== undefined && readBool(v) !== direction) {
      throw new CkError(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${t.toString(16)} can only be set to ${direction}`);
    }
    next.set(t, v);
  }
  const arrays = new Map<number, Attr[]>();
  for (const t of changes.arrays.keys()) {
    if (!allowed.has(t)) throw new CkError(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${t.toString(16)} is not valid for this object`);
    throw new CkError(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${t.toString(16)} cannot be changed`);
  }
  return { attrs: next, arrays };
}

/** True when every attribute of the search template equals the object's value. */
export function matches(attrs: AttrMap, search: AttrMap): boolean {
  for (const [t, v] of search) {
    const have = attrs.get(t);
    if (!have || !have.equals(v)) return false;
  }
  return true;
}
