// build/craton-loadgen (bench/loadgen/loadgen.c), the client of `npm run bench`: every operation
// runs against our module with 1 and 2 clients, and its JSON lines are well formed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { CKF, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, runCli } from '../helpers/module.js';

const LOADGEN = path.join(REPO_ROOT, 'build', 'craton-loadgen');
const ALL_OPS = ['random32', 'sha256-64', 'sha256-1m', 'aes-gcm-4k', 'ecdsa-p256-sign', 'ecdsa-p256-verify', 'rsa2048-sign', 'login-cycle'];

interface Cell {
  op: string;
  clients: number;
  mode?: string;
  ops?: number;
  opsPerSec?: number;
  p50Us?: number | null;
  p99Us?: number | null;
  error?: string;
}
const parse = (stdout: string): Cell[] => stdout.trim().split('\n').map((l) => JSON.parse(l) as Cell);

describe.sequential('craton-loadgen', () => {
  let daemon: Daemon;

  beforeAll(async () => {
    execFileSync('make', ['-s', '-C', path.join(REPO_ROOT, 'bench', 'loadgen')], { stdio: 'pipe' });
    daemon = await startDaemon();
    const mod = loadModule(daemon.socketPath);
    const p11 = mod.p11;
    const slot = p11.C_GetSlotList(true)[0]!;
    p11.C_InitToken(slot, '12345678', 'bench');
    const so = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(so, CKU.SO, '12345678');
    p11.C_InitPIN(so, '123456');
    p11.C_CloseSession(so);
    mod.close();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('runs every operation through our module (threads; login-cycle as processes)', async () => {
    const r = await runCli(LOADGEN, ['--module', daemon.modulePath, '--token', 'bench', '--pin', '123456', '--setup', '--ops', ALL_OPS.join(','), '--clients', '1,2', '--seconds', '0.15', '--warmup-ms', '20'], {
      env: daemon.env,
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const cells = parse(r.stdout);
    expect(cells.map((c) => `${c.op}/${c.clients}`).sort()).toEqual(ALL_OPS.flatMap((o) => [`${o}/1`, `${o}/2`]).sort());
    for (const c of cells) {
      expect(c.error, `${c.op} x${c.clients}`).toBeUndefined();
      expect(c.ops).toBeGreaterThan(0);
      expect(c.p50Us).toBeGreaterThan(0);
      expect(c.p99Us).toBeGreaterThanOrEqual(c.p50Us!);
      expect(c.mode).toBe(c.op === 'login-cycle' ? 'processes' : 'threads');
    }
  });

  it('reports a refused operation as an error cell, not a crash', async () => {
    const r = await runCli(LOADGEN, ['--module', daemon.modulePath, '--token', 'bench', '--pin', '000000', '--ops', 'random32', '--clients', '1', '--seconds', '0.1'], { env: daemon.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/C_Login: CKR_PIN_INCORRECT/);
  });

  it('the AF_UNIX ping-pong floor needs no module', async () => {
    const r = await runCli(LOADGEN, ['--ops', 'unix-pingpong', '--clients', '1,2', '--seconds', '0.1', '--warmup-ms', '10'], {});
    expect(r.code, r.stderr).toBe(0);
    const cells = parse(r.stdout);
    expect(cells).toHaveLength(2);
    for (const c of cells) expect(c.opsPerSec).toBeGreaterThan(100);
  });
});
