// The walk behind `craton-hsm-admin migrate`: every token object of the source is read
// through the source's PKCS#11 module and re-created on our token through ours, so the
// daemon sees (and audits) ordinary C_CreateObject / C_UnwrapKey calls. Key material never
// passes through this process in the clear: it leaves the source wrapped under a one-off
// AES-256 transport key that exists only as a session object on both tokens.
import { randomBytes } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { attributeName, className, keyTypeLabel, mechanismName } from '../../../hsm-daemon/src/pkcs11/names.js';
import { allowedAttributes } from '../../../hsm-daemon/src/objects/rules.js';
import { attributesToCopy, hasId, isWrappedClass } from './attributes.js';
import { P11Error, findAll, nativeBool, nativeUlong, p11, readAttribute, type Handle, type P11, type TemplateAttr } from './p11.js';

export interface TokenSide {
  p11: P11;
  slot: Handle;
  session: Handle;
  /** C_GetMechanismList of the slot. */
  mechanisms: ReadonlySet<number>;
}

export type Result = 'copied' | 'would-copy' | 'skipped' | 'failed';

export interface Row {
  class: string;
  key_type: string | null;
  label: string;
  /** CKA_ID in hex ('' when empty or the class has none). */
  id: string;
  result: Result;
  /** Why it was skipped or failed. */
  reason?: string;
  /** CK_RV name of a failure or refusal. */
  rv?: string;
  /** How it was (or would be) copied: C_CreateObject, or the wrap mechanism. */
  method?: string;
  notes: string[];
}

export const TRANSPORT_LABEL = 'craton-hsm-admin migrate transport key';

/** Room for the PKCS#8 of an RSA-16384 key wrapped with KWP; a source asking for more
 * (CKR_BUFFER_TOO_SMALL) gets one retry with the largest size. */
const WRAP_BUFFER = 16 * 1024;
const WRAP_BUFFER_MAX = 256 * 1024;

/** Refusals of C_WrapKey that mean "this key may not leave", not "something broke". */
const WRAP_REFUSALS = new Set<number>([CKR.KEY_UNEXTRACTABLE, CKR.KEY_NOT_WRAPPABLE, CKR.KEY_FUNCTION_NOT_PERMITTED]);

const NON_EXTRACTABLE = 'non-extractable (CKA_EXTRACTABLE=false): cannot leave the source token';

/** The AES-256 key that carries keys across: made on first need, destroyed on both
 * tokens and zeroed in memory by close(), also when the walk stops on an error. */
class TransportKey {
  private value: Buffer | null = null;
  private handles: { src: Handle; dst: Handle } | null = null;
  private failure: { error: P11Error; side: 'source' | 'target' } | null = null;
  private srcHandle: Handle | null = null;

  constructor(
    private readonly src: TokenSide,
    private readonly dst: TokenSide,
  ) {}

  private template(value: Buffer, wrap: boolean): TemplateAttr[] {
    return [
      { type: CKA.CLASS, value: CKO.SECRET_KEY },
      { type: CKA.KEY_TYPE, value: CKK.AES },
      { type: CKA.TOKEN, value: false },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: false },
      { type: CKA.LABEL, value: TRANSPORT_LABEL },
      { type: CKA.WRAP, value: wrap },
      { type: CKA.UNWRAP, value: !wrap },
      { type: CKA.ENCRYPT, value: false },
      { type: CKA.DECRYPT, value: false },
      { type: CKA.SIGN, value: false },
      { type: CKA.VERIFY, value: false },
      { type: CKA.DERIVE, value: false },
      { type: CKA.VALUE, value },
    ];
  }

  /** The handles on both tokens, or the (remembered) failure to make them. */
  get(): { src: Handle; dst: Handle } | { error: P11Error; side: 'source' | 'target' } {
    if (this.handles) return this.handles;
    if (this.failure) return this.failure;
    const value = randomBytes(32);
    this.value = value;
    let side: 'source' | 'target' = 'source';
    try {
      this.srcHandle = p11('C_CreateObject (transport key)', () => this.src.p11.C_CreateObject(this.src.session, this.template(value, true)));
      side = 'target';
      const dst = p11('C_CreateObject (transport key)', () => this.dst.p11.C_CreateObject(this.dst.session, this.template(value, false)));
      this.handles = { src: this.srcHandle, dst };
      return this.handles;
    } catch (e) {
      if (!(e instanceof P11Error)) throw e;
      this.failure = { error: e, side };
      return this.failure;
    } finally {
      // Both tokens hold their copy now (or never will): this process needs it no more.
      value.fill(0);
      this.value = null;
    }
  }

  /** Returns what could not be cleaned up (for the report); never throws. */
  close(): string[] {
    const problems: string[] = [];
    this.value?.fill(0);
    this.value = null;
    const destroy = (side: TokenSide, h: Handle | null, where: string) => {
      if (!h) return;
      try {
        p11('C_DestroyObject', () => side.p11.C_DestroyObject(side.session, h));
      } catch (e) {
        problems.push(`transport key on the ${where}: ${(e as Error).message} (a session object: it goes when the session closes)`);
      }
    };
    destroy(this.src, this.srcHandle, 'source');
    destroy(this.dst, this.handles?.dst ?? null, 'target');
    this.handles = null;
    this.srcHandle = null;
    return problems;
  }
}

interface SourceObject {
  cls: number;
  keyType: number | undefined;
  values: Map<number, Buffer>;
  row: Row;
}

function describe(src: TokenSide, obj: Handle): SourceObject {
  const read = (t: number) => {
    const r = readAttribute(src.p11, src.session, obj, t);
    return 'value' in r ? r.value : undefined;
  };
  const cls = nativeUlong(read(CKA.CLASS));
  if (cls === undefined) throw new P11Error('C_GetAttributeValue(CKA_CLASS)', CKR.GENERAL_ERROR);
  const isKey = cls === CKO.PUBLIC_KEY || cls === CKO.PRIVATE_KEY || cls === CKO.SECRET_KEY;
  const keyType = isKey ? nativeUlong(read(CKA.KEY_TYPE)) : undefined;
  const values = new Map<number, Buffer>();
  for (const t of attributesToCopy(cls, keyType)) {
    const v = read(t);
    // Empty values (no label, no dates, …) are what the target defaults to anyway.
    if (v && v.length > 0) values.set(t, v);
  }
  const label = values.get(CKA.LABEL)?.toString('utf8') ?? '';
  const row: Row = {
    class: className(cls),
    key_type: keyType === undefined ? null : keyTypeLabel(keyType),
    label,
    id: values.get(CKA.ID)?.toString('hex') ?? '',
    result: 'skipped',
    notes: [],
  };
  if (nativeBool(read(CKA.TRUSTED)) === true) row.notes.push('CKA_TRUSTED=true not copied: only the SO may set it (C_SetAttributeValue in an SO session)');
  return { cls, keyType, values, row };
}

/** Attributes that say what an object IS (not how it may be used): when the target holds an
 * object of the same class, label and id, these must agree for it to be the same object.
 * Secret values are never among them (they cannot be read, and must not be compared here). */
const IDENTITY = [CKA.KEY_TYPE, CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.EC_PARAMS, CKA.EC_POINT, CKA.CERTIFICATE_TYPE, CKA.SUBJECT, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.APPLICATION, CKA.VALUE_LEN];

/** 'absent', 'same' (an object of the same class, label and id whose identifying content
 * agrees), or 'conflict' naming the first attribute that differs. */
function onTarget(dst: TokenSide, o: SourceObject): { state: 'absent' | 'same' } | { state: 'conflict'; attribute: number } {
  const tpl: TemplateAttr[] = [
    { type: CKA.CLASS, value: o.cls },
    { type: CKA.TOKEN, value: true },
    { type: CKA.LABEL, value: o.values.get(CKA.LABEL) ?? Buffer.alloc(0) },
  ];
  if (hasId(o.cls)) tpl.push({ type: CKA.ID, value: o.values.get(CKA.ID) ?? Buffer.alloc(0) });
  const found = findAll(dst.p11, dst.session, tpl);
  if (found.length === 0) return { state: 'absent' };
  // Public values (a certificate's or data object's CKA_VALUE) identify the object too;
  // a key's CKA_VALUE is secret and is not in o.values for keys that are wrapped.
  const compared = o.cls === CKO.SECRET_KEY || o.cls === CKO.PRIVATE_KEY ? IDENTITY : [...IDENTITY, CKA.VALUE];
  let first: number | undefined;
  for (const h of found) {
    const differs = compared.find((t) => {
      const mine = o.values.get(t);
      if (mine === undefined) return false;
      const r = readAttribute(dst.p11, dst.session, h, t);
      return 'value' in r && !r.value.equals(mine);
    });
    if (differs === undefined) return { state: 'same' };
    first ??= differs;
  }
  return { state: 'conflict', attribute: first! };
}

function targetTemplate(o: SourceObject): TemplateAttr[] {
  const tpl: TemplateAttr[] = [
    { type: CKA.CLASS, value: o.cls },
    { type: CKA.TOKEN, value: true },
  ];
  if (o.keyType !== undefined) tpl.push({ type: CKA.KEY_TYPE, value: o.keyType });
  for (const [t, v] of o.values) tpl.push({ type: t, value: v });
  return tpl;
}

const fail = (row: Row, e: unknown, where: string): Row => {
  if (!(e instanceof P11Error)) throw e;
  return { ...row, result: 'failed', rv: e.rvName, reason: `${e.fn} on the ${where} returned ${e.rvName}` };
};

/** Which wrap mechanism carries a key of class `cls` (secret keys: `valueLen` bytes), or
 * why none can, given both tokens' mechanism lists. */
export function chooseMechanism(
  src: ReadonlySet<number>,
  dst: ReadonlySet<number>,
  cls: number,
  valueLen: number | undefined,
): { mech: number; note?: string } | { skip: string } {
  const both = (m: number) => src.has(m) && dst.has(m);
  // PKCS#11 2.40 names RFC 5649 CKM_AES_KEY_WRAP_PAD; 3.0 added CKM_AES_KEY_WRAP_KWP for it.
  for (const m of [CKM.AES_KEY_WRAP_PAD, CKM.AES_KEY_WRAP_KWP]) if (both(m)) return { mech: m };
  if (cls === CKO.SECRET_KEY && valueLen !== undefined && valueLen >= 16 && valueLen % 8 === 0 && both(CKM.AES_KEY_WRAP)) {
    return { mech: CKM.AES_KEY_WRAP, note: 'the source has no AES key wrap with padding (RFC 5649); carried with CKM_AES_KEY_WRAP (RFC 3394)' };
  }
  const what =
    cls === CKO.PRIVATE_KEY
      ? 'private keys need AES key wrap with padding (RFC 5649)'
      : both(CKM.AES_KEY_WRAP)
        ? 'its length is not a multiple of 8 bytes, which CKM_AES_KEY_WRAP (RFC 3394) needs'
        : 'the source does not offer CKM_AES_KEY_WRAP either';
  return { skip: `the source does not offer CKM_AES_KEY_WRAP_PAD or CKM_AES_KEY_WRAP_KWP: ${what}` };
}

function wrapOut(src: TokenSide, mech: number, transport: Handle, obj: Handle): Buffer {
  let size = WRAP_BUFFER;
  for (;;) {
    try {
      return p11('C_WrapKey', () => src.p11.C_WrapKey(src.session, { mechanism: mech }, transport, obj, Buffer.alloc(size)));
    } catch (e) {
      if (e instanceof P11Error && e.rv === CKR.BUFFER_TOO_SMALL && size < WRAP_BUFFER_MAX) {
        size = WRAP_BUFFER_MAX;
        continue;
      }
      throw e;
    }
  }
}

function copyKey(src: TokenSide, dst: TokenSide, transport: TransportKey, obj: Handle, o: SourceObject, dryRun: boolean): Row {
  const row = o.row;
  const extractable = nativeBool(o.values.get(CKA.EXTRACTABLE));
  if (extractable !== true) return { ...row, result: 'skipped', reason: extractable === false ? NON_EXTRACTABLE : 'CKA_EXTRACTABLE unreadable on the source: cannot tell whether it may leave' };
  if (nativeBool(o.values.get(CKA.WRAP_WITH_TRUSTED)) === true) {
    return { ...row, result: 'skipped', reason: 'CKA_WRAP_WITH_TRUSTED=true: the source wraps it only under a CKA_TRUSTED key, which the migration cannot provide' };
  }
  const choice = chooseMechanism(src.mechanisms, dst.mechanisms, o.cls, nativeUlong(o.values.get(CKA.VALUE_LEN)));
  if ('skip' in choice) return { ...row, result: 'skipped', reason: choice.skip };
  const notes = choice.note ? [...row.notes, choice.note] : row.notes;
  const method = mechanismName(choice.mech);
  if (dryRun) return { ...row, result: 'would-copy', method, notes };
  const t = transport.get();
  if ('error' in t) return fail({ ...row, method, notes }, t.error, t.side);
  let blob: Buffer;
  try {
    blob = wrapOut(src, choice.mech, t.src, obj);
  } catch (e) {
    if (e instanceof P11Error && (WRAP_REFUSALS.has(e.rv) || e.rv === CKR.MECHANISM_INVALID)) {
      return { ...row, result: 'skipped', rv: e.rvName, method, notes, reason: `the source refuses to wrap it (C_WrapKey: ${e.rvName})` };
    }
    return fail({ ...row, method, notes }, e, 'source');
  }
  try {
    p11('C_UnwrapKey', () => dst.p11.C_UnwrapKey(dst.session, { mechanism: choice.mech }, t.dst, blob, targetTemplate(o)));
    return { ...row, result: 'copied', method, notes };
  } catch (e) {
    return fail({ ...row, method, notes }, e, 'target');
  } finally {
    blob.fill(0);
  }
}

function copyObject(dst: TokenSide, o: SourceObject, dryRun: boolean): Row {
  const method = 'C_CreateObject';
  if (dryRun) return { ...o.row, result: 'would-copy', method };
  try {
    p11('C_CreateObject', () => dst.p11.C_CreateObject(dst.session, targetTemplate(o)));
    return { ...o.row, result: 'copied', method };
  } catch (e) {
    return fail({ ...o.row, method }, e, 'target');
  }
}

export interface MigrationReport {
  rows: Row[];
  /** Problems cleaning up the transport key (normally none). */
  cleanup: string[];
}

/** Copies (or with dryRun only judges) every token object of `src` into `dst`. */
export function migrate(src: TokenSide, dst: TokenSide, opts: { dryRun: boolean }): MigrationReport {
  const objects = findAll(src.p11, src.session, [{ type: CKA.TOKEN, value: true }]);
  const transport = new TransportKey(src, dst);
  const rows: Row[] = [];
  let cleanup: string[] = [];
  try {
    for (const obj of objects) {
      let o: SourceObject;
      try {
        o = describe(src, obj);
      } catch (e) {
        if (!(e instanceof P11Error)) throw e;
        rows.push({ class: '?', key_type: null, label: '', id: '', result: 'failed', rv: e.rvName, reason: `${e.fn} on the source returned ${e.rvName}`, notes: [] });
        continue;
      }
      try {
        rows.push(judgeAndCopy(src, dst, transport, obj, o, opts.dryRun));
      } finally {
        // Private data objects' values are secrets too; nothing needs them any more.
        for (const v of o.values.values()) v.fill(0);
      }
    }
  } finally {
    cleanup = transport.close();
  }
  // Tokens enumerate in no particular order; the report groups each key pair's objects.
  const rank = (c: string) => ['CKO_PRIVATE_KEY', 'CKO_PUBLIC_KEY', 'CKO_CERTIFICATE', 'CKO_SECRET_KEY', 'CKO_DATA'].indexOf(c) >>> 0;
  rows.sort((a, b) => a.id.localeCompare(b.id) || rank(a.class) - rank(b.class) || a.label.localeCompare(b.label));
  return { rows, cleanup };
}

function judgeAndCopy(src: TokenSide, dst: TokenSide, transport: TransportKey, obj: Handle, o: SourceObject, dryRun: boolean): Row {
  const row = o.row;
  const allowed = allowedAttributes(o.cls, o.keyType);
  if (![CKO.DATA, CKO.CERTIFICATE, CKO.PUBLIC_KEY, CKO.PRIVATE_KEY, CKO.SECRET_KEY].includes(o.cls as never)) {
    return { ...row, result: 'skipped', reason: `${row.class} objects are not migrated` };
  }
  if (!allowed) return { ...row, result: 'skipped', reason: `${row.key_type ?? row.class} ${o.keyType !== undefined ? 'keys are' : 'is'} not supported by Craton HSM` };
  for (const t of [...o.values.keys()]) {
    if (!allowed.has(t)) {
      o.values.delete(t);
      row.notes.push(`attribute 0x${t.toString(16)} not supported by Craton HSM: not copied`);
    }
  }
  try {
    const there = onTarget(dst, o);
    if (there.state === 'same') return { ...row, result: 'skipped', reason: 'already present (same class, label and id on the target, same content)' };
    if (there.state === 'conflict') {
      return {
        ...row,
        result: 'failed',
        reason: `the target already has a ${row.class} with this label and id but a different ${attributeName(there.attribute)}: not copied; rename or remove one of them`,
      };
    }
  } catch (e) {
    return fail(row, e, 'target');
  }
  return isWrappedClass(o.cls) ? copyKey(src, dst, transport, obj, o, dryRun) : copyObject(dst, o, dryRun);
}
