// bin/craton-hsmd and bin/craton-hsm-admin as operators run them, through the test harness.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DAEMON_BIN, REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';

const ADMIN_BIN = process.env.CRATON_TEST_ADMIN_BIN ?? path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-cli-'));
const daemons: Daemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.kill9();
  rmSync(tmp, { recursive: true, force: true });
});
const admin = (args: string[], env?: NodeJS.ProcessEnv) =>
  runCli(process.execPath, [ADMIN_BIN, ...args], { env: env ?? { ...process.env, CRATON_HSM_CONFIG: '' }, timeoutMs: 30_000 });

describe('craton-hsmd', () => {
  it('prints the ready line, listens on the socket, and exits 0 on SIGTERM', async () => {
    const d = await startDaemon({ slots: 3 });
    daemons.push(d);
    expect(d.modulePath).toBe(path.resolve(path.dirname(DAEMON_BIN), '..', 'build', 'libcraton_hsm.so'));
    expect(statSync(d.socketPath).isSocket()).toBe(true);
    expect(d.env.CRATON_HSM_SOCKET).toBe(d.socketPath);

    const st = await admin(['--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, 'status']);
    expect(st.code, describeRun(st)).toBe(0);
    expect(st.stdout).toContain(`data_dir:          ${d.dataDir}`);
    expect(st.stdout).toMatch(new RegExp(`socket: +${d.socketPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(up`));
    expect(st.stdout).toMatch(/slots: +3/);

    await d.stop();
    expect(d.proc.exitCode).toBe(0);
    const down = await admin(['--data-dir', d.dataDir, '--socket', d.socketPath, 'status']);
    expect(down.code).toBe(3);
    expect(down.stdout).toMatch(/\(down: /);
  });

  it('restarts on the same data directory after kill -9 (stale socket file)', async () => {
    const d1 = await startDaemon();
    daemons.push(d1);
    await d1.kill9();
    const d2 = await startDaemon({ dataDir: d1.dataDir });
    daemons.push(d2);
    expect(d2.socketPath).toBe(d1.socketPath);
    expect(d2.proc.pid).not.toBe(d1.proc.pid);
    await d2.stop();
  });

  it('refuses a bad configuration with one line naming the key', async () => {
    const bad = path.join(tmp, 'bad.toml');
    writeFileSync(bad, '[security]\nmax_failed_logins = 1000\n');
    const r = await runCli(process.execPath, [DAEMON_BIN, '--config', bad, '--data-dir', path.join(tmp, 'd'), '--socket', path.join(tmp, 's.sock')], {
      timeoutMs: 30_000,
    });
    expect(r.code, describeRun(r)).not.toBe(0);
    expect(r.stderr).toContain('security.max_failed_logins = 1000');
    expect(r.stderr).toContain('3 to 100');
    expect(r.stdout).not.toContain('ready');
    expect(existsSync(path.join(tmp, 's.sock'))).toBe(false);
  });

  it('startDaemon reports the daemon stderr when it cannot start', async () => {
    await expect(startDaemon({ extraToml: '[slots]\ncount = 0\n' })).rejects.toThrow(/exited before ready[\s\S]*slots\.count = 0/);
  });
});

describe('craton-hsm-admin', () => {
  it('status resolves paths like the daemon and reports a dead socket', async () => {
    const r = await admin(['--data-dir', path.join(tmp, 'nodata'), '--socket', path.join(tmp, 'none.sock'), 'status']);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(`admin_socket:      ${path.join(tmp, 'nodata', 'craton-hsm-admin.sock')}`);
    expect(r.stdout).toContain(`audit_log:         ${path.join(tmp, 'nodata', 'craton_hsm_audit.jsonl')}`);
    expect(r.stdout).toMatch(/down: ENOENT/);
  });

  it('a bad option or configuration exits non-zero with a message', async () => {
    const opt = await admin(['status', '--bogus']);
    expect(opt.code).not.toBe(0);
    expect(opt.stderr).toContain("unknown option '--bogus'");
    const bad = path.join(tmp, 'bad2.toml');
    writeFileSync(bad, '[slots]\ncount = 99\n');
    const cfg = await admin(['--config', bad, 'status']);
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toMatch(/^craton-hsm-admin: config: slots\.count = 99 .*1 to 64/);
  });
});
