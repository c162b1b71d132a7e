// The daemon-wide error state (FIPS 140-3 "error state"): a latch. Once set, every C_*
// call is refused with CKR_GENERAL_ERROR by the dispatcher gate below, until a re-run of
// the self-tests passes (rerunSelfTests) or the daemon restarts.
// C_Finalize alone still passes so applications can disconnect cleanly; it touches no
// key, no token and no cryptography.
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { AppContext } from '../wire/contract.js';

export type ErrorStateKind = 'post_failure' | 'drbg_failure' | 'integrity_failure';

export interface ErrorStateEvent {
  kind: ErrorStateKind;
  reason: string;
  at: string;
}

export type ErrorStateListener = (e: ErrorStateEvent) => void;

let latched: ErrorStateEvent | null = null;
const listeners: ErrorStateListener[] = [];

/** Sets the latch; listeners (process log, audit log, alerts) hear the first transition only. */
export function latchErrorState(kind: ErrorStateKind, reason: string): void {
  if (latched) return;
  latched = { kind, reason, at: new Date().toISOString() };
  for (const l of [...listeners]) {
    try {
      l(latched);
    } catch {
      // a failing listener must not unlatch or crash anything
    }
  }
}

export function errorState(): ErrorStateEvent | null {
  return latched;
}

/** The audit log subscribes here to record the transition. Returns an unsubscribe. */
export function onErrorState(cb: ErrorStateListener): () => void {
  listeners.push(cb);
  return () => {
    const i = listeners.indexOf(cb);
    if (i >= 0) listeners.splice(i, 1);
  };
}

/** Only a passing self-test run clears the latch (and unit tests). */
export function clearErrorState(): void {
  latched = null;
}

/** Install with dispatcher.gate(errorStateGate). */
export function errorStateGate(_app: AppContext, fn: string): void {
  if (latched && fn !== 'C_Finalize') throw new CkError(CKR.GENERAL_ERROR, `module is in the error state (${latched.kind}: ${latched.reason})`);
}
