// Daemon events reach the audit log: the self-test result at start, the FIPS approved
// indicator on cryptographic entries, and policy violations (refused in strict mode).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CKA, CKF, CKM, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, type LoadedModule, rvOf } from '../helpers/module.js';

let d: Daemon;
let m: LoadedModule;

beforeAll(async () => {
  d = await startDaemon({ slots: 1 });
  m = loadModule(d.socketPath);
});
afterAll(async () => {
  m?.close();
  await d?.stop();
});

const entries = () =>
  readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);


describe('events in the audit log', () => {
  it('records the power-on self-test result', () => {
    const st = entries().find((e) => e.operation === 'SelfTest');
    expect(st, 'SelfTest entry').toBeDefined();
    expect(st!.details.passed).toBe(true);
    expect(st!.details.known_answer_tests).toBeGreaterThan(10);
  });

  it('marks approved operations and records a refused non-approved one', () => {
    const p11 = m.p11;
    const slot = p11.C_GetSlotList(true)[0]!;
    p11.C_InitToken(slot, '12345678', 'events');
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.SO, '12345678');
    p11.C_InitPIN(s, '1234');
    p11.C_Logout(s);
    p11.C_Login(s, CKU.USER, '1234');
    const kp = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
      [{ type: CKA.SIGN, value: true }],
    );
    p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, kp.privateKey);
    p11.C_Sign(s, Buffer.from('approved'), Buffer.alloc(64));
    expect(rvOf(() => p11.C_DigestInit(s, { mechanism: CKM.MD5 }))).toBe(CKR.MECHANISM_INVALID);

    const es = entries();
    const sign = es.filter((e) => e.operation === 'Sign');
    expect(sign.length).toBeGreaterThan(0);
    expect(sign.at(-1)!.fips_approved).toBe(true);
    expect(sign.at(-1)!.mechanism).toBe('CKM_ECDSA_SHA256');
    const refused = es.filter((e) => e.operation === 'DigestInit').at(-1)!;
    expect(refused.result).toEqual({ Failure: 'CKR_MECHANISM_INVALID' });
    expect(refused.fips_approved).toBe(false);
    const violation = es.filter((e) => e.operation === 'PolicyViolation').at(-1);
    expect(violation, 'PolicyViolation entry').toBeDefined();
    expect(violation!.details.mechanism).toBe('CKM_MD5');
    expect(violation!.details.refused).toBe(true);
    // nothing secret: no PIN appears anywhere in the log
    expect(readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8')).not.toMatch(/12345678|"1234"/);
  });
});
