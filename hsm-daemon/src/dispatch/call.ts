// The shape of one handler: decode inputs from `req`, call req.end(), do the work, write
// outputs to `out`. Returning a CK_RV other than CKR_OK keeps the written payload (only
// C_GetAttributeValue does that); throwing CkError replies with that CK_RV and no payload.
import type { AppContext, ReplyWriter, RequestReader } from '../wire/contract.js';
import type { HsmCore } from './core.js';
import type { RefusalKind } from '../errors.js';

export interface Call {
  app: AppContext;
  req: RequestReader;
  out: ReplyWriter;
  core: HsmCore;
  /** Filled by handlers for the audit observers: what the call touched. */
  note: CallNote;
}

export interface CallNote {
  session?: number;
  key?: number;
  mechanism?: number;
  object?: number;
  /** FIPS approved-service indicator of the call's mechanism (policy/enforcer.ts). */
  approved?: boolean;
  /** Set when the policy does not allow the call: refused (strict) or run (warn). */
  policyViolation?: string;
  /** Which control refused the call, set where it decided (policy/enforcer.ts, the login
   * handler, nonce/counters.ts and lifecycle/dates.ts through CkError.refusal); the audit
   * entry's details.refused_by. */
  refusal?: RefusalKind;
  /** The object the call created (C_CreateObject, C_CopyObject, C_GenerateKey, C_UnwrapKey,
   * C_DeriveKey) or destroyed (C_DestroyObject): its CKO_ class and CKK_ key type, which
   * are not secret (audit details.class / details.key_type). */
  objectClass?: number;
  keyType?: number;
  /** AES-GCM admission (C_EncryptInit, C_WrapKey): the key's "slot-N/uid" id and its
   * invocation count after this call (audit details.gcm_key / gcm_used / gcm_limit). */
  gcm?: { key: string; used: number; limit: number };
  /** C_InitToken: how many objects the re-initialisation destroyed (audit
   * details.destroyed_objects), so evidence can count objects gone with a token. */
  destroyedObjects?: number;
}

export type Handler = (c: Call) => Promise<number | void> | number | void;
