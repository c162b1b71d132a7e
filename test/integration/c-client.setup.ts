// Token set-up for the C client test, done with OpenSC's pkcs11-tool so the C program
// starts from a token initialised by a different real client.
import { expect } from 'vitest';
import type { Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';

export async function initTokenWithPkcs11Tool(d: Daemon, soPin: string, userPin: string): Promise<void> {
  const base = ['--module', d.modulePath];
  const init = await runCli('pkcs11-tool', [...base, '--init-token', '--slot-index', '0', '--label', 'cclient', '--so-pin', soPin], { env: d.env });
  expect(init.code, describeRun(init)).toBe(0);
  const pin = await runCli('pkcs11-tool', [...base, '--init-pin', '--login', '--login-type', 'so', '--so-pin', soPin, '--pin', userPin], { env: d.env });
  expect(pin.code, describeRun(pin)).toBe(0);
}
