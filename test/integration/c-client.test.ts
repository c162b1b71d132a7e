// A C application (test/c/module_client.c) against the real module and daemon, under
// valgrind memcheck: the module must not leak, read uninitialised memory or touch freed
// memory on any path the client exercises, including threads and fork.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { initTokenWithPkcs11Tool } from './c-client.setup.js';

const SO_PIN = '87654321';
const USER_PIN = '2468';
let daemon: Daemon;
let binary: string;

beforeAll(async () => {
  daemon = await startDaemon({ slots: 1 });
  await initTokenWithPkcs11Tool(daemon, SO_PIN, USER_PIN);
  binary = path.join(mkdtempSync(path.join(os.tmpdir(), 'craton-cclient-')), 'module_client');
  const cc = await runCli('gcc', [
    '-std=c11', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-pthread',
    '-I', path.join(REPO_ROOT, 'proxy-module/include'), '-I', '/usr/include/p11-kit-1',
    path.join(REPO_ROOT, 'test/c/module_client.c'), '-o', binary, '-ldl',
  ]);
  expect(cc.code, describeRun(cc)).toBe(0);
});

afterAll(async () => {
  await daemon?.stop();
});

describe('C client', () => {
  it('passes its checks natively', async () => {
    const r = await runCli(binary, [daemon.modulePath, SO_PIN, USER_PIN], { env: daemon.env, timeoutMs: 60_000 });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toContain('all checks passed');
  });

  it('is valgrind memcheck clean (no errors, no definite or indirect leaks)', async () => {
    const r = await runCli(
      'valgrind',
      [
        '--tool=memcheck', '--error-exitcode=99', '--leak-check=full', '--errors-for-leak-kinds=definite,indirect',
        '--show-leak-kinds=definite,indirect', '--trace-children=no', '--child-silent-after-fork=yes',
        binary, daemon.modulePath, SO_PIN, USER_PIN,
      ],
      { env: daemon.env, timeoutMs: 180_000 },
    );
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toMatch(/ERROR SUMMARY: 0 errors/);
    expect(r.stdout).toContain('all checks passed');
  });
});
