// OpenSSH's agent holding HSM keys: ssh-agent (with -P allowing the module's path, which is
// outside the default /usr/lib*/* allow-list), `ssh-add -s` of the module (the PIN comes from
// SSH_ASKPASS), `ssh-keygen -Y sign` through the agent and `ssh-keygen -Y verify`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { initTokenWithKeys, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
let agent: ChildProcess;
let env: NodeJS.ProcessEnv;
let modulePath: string;
const f = (name: string) => path.join(work, name);
const run = (file: string, args: string[], input?: string) => runCli(file, args, { env, timeoutMs: 60_000, input });

beforeAll(async () => {
  // The default strict profile: ssh-agent signs RSA keys (rsa-sha2-256/512) as CKM_RSA_PKCS
  // over a DigestInfo it builds, which the policy allows for SHA-256/512 (checked at C_Sign).
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-ssh-agent-'));
  await initTokenWithKeys(d);
  modulePath = realpathSync(d.modulePath);
  writeFileSync(f('askpass'), `#!/bin/sh\necho '${USER_PIN}'\n`, { mode: 0o700 });
  const sock = f('agent.sock');
  // -D: foreground, so the test owns the process; -P: allow our module's directory.
  agent = spawn('ssh-agent', ['-D', '-a', sock, '-P', `${path.dirname(modulePath)}/*`], { env: d.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => agent.kill('SIGKILL'), 110_000);
  agent.once('exit', () => clearTimeout(killer));
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(sock), 'ssh-agent did not create its socket').toBe(true);
  env = { ...d.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: f('askpass'), SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
  writeFileSync(f('data'), 'a file signed by an HSM key through ssh-agent\n');
  writeFileSync(f('other'), 'a file signed by an HSM key through ssh-agent?\n');
});
afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGTERM');
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.sequential('ssh-agent with the module', () => {
  it('ssh-agent refuses the module when -P does not allow its path', async () => {
    const sock = f('strict.sock');
    const strict = spawn('ssh-agent', ['-D', '-a', sock], { env: d.env, stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      const r = await runCli('ssh-add', ['-s', modulePath], { env: { ...env, SSH_AUTH_SOCK: sock }, timeoutMs: 30_000 });
      expect(r.code, describeRun(r)).not.toBe(0);
      expect(r.stderr).toMatch(/agent refused operation|Could not add card/);
    } finally {
      strict.kill('SIGTERM');
    }
  });

  it('ssh-add -s loads the HSM keys into the agent; ssh-add -L lists them', async () => {
    const add = await run('ssh-add', ['-s', modulePath], '');
    expect(add.code, describeRun(add)).toBe(0);
    expect(add.stderr).toContain(`Card added: ${modulePath}`);
    const list = await run('ssh-add', ['-L']);
    expect(list.code, describeRun(list)).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.filter((l) => /^ecdsa-sha2-nistp256 \S+ ec1$/.test(l)), list.stdout).toHaveLength(1);
    expect(lines.filter((l) => /^ssh-rsa \S+ rsa1$/.test(l)), list.stdout).toHaveLength(1);
    writeFileSync(f('ec1.pub'), lines.find((l) => l.startsWith('ecdsa-sha2-nistp256 '))! + '\n');
    writeFileSync(f('rsa1.pub'), lines.find((l) => l.startsWith('ssh-rsa '))! + '\n');
    // The keys ssh-keygen -D reads directly from the module are the same ones.
    const direct = await run('ssh-keygen', ['-D', modulePath]);
    expect(direct.code, describeRun(direct)).toBe(0);
    for (const l of lines) expect(direct.stdout).toContain(l.split(' ').slice(0, 2).join(' '));
  });

  for (const key of ['ec1', 'rsa1']) {
    it(`ssh-keygen -Y sign through the agent with ${key}; -Y verify accepts it and rejects other data`, async () => {
      const data = f(`data.${key}`);
      writeFileSync(data, `a file signed by the HSM key ${key} through ssh-agent\n`);
      const sign = await run('ssh-keygen', ['-Y', 'sign', '-f', f(`${key}.pub`), '-n', 'file', data]);
      expect(sign.code, describeRun(sign)).toBe(0);
      const pub = readFileSync(f(`${key}.pub`), 'utf8').trim().split(' ');
      writeFileSync(f(`allowed.${key}`), `craton@test ${pub[0]} ${pub[1]}\n`);
      const verifyArgs = ['-Y', 'verify', '-f', f(`allowed.${key}`), '-I', 'craton@test', '-n', 'file', '-s', `${data}.sig`];
      const ok = await runCli('ssh-keygen', verifyArgs, { input: readFileSync(data, 'utf8'), timeoutMs: 30_000 });
      expect(ok.code, describeRun(ok)).toBe(0);
      expect(ok.stdout + ok.stderr).toMatch(/Good "file" signature for craton@test with (ECDSA|RSA) key/);
      const bad = await runCli('ssh-keygen', verifyArgs, { input: 'something else\n', timeoutMs: 30_000 });
      expect(bad.code).not.toBe(0);
      // Wrong namespace fails too.
      const ns = await runCli('ssh-keygen', ['-Y', 'verify', '-f', f(`allowed.${key}`), '-I', 'craton@test', '-n', 'email', '-s', `${data}.sig`], {
        input: readFileSync(data, 'utf8'),
        timeoutMs: 30_000,
      });
      expect(ns.code).not.toBe(0);
    });
  }

  it('ssh-add -e removes the module keys; signing through the agent then fails', async () => {
    const rm = await run('ssh-add', ['-e', modulePath]);
    expect(rm.code, describeRun(rm)).toBe(0);
    const list = await run('ssh-add', ['-L']);
    expect(list.code).not.toBe(0);
    expect(list.stdout + list.stderr).toContain('The agent has no identities.');
    const sign = await run('ssh-keygen', ['-Y', 'sign', '-f', f('ec1.pub'), '-n', 'file', f('other')]);
    expect(sign.code, describeRun(sign)).not.toBe(0);
  });
});
