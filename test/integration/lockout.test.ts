// PIN lockout through the real module: the CKF_*_PIN_* flags after each failure, the lock
// at [security] max_failed_logins, counters that survive kill -9 between guesses, the SO's
// C_InitPIN unlocking the user, the events in the daemon log, and the exponential delay
// that holds only the guessing client.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { CKF, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, REPO_ROOT, MODULE_PATH, type Daemon } from '../helpers/daemon.js';
import { loadModule, type LoadedModule, rvOf } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';
const WRONG = '9999';
const MAX = 4;
const NO_DELAY = `[security]\nmax_failed_logins = ${MAX}\nfailed_login_delay_base_ms = 0\n`;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const expectRv = (fn: () => unknown, rv: number) => expect(rvName(rvOf(fn))).toBe(rvName(rv));

interface Running {
  d: Daemon;
  m: LoadedModule;
  slot: Buffer;
}

async function up(extraToml: string, dataDir?: string): Promise<Running> {
  const d = await startDaemon({ slots: 1, dataDir, extraToml });
  const m = loadModule(d.socketPath);
  let closed = false;
  const close = () => {
    if (!closed) m.close();
    closed = true;
  };
  cleanups.push(async () => {
    close();
    await d.stop();
  });
  const slot = m.p11.C_GetSlotList(true)[0]!;
  return { d, m: { p11: m.p11, close }, slot };
}

/** kill -9 the daemon, start a new one on the same data directory, reload the module. */
async function crashAndRestart(r: Running, extraToml: string): Promise<Running> {
  r.m.close();
  await r.d.kill9();
  return up(extraToml, r.d.dataDir);
}

function initToken(r: Running): void {
  const p11 = r.m.p11;
  p11.C_InitToken(r.slot, SO_PIN, 'lockout');
  const s = p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  p11.C_Login(s, CKU.SO, SO_PIN);
  p11.C_InitPIN(s, USER_PIN);
  p11.C_Logout(s);
  p11.C_CloseSession(s);
}

const USER_BITS = CKF.USER_PIN_COUNT_LOW | CKF.USER_PIN_FINAL_TRY | CKF.USER_PIN_LOCKED;
const SO_BITS = CKF.SO_PIN_COUNT_LOW | CKF.SO_PIN_FINAL_TRY | CKF.SO_PIN_LOCKED;
/** pkcs11js calls block this event loop; let the daemon's stderr arrive before checking it. */
async function logMatches(d: Daemon, re: RegExp, ms = 3000): Promise<string> {
  const until = Date.now() + ms;
  while (!re.test(d.stderr()) && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
  return d.stderr();
}

async function expectLog(d: Daemon, re: RegExp): Promise<void> {
  expect(await logMatches(d, re)).toMatch(re);
}

const userFlags = (r: Running) => r.m.p11.C_GetTokenInfo(r.slot).flags & USER_BITS;
const soFlags = (r: Running) => r.m.p11.C_GetTokenInfo(r.slot).flags & SO_BITS;

function userLogin(r: Running, pin: string): number {
  const s = r.m.p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION);
  try {
    return rvOf(() => r.m.p11.C_Login(s, CKU.USER, pin));
  } finally {
    r.m.p11.C_CloseSession(s);
  }
}

describe('user PIN lockout', () => {
  it('flags after each failure, lock at the threshold, all surviving kill -9; SO C_InitPIN unlocks', async () => {
    let r = await up(NO_DELAY);
    initToken(r);
    expect(userFlags(r)).toBe(0);

    expect(rvName(userLogin(r, WRONG))).toBe('CKR_PIN_INCORRECT');
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW);
    r = await crashAndRestart(r, NO_DELAY);
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW);

    expect(rvName(userLogin(r, WRONG))).toBe('CKR_PIN_INCORRECT');
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW);
    r = await crashAndRestart(r, NO_DELAY);

    expect(rvName(userLogin(r, WRONG))).toBe('CKR_PIN_INCORRECT');
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW | CKF.USER_PIN_FINAL_TRY);
    r = await crashAndRestart(r, NO_DELAY);
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW | CKF.USER_PIN_FINAL_TRY);

    expect(rvName(userLogin(r, WRONG))).toBe('CKR_PIN_INCORRECT');
    expect(userFlags(r)).toBe(CKF.USER_PIN_LOCKED);
    await expectLog(r.d, /security event pin_locked: slot=0 role=user .*failed=4\/4 locked now/);
    // locked: even the right PIN is refused, before and after a crash
    expect(rvName(userLogin(r, USER_PIN))).toBe('CKR_PIN_LOCKED');
    r = await crashAndRestart(r, NO_DELAY);
    expect(userFlags(r)).toBe(CKF.USER_PIN_LOCKED);
    expect(rvName(userLogin(r, USER_PIN))).toBe('CKR_PIN_LOCKED');
    await expectLog(r.d, /security event pin_locked: slot=0 role=user .*attempt while locked/);
    expect(soFlags(r)).toBe(0);

    // The SO sets a new user PIN: the lock and the count are gone.
    const so = r.m.p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    r.m.p11.C_Login(so, CKU.SO, SO_PIN);
    r.m.p11.C_InitPIN(so, '5678');
    r.m.p11.C_Logout(so);
    r.m.p11.C_CloseSession(so);
    expect(userFlags(r)).toBe(0);
    expect(rvName(userLogin(r, '5678'))).toBe('CKR_OK');
    await expectLog(r.d, /security event pin_unlocked: slot=0 role=user by=init_pin/);
    r = await crashAndRestart(r, NO_DELAY);
    expect(userFlags(r)).toBe(0);
  });

  it('a success resets the count; repeated wrong PINs from one session raise pin_incorrect_repeated', async () => {
    const r = await up(NO_DELAY);
    initToken(r);
    const p11 = r.m.p11;
    const s = p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION);
    expectRv(() => p11.C_Login(s, CKU.USER, WRONG), CKR.PIN_INCORRECT);
    expectRv(() => p11.C_Login(s, CKU.USER, WRONG), CKR.PIN_INCORRECT);
    expect(await logMatches(r.d, /pin_incorrect_repeated/, 200)).not.toMatch(/pin_incorrect_repeated/);
    expectRv(() => p11.C_Login(s, CKU.USER, WRONG), CKR.PIN_INCORRECT);
    expect(userFlags(r)).toBe(CKF.USER_PIN_COUNT_LOW | CKF.USER_PIN_FINAL_TRY);
    await expectLog(r.d, /security event pin_incorrect_repeated: slot=0 role=user app=\S+ session=\d+ from_caller=3 failed=3\/4/);
    p11.C_Login(s, CKU.USER, USER_PIN);
    expect(userFlags(r)).toBe(0);
    p11.C_Logout(s);
    p11.C_CloseSession(s);
  });
});

describe('SO PIN lockout', () => {
  it('counts SO failures with the SO flags and locks the SO at the threshold', async () => {
    let r = await up(NO_DELAY);
    initToken(r);
    const soLogin = (pin: string) => {
      const s = r.m.p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
      try {
        return rvOf(() => r.m.p11.C_Login(s, CKU.SO, pin));
      } finally {
        r.m.p11.C_CloseSession(s);
      }
    };
    const seen: number[] = [];
    for (let i = 0; i < MAX; i++) {
      expect(rvName(soLogin(WRONG))).toBe('CKR_PIN_INCORRECT');
      seen.push(soFlags(r));
      if (i === 1) r = await crashAndRestart(r, NO_DELAY);
    }
    expect(seen).toEqual([
      CKF.SO_PIN_COUNT_LOW,
      CKF.SO_PIN_COUNT_LOW,
      CKF.SO_PIN_COUNT_LOW | CKF.SO_PIN_FINAL_TRY,
      CKF.SO_PIN_LOCKED,
    ]);
    expect(userFlags(r)).toBe(0);
    expect(rvName(soLogin(SO_PIN))).toBe('CKR_PIN_LOCKED');
    // the user is unaffected
    expect(rvName(userLogin(r, USER_PIN))).toBe('CKR_OK');
  });
});

describe('delay between failures', () => {
  it('doubles per failure and holds only the guessing client', async () => {
    const toml = `[security]\nmax_failed_logins = 10\nfailed_login_delay_base_ms = 300\nfailed_login_delay_cap_ms = 1200\n[slots]\ncount = 1\n`;
    const r = await up(toml);
    initToken(r);
    const timed = () => {
      const t0 = Date.now();
      expect(rvName(userLogin(r, WRONG))).toBe('CKR_PIN_INCORRECT');
      return Date.now() - t0;
    };
    const t1 = timed();
    const t2 = timed();
    expect(t1).toBeGreaterThanOrEqual(290);
    expect(t2).toBeGreaterThanOrEqual(590);

    // A separate client guesses wrong (third failure: 1200 ms); meanwhile this client is served at once.
    const script = `
      import pkcs11js from 'pkcs11js';
      const p = new pkcs11js.PKCS11(); p.load(${JSON.stringify(MODULE_PATH)}); p.C_Initialize();
      const slot = p.C_GetSlotList(true)[0]; const s = p.C_OpenSession(slot, ${CKF.SERIAL_SESSION});
      process.stdout.write('start\\n'); const t0 = Date.now();
      try { p.C_Login(s, ${CKU.USER}, '${WRONG}'); } catch (e) { process.stdout.write(String(e.message) + '\\n'); }
      process.stdout.write('answered ' + Date.now() + '\\n');
      process.stdout.write('elapsed ' + (Date.now() - t0) + '\\n'); p.C_Finalize();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, env: r.d.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    const started = new Promise<void>((resolve) => child.stdout.on('data', (d: string) => ((out += d), out.includes('start') && resolve())));
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await started;
    await new Promise((res) => setTimeout(res, 250)); // the child's PIN check (1000 iterations) is long done; it is sleeping
    const info = r.m.p11.C_GetTokenInfo(r.slot);
    const s = r.m.p11.C_OpenSession(r.slot, CKF.SERIAL_SESSION);
    r.m.p11.C_GenerateRandom(s, Buffer.alloc(16));
    r.m.p11.C_CloseSession(s);
    const ourDone = Date.now();
    await done;
    // We were served while the guessing client was still held back: before its answer came.
    const answeredAt = Number(/answered (\d+)/.exec(out)?.[1]);
    const servedWhileHeld = ourDone < answeredAt;
    expect(out).toMatch(/CKR_PIN_INCORRECT/);
    const elapsed = Number(/elapsed (\d+)/.exec(out)?.[1]);
    expect(elapsed).toBeGreaterThanOrEqual(1190);
    expect(servedWhileHeld).toBe(true);
    expect(info.flags & CKF.USER_PIN_COUNT_LOW).toBeTruthy();
  });
});
