// The one error type of the daemon. Throw CkError anywhere below dispatch; the
// dispatcher turns it into the reply's CK_RV in exactly one place. Any other
// exception that reaches the dispatcher is a bug and becomes CKR_GENERAL_ERROR
// with a log line (never a crash, never a stack trace on the wire).
import { rvName } from './pkcs11/names.js';

/** Which preventive control refused a call (the audit entry's details.refused_by, the
 * evidence document's refusal kinds): set where the refusal is decided, never inferred. */
export type RefusalKind = 'policy' | 'lockout' | 'gcm_limit' | 'key_dates';

export class CkError extends Error {
  constructor(
    readonly rv: number,
    message?: string,
    /** The control that refused, when this error is a refusal by one (dispatcher.ts copies it to the call's note). */
    readonly refusal?: RefusalKind,
  ) {
    super(message ? `${rvName(rv)}: ${message}` : rvName(rv));
    this.name = 'CkError';
  }
}

export function ckAssert(cond: unknown, rv: number, message?: string): asserts cond {
  if (!cond) throw new CkError(rv, message);
}
