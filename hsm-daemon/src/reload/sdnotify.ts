// systemd readiness protocol (sd_notify(3)) without libsystemd: one datagram per message to
// $NOTIFY_SOCKET, sent by the sdNotify function of the native addon (build/peercred.node,
// hsm-daemon/native/peercred.c). Without $NOTIFY_SOCKET (not under systemd Type=notify)
// everything here is a no-op.
//   READY=1     once the PKCS#11 socket is listening (main.ts prints its ready line then)
//   STOPPING=1  on SIGTERM/SIGINT, before the sockets close
//   WATCHDOG=1  every WATCHDOG_USEC/2 when the unit sets WatchdogSec= (a stalled event loop
//               stops the pings and systemd restarts the daemon)
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../paths.js';
import type { Level } from '../log.js';

type LogFn = (level: Level, msg: string) => void;
type SdNotifyFn = (socketPath: string, message: string) => number;

let sdNotifyFn: SdNotifyFn | null = null;
function addon(): SdNotifyFn {
  if (sdNotifyFn) return sdNotifyFn;
  const path = join(repoRoot(), 'build', 'peercred.node');
  const loaded = createRequire(import.meta.url)(path) as { sdNotify?: unknown };
  if (typeof loaded.sdNotify !== 'function') throw new Error(`${path} has no sdNotify (rebuild: npm run build)`);
  sdNotifyFn = loaded.sdNotify as SdNotifyFn;
  return sdNotifyFn;
}

export interface Notifier {
  /** True when $NOTIFY_SOCKET was set at start. */
  readonly enabled: boolean;
  /** Sends one message ("READY=1\nSTATUS=…"); never throws (a failure is logged once). */
  notify(message: string): boolean;
  /** Stops the watchdog timer. */
  close(): void;
}

export function startNotifier(log: LogFn, env: NodeJS.ProcessEnv = process.env): Notifier {
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return { enabled: false, notify: () => false, close: () => undefined };
  let warned = false;
  const notify = (message: string): boolean => {
    try {
      addon()(socketPath, message);
      return true;
    } catch (e) {
      if (!warned) log('warn', `sd_notify: ${(e as Error).message}`);
      warned = true;
      return false;
    }
  };
  let timer: NodeJS.Timeout | null = null;
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
  if (Number.isFinite(usec) && usec > 0 && forUs) {
    const everyMs = Math.max(50, Math.floor(usec / 2000));
    timer = setInterval(() => notify('WATCHDOG=1'), everyMs);
    timer.unref();
  }
  return {
    enabled: true,
    notify,
    close() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
