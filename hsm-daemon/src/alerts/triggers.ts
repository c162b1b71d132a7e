// Triggers the dispatcher can see by itself (seed 003): repeated CKR_PIN_INCORRECT from
// one session (ticket) and CKR_PIN_LOCKED (ticket). The others are raised where they
// happen (self-tests, DRBG, audit log, nonce counters, policy) through raiseAlert().
import { CKR } from '../pkcs11/index.js';
import type { CallRecord } from '../dispatch/dispatcher.js';
import type { Alerts } from './index.js';

/** Failed C_Login attempts from one session before a ticket. */
export const PIN_INCORRECT_THRESHOLD = 3;

export function pinTriggers(alerts: Alerts, threshold = PIN_INCORRECT_THRESHOLD): (r: CallRecord) => void {
  const failures = new Map<string, number>();
  return (r) => {
    if (r.fn !== 'C_Login') return;
    const key = `${r.app.id}:${r.note.session ?? 0}`;
    if (r.rv === CKR.OK) {
      failures.delete(key);
      return;
    }
    if (r.rv === CKR.PIN_INCORRECT) {
      const n = (failures.get(key) ?? 0) + 1;
      failures.set(key, n);
      if (failures.size > 10_000) failures.delete(failures.keys().next().value!);
      if (n >= threshold)
        alerts.raise({
          kind: 'pin_incorrect_repeated',
          severity: 'warning',
          summary: `${n} consecutive CKR_PIN_INCORRECT from one session`,
          details: { app: r.app.id, session: r.note.session, failures: n, uid: r.app.peer.uid },
          dedupKey: `pin_incorrect_repeated:${key}`,
        });
    } else if (r.rv === CKR.PIN_LOCKED) {
      alerts.raise({
        kind: 'pin_locked',
        severity: 'warning',
        summary: 'CKR_PIN_LOCKED: a token PIN is locked; SO intervention required',
        details: { app: r.app.id, session: r.note.session, uid: r.app.peer.uid },
        dedupKey: `pin_locked:${r.app.id}`,
      });
    }
  };
}
