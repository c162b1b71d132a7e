// AES-GCM invocation counters through the real module: refusal at [nonce]
// gcm_invocation_limit (CKR_KEY_FUNCTION_NOT_PERMITTED, decryption still works), the
// threshold events in the daemon log, counters that survive kill -9 and never go back,
// caller IV reuse refused under caller_iv = "reject_reuse", session keys counted too.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CKA, CKF, CKM, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, REPO_ROOT, MODULE_PATH, type Daemon } from '../helpers/daemon.js';
import { loadModule, pkcs11js, type LoadedModule, rvOf } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const expectRv = (fn: () => unknown, rv: number) => expect(rvName(rvOf(fn))).toBe(rvName(rv));

async function expectLog(d: Daemon, re: RegExp, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!re.test(d.stderr()) && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
  expect(d.stderr()).toMatch(re);
}

interface Running {
  d: Daemon;
  m: LoadedModule;
  slot: Buffer;
  s: Buffer;
}

async function up(extraToml: string, dataDir?: string, init = false): Promise<Running> {
  const d = await startDaemon({ slots: 1, dataDir, extraToml });
  const loaded = loadModule(d.socketPath);
  let closed = false;
  const m: LoadedModule = {
    p11: loaded.p11,
    close: () => {
      if (!closed) loaded.close();
      closed = true;
    },
  };
  cleanups.push(async () => {
    m.close();
    await d.stop();
  });
  const p11 = m.p11;
  const slot = p11.C_GetSlotList(true)[0]!;
  if (init) {
    p11.C_InitToken(slot, SO_PIN, 'nonce');
    const so = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(so, CKU.SO, SO_PIN);
    p11.C_InitPIN(so, USER_PIN);
    p11.C_Logout(so);
    p11.C_CloseSession(so);
  }
  const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  p11.C_Login(s, CKU.USER, USER_PIN);
  return { d, m, slot, s };
}

async function crashAndRestart(r: Running, extraToml: string): Promise<Running> {
  r.m.close();
  await r.d.kill9();
  return up(extraToml, r.d.dataDir);
}

function genKey(r: Running, label: string, token: boolean): Buffer {
  return r.m.p11.C_GenerateKey(r.s, { mechanism: CKM.AES_KEY_GEN }, [
    { type: CKA.VALUE_LEN, value: 32 },
    { type: CKA.TOKEN, value: token },
    { type: CKA.LABEL, value: label },
  ] as never);
}

function findKey(r: Running, label: string): Buffer {
  const p11 = r.m.p11;
  p11.C_FindObjectsInit(r.s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.LABEL, value: label }]);
  const [h] = p11.C_FindObjects(r.s, 2);
  p11.C_FindObjectsFinal(r.s);
  if (!h) throw new Error(`no key ${label}`);
  return h;
}

const gcm = (iv: Buffer) =>
  ({ mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } }) as never;
const ivOf = (i: number) => {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(i, 8);
  return iv;
};

function encrypt(r: Running, key: Buffer, iv: Buffer, pt = Buffer.from('sixteen byte msg')): Buffer {
  r.m.p11.C_EncryptInit(r.s, gcm(iv), key);
  return Buffer.from(r.m.p11.C_Encrypt(r.s, pt, Buffer.alloc(pt.length + 16)));
}

function reservedOnDisk(d: Daemon): Record<string, number> {
  const raw = JSON.parse(readFileSync(path.join(d.dataDir, 'nonce', 'gcm-counters.json'), 'utf8')) as { keys: Record<string, { reserved: number }> };
  return Object.fromEntries(Object.entries(raw.keys).map(([k, v]) => [k, v.reserved]));
}
const only = (rec: Record<string, number>): number => {
  expect(Object.keys(rec)).toHaveLength(1);
  return Object.values(rec)[0]!;
};

describe('GCM invocation limit', () => {
  const TOML = `[nonce]\ngcm_invocation_limit = 20\ncaller_iv = "reject_reuse"\n`;

  it('counts token-key encryptions across kill -9, raises ticket and page, refuses at 100% but still decrypts', async () => {
    let r = await up(TOML, undefined, true);
    let key = genKey(r, 'gcm-token', true);
    const first = encrypt(r, key, ivOf(0));
    for (let i = 1; i < 8; i++) encrypt(r, key, ivOf(i));
    expect(only(reservedOnDisk(r.d))).toBe(8);

    r = await crashAndRestart(r, TOML);
    expect(only(reservedOnDisk(r.d))).toBe(8);
    key = findKey(r, 'gcm-token');
    // a caller IV already used with this key is refused (reject_reuse), and not counted
    encrypt(r, key, ivOf(8));
    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(8)), key), CKR.MECHANISM_PARAM_INVALID);
    for (let i = 9; i < 14; i++) encrypt(r, key, ivOf(i)); // 14 invocations
    await expectLog(r.d, /security event gcm_counter_info: key=slot-0\/\S+ percent=50 used=10 limit=20/);
    expect(r.d.stderr()).not.toMatch(/gcm_counter_ticket/);
    encrypt(r, key, ivOf(14));
    await expectLog(r.d, /security event gcm_counter_ticket: key=slot-0\/\S+ percent=75 used=15 limit=20/);
    for (let i = 15; i < 18; i++) encrypt(r, key, ivOf(i));
    await expectLog(r.d, /security event gcm_counter_ticket: key=\S+ percent=90 used=18/);
    expect(r.d.stderr()).not.toMatch(/gcm_counter_page/);
    encrypt(r, key, ivOf(18));
    await expectLog(r.d, /security event gcm_counter_page: key=\S+ percent=95 used=19 limit=20/);
    encrypt(r, key, ivOf(19));
    await expectLog(r.d, /security event gcm_counter_page: key=\S+ percent=100 used=20 limit=20 exhausted/);
    expect(only(reservedOnDisk(r.d))).toBe(20);

    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(21)), key), CKR.KEY_FUNCTION_NOT_PERMITTED);
    r.m.p11.C_DecryptInit(r.s, gcm(ivOf(0)), key);
    expect(Buffer.from(r.m.p11.C_Decrypt(r.s, first, Buffer.alloc(first.length))).toString()).toBe('sixteen byte msg');

    r = await crashAndRestart(r, TOML);
    key = findKey(r, 'gcm-token');
    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(22)), key), CKR.KEY_FUNCTION_NOT_PERMITTED);
    // another key has its own budget
    encrypt(r, genKey(r, 'gcm-other', true), ivOf(0));
  });

  it('session keys are limited too (in memory)', async () => {
    const r = await up(TOML, undefined, true);
    const key = genKey(r, 'gcm-session', false);
    for (let i = 0; i < 20; i++) encrypt(r, key, ivOf(i));
    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(99)), key), CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(() => reservedOnDisk(r.d)).toThrow(); // nothing written for session keys
  });
});

describe('C_WrapKey with CKM_AES_GCM is a GCM invocation too', () => {
  const aes = (r: Running, label: string, attrs: Array<{ type: number; value: unknown }>) =>
    r.m.p11.C_GenerateKey(r.s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: label }, ...attrs] as never);

  it('counts each wrap against the wrapping key and refuses a reused IV (reject_reuse)', async () => {
    const r = await up(`[nonce]\ngcm_invocation_limit = 3\ncaller_iv = "reject_reuse"\n`, undefined, true);
    const kek = aes(r, 'gcm-kek', [{ type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true }]);
    const target = aes(r, 'gcm-wrapped', [{ type: CKA.EXTRACTABLE, value: true }]);
    const wrap = (iv: Buffer) => Buffer.from(r.m.p11.C_WrapKey(r.s, gcm(iv), kek, target, Buffer.alloc(64)));
    const wrapped = wrap(ivOf(1));
    expect(wrapped.length).toBe(32 + 16);
    expect(only(reservedOnDisk(r.d))).toBe(1);
    expectRv(() => wrap(ivOf(1)), CKR.MECHANISM_PARAM_INVALID); // same (key, IV) as the first wrap
    wrap(ivOf(2));
    encrypt(r, kek, ivOf(3)); // wraps and encryptions share the key's one budget
    expect(only(reservedOnDisk(r.d))).toBe(3);
    expectRv(() => wrap(ivOf(4)), CKR.KEY_FUNCTION_NOT_PERMITTED);
  });

  it('caller_iv = "generate": a GCM wrap is refused (the reply cannot carry the generated IV)', async () => {
    const r = await up(`[nonce]\ncaller_iv = "generate"\n`, undefined, true);
    const kek = aes(r, 'gcm-kek', [{ type: CKA.WRAP, value: true }]);
    const target = aes(r, 'gcm-wrapped', [{ type: CKA.EXTRACTABLE, value: true }]);
    expectRv(() => r.m.p11.C_WrapKey(r.s, gcm(Buffer.alloc(12)), kek, target, Buffer.alloc(64)), CKR.MECHANISM_PARAM_INVALID);
    expect(existsSync(path.join(r.d.dataDir, 'nonce', 'gcm-counters.json')) ? Object.keys(reservedOnDisk(r.d)) : []).toEqual([]);
  });
});

describe('counters across kill -9 in the middle of encrypting', () => {
  const TOML = `[nonce]\ngcm_invocation_limit = 100000\n`; // reservation block of 24

  it('never loses a returned encryption and never goes back, over three crashes', async () => {
    let r = await up(TOML, undefined, true);
    genKey(r, 'gcm-hammer', true);
    let lastReserved = 0;
    for (let round = 0; round < 3; round++) {
      // A separate client encrypts as fast as it can, printing each returned ciphertext's number.
      const script = `
        import pkcs11js from 'pkcs11js';
        import { randomBytes } from 'node:crypto';
        const p = new pkcs11js.PKCS11(); p.load(${JSON.stringify(MODULE_PATH)}); p.C_Initialize();
        const slot = p.C_GetSlotList(true)[0]; const s = p.C_OpenSession(slot, ${CKF.SERIAL_SESSION});
        p.C_Login(s, ${CKU.USER}, '${USER_PIN}');
        p.C_FindObjectsInit(s, [{ type: ${CKA.LABEL}, value: 'gcm-hammer' }]); const [k] = p.C_FindObjects(s, 1); p.C_FindObjectsFinal(s);
        const pt = Buffer.alloc(16);
        for (let i = 1; ; i++) {
          p.C_EncryptInit(s, { mechanism: ${CKM.AES_GCM}, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv: randomBytes(12), ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } }, k);
          p.C_Encrypt(s, pt, Buffer.alloc(32));
          process.stdout.write('ok ' + i + '\\n');
        }`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, env: r.d.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => (out += d));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const until = Date.now() + 30_000;
      while (!/ok 150\n/.test(out) && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
      r.m.close();
      await r.d.kill9();
      await exited;
      const returned = Math.max(0, ...[...out.matchAll(/ok (\d+)/g)].map((m) => Number(m[1])));
      expect(returned).toBeGreaterThanOrEqual(150);
      const reserved = only(reservedOnDisk(r.d));
      // every encryption the client received is covered by the durable counter
      expect(reserved).toBeGreaterThanOrEqual(lastReserved + returned);
      lastReserved = reserved;
      r = await up(TOML, r.d.dataDir);
    }
    // after the last restart the counter resumes beyond every earlier reservation
    encrypt(r, findKey(r, 'gcm-hammer'), ivOf(1));
    expect(only(reservedOnDisk(r.d))).toBeGreaterThan(lastReserved);
  });
});

describe('housekeeping and key lifecycle windows', () => {
  const TOML = `[nonce]\ngcm_invocation_limit = 20\n`;

  it('a destroyed token key takes its counter out of the counter file', async () => {
    const r = await up(TOML, undefined, true);
    const gone = genKey(r, 'gcm-gone', true);
    const kept = genKey(r, 'gcm-kept', true);
    encrypt(r, gone, ivOf(1));
    encrypt(r, kept, ivOf(1));
    expect(Object.keys(reservedOnDisk(r.d))).toHaveLength(2);
    r.m.p11.C_DestroyObject(r.s, gone);
    const until = Date.now() + 3000;
    while (Object.keys(reservedOnDisk(r.d)).length !== 1 && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
    expect(Object.values(reservedOnDisk(r.d))).toEqual([1]);
  });

  it('CKA_END_DATE passed: encrypt refused, decrypt allowed (default); CKA_START_DATE ahead: both refused', async () => {
    const r = await up(TOML, undefined, true);
    const keyWith = (attrs: Array<{ type: number; value: Buffer }>) =>
      r.m.p11.C_GenerateKey(r.s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }, ...attrs] as never);
    const expired = keyWith([{ type: CKA.START_DATE, value: Buffer.from('20000101') }, { type: CKA.END_DATE, value: Buffer.from('20000102') }]);
    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(1)), expired), CKR.KEY_FUNCTION_NOT_PERMITTED);
    r.m.p11.C_DecryptInit(r.s, gcm(ivOf(1)), expired);
    expectRv(() => r.m.p11.C_Decrypt(r.s, Buffer.alloc(32), Buffer.alloc(32)), CKR.ENCRYPTED_DATA_INVALID);
    const future = keyWith([{ type: CKA.START_DATE, value: Buffer.from('29991231') }]);
    expectRv(() => r.m.p11.C_EncryptInit(r.s, gcm(ivOf(1)), future), CKR.KEY_FUNCTION_NOT_PERMITTED);
    expectRv(() => r.m.p11.C_DecryptInit(r.s, gcm(ivOf(1)), future), CKR.KEY_FUNCTION_NOT_PERMITTED);
    const current = keyWith([{ type: CKA.START_DATE, value: Buffer.from('20000101') }, { type: CKA.END_DATE, value: Buffer.from('29991231') }]);
    encrypt(r, current, ivOf(1));
  });

  it('[lifecycle] processing_after_end_date = "refuse" refuses decryption after the end date', async () => {
    const r = await up(`${TOML}[lifecycle]\nprocessing_after_end_date = "refuse"\n`, undefined, true);
    const expired = r.m.p11.C_GenerateKey(r.s, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.END_DATE, value: Buffer.from('20000102') },
    ] as never);
    expectRv(() => r.m.p11.C_DecryptInit(r.s, gcm(ivOf(1)), expired), CKR.KEY_FUNCTION_NOT_PERMITTED);
  });
});
