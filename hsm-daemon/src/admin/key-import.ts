// The admin `key.import` command (docs/admin.md "key import"): token objects from PKCS#11
// templates the CLI built out of key and certificate files (admin-cli/src/keys/import.ts).
// Each object goes through prepareFromTemplate, the code C_CreateObject runs, inside a
// transient user login; all or nothing: every object is prepared (and judged by the policy)
// before any is stored, then all are stored in one durable token write (a crash keeps the
// whole bundle or none of it). The response (and the audit entry server.ts writes from it)
// names the objects by class, key type, size, label and id, never by value.
import { CKA } from '../pkcs11/index.js';
import { className, keyTypeLabel } from '../pkcs11/names.js';
import { readBool } from '../pkcs11/values.js';
import { CkError } from '../errors.js';
import { addObjects, prepareFromTemplate } from '../dispatch/handlers/objects.js';
import type { HsmObject } from '../objects/object.js';
import { keyContext } from '../policy/enforcer.js';
import { Session } from '../session/session.js';
import type { Attr } from '../wire/contract.js';
import { BadRequest, asRole, notInErrorState, pinArg, reqInt, requireInitialized, type AdminContext, type Args } from './commands.js';

/** More objects than a key, its public half and a long chain never come in one file. */
const MAX_OBJECTS = 64;
const TYPE_KEY = /^0x[0-9a-f]{1,16}$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** args.objects: [{ template: { "0x<CKA hex>": "<base64 canonical value>", … } }, …]. */
function templatesArg(args: Args): Attr[][] {
  const v = args.objects;
  if (!Array.isArray(v) || v.length === 0) throw new BadRequest('objects: expected a non-empty array of { template }');
  if (v.length > MAX_OBJECTS) throw new BadRequest(`objects: at most ${MAX_OBJECTS} per request`);
  return v.map((o: unknown, i) => {
    const tpl = (o as { template?: unknown } | null)?.template;
    if (typeof tpl !== 'object' || tpl === null || Array.isArray(tpl)) throw new BadRequest(`objects[${i}].template: expected an object`);
    const attrs: Attr[] = [];
    for (const [k, val] of Object.entries(tpl as Record<string, unknown>)) {
      if (!TYPE_KEY.test(k)) throw new BadRequest(`objects[${i}].template: attribute type ${JSON.stringify(k)} is not 0x<hex>`);
      if (typeof val !== 'string' || val.length % 4 !== 0 || !BASE64.test(val)) throw new BadRequest(`objects[${i}].template[${k}]: expected base64`);
      attrs.push({ type: Number.parseInt(k.slice(2), 16), value: Buffer.from(val, 'base64') });
    }
    const token = attrs.find((a) => a.type === CKA.TOKEN);
    // A session object made by the admin would vanish with the transient login.
    if (!token || readBool(token.value) !== true) throw new BadRequest(`objects[${i}]: admin imports make token objects; CKA_TOKEN must be true`);
    return attrs;
  });
}

function summary(o: HsmObject) {
  const label = o.attrs.get(CKA.LABEL);
  const kt = o.keyType;
  const size = keyContext(o.attrs);
  return {
    uid: o.uid,
    handle: o.handle,
    class: className(o.objectClass),
    key_type: kt === undefined ? null : keyTypeLabel(kt),
    label: label ? label.toString('utf8') : '',
    id: o.attrs.get(CKA.ID)?.toString('hex') ?? '',
    bits: kt === undefined ? null : (size.keyBits ?? null),
    curve: size.curve ?? null,
    private: o.isPrivate,
    sensitive: readBool(o.attrs.get(CKA.SENSITIVE)) ?? null,
    extractable: readBool(o.attrs.get(CKA.EXTRACTABLE)) ?? null,
  };
}

export type ImportedObject = ReturnType<typeof summary>;

export async function keyImport(ctx: AdminContext, args: Args, pid: number) {
  const slot = reqInt(args, 'slot');
  const templates = templatesArg(args);
  const userPin = pinArg(args, 'user_pin', true);
  const adopted = new Set<number>();
  try {
    notInErrorState();
    const t = ctx.core.token(slot);
    requireInitialized(t);
    return await asRole(t, 'user', userPin, pid, async (app) => {
      // Session handle 0 is never a real session; only token objects are made, so no
      // object is owned by it.
      const s = new Session(0, slot, app, true);
      const warnings: Array<{ object: number; reason: string }> = [];
      const prepared = templates.map((tpl, i) => {
        try {
          const p = prepareFromTemplate(ctx.core, tpl, {});
          if (p.warning) warnings.push({ object: i, reason: p.warning });
          return p;
        } catch (e) {
          if (!(e instanceof CkError)) throw e;
          const detail = e.message.replace(/^CKR_\w+:? ?/, '');
          throw new CkError(e.rv, `object ${i + 1} of ${templates.length} refused${detail ? `: ${detail}` : ''}; nothing was imported`, e.refusal);
        }
      });
      // One durable change for the whole bundle: a crash keeps all of it or none.
      const made = await addObjects(ctx.core, s, prepared);
      for (const i of templates.keys()) adopted.add(i);
      return { slot, imported: made.map(summary), warnings };
    });
  } finally {
    userPin.fill(0);
    // Values of objects that were not made (a refusal) are nobody's: zero them. Those that
    // were made belong to their objects now (and were wiped if the objects were destroyed).
    for (const [i, tpl] of templates.entries()) if (!adopted.has(i)) for (const a of tpl) a.value.fill(0);
  }
}

/** What the audit entry says about a key.import request: never a value. */
export function keyImportAuditDetails(args: Args, result: unknown): Record<string, unknown> {
  const d: Record<string, unknown> = { requested: Array.isArray(args.objects) ? args.objects.length : null };
  const r = result as { imported?: ImportedObject[]; warnings?: unknown[] } | null;
  if (r?.imported) {
    d.objects = r.imported.map((o) => ({ uid: o.uid, class: o.class, key_type: o.key_type, bits: o.bits, curve: o.curve, label: o.label, id: o.id }));
    if (r.warnings?.length) d.policy_warnings = r.warnings;
  }
  return d;
}
