// Turns a dispatcher call record into what the detector learns from: the client as the
// kernel reported it (uid and executable from SO_PEERCRED, not what it claims), the
// mechanism, and the token key the call used, named by its stable "slot-N/uid" id.
import { CKA } from '../pkcs11/index.js';
import type { CallRecord } from '../dispatch/dispatcher.js';
import type { HsmObject } from '../objects/object.js';
import type { Observation } from './detector.js';

/** Calls whose key is the one they create: making a key is not using one. */
const CREATES = new Set<string>(['C_GenerateKey', 'C_GenerateKeyPair', 'C_UnwrapKey', 'C_DeriveKey', 'C_CreateObject', 'C_CopyObject']);

export interface ObjectLookup {
  find(handle: number): HsmObject | undefined;
}

export const keyId = (o: Pick<HsmObject, 'slotId' | 'uid'>): string => `slot-${o.slotId}/${o.uid}`;

/** Built once per object: the id is looked up on every call that uses the key. */
const ids = new WeakMap<HsmObject, string>();
function cachedKeyId(o: HsmObject): string {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = keyId(o)));
  return id;
}

function labelOf(o: HsmObject): string | undefined {
  const v = o.attrs.get(CKA.LABEL);
  return v === undefined ? undefined : v.toString('utf8').slice(0, 64);
}

/** Session objects are left out: applications that make a key per session would otherwise
 * show a "new key" on every run. */
export function observationOf(rec: CallRecord, tokens: readonly ObjectLookup[], at: number): Observation {
  const o: Observation = { at, uid: rec.app.peer.uid, exe: rec.app.peer.exe, fn: rec.fn, rv: rec.rv };
  if (rec.note.mechanism !== undefined) o.mechanism = rec.note.mechanism;
  const h = rec.note.key;
  if (h !== undefined && !CREATES.has(rec.fn)) {
    for (const t of tokens) {
      const obj = t.find(h);
      if (!obj) continue;
      if (obj.isToken) o.key = { id: cachedKeyId(obj), label: () => labelOf(obj) };
      break;
    }
  }
  return o;
}
