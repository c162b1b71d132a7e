// A PKCS#11 session: which token, read-only or read/write, and the operations and
// search in progress. Login state is not here: it belongs to the application on the
// token (token/token.ts), so every session of the application sees the same state.
import type { Operation, OpKind } from '../mechanisms/types.js';
import type { InputGate } from '../policy/enforcer.js';

export interface ActiveOperation {
  op: Operation;
  mechanism: number;
  key: number | null;
  /** Multi-part started: single-part calls are then out of order (CKR_OPERATION_ACTIVE). */
  updated: boolean;
  /** CKA_ALWAYS_AUTHENTICATE keys need a CKU_CONTEXT_SPECIFIC login before use. */
  needsContextLogin: boolean;
  /** The FIPS approved indicator decided at C_*Init (policy/), repeated on every step's audit entry. */
  approved: boolean;
  /** Policy decided on the data (CKM_RSA_PKCS sign/verify: DigestInfo of an approved hash). */
  inputGate?: InputGate;
}

export interface FindState {
  results: number[];
  position: number;
}

export class Session {
  readonly ops = new Map<OpKind, ActiveOperation>();
  find: FindState | null = null;

  constructor(
    readonly handle: number,
    readonly slotId: number,
    readonly app: string,
    readonly readWrite: boolean,
  ) {}

  /** Ends every active operation (errors, C_Logout, C_CloseSession). */
  endOperations(): void {
    this.ops.clear();
    this.find = null;
  }
}
