// Sets up the nonce guard and the PIN lockout policy from the configuration and writes
// every lockout / nonce event to the process log (one stable line per event:
// "security event <kind>: …"). main.ts additionally forwards the events to the alerts
// module; see docs/lockout-and-nonces.md for the wiring.
import type { Config } from '../config/types.js';
import type { Token } from '../token/token.js';
import { GcmNonceGuard, type Severity, type ThresholdEvent } from '../nonce/index.js';

type Log = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

/** Alert kind for a GCM threshold event: gcm_counter_ticket / gcm_counter_page, or
 * gcm_counter_info below 75% (logged, not alerted). */
export function gcmAlertKind(severity: Severity): 'gcm_counter_info' | 'gcm_counter_ticket' | 'gcm_counter_page' {
  return `gcm_counter_${severity}`;
}

function describe(e: ThresholdEvent): string {
  return `key=${e.key} percent=${e.percent} used=${e.used} limit=${e.limit}`;
}

export function installSecurity(config: Config, tokens: Token[], log: Log): GcmNonceGuard {
  for (const t of tokens) {
    t.configureLockout({ baseMs: config.security.failed_login_delay_base_ms, capMs: config.security.failed_login_delay_cap_ms });
    const who = (e: { slot: number; role: string; app: string; session?: number }) =>
      `slot=${e.slot} role=${e.role} app=${e.app || '-'} session=${e.session ?? '-'}`;
    t.events.on('pin_incorrect', (e) => log('info', `security event pin_incorrect: ${who(e)} failed=${e.failed}/${e.max}`));
    t.events.on('pin_incorrect_repeated', (e) =>
      log('warn', `security event pin_incorrect_repeated: ${who(e)} from_caller=${e.fromCaller} failed=${e.failed}/${e.max}`),
    );
    t.events.on('pin_locked', (e) =>
      log('warn', `security event pin_locked: ${who(e)} failed=${e.failed}/${e.max} ${e.transition ? 'locked now' : 'attempt while locked'}`),
    );
    t.events.on('pin_unlocked', (e) => log('info', `security event pin_unlocked: slot=${e.slot} role=${e.role} by=${e.by}`));
  }

  const guard = new GcmNonceGuard({
    dataDir: config.daemon.data_dir,
    limit: config.nonce.gcm_invocation_limit,
    thresholds: config.nonce.alert_thresholds,
    callerIv: config.nonce.caller_iv,
  });
  guard.load();
  for (const t of tokens) {
    // Counters of keys that are gone leave memory and the counter file (never rejects).
    t.onObjectGone = (o) => void guard.forget(o);
    t.onTokenCleared = (slot) => void guard.forgetSlot(slot);
  }
  guard.counters.on('threshold', (e) =>
    log(e.severity === 'info' ? 'info' : 'warn', `security event ${gcmAlertKind(e.severity)}: ${describe(e)}`),
  );
  guard.counters.on('exhausted', (e) =>
    log('warn', `security event gcm_counter_page: ${describe(e)} exhausted: GCM encryption refused from now on (decryption still works)`),
  );
  guard.counters.on('refused', (e) => log('debug', `GCM encryption refused at the invocation limit: key=${e.key} used=${e.used}`));
  guard.on('iv_reuse', (e) => log('warn', `security event gcm_iv_reuse: key=${e.key} ${e.refused ? 'refused' : 'accepted (caller_iv = "accept")'}`));
  return guard;
}
