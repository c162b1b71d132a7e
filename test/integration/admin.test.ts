// craton-hsm-admin's live commands against a real daemon over its admin socket: status,
// selftest, token init|info, key list|delete, pin change|reset, the peer (SO_PEERCRED)
// refusal, exit codes, and the audit entry every admin action leaves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { CKA, CKF, CKM, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { MAX_LINE_BYTES } from '../../hsm-daemon/src/admin/protocol.js';
import { describeRun, loadModule, pkcs11js, runCli, type CliResult } from '../helpers/module.js';
import { p11ok, p11tool } from '../helpers/p11tool.js';

const ADMIN_BIN = process.env.CRATON_TEST_ADMIN_BIN ?? path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SO_PIN = '12345678';
const USER_PIN = '1234';
const NEW_USER_PIN = '4321';
const MAX_FAILED = 3;
const TOML = `[security]\nmax_failed_logins = ${MAX_FAILED}\nfailed_login_delay_base_ms = 0\n[nonce]\ngcm_invocation_limit = 100\n`;

function admin(d: Daemon, args: string[], input?: string): Promise<CliResult> {
  return runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
    env: { ...process.env, CRATON_HSM_CONFIG: '' },
    timeoutMs: 60_000,
    input,
  });
}

async function adminOk(d: Daemon, args: string[], input?: string): Promise<CliResult> {
  const r = await admin(d, args, input);
  expect(r.code, `craton-hsm-admin ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

async function adminJson<T = Record<string, any>>(d: Daemon, args: string[], input?: string): Promise<T> {
  const r = await adminOk(d, [...args, '--json'], input);
  return JSON.parse(r.stdout) as T;
}

interface Entry {
  seq: number;
  operation: string;
  pid: number;
  uid: number;
  result: { Success: null } | { Failure: string };
  details?: Record<string, any>;
}

async function auditEntries(d: Daemon): Promise<Entry[]> {
  const r = await adminOk(d, ['audit', 'dump', '--last', '100000', '--json']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry);
}

const adminEntries = async (d: Daemon, op: string) => (await auditEntries(d)).filter((e) => e.operation === op);

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon({ slots: 2, extraToml: TOML });
}, 60_000);
afterAll(async () => {
  await d?.stop();
});

describe('admin socket', () => {
  it('is a 0600 socket in the data directory', () => {
    const st = statSync(path.join(d.dataDir, 'craton-hsm-admin.sock'));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid!());
  });
});

/** Raw protocol: sends the lines on one connection, resolves with `n` parsed response lines. */
function raw(lines: string[], n: number): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(path.join(d.dataDir, 'craton-hsm-admin.sock'));
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no ${n} responses; got ${buf}`)), 30_000);
    s.on('connect', () => s.write(lines.join('')));
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      buf += c;
      const got = buf.split('\n').filter(Boolean);
      if (got.length >= n) {
        clearTimeout(t);
        s.destroy();
        resolve(got.map((l) => JSON.parse(l) as Record<string, any>));
      }
    });
    s.on('error', reject);
  });
}

describe('admin protocol', () => {
  it('answers several requests on one connection in order; rejects bad ones', async () => {
    const r = await raw(
      ['{"id":1,"cmd":"token.info","args":{"slot":1}}\n', 'not json\n', '{"id":"x","cmd":"format.disk"}\n', '{"id":4,"cmd":"token.info","args":{"slot":"0"}}\n', '{"id":5,"cmd":"audit.rotate"}\n'],
      5,
    );
    expect(r[0]).toMatchObject({ id: 1, ok: true, result: { tokens: [{ slot: 1 }] } });
    expect(r[1]).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    expect(r[2]).toMatchObject({ id: 'x', ok: false, error: { code: 'BAD_REQUEST' } });
    expect(r[3]).toMatchObject({ id: 4, ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('slot') } });
    expect(r[4]).toMatchObject({ id: 5, ok: true, result: { rotated: true } });
    const e = await adminEntries(d, 'AdminAuditRotate');
    expect(e).toHaveLength(1);
    expect(e[0]!.pid).toBe(process.pid);
  });

  it('closes a connection whose line is too long', async () => {
    const r = await raw(['x'.repeat(MAX_LINE_BYTES + 1)], 1);
    expect(r[0]).toMatchObject({ ok: false, error: { code: 'LINE_TOO_LONG' } });
  });
});

describe('status', () => {
  it('reports the daemon, self-test, error state, DRBG, slots and GCM usage as JSON', async () => {
    const s = await adminJson(d, ['status']);
    expect(s.exit_code).toBe(0);
    expect(s.socket).toMatchObject({ path: d.socketPath, up: true });
    expect(s.admin_socket).toMatchObject({ path: path.join(d.dataDir, 'craton-hsm-admin.sock'), up: true });
    expect(s.daemon).toMatchObject({ up: true, name: 'craton-hsmd', pid: d.proc.pid, data_dir: d.dataDir });
    expect(s.daemon.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(s.self_test.passed).toBe(true);
    expect(s.self_test.known_answer_tests).toBeGreaterThan(0);
    expect(s.error_state).toBeNull();
    expect(s.readiness).toEqual({ ready: true, checks: { selftest: 'passed', error_state: null, audit: 'writable' } });
    expect(s.drbg.state).toBe('ready');
    expect(s.audit).toMatchObject({ healthy: true, level: 'all' });
    expect(s.slots).toHaveLength(2);
    expect(s.slots[0]).toMatchObject({ slot: 0, sessions: 0, logged_in: { user: 0, so: 0, total: 0 } });
    expect(s.logged_in_apps).toBe(0);
    expect(s.gcm).toMatchObject({ limit: 100, keys: [] });
  });

  it('prints a human summary; exit 3 when the admin socket does not answer', async () => {
    const r = await adminOk(d, ['status']);
    expect(r.stdout).toMatch(/daemon: +up \(craton-hsmd /);
    expect(r.stdout).toMatch(/self_test: +passed/);
    expect(r.stdout).toMatch(/ready: +yes \(selftest passed, error_state none, audit writable\)/);
    expect(r.stdout).toMatch(/error_state: +none/);
    const down = await admin(d, ['--admin-socket', path.join(d.dataDir, 'nope.sock'), 'status']);
    expect(down.code, describeRun(down)).toBe(3);
    expect(down.stdout).toMatch(/admin_socket: .*\(down: ENOENT\)/);
  });
});

describe('selftest', () => {
  it('re-runs the self-tests and passes', async () => {
    const r = await adminJson(d, ['selftest']);
    expect(r.passed).toBe(true);
    expect(r.failed).toEqual([]);
    expect(r.error_state).toBeNull();
    const e = await adminEntries(d, 'AdminSelfTest');
    expect(e.at(-1)).toMatchObject({ result: { Success: null }, details: { passed: true } });
  });
});

describe('token init and info', () => {
  it('initialises slot 0 with the SO PIN from stdin, then shows it', async () => {
    const r = await adminJson(d, ['token', 'init', '--slot', '0', '--label', 'admin-tést', '--pin-stdin'], `${SO_PIN}\n`);
    expect(r).toMatchObject({ slot: 0, label: 'admin-tést', reinitialized: false });
    const info = await adminJson(d, ['token', 'info', '--slot', '0']);
    expect(info.tokens).toHaveLength(1);
    // --json also after the group
    expect(JSON.parse((await adminOk(d, ['token', '--json', 'info', '--slot', '0'])).stdout)).toEqual(info);
    expect(info.tokens[0]).toMatchObject({ slot: 0, label: 'admin-tést', initialized: true, user_pin_initialized: false, serial: r.serial });
    expect(info.tokens[0].flags).toContain('TOKEN_INITIALIZED');
    // the label as PKCS#11 applications see it
    const list = await p11ok(d, ['--list-token-slots']);
    expect(list.stdout).toContain('admin-tést');
  });

  it('sets the first user PIN with pin reset --set-user-pin (SO PIN, then new user PIN)', async () => {
    const r = await adminJson(d, ['pin', 'reset', '--slot', '0', '--set-user-pin', '--pin-stdin'], `${SO_PIN}\n${USER_PIN}\n`);
    expect(r).toMatchObject({ user_pin_set: true });
    await p11ok(d, ['--slot', '0', '--login', '--pin', USER_PIN, '--list-objects']);
  });

  it('refuses a wrong SO PIN (exit 1, CKR_PIN_INCORRECT) and audits the failure', async () => {
    const r = await admin(d, ['token', 'init', '--slot', '0', '--label', 'x', '--pin-stdin', '--json'], '00000000\n');
    expect(r.code, describeRun(r)).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('CKR_PIN_INCORRECT');
    const e = await adminEntries(d, 'AdminTokenInit');
    expect(e.at(-1)!.result).toEqual({ Failure: 'CKR_PIN_INCORRECT' });
    // the SO failure counter is back to 0 after a good SO PIN
    await adminOk(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`);
    const info = await adminJson(d, ['token', 'info', '--slot', '0']);
    expect(info.tokens[0].failed_logins.so).toBe(0);
  });

  it('refuses while a session is open on the token (CKR_SESSION_EXISTS), like C_InitToken', async () => {
    const m = loadModule(d.socketPath);
    try {
      const slot = m.p11.C_GetSlotList(true)[0]!;
      const s = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
      const st = await adminJson(d, ['status']);
      expect(st.slots[0].sessions).toBe(1);
      const r = await admin(d, ['token', 'init', '--slot', '0', '--label', 'x', '--pin-stdin', '--json'], `${SO_PIN}\n`);
      expect(r.code, describeRun(r)).toBe(1);
      expect(JSON.parse(r.stdout).error.code).toBe('CKR_SESSION_EXISTS');
      m.p11.C_CloseSession(s);
    } finally {
      m.close();
    }
  });

  it('usage errors exit 2: a missing --label, no PIN source, an over-long label', async () => {
    expect((await admin(d, ['token', 'init', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`)).code).toBe(2);
    const noPin = await admin(d, ['token', 'init', '--slot', '0', '--label', 'x']);
    expect(noPin.code).toBe(2);
    expect(noPin.stderr).toMatch(/--pin-file FILE or --pin-stdin/);
    const long = await admin(d, ['token', 'init', '--slot', '1', '--label', 'x'.repeat(33), '--pin-stdin'], `${SO_PIN}\n`);
    expect(long.code, describeRun(long)).toBe(2);
    expect(long.stderr).toContain('32 bytes');
    // the PIN never goes on argv: there is no such option
    expect((await admin(d, ['pin', 'change', '--pin', USER_PIN])).code).toBe(2);
  });
});

describe('keys', () => {
  let gcmUid = '';

  beforeAll(async () => {
    await p11ok(d, ['--slot', '0', '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '0a', '--label', 'ec-admin', '--login', '--pin', USER_PIN]);
    // An AES token key used for two GCM encryptions (pkcs11js), for the usage column.
    const m = loadModule(d.socketPath);
    try {
      const p11 = m.p11;
      const slot = p11.C_GetSlotList(true)[0]!;
      const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
      p11.C_Login(s, CKU.USER, USER_PIN);
      const k = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
        { type: CKA.VALUE_LEN, value: 32 },
        { type: CKA.TOKEN, value: true },
        { type: CKA.LABEL, value: 'aes-gcm' },
        { type: CKA.ID, value: Buffer.from([0x0b]) },
      ] as never);
      for (let i = 0; i < 2; i++) {
        const iv = Buffer.alloc(12, i + 1);
        p11.C_EncryptInit(s, { mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } } as never, k);
        p11.C_Encrypt(s, Buffer.from('sixteen byte msg'), Buffer.alloc(32));
      }
      p11.C_Logout(s);
      p11.C_CloseSession(s);
    } finally {
      m.close();
    }
  }, 60_000);

  it('key list without a PIN shows public objects only', async () => {
    const r = await adminJson(d, ['key', 'list', '--slot', '0']);
    const objs = r.slots[0].objects as Array<Record<string, any>>;
    expect(r.slots[0].scope).toBe('public');
    expect(objs.map((o) => o.class)).toEqual(['CKO_PUBLIC_KEY']);
    expect(objs[0]).toMatchObject({ label: 'ec-admin', id: '0a', key_type: 'CKK_EC', token: true, private: false });
    expect(r.slots[0].not_listed).toBeGreaterThanOrEqual(2);
  });

  it('key list --login shows private objects with their GCM usage', async () => {
    const r = await adminJson(d, ['key', 'list', '--slot', '0', '--login', '--pin-stdin'], `${USER_PIN}\n`);
    const objs = r.slots[0].objects as Array<Record<string, any>>;
    expect(r.slots[0].scope).toBe('all');
    const byLabel = Object.fromEntries(objs.map((o) => [`${o.label}/${o.class}`, o]));
    expect(byLabel['ec-admin/CKO_PRIVATE_KEY']).toMatchObject({ id: '0a', private: true, token: true, key_type: 'CKK_EC' });
    const aes = byLabel['aes-gcm/CKO_SECRET_KEY'];
    expect(aes).toMatchObject({ id: '0b', key_type: 'CKK_AES', gcm: { used: 2, limit: 100, percent: 2 } });
    expect(typeof aes.uid).toBe('string');
    expect(typeof aes.handle).toBe('number');
    gcmUid = aes.uid as string;
    // status lists the same key's usage
    const st = await adminJson(d, ['status']);
    expect(st.gcm.keys).toContainEqual(expect.objectContaining({ uid: gcmUid, slot: 0, used: 2, persistent: true }));
    // the human table
    const t = await adminOk(d, ['key', 'list', '--slot', '0', '--login', '--pin-stdin'], `${USER_PIN}\n`);
    expect(t.stdout).toMatch(/aes-gcm\s+0b\s+yes\s+yes\s+2\/100 \(2\.00%\)/);
  });

  it('a wrong user PIN is refused and counted', async () => {
    const r = await admin(d, ['key', 'list', '--slot', '0', '--login', '--pin-stdin'], '0000\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CKR_PIN_INCORRECT');
    const info = await adminJson(d, ['token', 'info', '--slot', '0']);
    expect(info.tokens[0].failed_logins.user).toBe(1);
    await adminOk(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`);
  });

  it('key delete removes a token object by uid (user PIN), and pkcs11-tool no longer sees it', async () => {
    const r = await adminJson(d, ['key', 'delete', gcmUid, '--slot', '0', '--pin-stdin'], `${USER_PIN}\n`);
    expect(r.deleted).toMatchObject({ uid: gcmUid, label: 'aes-gcm', class: 'CKO_SECRET_KEY' });
    const list = await adminJson(d, ['key', 'list', '--slot', '0', '--login', '--pin-stdin'], `${USER_PIN}\n`);
    expect((list.slots[0].objects as Array<{ uid: string }>).map((o) => o.uid)).not.toContain(gcmUid);
    const p = await p11ok(d, ['--slot', '0', '--login', '--pin', USER_PIN, '--list-objects']);
    expect(p.stdout).not.toContain('aes-gcm');
    expect(p.stdout).toContain('ec-admin');
    const again = await admin(d, ['key', 'delete', gcmUid, '--slot', '0', '--pin-stdin'], `${USER_PIN}\n`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('CKR_OBJECT_HANDLE_INVALID');
    const e = await adminEntries(d, 'AdminKeyDelete');
    expect(e.map((x) => x.result)).toEqual([{ Success: null }, { Failure: 'CKR_OBJECT_HANDLE_INVALID' }]);
    expect(e[0]!.details).toMatchObject({ uid: gcmUid, class: 'CKO_SECRET_KEY', slot: 0 });
  });
});

describe('PINs', () => {
  it('pin change (old, new from a file) then pkcs11-tool logs in with the new PIN only', async () => {
    const f = path.join(d.dataDir, '..', 'pins.txt');
    writeFileSync(f, `${USER_PIN}\n${NEW_USER_PIN}\n`, { mode: 0o600 });
    const r = await adminJson(d, ['pin', 'change', '--slot', '0', '--pin-file', f]);
    expect(r).toMatchObject({ slot: 0, role: 'user', changed: true });
    await p11ok(d, ['--slot', '0', '--login', '--pin', NEW_USER_PIN, '--list-objects']);
    const old = await p11tool(d, ['--slot', '0', '--login', '--pin', USER_PIN, '--list-objects']);
    expect(old.code).not.toBe(0);
    // that failed login is cleared before the lockout test
    await adminOk(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`);
  });

  it('the SO PIN can be changed too', async () => {
    await adminOk(d, ['pin', 'change', '--so', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n87654321\n`);
    await adminOk(d, ['pin', 'change', '--so', '--slot', '0', '--pin-stdin'], `87654321\n${SO_PIN}\n`);
  });

  it('after a lockout, pin reset (SO PIN) unlocks the user PIN', async () => {
    for (let i = 0; i < MAX_FAILED; i++) {
      const r = await p11tool(d, ['--slot', '0', '--login', '--pin', '9999', '--list-objects']);
      expect(r.code).not.toBe(0);
    }
    const locked = await p11tool(d, ['--slot', '0', '--login', '--pin', NEW_USER_PIN, '--list-objects']);
    expect(locked.code).not.toBe(0);
    expect(locked.stdout + locked.stderr).toContain('CKR_PIN_LOCKED');
    let info = await adminJson(d, ['token', 'info', '--slot', '0']);
    expect(info.tokens[0]).toMatchObject({ user_pin_locked: true, failed_logins: { user: MAX_FAILED } });
    expect(info.tokens[0].flags).toContain('USER_PIN_LOCKED');

    // a wrong SO PIN does not unlock
    const bad = await admin(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], '00000000\n');
    expect(bad.code).toBe(1);
    const r = await adminJson(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`);
    expect(r).toMatchObject({ was_locked: true, failed_before: MAX_FAILED, failed_logins: 0, user_pin_set: false });
    info = await adminJson(d, ['token', 'info', '--slot', '0']);
    expect(info.tokens[0]).toMatchObject({ user_pin_locked: false, failed_logins: { user: 0 } });
    await p11ok(d, ['--slot', '0', '--login', '--pin', NEW_USER_PIN, '--list-objects']);

    const entries = await auditEntries(d);
    const resets = entries.filter((e) => e.operation === 'AdminPinReset');
    expect(resets.some((e) => e.details?.was_locked === true && 'Success' in e.result)).toBe(true);
    expect(resets.some((e) => (e.result as { Failure?: string }).Failure === 'CKR_PIN_INCORRECT')).toBe(true);
    expect(entries.some((e) => e.operation === 'Unlock' && e.details?.by === 'admin')).toBe(true);
  });
});

describe('access control', () => {
  const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  // uid 65534 must be able to run the CLI itself, wherever this checkout lives (a clone in a
  // 0700 temporary directory is not readable by it): run it from a world-readable copy of
  // what the CLI loads, so the only thing refusing it is the admin socket.
  let nobodyBin = ADMIN_BIN;
  let nobodyRoot: string | undefined;
  beforeAll(() => {
    if (process.getuid?.() !== 0) return;
    nobodyRoot = mkdtempSync(path.join(os.tmpdir(), 'craton-admin-nobody-'));
    chmodSync(nobodyRoot, 0o755);
    for (const p of ['bin', 'dist', 'config', 'package.json', 'node_modules/commander', 'node_modules/smol-toml']) {
      cpSync(path.join(REPO_ROOT, p), path.join(nobodyRoot, p), { recursive: true });
    }
    nobodyBin = path.join(nobodyRoot, 'bin', 'craton-hsm-admin');
  });
  afterAll(() => {
    if (nobodyRoot) rmSync(nobodyRoot, { recursive: true, force: true });
  });
  const asNobody = (args: string[]) =>
    runCli('setpriv', [...NOBODY, process.execPath, nobodyBin, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
      env: { ...process.env, CRATON_HSM_CONFIG: '' },
      timeoutMs: 30_000,
    });

  it.runIf(process.getuid?.() === 0)('another uid cannot reach the 0600 socket (exit 1, permission denied)', async () => {
    const r = await asNobody(['status', '--json']);
    expect(r.code, describeRun(r)).toBe(1);
    expect(JSON.parse(r.stdout).admin_socket.detail).toMatch(/permission denied/);
  });

  it.runIf(process.getuid?.() === 0)('even with the file mode opened up, SO_PEERCRED refuses another uid, and the refusal is audited', async () => {
    const sock = path.join(d.dataDir, 'craton-hsm-admin.sock');
    const runDir = path.dirname(d.dataDir);
    const modes = [runDir, d.dataDir].map((p) => [p, statSync(p).mode & 0o777] as const);
    for (const [p] of modes) chmodSync(p, 0o711);
    chmodSync(sock, 0o666);
    try {
      const r = await asNobody(['selftest', '--json']);
      expect(r.code, describeRun(r)).toBe(1);
      const err = JSON.parse(r.stdout).error;
      expect(err.code).toBe('PEER_REFUSED');
      expect(err.message).toMatch(/uid 65534 may not use the admin socket/);
    } finally {
      chmodSync(sock, 0o600);
      for (const [p, m] of modes) chmodSync(p, m);
    }
    const e = await adminEntries(d, 'AdminRefused');
    expect(e.at(-1)).toMatchObject({ uid: 65534, result: { Failure: 'CKR_FUNCTION_REJECTED' } });
  });
});

describe('audit trail', () => {
  it('every admin action left an entry with the admin process identity (not the daemon)', async () => {
    await adminOk(d, ['pin', 'reset', '--slot', '0', '--pin-stdin'], `${SO_PIN}\n`); // at least one more, now
    const entries = await auditEntries(d);
    const admin = entries.filter((e) => e.operation.startsWith('Admin'));
    const ops = new Set(admin.map((e) => e.operation));
    for (const op of ['AdminSelfTest', 'AdminTokenInit', 'AdminPinReset', 'AdminKeyList', 'AdminKeyDelete', 'AdminPinChange']) expect(ops).toContain(op);
    for (const e of admin) {
      expect(e.pid).not.toBe(d.proc.pid);
      expect(e.details?.via).toBe('admin-socket');
      // Digits-only PINs turn up inside hex hashes and pids by chance: look in the other strings.
      const texts = (JSON.stringify(e).match(/"(?:[^"\\]|\\.)*"/g) ?? []).filter((v) => !/^"[0-9a-fA-F]*"$/.test(v));
      expect(texts.filter((v) => v.includes(SO_PIN) || v.includes(NEW_USER_PIN))).toEqual([]);
    }
    expect(admin.filter((e) => e.operation !== 'AdminRefused').every((e) => e.uid === process.getuid!())).toBe(true);
    // the log with these entries still verifies
    await adminOk(d, ['audit', 'verify']);
  });

  it('token init on the second slot is audited with its label', async () => {
    await adminOk(d, ['token', 'init', '--slot', '1', '--label', 'second', '--pin-stdin'], `${SO_PIN}\n`);
    const e = await adminEntries(d, 'AdminTokenInit');
    expect(e.at(-1)).toMatchObject({ result: { Success: null }, details: { slot: 1, label: 'second', credentials: ['so'] } });
  });
});
