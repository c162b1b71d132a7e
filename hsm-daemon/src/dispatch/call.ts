// The shape of one handler: decode inputs from `req`, call req.end(), do the work, write
// outputs to `out`. Returning a CK_RV other than CKR_OK keeps the written payload (only
// C_GetAttributeValue does that); throwing CkError replies with that CK_RV and no payload.
import type { AppContext, ReplyWriter, RequestReader } from '../wire/contract.js';
import type { HsmCore } from './core.js';

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
}

export type Handler = (c: Call) => Promise<number | void> | number | void;
