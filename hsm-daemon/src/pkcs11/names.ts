// Symbolic names for numeric PKCS#11 values, for audit entries, logs and errors.
import { CKR, CKM, CKA, CKO, CKK, FUNCTIONS } from './constants.generated.js';

function reverse(prefix: string, table: Record<string, number>): Map<number, string> {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) if (!m.has(v)) m.set(v, `${prefix}_${k}`);
  return m;
}

const rvNames = reverse('CKR', CKR);
const mechNames = reverse('CKM', CKM);
const attrNames = reverse('CKA', CKA);
const classNames = reverse('CKO', CKO);
const keyTypeNames = reverse('CKK', CKK);

const hex = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;

export const rvName = (rv: number): string => rvNames.get(rv) ?? `CKR_${hex(rv)}`;
export const mechanismName = (m: number): string => mechNames.get(m) ?? `CKM_${hex(m)}`;
export const attributeName = (a: number): string => attrNames.get(a) ?? `CKA_${hex(a)}`;
export const className = (c: number): string => classNames.get(c) ?? `CKO_${hex(c)}`;
export const keyTypeName = (k: number): string => keyTypeNames.get(k) ?? `CKK_${hex(k)}`;
/** keyTypeName for people: CKK_EC, the 2.40 name tools print, for the value CKK_ECDSA shares
 * (audit entries keep keyTypeName's spelling, which logs already carry). */
export const keyTypeLabel = (k: number): string => (k === CKK.EC ? 'CKK_EC' : keyTypeName(k));

/** Wire call id (1-based position in the 2.40 function list) to its C_* name. */
export const functionName = (callId: number): string => FUNCTIONS[callId - 1] ?? `call#${callId}`;
export const callIdOf = (fn: (typeof FUNCTIONS)[number]): number => FUNCTIONS.indexOf(fn) + 1;
