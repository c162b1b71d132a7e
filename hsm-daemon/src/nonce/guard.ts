// The GCM admission check run at C_EncryptInit (dispatch/handlers/crypto.ts): counts the
// invocation against the key's limit (counters.ts) and applies the caller-IV rule.
//
// One C_EncryptInit with CKM_AES_GCM is one invocation of the authenticated-encryption
// function (one IV). It is counted at init, after the parameters have been validated and
// before any ciphertext can exist; an init that is never followed by C_Encrypt still counts
// (conservative: counters never undercount).
//
// Caller-supplied IVs ([nonce] caller_iv):
//   "accept"        counted, and a repeat of a recently used (key, IV) is logged as a warning
//                   (Java's SunPKCS11 and most clients supply their own IVs);
//   "reject_reuse"  a (key, IV) pair already used for encryption within the tracking window
//                   is refused with CKR_MECHANISM_PARAM_INVALID.
// The window holds the last IV_WINDOW IVs per key in memory; it does not survive a restart.
import { EventEmitter } from 'node:events';
import { CKM, CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { Mechanism } from '../mechanisms/types.js';
import { GcmCounters, type CounterSettings } from './counters.js';

export type CallerIvPolicy = 'accept' | 'reject_reuse';
export const IV_WINDOW = 16384;

export interface GuardSettings extends CounterSettings {
  callerIv: CallerIvPolicy;
}

/** What the guard needs of a key (HsmObject satisfies it). */
export interface GuardedKey {
  readonly uid: string;
  readonly slotId: number;
  readonly isToken: boolean;
}

export interface IvReuseEvent {
  key: string;
  refused: boolean;
}

export interface GuardEvents {
  iv_reuse: [IvReuseEvent];
}

/** Stable identity of a key for counting: slot and CKA_UNIQUE_ID-like uid. */
export function keyId(key: GuardedKey): string {
  return `slot-${key.slotId}/${key.uid}`;
}

export class GcmNonceGuard extends EventEmitter<GuardEvents> {
  readonly counters: GcmCounters;
  /** Per key object (dies with it): the recent IVs. */
  private readonly recent = new WeakMap<GuardedKey, { set: Set<string>; order: string[] }>();

  constructor(private readonly settings: GuardSettings) {
    super();
    this.counters = new GcmCounters(settings);
  }

  load(): void {
    this.counters.load();
  }

  /** True when this operation is one the guard governs. */
  static governs(kind: string, mech: Mechanism): boolean {
    return kind === 'encrypt' && mech.type === CKM.AES_GCM;
  }

  /** Admits one GCM encryption with `key` and `mech` (already validated by the family). */
  async admit(key: GuardedKey, mech: Mechanism): Promise<void> {
    const id = keyId(key);
    const iv = mech.param.kind === 'gcm' ? mech.param.iv.toString('base64') : null;
    const refuse = this.settings.callerIv === 'reject_reuse';
    let track = iv !== null ? this.recent.get(key) : undefined;
    if (iv !== null && track?.set.has(iv)) {
      this.emit('iv_reuse', { key: id, refused: refuse });
      if (refuse) throw new CkError(CKR.MECHANISM_PARAM_INVALID, 'this IV was already used for encryption with this key');
    }
    // Recorded before the counter is awaited, so two concurrent inits with one IV
    // cannot both pass; a refused init leaves its IV recorded (conservative).
    if (iv !== null) {
      if (!track) {
        track = { set: new Set(), order: [] };
        this.recent.set(key, track);
      }
      if (!track.set.has(iv)) {
        track.set.add(iv);
        track.order.push(iv);
        if (track.order.length > IV_WINDOW) track.set.delete(track.order.shift()!);
      }
    }
    await this.counters.take(id, key.isToken);
  }

  /** A session key was destroyed or its session closed. */
  forget(key: GuardedKey): void {
    const id = keyId(key);
    this.recent.delete(key);
    if (!key.isToken) this.counters.forgetSessionKey(id);
  }
}
