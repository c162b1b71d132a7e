// X25519 (CKM_EC_MONTGOMERY_KEY_PAIR_GEN + CKM_ECDH1_DERIVE) and AES-CCM through the real
// module. X25519 is non-approved: strict refuses it, warn runs it; CCM is approved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, pkcs11js, rvOf, type LoadedModule, type PKCS11 } from '../helpers/module.js';

const X25519_OID = Buffer.from('06032b656e', 'hex');
const CURVE25519_NAME = Buffer.concat([Buffer.from([0x13, 10]), Buffer.from('curve25519')]);
const session = [{ type: CKA.TOKEN, value: false }];

async function open(extraToml?: string): Promise<{ d: Daemon; mod: LoadedModule; p11: PKCS11; s: Buffer }> {
  const d = await startDaemon(extraToml ? { extraToml } : {});
  const mod = loadModule(d.socketPath);
  const p11 = mod.p11;
  const slot = p11.C_GetSlotList(true)[0]!;
  p11.C_InitToken(slot, '12345678', 'xccm');
  const so = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  p11.C_Login(so, CKU.SO, '12345678');
  p11.C_InitPIN(so, '1234');
  p11.C_Logout(so);
  p11.C_CloseSession(so);
  const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  p11.C_Login(s, CKU.USER, '1234');
  return { d, mod, p11, s };
}

const genX = (p11: PKCS11, s: Buffer, params: Buffer) =>
  p11.C_GenerateKeyPair(s, { mechanism: CKM.EC_MONTGOMERY_KEY_PAIR_GEN }, [...session, { type: CKA.EC_PARAMS, value: params }], [...session, { type: CKA.DERIVE, value: true }]);

describe.sequential('X25519 and AES-CCM: warn profile', () => {
  let env: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    env = await open('[algorithms]\nenforce = "warn"');
  });
  afterAll(async () => {
    env?.mod.close();
    await env?.d.stop();
  });

  it('generates X25519 pairs (OID and curve name); CKA_EC_POINT is the raw u-coordinate; ECDH1 agrees with node', () => {
    const { p11, s } = env;
    for (const params of [X25519_OID, CURVE25519_NAME]) {
      const kp = genX(p11, s, params);
      const [kt, u] = p11.C_GetAttributeValue(s, kp.publicKey, [{ type: CKA.KEY_TYPE }, { type: CKA.EC_POINT }]);
      expect((kt!.value as Buffer).readUInt32LE(0)).toBe(CKK.EC_MONTGOMERY);
      expect(u!.value as Buffer).toHaveLength(32);
      const other = generateKeyPairSync('x25519');
      const otherU = Buffer.from(other.publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const derived = p11.C_DeriveKey(s, { mechanism: CKM.ECDH1_DERIVE, parameter: { type: pkcs11js.CK_PARAMS_EC_DH, kdf: 1, publicData: otherU } } as never, kp.privateKey, [
        ...session,
        { type: CKA.CLASS, value: CKO.SECRET_KEY },
        { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET },
        { type: CKA.VALUE_LEN, value: 32 },
        { type: CKA.SENSITIVE, value: false },
        { type: CKA.EXTRACTABLE, value: true },
      ]);
      const z = p11.C_GetAttributeValue(s, derived, [{ type: CKA.VALUE }])[0]!.value as Buffer;
      const want = diffieHellman({ privateKey: other.privateKey, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: (u!.value as Buffer).toString('base64url') }, format: 'jwk' }) });
      expect(z.equals(want)).toBe(true);
    }
  });

  it('AES-CCM single- and multi-part equal node; a bad tag releases nothing', () => {
    const { p11, s } = env;
    const keyValue = Buffer.alloc(16, 0x42);
    const k = p11.C_CreateObject(s, [
      ...session,
      { type: CKA.CLASS, value: CKO.SECRET_KEY },
      { type: CKA.KEY_TYPE, value: CKK.AES },
      { type: CKA.VALUE, value: keyValue },
      { type: CKA.ENCRYPT, value: true },
      { type: CKA.DECRYPT, value: true },
    ]);
    const nonce = Buffer.alloc(12, 7);
    const aad = Buffer.from('header');
    const pt = Buffer.from('CCM through the module, forty-two bytes!!!');
    const m = { mechanism: CKM.AES_CCM, parameter: { type: pkcs11js.CK_PARAMS_AES_CCM, dataLength: pt.length, nonce, aad, macLength: 16 } } as never;
    const c = createCipheriv('aes-128-ccm', keyValue, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: pt.length });
    const want = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    p11.C_EncryptInit(s, m, k);
    expect(p11.C_Encrypt(s, pt, Buffer.alloc(128)).equals(want)).toBe(true);
    p11.C_EncryptInit(s, m, k);
    const parts = [p11.C_EncryptUpdate(s, pt.subarray(0, 10), Buffer.alloc(128)), p11.C_EncryptUpdate(s, pt.subarray(10), Buffer.alloc(128)), p11.C_EncryptFinal(s, Buffer.alloc(128))];
    expect(Buffer.concat(parts).equals(want)).toBe(true);
    p11.C_DecryptInit(s, m, k);
    expect(p11.C_Decrypt(s, want, Buffer.alloc(128)).equals(pt)).toBe(true);
    const bad = Buffer.from(want);
    bad[bad.length - 1]! ^= 1;
    p11.C_DecryptInit(s, m, k);
    expect(p11.C_DecryptUpdate(s, bad, Buffer.alloc(128))).toHaveLength(0);
    expect(rvName(rvOf(() => p11.C_DecryptFinal(s, Buffer.alloc(128))))).toBe(rvName(CKR.ENCRYPTED_DATA_INVALID));
  });
});

describe.sequential('X25519: strict profile refuses it', () => {
  let env: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => {
    env?.mod.close();
    await env?.d.stop();
  });
  it('C_GenerateKeyPair CKM_EC_MONTGOMERY_KEY_PAIR_GEN → CKR_MECHANISM_INVALID; not listed; CCM listed', () => {
    const { p11, s } = env;
    expect(rvName(rvOf(() => genX(p11, s, X25519_OID)))).toBe(rvName(CKR.MECHANISM_INVALID));
    const slot = p11.C_GetSlotList(true)[0]!;
    const listed = p11.C_GetMechanismList(slot);
    expect(listed).not.toContain(CKM.EC_MONTGOMERY_KEY_PAIR_GEN);
    expect(listed).toContain(CKM.AES_CCM);
  });
});
