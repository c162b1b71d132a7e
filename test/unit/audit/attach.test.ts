// attachAudit on a stand-in dispatcher: which calls each level writes, what an entry
// holds, fail-closed gating, startup/shutdown events, and the CLI over the result.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { attachAudit, AUDIT_FAILURE_RV } from '../../../hsm-daemon/src/audit/index.js';
import type { CallGate, CallObserver, CallRecord, Dispatcher } from '../../../hsm-daemon/src/dispatch/dispatcher.js';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { CKM, CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { registerAuditCommands } from '../../../admin-cli/src/audit/commands.js';
import { readLines, seedVerify, tempDir, testLog } from './helpers.js';

class FakeDispatcher {
  gates: CallGate[] = [];
  observers: CallObserver[] = [];
  gate(g: CallGate) {
    this.gates.push(g);
  }
  observe(o: CallObserver) {
    this.observers.push(o);
  }
  /** What the real dispatcher does around a handler, minus the handler. */
  async call(fn: string, rv: number = CKR.OK, note: CallRecord['note'] = {}): Promise<number> {
    const app = { id: 'a1', peer: { pid: 4242, uid: 1001, gid: 1001, exe: '/usr/bin/pkcs11-tool' }, layout: { ulongSize: 8 as const, littleEndian: true } };
    try {
      for (const g of this.gates) g(app, fn as never);
    } catch (e) {
      if (e instanceof CkError) rv = e.rv;
      else throw e;
    }
    for (const o of this.observers) {
      try {
        await o({ app, fn: fn as never, rv, note });
      } catch (e) {
        if (e instanceof CkError) rv = e.rv;
      }
    }
    return rv;
  }
}

function config(dataDir: string, audit: Partial<Config['audit']> = {}): Config {
  return {
    daemon: { data_dir: dataDir, socket_path: path.join(dataDir, 's'), admin_socket_path: path.join(dataDir, 'a'), log_level: 'error' },
    audit: { log_level: 'all', log_path: path.join(dataDir, 'craton_hsm_audit.jsonl'), max_segment_bytes: 1 << 30, fail_closed: true, checkpoint_interval_entries: 1000, ...audit },
  } as Config;
}

const CALLS: Array<[string, number, CallRecord['note']]> = [
  ['C_OpenSession', CKR.OK, { session: 1 }],
  ['C_Login', CKR.PIN_INCORRECT, { session: 1 }],
  ['C_Login', CKR.OK, { session: 1 }],
  ['C_GenerateKeyPair', CKR.OK, { session: 1, mechanism: CKM.EC_KEY_PAIR_GEN, key: 17 }],
  ['C_SignInit', CKR.OK, { session: 1, mechanism: CKM.ECDSA, key: 17 }],
  ['C_Sign', CKR.OK, { session: 1, mechanism: CKM.ECDSA, key: 17 }],
  ['C_GetAttributeValue', CKR.OK, { session: 1, object: 17 }],
  ['C_CreateObject', CKR.OK, { session: 1, object: 18 }],
  ['C_DestroyObject', CKR.OK, { session: 1, object: 18 }],
  ['C_InitPIN', CKR.OK, { session: 1 }],
  ['C_SetPIN', CKR.OK, { session: 1 }],
  ['C_GetTokenInfo', CKR.OK, {}],
  ['C_Logout', CKR.OK, { session: 1 }],
  ['C_CloseSession', CKR.OK, { session: 1 }],
];

async function runLevel(level: Config['audit']['log_level']): Promise<{ ops: string[]; file: string; dir: string }> {
  const dir = tempDir();
  const d = new FakeDispatcher();
  const audit = await attachAudit(d as unknown as Dispatcher, config(dir, { log_level: level }), testLog);
  for (const [fn, rv, note] of CALLS) expect(await d.call(fn, rv, note)).toBe(rv);
  await audit.close();
  const file = path.join(dir, 'craton_hsm_audit.jsonl');
  let ops: string[] = [];
  try {
    ops = readLines(file).map((l) => JSON.parse(l).operation);
  } catch {
    ops = [];
  }
  return { ops, file, dir };
}

const EVENTS = ['Startup', 'Shutdown', 'Checkpoint'];
const callsOnly = (ops: string[]) => ops.filter((o) => !EVENTS.includes(o));

describe('attachAudit', () => {
  it('level all: every listed call, none of the informational ones; fields as specified', async () => {
    const { ops, file } = await runLevel('all');
    expect(ops[0]).toBe('Startup');
    expect(ops.slice(-2)).toEqual(['Shutdown', 'Checkpoint']);
    expect(callsOnly(ops)).toEqual(['OpenSession', 'Login', 'Login', 'GenerateKeyPair', 'SignInit', 'Sign', 'CreateObject', 'DestroyObject', 'InitPIN', 'SetPIN', 'Logout', 'CloseSession']);
    const entries = readLines(file).map((l) => JSON.parse(l));
    const failed = entries.find((e) => e.operation === 'Login');
    expect(failed.result).toEqual({ Failure: 'CKR_PIN_INCORRECT' });
    const sign = entries.find((e) => e.operation === 'Sign');
    expect(sign).toMatchObject({ session_handle: 1, key_id: 17, mechanism: 'CKM_ECDSA', pid: 4242, uid: 1001, exe: '/usr/bin/pkcs11-tool', result: { Success: null }, fips_approved: null });
    expect(entries.find((e) => e.operation === 'DestroyObject').key_id).toBe(18);
    expect(seedVerify(file).code).toBe(0);
  });

  it.each([
    ['crypto', ['GenerateKeyPair', 'SignInit', 'Sign']],
    ['auth', ['Login', 'Login', 'SetPIN', 'Logout']],
    ['admin', ['CreateObject', 'DestroyObject', 'InitPIN']],
  ] as const)('level %s writes only its class (plus daemon events)', async (level, want) => {
    const { ops } = await runLevel(level);
    expect(callsOnly(ops)).toEqual(want);
    expect(ops).toContain('Startup');
  });

  it('level none writes nothing', async () => {
    const { ops } = await runLevel('none');
    expect(ops).toEqual([]);
  });

  it('fail-closed: an unopenable log refuses crypto/object calls with CKR_DEVICE_ERROR, not session release', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'craton_hsm_audit.jsonl')); // a directory where the log should be
    const d = new FakeDispatcher();
    const errors: string[] = [];
    const audit = await attachAudit(d as unknown as Dispatcher, config(dir), (lvl, msg) => lvl === 'error' && errors.push(msg));
    expect(AUDIT_FAILURE_RV).toBe(CKR.DEVICE_ERROR);
    expect(await d.call('C_Sign', CKR.OK, { session: 1 })).toBe(CKR.DEVICE_ERROR);
    expect(await d.call('C_GenerateKey', CKR.OK, { session: 1 })).toBe(CKR.DEVICE_ERROR);
    expect(await d.call('C_CloseSession', CKR.OK, { session: 1 })).toBe(CKR.OK);
    expect(await d.call('C_GetTokenInfo', CKR.OK, {})).toBe(CKR.OK);
    expect(errors.join('\n')).toMatch(/audit log unavailable/);
    await expect(audit.recordEvent('PolicyViolation', { why: 'x' })).resolves.toBeUndefined();
    await audit.close();
  });

  it('fail-open (fail_closed = false): calls proceed, the error is logged', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'craton_hsm_audit.jsonl'));
    const d = new FakeDispatcher();
    const errors: string[] = [];
    const audit = await attachAudit(d as unknown as Dispatcher, config(dir, { fail_closed: false }), (lvl, msg) => lvl === 'error' && errors.push(msg));
    expect(await d.call('C_Sign', CKR.OK, { session: 1 })).toBe(CKR.OK);
    expect(errors.join('\n')).toMatch(/WITHOUT audit/);
    await audit.close();
  });

  it('events never carry byte buffers or PINs', async () => {
    const dir = tempDir();
    const d = new FakeDispatcher();
    const audit = await attachAudit(d as unknown as Dispatcher, config(dir), testLog);
    // A PIN that cannot turn up by chance inside the entries' hex hashes (a digits-only one can).
    await audit.recordEvent('PolicyViolation', { mechanism: 'CKM_RSA_X_509', pin: 'pin-QZXW-9876', blob: Buffer.from('secret'), n: 1.5 });
    await audit.close();
    const text = readFileSync(path.join(dir, 'craton_hsm_audit.jsonl'), 'utf8');
    expect(text).not.toContain('QZXW');
    expect(text).toContain('"pin":"[redacted]"');
    expect(text).not.toContain('secret');
    expect(text).toContain('[6 bytes not logged]');
  });

  it('the admin CLI dumps, verifies and detects tampering with the line', async () => {
    const { dir, file } = await runLevel('all');
    const run = async (...args: string[]) => {
      const outp: string[] = [];
      const errp: string[] = [];
      const so = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (outp.push(String(s)), true));
      const se = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (errp.push(String(s)), true));
      process.exitCode = 0;
      try {
        const program = new Command('craton-hsm-admin').option('--data-dir <d>').exitOverride();
        registerAuditCommands(program, () => config(dir));
        await program.parseAsync(['node', 'x', ...args]);
      } finally {
        so.mockRestore();
        se.mockRestore();
      }
      const code = process.exitCode ?? 0;
      process.exitCode = 0;
      return { out: outp.join(''), err: errp.join(''), code };
    };
    const dump = await run('audit', 'dump', '--last', '3');
    expect(dump.out).toMatch(/SEQ\s+TIME/);
    expect(dump.out).toContain('Shutdown');
    const j1 = await run('audit', '--json', 'dump', '--last', '2');
    const j2 = await run('audit', 'dump', '--last', '2', '--json');
    expect(j1.out).toBe(j2.out);
    expect(j1.out.trim().split('\n').map((l) => JSON.parse(l).operation)).toEqual(['Shutdown', 'Checkpoint']);
    const ok = await run('audit', 'verify');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/verified 15 entries/);
    expect(ok.out).toMatch(/hmac/);
    const lines = readLines(file);
    lines[5] = lines[5]!.replace('"uid":1001', '"uid":0');
    (await import('node:fs')).writeFileSync(file, lines.join('\n') + '\n');
    const bad = await run('audit', 'verify');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`${file}:6`);
    expect(bad.err).toMatch(/expected: [0-9a-f]{64}\n {2}recorded: [0-9a-f]{64}/);
    const sys = await run('audit', 'export', '--format', 'syslog', '--last', '1');
    expect(sys.out).toMatch(/^<110>1 \S+ \S+ craton-hsmd - Checkpoint \[craton-audit@32473 seq="15"/);
    const stats = await run('audit', 'stats', '--json');
    expect(JSON.parse(stats.out).failed_logins).toEqual({ 'session 1 (pid 4242)': 1 });
  });
});
