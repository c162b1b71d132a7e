// Starts a private craton-hsmd for a test file: its own temp data dir, socket and config.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'smol-toml';
import { afterAll } from 'vitest';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// CRATON_TEST_DAEMON_BIN runs the suites against another build of the daemon.
export const DAEMON_BIN = process.env.CRATON_TEST_DAEMON_BIN ?? path.join(REPO_ROOT, 'bin', 'craton-hsmd');
export const MODULE_PATH = path.join(REPO_ROOT, 'build', 'libcraton_hsm.so');
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface StartOptions {
  /** [slots] count; default: the embedded default. */
  slots?: number;
  /** More TOML, merged over the test defaults (tables may repeat ones the helper sets). */
  extraToml?: string;
  /** Reuse a data directory (restart tests); default: a fresh one under os.tmpdir(). */
  dataDir?: string;
  /** More command-line arguments for craton-hsmd (e.g. --test-faults). */
  args?: string[];
  /** More environment variables for craton-hsmd (e.g. CRATON_HSM_FAULT). */
  env?: Record<string, string>;
}

export interface Daemon {
  socketPath: string;
  dataDir: string;
  modulePath: string;
  configPath: string;
  proc: ChildProcess;
  /** process.env plus CRATON_HSM_SOCKET for this daemon: pass to clients. */
  env: NodeJS.ProcessEnv;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL, then wait for exit. */
  kill9(): Promise<void>;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if the test process exits without running its hooks: no orphaned daemons.
  process.once('exit', () => {
    for (const p of live) p.kill('SIGKILL');
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

// Registered when a test file imports this helper, so it runs after the file's own afterAll
// hooks: kill whatever is still running and remove the temp directories.
afterAll(async () => {
  await Promise.all(
    [...live].map((p) => {
      p.kill('SIGKILL');
      return waitExit(p, STOP_TIMEOUT_MS);
    }),
  );
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
});

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
function merge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTable(out[k]) && isTable(v) ? merge(out[k] as Table, v) : v;
  return out;
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  installExitHook();
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'craton-hsm-'));
  tempDirs.add(runDir);
  const dataDir = opts.dataDir ?? path.join(runDir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const socketPath = path.join(dataDir, 'craton-hsm.sock');
  const configPath = path.join(runDir, 'craton_hsm.toml');

  let toml: Table = { security: { pbkdf2_iterations: 1000 } };
  if (opts.slots !== undefined) toml = merge(toml, { slots: { count: opts.slots } });
  if (opts.extraToml) toml = merge(toml, parse(opts.extraToml) as Table);
  writeFileSync(configPath, stringify(toml) + '\n');

  if (!existsSync(DAEMON_BIN)) throw new Error(`${DAEMON_BIN} is missing`);
  const proc = spawn(process.execPath, [DAEMON_BIN, '--config', configPath, '--data-dir', dataDir, '--socket', socketPath, ...(opts.args ?? [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, CRATON_HSM_CONFIG: undefined, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));

  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });

  const ready = await new Promise<{ modulePath: string; socket: string; pid: number }>((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`craton-hsmd ${why}\n--- daemon stderr ---\n${stderr}\n--- daemon stdout ---\n${out}`));
    };
    const timer = setTimeout(() => fail(`did not print its ready line within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    proc.stdout!.setEncoding('utf8');
    const onData = (d: string) => {
      out += d;
      const m = /^craton-hsmd ready: module=(\S+) socket=(\S+) pid=(\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        proc.off('exit', onExit);
        proc.stdout!.resume(); // keep draining later output
        resolve({ modulePath: m[1]!, socket: m[2]!, pid: Number(m[3]) });
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited before ready (code ${code}, signal ${signal})`);
    proc.stdout!.on('data', onData);
    proc.once('exit', onExit);
    proc.once('error', (e) => fail(`could not be spawned: ${e.message}`));
  });

  if (ready.socket !== socketPath) throw new Error(`daemon reports socket ${ready.socket}, expected ${socketPath}`);
  if (ready.pid !== proc.pid) throw new Error(`daemon reports pid ${ready.pid}, expected ${proc.pid}`);

  return {
    socketPath,
    dataDir,
    modulePath: ready.modulePath,
    configPath,
    proc,
    env: { ...process.env, CRATON_HSM_SOCKET: socketPath },
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      if (!(await waitExit(proc, STOP_TIMEOUT_MS))) {
        proc.kill('SIGKILL');
        await waitExit(proc, STOP_TIMEOUT_MS);
        throw new Error(`craton-hsmd did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${stderr}`);
      }
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await waitExit(proc, STOP_TIMEOUT_MS);
    },
  };
}

/** A TCP port free on loopback a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A daemon with [metrics] on a free loopback port (retried if another process took the
 * port between the probe and the daemon's listen). `url` is the metrics base URL. */
export async function startMetricsDaemon(opts: StartOptions = {}): Promise<{ d: Daemon; url: string }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      const d = await startDaemon({ ...opts, extraToml: `${opts.extraToml ?? ''}\n[metrics]\nenabled = true\nlisten = "127.0.0.1:${port}"\n` });
      return { d, url: `http://127.0.0.1:${port}` };
    } catch (e) {
      if (attempt < 3 && /EADDRINUSE/.test(String(e))) continue;
      throw e;
    }
  }
}
