// The sealed part of a stored token object and the two key domains it can be sealed in:
// the token key (private objects, and public objects written before the device key
// existed) and the per-data-directory device key (secrets of public objects,
// store/device-key.ts). The AAD binds a blob to its slot, its object and its key domain, so
// a blob can be moved neither between objects or slots nor from one domain to the other.
import type { StoredObject, TokenRecord } from './token-file.js';
import { seal, unseal } from './seal.js';

export type SealDomain = 'token' | 'device';

export function objectAad(domain: SealDomain, sealSlot: number, uid: string): string {
  // The token-domain form is the one stores have always used; it must not change.
  return domain === 'token' ? `craton-hsm/object/v1/slot-${sealSlot}/${uid}` : `craton-hsm/object/v1/device/slot-${sealSlot}/${uid}`;
}

export function domainOf(so: StoredObject): SealDomain {
  return so.sealKey === 'device' ? 'device' : 'token';
}

export function sealObjectBody(key: Buffer, domain: SealDomain, sealSlot: number, uid: string, body: Buffer): string {
  return seal(key, objectAad(domain, sealSlot, uid), body);
}

/** The plaintext body (JSON) or null when it does not authenticate. Zero it after use. */
export function openObjectBody(key: Buffer, so: StoredObject, sealSlot: number): Buffer | null {
  if (so.sealed === undefined) return null;
  // A private object is never in the device domain: refuse such a record outright.
  if (domainOf(so) === 'device' && so.private) return null;
  return unseal(key, objectAad(domainOf(so), sealSlot, so.uid), so.sealed);
}

export class ResealError extends Error {}

/**
 * A token record whose device-sealed objects are sealed under `to` instead of `from` (a
 * restore onto another data directory); with `to` null only checks that every one opens.
 * Throws ResealError naming the first object that does not; the input is not changed.
 */
export function resealDeviceObjects(rec: TokenRecord, from: Buffer | null, to: Buffer | null): TokenRecord {
  const sealSlot = rec.sealSlot ?? rec.slot;
  const objects = rec.objects.map((so) => {
    if (domainOf(so) !== 'device') return so;
    const body = from ? openObjectBody(from, so, sealSlot) : null;
    if (!body) throw new ResealError(`public object ${so.uid} is sealed under the source's device key, which ${from ? 'does not open it' : 'the backup does not hold'}`);
    try {
      return to ? { ...so, sealed: sealObjectBody(to, 'device', sealSlot, so.uid, body) } : so;
    } finally {
      body.fill(0);
    }
  });
  return { ...rec, objects };
}
