// Key lifecycle windows (SP 800-57 Part 1 §5.3): CKA_START_DATE / CKA_END_DATE checked at
// C_*Init, C_WrapKey and C_UnwrapKey (dispatch/handlers/crypto.ts, keys.ts).
//
// - Before CKA_START_DATE (pre-activation) the key does nothing: CKR_KEY_FUNCTION_NOT_PERMITTED.
// - After CKA_END_DATE (the originator-usage period is over) protecting uses (encrypt, sign,
//   wrap) are refused with CKR_KEY_FUNCTION_NOT_PERMITTED; processing uses (decrypt, verify,
//   unwrap) follow [lifecycle] processing_after_end_date: "allow" (default: the recipient-
//   usage period may outlast the originator's, so old ciphertexts and signatures stay
//   readable) or "refuse".
// Dates are compared as UTC calendar days, both ends inclusive. An empty CK_DATE (or one
// that is not 8 ASCII digits, or "00000000") means "no limit", as PKCS#11 lets a key have
// no dates. PKCS#11 defines the attributes but no error for them; CKR_KEY_FUNCTION_NOT_PERMITTED
// is the code for "this key may not perform this function" (also used at the GCM limit).
import { CKA, CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { AttrMap } from '../mechanisms/types.js';

export type KeyUse = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'wrap' | 'unwrap';
export type ProcessingAfterEnd = 'allow' | 'refuse';

const PROTECTING: ReadonlySet<KeyUse> = new Set(['encrypt', 'sign', 'wrap']);

/** YYYYMMDD of a CK_DATE value, or null when it sets no date. */
export function ckDate(v: Buffer | undefined): string | null {
  if (!v || v.length !== 8) return null;
  const s = v.toString('latin1');
  return /^\d{8}$/.test(s) && s !== '00000000' ? s : null;
}

const today = (now: Date): string => now.toISOString().slice(0, 10).replace(/-/g, '');

/** Throws CKR_KEY_FUNCTION_NOT_PERMITTED when `use` of a key with `attrs` is outside its window. */
export function checkKeyDates(attrs: AttrMap, use: KeyUse, processingAfterEnd: ProcessingAfterEnd, now = new Date()): void {
  const start = ckDate(attrs.get(CKA.START_DATE));
  const end = ckDate(attrs.get(CKA.END_DATE));
  if (!start && !end) return;
  const d = today(now);
  if (start && d < start) throw new CkError(CKR.KEY_FUNCTION_NOT_PERMITTED, `the key is not active before its CKA_START_DATE ${start}`, 'key_dates');
  if (end && d > end && (PROTECTING.has(use) || processingAfterEnd === 'refuse')) {
    throw new CkError(CKR.KEY_FUNCTION_NOT_PERMITTED, `the key's CKA_END_DATE ${end} has passed (${use} refused)`, 'key_dates');
  }
}
