// Hard limits per application: sessions, session objects, and the frame size, each
// refused with its CK_RV while the daemon keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, rvOf, type LoadedModule } from '../helpers/module.js';

let d: Daemon;
let m: LoadedModule;
let slot: Buffer;

beforeAll(async () => {
  d = await startDaemon({ slots: 1, extraToml: '[limits]\nmax_sessions_per_app = 3\nmax_session_objects_per_app = 4\n' });
  m = loadModule(d.socketPath);
  slot = m.p11.C_GetSlotList(true)[0]!;
  m.p11.C_InitToken(slot, '12345678', 'limits');
});
afterAll(async () => {
  m?.close();
  await d?.stop();
});

describe('per-application limits', () => {
  it('refuses a session beyond max_sessions_per_app with CKR_SESSION_COUNT, and recovers after a close', () => {
    const p11 = m.p11;
    const open = () => p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    const s = [open(), open(), open()];
    expect(rvName(rvOf(open))).toBe(rvName(CKR.SESSION_COUNT));
    p11.C_CloseSession(s[0]!);
    s[0] = open();
    for (const h of s) p11.C_CloseSession(h);
  });

  it('refuses session objects beyond max_session_objects_per_app with CKR_DEVICE_MEMORY', () => {
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    const create = () => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: false }]);
    const made = [create(), create(), create(), create()];
    expect(rvName(rvOf(create))).toBe(rvName(CKR.DEVICE_MEMORY));
    p11.C_DestroyObject(s, made[0]!);
    create();
    // token objects do not count against the session-object limit
    p11.C_Login(s, CKU.SO, '12345678');
    p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }]);
    p11.C_CloseSession(s);
    // the objects died with the session: a new session starts from zero
    const s2 = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    for (let i = 0; i < 4; i++) p11.C_CreateObject(s2, [{ type: CKA.CLASS, value: CKO.DATA }]);
    p11.C_CloseSession(s2);
  });

  it('a data object larger than the frame limit is refused by the module, and the daemon keeps serving', () => {
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    const huge = Buffer.alloc(17 * 1024 * 1024, 1);
    const rv = rvOf(() => p11.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.VALUE, value: huge }]));
    expect(rvName(rv)).toBe(rvName(CKR.DEVICE_MEMORY));
    expect(p11.C_GenerateRandom(s, Buffer.alloc(8))).toHaveLength(8);
    p11.C_CloseSession(s);
  });
});
