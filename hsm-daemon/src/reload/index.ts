// SIGHUP: re-read the configuration and apply what is safe to change in a running daemon.
//
// Reloadable (applied in place on the live Config object, so `craton-hsm-admin config`,
// the policy enforcer and the dispatcher see the new values on their next call):
//   [algorithms] *                       the FIPS policy: enforce, allow/deny, minimum sizes …
//                                        (operations already initialised finish under the old policy)
//   [daemon] log_level                   the process log threshold
//   [security] failed_login_delay_base_ms, failed_login_delay_cap_ms   the lockout delays
// Everything else (sockets, data dir, slots, limits, PBKDF2 and PIN rules, audit, nonce,
// alert sinks, metrics listener) is kept as it is: one warn line lists the changed keys that
// need a restart. A file that does not load (bad TOML, a bad value) changes nothing: one error
// line, the running configuration stays in force. The audit log's own SIGHUP handler
// (checkpoint + reopen, audit/index.ts) runs independently of this one.
//
// main.ts wiring (after the servers are up):
//   installReload({ overrides: { configPath: opts.config, dataDir: opts.dataDir, socketPath: opts.socket }, config, core, log });
import { loadConfig, type Config, type ConfigOverrides } from '../config/load.js';
import type { Level } from '../log.js';
import { startNotifier, type Notifier } from './sdnotify.js';

export { startNotifier, type Notifier } from './sdnotify.js';

type LogFn = ((level: Level, msg: string) => void) & { setLevel?: (level: Level) => void };

export interface ReloadOptions {
  /** The same overrides main() gave loadConfig (CRATON_HSM_CONFIG is read again). */
  overrides: ConfigOverrides;
  /** The live configuration; reloadable keys are updated in place. */
  config: Config;
  core: {
    policy: { settings: object };
    tokens: ReadonlyArray<{ configureLockout(d: { baseMs: number; capMs: number }): void }>;
  };
  log: LogFn;
}

export interface ReloadResult {
  ok: boolean;
  /** Dotted keys whose new value is now in force. */
  applied: string[];
  /** Dotted keys that changed in the file but need a restart (old value kept). */
  refused: string[];
  error?: string;
}

/** Keys (exact, or a table prefix ending in '.') that a reload may change. */
export const RELOADABLE: readonly string[] = [
  'algorithms.',
  'daemon.log_level',
  'security.failed_login_delay_base_ms',
  'security.failed_login_delay_cap_ms',
];

export const isReloadable = (key: string): boolean => RELOADABLE.some((r) => (r.endsWith('.') ? key.startsWith(r) : key === r));

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Leaf values by dotted key (arrays are leaves). */
function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (isTable(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

function changedKeys(a: Config, b: Config): string[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const keys = new Set([...fa.keys(), ...fb.keys()]);
  return [...keys].filter((k) => fa.get(k) !== fb.get(k)).sort();
}

/** Re-reads the configuration and applies the reloadable changes. Never throws. */
export function reloadConfig(opts: ReloadOptions): ReloadResult {
  const { config, core, log } = opts;
  let next: Config;
  try {
    next = loadConfig(opts.overrides);
  } catch (e) {
    const error = (e as Error).message;
    log('error', `reload: ${error}; the running configuration is unchanged`);
    return { ok: false, applied: [], refused: [], error };
  }
  const changed = changedKeys(config, next);
  const applied = changed.filter(isReloadable);
  const refused = changed.filter((k) => !isReloadable(k));

  if (applied.some((k) => k.startsWith('algorithms.'))) {
    // The enforcer reads its settings object on every call; normally it is config.algorithms itself.
    const settings = core.policy.settings as Record<string, unknown>;
    Object.assign(config.algorithms, next.algorithms);
    if (settings !== (config.algorithms as unknown)) Object.assign(settings, next.algorithms);
  }
  if (applied.includes('daemon.log_level')) {
    config.daemon.log_level = next.daemon.log_level;
    log.setLevel?.(next.daemon.log_level);
  }
  if (applied.some((k) => k.startsWith('security.failed_login_delay_'))) {
    config.security.failed_login_delay_base_ms = next.security.failed_login_delay_base_ms;
    config.security.failed_login_delay_cap_ms = next.security.failed_login_delay_cap_ms;
    for (const t of core.tokens) t.configureLockout({ baseMs: next.security.failed_login_delay_base_ms, capMs: next.security.failed_login_delay_cap_ms });
  }

  if (refused.length > 0) log('warn', `reload: not reloadable, kept the running values (restart to apply): ${refused.join(', ')}`);
  log('info', applied.length > 0 ? `reload: applied ${applied.join(', ')}` : 'reload: no reloadable changes');
  return { ok: true, applied, refused };
}

/** SIGHUP → reloadConfig. Returns a function that removes the handler. */
export function installReload(opts: ReloadOptions & { signal?: NodeJS.Signals }): () => void {
  const signal = opts.signal ?? 'SIGHUP';
  const onSignal = () => void reloadConfig(opts);
  process.on(signal, onSignal);
  return () => void process.off(signal, onSignal);
}

/**
 * The daemon's service-manager hooks, installed by main.ts once the PKCS#11 socket listens:
 * SIGHUP → reloadConfig, READY=1 now (with MAINPID and a STATUS line), STOPPING=1 on
 * SIGTERM/SIGINT (this listener runs alongside main's stop()), WATCHDOG=1 when WatchdogSec= is set.
 */
export function installService(opts: ReloadOptions & { env?: NodeJS.ProcessEnv }): { notifier: Notifier; close(): void } {
  const uninstallReload = installReload(opts);
  const notifier = startNotifier(opts.log, opts.env);
  notifier.notify(`READY=1\nMAINPID=${process.pid}\nSTATUS=serving ${opts.config.daemon.socket_path}`);
  const onStop = () => {
    notifier.notify('STOPPING=1\nSTATUS=shutting down');
    notifier.close();
  };
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  return {
    notifier,
    close() {
      uninstallReload();
      notifier.close();
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
    },
  };
}
