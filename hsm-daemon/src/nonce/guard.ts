// The GCM admission check run at C_EncryptInit (dispatch/handlers/crypto.ts): counts the
// invocation against the key's limit (counters.ts) and applies the caller-IV rule.
//
// One C_EncryptInit with CKM_AES_GCM is one invocation of the authenticated-encryption
// function (one IV). It is counted at init, after the parameters have been validated and
// before any ciphertext can exist; an init that is never followed by C_Encrypt still counts
// (conservative: counters never undercount).
//
// The IV rule ([nonce] caller_iv):
//   "accept"        caller IVs are counted, and a repeat of a recently used (key, IV) is
//                   logged as a warning (Java's SunPKCS11 and most clients supply their own IVs);
//   "reject_reuse"  a (key, IV) pair already used for encryption within the tracking window
//                   is refused with CKR_MECHANISM_PARAM_INVALID;
//   "generate"      the token generates every encryption IV (SP 800-38D §8.2.1 deterministic
//                   construction): fixed field (4 bytes, from the key's identity) || invocation
//                   field (8 bytes, big-endian: the durable invocation counter of counters.ts,
//                   which never goes back, so no restart reuses an IV). The caller passes a
//                   12-byte all-zero IV buffer; any other caller IV is refused
//                   (CKR_MECHANISM_PARAM_INVALID), and so is a module that cannot receive the
//                   IV back (wire protocol 1). The IV returns to the caller's pIv.
// Under "accept" and "reject_reuse" the IV comes from outside the module, which therefore
// cannot guarantee its uniqueness: admit() reports callerIv = true and the call is audited
// approved = false (FIPS 140-3 IG C.H).
// The window holds the last IV_WINDOW IVs per key in memory; it does not survive a restart.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CKM, CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { Mechanism } from '../mechanisms/types.js';
import { GcmCounters, type CounterSettings } from './counters.js';

export type CallerIvPolicy = 'accept' | 'reject_reuse' | 'generate';
/** Length of a token-generated IV: 4-byte fixed field + 8-byte invocation field. */
export const GENERATED_IV_BYTES = 12;
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

/** What admit() resolves with. */
export interface Admission {
  iv: Buffer | null;
  callerIv: boolean;
  /** keyId(key). */
  key: string;
  /** Invocations of the key including this one. */
  used: number;
  limit: number;
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
    // C_WrapKey with CKM_AES_GCM is an encryption under the wrapping key like any other.
    return (kind === 'encrypt' || kind === 'wrap') && mech.type === CKM.AES_GCM;
  }

  /** The §8.2.1 IV for invocation `n` of `key`. The fixed field differs between key objects
   * (copies of one key value included) with probability 1 − 2^-32 per pair. `epoch` (set
   * for a key restored from a backup, random per restore) gives each restored copy its own
   * fixed field, so hosts restored from one backup do not repeat each other's IVs. */
  static generatedIv(key: GuardedKey, n: number, epoch?: string): Buffer {
    const iv = Buffer.alloc(GENERATED_IV_BYTES);
    const label = `craton-hsm/gcm-fixed-field/v1/${keyId(key)}${epoch ? `/epoch/${epoch}` : ''}`;
    createHash('sha256').update(label).digest().copy(iv, 0, 0, 4);
    iv.writeBigUInt64BE(BigInt(n), 4);
    return iv;
  }

  /**
   * Admits one GCM encryption with `key` and `mech` (already validated by the family).
   * `canReturnIv`: the client can receive a generated IV (wire protocol ≥ 2).
   * Resolves with the generated IV ("generate"), or iv = null and callerIv = true; and with
   * the key's invocation count including this one (`used`, for the call's audit entry: the
   * count this admission reached, not whatever concurrent calls have since added).
   */
  async admit(key: GuardedKey, mech: Mechanism, canReturnIv = false): Promise<Admission> {
    if (this.settings.callerIv === 'generate') {
      const p = mech.param;
      if (p.kind !== 'gcm' || p.iv.length !== GENERATED_IV_BYTES || p.iv.some((b) => b !== 0)) {
        throw new CkError(CKR.MECHANISM_PARAM_INVALID, 'caller_iv = "generate": pass a 12-byte all-zero IV buffer; the token writes the IV it generates into it');
      }
      if (!canReturnIv) throw new CkError(CKR.MECHANISM_PARAM_INVALID, 'caller_iv = "generate" needs a module that receives the generated IV (wire protocol 2)');
      const id = keyId(key);
      const n = await this.counters.take(id, key.isToken);
      return { iv: GcmNonceGuard.generatedIv(key, n, this.counters.epochOf(id)), callerIv: false, key: id, used: n + 1, limit: this.counters.limit };
    }
    const n = await this.admitCallerIv(key, mech);
    return { iv: null, callerIv: true, key: keyId(key), used: n + 1, limit: this.counters.limit };
  }

  /** The key's invocation count now (undefined before its first GCM encryption). */
  usageOf(key: GuardedKey): { key: string; used: number; limit: number } | undefined {
    const u = this.counters.usage(keyId(key));
    return u && { key: u.key, used: u.used, limit: u.limit };
  }

  private async admitCallerIv(key: GuardedKey, mech: Mechanism): Promise<number> {
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
    return this.counters.take(id, key.isToken);
  }

  /** A key object is gone (destroyed, or its session closed): its counter and IV window
   * go too; a token key's entry leaves the counter file. */
  forget(key: GuardedKey): Promise<void> {
    this.recent.delete(key);
    return this.counters.forget([keyId(key)]);
  }

  /** C_InitToken cleared slot `slotId`: every counter of its keys goes. */
  forgetSlot(slotId: number): Promise<void> {
    const prefix = `slot-${slotId}/`;
    const mark = this.counters.forgetRestore(prefix);
    return Promise.all([mark, this.counters.forget((id) => id.startsWith(prefix))]).then(() => undefined);
  }
}
