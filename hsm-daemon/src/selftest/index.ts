// The daemon's safety wiring in one call (main.ts): alerts from [alerts], the error-state
// gate on the dispatcher, the DRBG failure hook, the PIN alert triggers, and the power-on
// self-tests — all before the socket serves. Also rerunSelfTests() for
// `craton-hsm-admin selftest`.
import { Alerts, setAlerts, type AlertKind } from '../alerts/index.js';
import { pinTriggers } from '../alerts/triggers.js';
import type { Config } from '../config/types.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import { onDrbgFailure } from '../drbg/index.js';
import { parseFaults, runPowerOnSelfTests, type Faults, type PostOptions, type SelfTestReport } from './post.js';
import { clearErrorState, errorState, errorStateGate, latchErrorState, onErrorState } from './state.js';

export { runPowerOnSelfTests, parseFaults, type SelfTestReport, type Faults } from './post.js';
export { onErrorState, errorState, type ErrorStateEvent } from './state.js';

export type SafetyLog = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export interface SafetyOptions {
  config: Config;
  log: SafetyLog;
  dispatcher: Pick<Dispatcher, 'gate' | 'observe'>;
  /** --test-faults: honour CRATON_HSM_FAULT. Never set in production. */
  testFaults?: boolean;
  /** Environment to read CRATON_HSM_FAULT from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Passed to the self-tests (unit tests). */
  post?: Omit<PostOptions, 'faults'>;
  /** Alerts options (unit tests: backoff, writeLine). */
  alerts?: ConstructorParameters<typeof Alerts>[1];
}

export interface Safety {
  alerts: Alerts;
  /** The latest self-test report: startup's, replaced by each rerunSelfTests(). */
  readonly report: SelfTestReport;
  /** Runs the self-tests again; a passing run clears the error state and resolves the page. */
  rerunSelfTests(): Promise<SelfTestReport>;
  onErrorState: typeof onErrorState;
}

function summarize(r: SelfTestReport): string {
  const kats = `${r.kats.filter((k) => k.ok).length}/${r.kats.length} known-answer tests`;
  return `${kats}, integrity ${r.integrity.ok ? `ok (${r.integrity.files} files)` : 'FAILED'}, DRBG ${r.drbg.ok ? 'ok' : 'FAILED'}, ${r.durationMs} ms`;
}

export async function startSafety(opts: SafetyOptions): Promise<Safety> {
  const { config, log } = opts;
  let faults: Faults = {};
  const spec = (opts.env ?? process.env).CRATON_HSM_FAULT;
  if (opts.testFaults) {
    faults = parseFaults(spec);
    if (spec) log('warn', `--test-faults: injecting CRATON_HSM_FAULT=${spec} (test builds only)`);
  } else if (spec) {
    log('warn', 'CRATON_HSM_FAULT is set but ignored: fault injection needs --test-faults');
  }

  const alerts = new Alerts(config.alerts, { log, ...opts.alerts });
  setAlerts(alerts);

  // The latch: process log at error level, then a page. The audit log subscribes with onErrorState().
  onErrorState((e) => {
    log('error', `entering the error state (${e.kind}): ${e.reason}; every call now returns CKR_GENERAL_ERROR`);
    alerts.raise({
      kind: e.kind as AlertKind,
      severity: 'critical',
      summary: `Craton HSM error state: ${e.reason}`.slice(0, 1024),
      details: { error_state: e.kind, reason: e.reason, at: e.at, pid: process.pid },
      dedupKey: `${e.kind}:${process.pid}`,
    });
  });
  onDrbgFailure((reason) => latchErrorState('drbg_failure', `DRBG health test failed: ${reason}`));

  opts.dispatcher.gate(errorStateGate);
  opts.dispatcher.observe(pinTriggers(alerts));

  const run = async (): Promise<SelfTestReport> => {
    const r = await runPowerOnSelfTests({ ...opts.post, faults });
    if (r.passed) log('info', `power-on self-tests passed: ${summarize(r)}`);
    else log('error', `power-on self-tests FAILED: ${summarize(r)}`);
    return r;
  };

  let report = await run();
  return {
    alerts,
    /** The latest run's report (startup, then each rerunSelfTests). */
    get report() {
      return report;
    },
    onErrorState,
    async rerunSelfTests() {
      // The latch stays set while the tests run; only a passing run clears it.
      const before = errorState();
      const r = await run();
      report = r;
      if (r.passed && before) {
        clearErrorState();
        log('info', `error state (${before.kind}) cleared by a passing self-test run`);
        alerts.resolve(`${before.kind}:${process.pid}`, 'Craton HSM self-tests pass again; error state cleared');
      }
      return r;
    },
  };
}
