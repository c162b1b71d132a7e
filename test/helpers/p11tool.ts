// pkcs11-tool (OpenSC) against a test daemon, and the token setup the interop tests share.
import { expect } from 'vitest';
import type { Daemon } from './daemon.js';
import { describeRun, runCli, type CliResult } from './module.js';

export const SO_PIN = '12345678';
export const USER_PIN = '1234';

export function p11tool(d: Daemon, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return runCli('pkcs11-tool', ['--module', d.modulePath, ...args], { env: d.env, timeoutMs });
}

/** Runs pkcs11-tool and fails the test (with its output) unless it exits 0. */
export async function p11ok(d: Daemon, args: string[], timeoutMs?: number): Promise<CliResult> {
  const r = await p11tool(d, args, timeoutMs);
  expect(r.code, `pkcs11-tool ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

/**
 * Slot 0: token "t1" (SO PIN 12345678, user PIN 1234) holding an RSA-2048 key pair (id 01,
 * label rsa1) and an EC P-256 key pair (id 02, label ec1).
 */
export async function initTokenWithKeys(d: Daemon): Promise<void> {
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 't1', '--so-pin', SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
  await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'rsa:2048', '--id', '01', '--label', 'rsa1', '--login', '--pin', USER_PIN]);
  await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '02', '--label', 'ec1', '--login', '--pin', USER_PIN]);
}
