// Repeated logins with an already-verified PIN skip PBKDF2 (token/token.ts
// recentlyVerified). The shortcut must never change an answer: wrong PINs still count,
// a changed PIN is not remembered, and a locked PIN stays locked even when right.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { initTokenAndLogin, loadModule, rvOf, type LoadedModule } from '../helpers/module.js';

const SO = '12345678';
const USER = '1234';
let d: Daemon;
let m: LoadedModule;
let slot: Buffer;

beforeAll(async () => {
  d = await startDaemon({ slots: 1, extraToml: '[security]\nmax_failed_logins = 3\nfailed_login_delay_base_ms = 0\n' });
  m = loadModule(d.socketPath);
  const r = initTokenAndLogin(m.p11, { soPin: SO, userPin: USER, label: 'cache' });
  slot = r.slot;
  m.p11.C_CloseSession(r.session);
});
afterAll(async () => {
  m?.close();
  await d?.stop();
});

const login = (s: Buffer, pin: string) => rvName(rvOf(() => m.p11.C_Login(s, CKU.USER, pin)));

describe('verified-PIN shortcut', () => {
  it('keeps every answer of the PBKDF2 path', () => {
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    for (let i = 0; i < 5; i++) {
      expect(login(s, USER)).toBe('CKR_OK');
      p11.C_Logout(s);
    }
    // a wrong PIN is still wrong and still counted
    expect(login(s, '9999')).toBe(rvName(CKR.PIN_INCORRECT));
    expect(p11.C_GetTokenInfo(slot).flags & CKF.USER_PIN_COUNT_LOW).toBeTruthy();
    expect(login(s, USER)).toBe('CKR_OK');
    expect(p11.C_GetTokenInfo(slot).flags & CKF.USER_PIN_COUNT_LOW).toBe(0);
    // a changed PIN: the old one is not remembered
    p11.C_SetPIN(s, USER, '4321');
    p11.C_Logout(s);
    expect(login(s, USER)).toBe(rvName(CKR.PIN_INCORRECT));
    expect(login(s, '4321')).toBe('CKR_OK');
    p11.C_Logout(s);
    // locked means locked, even for the right (remembered) PIN
    expect(login(s, '0000')).toBe(rvName(CKR.PIN_INCORRECT));
    expect(login(s, '0000')).toBe(rvName(CKR.PIN_INCORRECT));
    expect(login(s, '0000')).toBe(rvName(CKR.PIN_INCORRECT));
    expect(p11.C_GetTokenInfo(slot).flags & CKF.USER_PIN_LOCKED).toBeTruthy();
    expect(login(s, '4321')).toBe(rvName(CKR.PIN_LOCKED));
    p11.C_CloseSession(s);
  });
});
