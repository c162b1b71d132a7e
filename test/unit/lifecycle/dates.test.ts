// hsm-daemon/src/lifecycle/dates.ts: CKA_START_DATE / CKA_END_DATE windows.
import { describe, expect, it } from 'vitest';
import { checkKeyDates, ckDate, type KeyUse } from '../../../hsm-daemon/src/lifecycle/index.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { CKA, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';

const NOW = new Date('2030-06-15T23:59:00Z');
const attrs = (start?: string, end?: string) => {
  const m = new Map<number, Buffer>();
  if (start !== undefined) m.set(CKA.START_DATE, Buffer.from(start, 'latin1'));
  if (end !== undefined) m.set(CKA.END_DATE, Buffer.from(end, 'latin1'));
  return m;
};
function rv(fn: () => void): number {
  try {
    fn();
    return CKR.OK;
  } catch (e) {
    return (e as CkError).rv;
  }
}
const ALL: KeyUse[] = ['encrypt', 'decrypt', 'sign', 'verify', 'wrap', 'unwrap'];

describe('key lifecycle windows', () => {
  it('no dates, empty dates and "00000000" set no limit', () => {
    for (const a of [attrs(), attrs('', ''), attrs('00000000', '00000000')]) for (const u of ALL) expect(rv(() => checkKeyDates(a, u, 'refuse', NOW))).toBe(CKR.OK);
    expect(ckDate(Buffer.from('2030061'))).toBeNull();
    expect(ckDate(Buffer.from('20300615'))).toBe('20300615');
  });

  it('inside the window (both ends inclusive, UTC days) everything runs', () => {
    for (const u of ALL) expect(rv(() => checkKeyDates(attrs('20300615', '20300615'), u, 'refuse', NOW))).toBe(CKR.OK);
  });

  it('before the start date every use is refused', () => {
    for (const u of ALL) expect(rv(() => checkKeyDates(attrs('20300616'), u, 'allow', NOW))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
  });

  it('after the end date protecting uses are refused; processing follows the config', () => {
    const a = attrs(undefined, '20300614');
    for (const u of ['encrypt', 'sign', 'wrap'] as const) expect(rv(() => checkKeyDates(a, u, 'allow', NOW))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    for (const u of ['decrypt', 'verify', 'unwrap'] as const) {
      expect(rv(() => checkKeyDates(a, u, 'allow', NOW))).toBe(CKR.OK);
      expect(rv(() => checkKeyDates(a, u, 'refuse', NOW))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    }
  });
});
