// Loads the real PKCS#11 module into this process (pkcs11js), and runs client programs.
import { execFile } from 'node:child_process';
import pkcs11js from 'pkcs11js';
import { MODULE_PATH } from './daemon.js';
import { CKF, CKU } from '../../hsm-daemon/src/pkcs11/index.js';

export type PKCS11 = InstanceType<typeof pkcs11js.PKCS11>;
export { pkcs11js };

export interface LoadedModule {
  p11: PKCS11;
  /** C_Finalize (ignoring CKR_CRYPTOKI_NOT_INITIALIZED) and unload. */
  close(): void;
}

/**
 * Points the module at `socketPath` (CRATON_HSM_SOCKET, set in this process's real
 * environment before load), loads it and calls C_Initialize.
 */
export function loadModule(socketPath: string, opts: { modulePath?: string; initialize?: boolean } = {}): LoadedModule {
  process.env.CRATON_HSM_SOCKET = socketPath;
  const p11 = new pkcs11js.PKCS11();
  p11.load(opts.modulePath ?? MODULE_PATH);
  if (opts.initialize ?? true) p11.C_Initialize();
  return {
    p11,
    close() {
      try {
        p11.C_Finalize();
      } catch (e) {
        if (!/CKR_CRYPTOKI_NOT_INITIALIZED/.test(String(e))) throw e;
      }
      p11.close();
    },
  };
}

export interface CliResult {
  /** Exit code; -1 when killed by a signal (see `signal`). */
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; never rejects on a non-zero exit. */
export function runCli(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`cannot run ${file}: ${err.message}`)); // ENOENT etc.
          return;
        }
        const e = err as (Error & { code?: number; signal?: string | null; killed?: boolean }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, signal: e?.signal ?? null, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** For assertion messages. */
export const describeRun = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The CK_RV a pkcs11js call ended with (CKR_OK when it returned). pkcs11js reports it
 * as `code`, or only in the message as "CKR_NAME:<decimal>". */
export function rvOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (typeof code === 'number') return code;
    const m = /CKR_\w+:(\d+)/.exec(String((e as Error).message));
    if (m) return Number(m[1]);
    throw e;
  }
}

/**
 * C_InitToken on the slot at `slotIndex`, an SO session that sets the user PIN, then a new
 * R/W session logged in as the user (returned). The usual starting point of a suite.
 */
export function initTokenAndLogin(
  p11: PKCS11,
  opts: { soPin: string; userPin: string; label: string; slotIndex?: number },
): { slot: Buffer; session: Buffer } {
  const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
  const slot = p11.C_GetSlotList(true)[opts.slotIndex ?? 0]!;
  p11.C_InitToken(slot, opts.soPin, opts.label);
  const so = p11.C_OpenSession(slot, RW);
  p11.C_Login(so, CKU.SO, opts.soPin);
  p11.C_InitPIN(so, opts.userPin);
  p11.C_Logout(so);
  p11.C_CloseSession(so);
  const session = p11.C_OpenSession(slot, RW);
  p11.C_Login(session, CKU.USER, opts.userPin);
  return { slot, session };
}
