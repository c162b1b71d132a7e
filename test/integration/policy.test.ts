// The FIPS policy through the real module: pkcs11js → libcraton_hsm.so → craton-hsmd.
// One scenario table, run against a strict default daemon (each refusal has its CK_RV)
// and a warn daemon (the same calls run); the mechanism list follows the policy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { digestInfo, hashByName } from '../../hsm-daemon/src/mechanisms/common.js';
import { MechanismRegistry, defaultFamilies } from '../../hsm-daemon/src/mechanisms/registry.js';
import { PolicyEnforcer } from '../../hsm-daemon/src/policy/enforcer.js';
import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '../../hsm-daemon/src/policy/table.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, type LoadedModule, type PKCS11, rvOf, initTokenAndLogin } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const DATA = Buffer.from('policy matrix payload');


interface Env {
  p11: PKCS11;
  slot: Buffer;
  s: Buffer;
  aes: Buffer;
  hmacShort: Buffer;
  rsaPriv: Buffer;
  ecPriv: Buffer;
}

/** One call per scenario; what matters is the CK_RV. */
const SCENARIOS: Array<{ name: string; run: (e: Env) => unknown; strict: number; warn: number }> = [
  {
    name: 'C_EncryptInit AES-ECB',
    run: ({ p11, s, aes }) => {
      p11.C_EncryptInit(s, { mechanism: CKM.AES_ECB }, aes);
      return p11.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(16));
    },
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    // The data decides, so the refusal comes at C_Sign (C_SignInit succeeds).
    name: 'C_Sign CKM_RSA_PKCS over raw data (no DigestInfo)',
    run: ({ p11, s, rsaPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.RSA_PKCS }, rsaPriv);
      return p11.C_Sign(s, Buffer.alloc(32, 1), Buffer.alloc(256));
    },
    strict: CKR.DATA_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_Sign CKM_RSA_PKCS over a SHA-1 DigestInfo',
    run: ({ p11, s, rsaPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.RSA_PKCS }, rsaPriv);
      return p11.C_Sign(s, digestInfo(hashByName('sha1'), createHash('sha1').update(DATA).digest()), Buffer.alloc(256));
    },
    strict: CKR.DATA_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_Sign CKM_RSA_PKCS over a SHA-256 DigestInfo (approved)',
    run: ({ p11, s, rsaPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.RSA_PKCS }, rsaPriv);
      return p11.C_Sign(s, digestInfo(hashByName('sha256'), createHash('sha256').update(DATA).digest()), Buffer.alloc(256));
    },
    strict: CKR.OK,
    warn: CKR.OK,
  },
  {
    name: 'C_DecryptInit CKM_RSA_PKCS (padding oracle: still gated)',
    run: ({ p11, s, rsaPriv }) => p11.C_DecryptInit(s, { mechanism: CKM.RSA_PKCS }, rsaPriv),
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_SignInit raw CKM_RSA_X_509',
    run: ({ p11, s, rsaPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.RSA_X_509 }, rsaPriv);
      return p11.C_Sign(s, Buffer.alloc(256, 1).fill(0, 0, 1), Buffer.alloc(256));
    },
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_DigestInit SHA-1',
    run: ({ p11, s }) => {
      p11.C_DigestInit(s, { mechanism: CKM.SHA_1 });
      const out = p11.C_Digest(s, DATA, Buffer.alloc(20));
      expect(out.equals(createHash('sha1').update(DATA).digest())).toBe(true);
    },
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_DigestInit MD5',
    run: ({ p11, s }) => {
      p11.C_DigestInit(s, { mechanism: CKM.MD5 });
      const out = p11.C_Digest(s, DATA, Buffer.alloc(16));
      expect(out.equals(createHash('md5').update(DATA).digest())).toBe(true);
    },
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_SignInit ECDSA-SHA1',
    run: ({ p11, s, ecPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA1 }, ecPriv);
      return p11.C_Sign(s, DATA, Buffer.alloc(64));
    },
    strict: CKR.MECHANISM_INVALID,
    warn: CKR.OK,
  },
  {
    name: 'C_SignInit HMAC-SHA-256 with an 80-bit key',
    run: ({ p11, s, hmacShort }) => {
      p11.C_SignInit(s, { mechanism: CKM.SHA256_HMAC }, hmacShort);
      return p11.C_Sign(s, DATA, Buffer.alloc(32));
    },
    strict: CKR.KEY_SIZE_RANGE,
    warn: CKR.OK,
  },
  {
    name: 'C_GenerateKey generic secret of 64 bits',
    run: ({ p11, s }) =>
      p11.C_GenerateKey(s, { mechanism: CKM.GENERIC_SECRET_KEY_GEN }, [
        { type: CKA.VALUE_LEN, value: 8 },
        { type: CKA.TOKEN, value: false },
      ] as never),
    strict: CKR.KEY_SIZE_RANGE,
    warn: CKR.OK,
  },
  {
    // The RSA family itself never makes a key below 2048 bits, so warn refuses it too.
    name: 'C_GenerateKeyPair RSA-1024',
    run: ({ p11, s }) =>
      p11.C_GenerateKeyPair(s, { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN }, [{ type: CKA.MODULUS_BITS, value: 1024 }, { type: CKA.TOKEN, value: false }], [{ type: CKA.TOKEN, value: false }]),
    strict: CKR.KEY_SIZE_RANGE,
    warn: CKR.KEY_SIZE_RANGE,
  },
  {
    name: 'C_EncryptInit AES-CBC (approved)',
    run: ({ p11, s, aes }) => {
      p11.C_EncryptInit(s, { mechanism: CKM.AES_CBC, parameter: Buffer.alloc(16, 7) }, aes);
      return p11.C_Encrypt(s, Buffer.alloc(32), Buffer.alloc(32));
    },
    strict: CKR.OK,
    warn: CKR.OK,
  },
  {
    name: 'C_SignInit ECDSA-SHA256 (approved)',
    run: ({ p11, s, ecPriv }) => {
      p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, ecPriv);
      return p11.C_Sign(s, DATA, Buffer.alloc(64));
    },
    strict: CKR.OK,
    warn: CKR.OK,
  },
];

const PROFILES: Array<{ name: 'strict' | 'warn'; extraToml?: string; settings: PolicySettings }> = [
  { name: 'strict', settings: { ...DEFAULT_POLICY_SETTINGS } },
  { name: 'warn', extraToml: '[algorithms]\nenforce = "warn"', settings: { ...DEFAULT_POLICY_SETTINGS, enforce: 'warn' } },
];

for (const profile of PROFILES) {
  describe.sequential(`policy: ${profile.name}`, () => {
    let daemon: Daemon;
    let mod: LoadedModule;
    const env = {} as Env;

    beforeAll(async () => {
      daemon = await startDaemon(profile.extraToml ? { extraToml: profile.extraToml } : {});
      mod = loadModule(daemon.socketPath);
      const p11 = mod.p11;
      const slot = p11.C_GetSlotList(true)[0]!;
      p11.C_InitToken(slot, SO_PIN, `policy-${profile.name}`);
      const so = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
      p11.C_Login(so, CKU.SO, SO_PIN);
      p11.C_InitPIN(so, USER_PIN);
      p11.C_Logout(so);
      p11.C_CloseSession(so);
      const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
      p11.C_Login(s, CKU.USER, USER_PIN);
      const aes = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
        { type: CKA.VALUE_LEN, value: 16 },
        { type: CKA.TOKEN, value: false },
        { type: CKA.ENCRYPT, value: true },
        { type: CKA.DECRYPT, value: true },
      ] as never);
      const hmacShort = p11.C_CreateObject(s, [
        { type: CKA.CLASS, value: CKO.SECRET_KEY },
        { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET },
        { type: CKA.TOKEN, value: false },
        { type: CKA.SIGN, value: true },
        { type: CKA.VALUE, value: Buffer.alloc(10, 0x5a) },
      ] as never);
      const rsa = p11.C_GenerateKeyPair(
        s,
        { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN },
        [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: CKA.TOKEN, value: false }, { type: CKA.VERIFY, value: true }],
        [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }, { type: CKA.DECRYPT, value: true }],
      );
      const ec = p11.C_GenerateKeyPair(
        s,
        { mechanism: CKM.EC_KEY_PAIR_GEN },
        [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: false }, { type: CKA.VERIFY, value: true }],
        [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }],
      );
      Object.assign(env, { p11, slot, s, aes, hmacShort, rsaPriv: rsa.privateKey, ecPriv: ec.privateKey });
    });

    afterAll(async () => {
      mod?.close();
      await daemon?.stop();
    });

    for (const sc of SCENARIOS) {
      const want = profile.name === 'strict' ? sc.strict : sc.warn;
      it(`${sc.name} → ${rvName(want)}`, () => {
        expect(rvName(rvOf(() => sc.run(env)))).toBe(rvName(want));
      });
    }

    it('C_GetMechanismList and C_GetMechanismInfo follow the policy', () => {
      const { p11, slot } = env;
      const enforcer = new PolicyEnforcer(profile.settings);
      const offered = new MechanismRegistry(defaultFamilies()).list();
      const expected = offered.filter((m) => enforcer.listed(m.type)).map((m) => m.type);
      const listed = p11.C_GetMechanismList(slot);
      expect([...listed].sort((a, b) => a - b)).toEqual(expected);
      if (profile.name === 'strict') expect(p11.C_GetMechanismInfo(slot, CKM.RSA_PKCS).flags & (CKF.SIGN | CKF.VERIFY | CKF.DECRYPT | CKF.ENCRYPT)).toBe(CKF.SIGN | CKF.VERIFY);
      const refused = [CKM.AES_ECB, CKM.RSA_X_509, CKM.SHA_1, CKM.MD5, CKM.ECDSA_SHA1, CKM.SHA1_RSA_PKCS];
      for (const m of refused) {
        if (profile.name === 'strict') {
          expect(listed).not.toContain(m);
          expect(rvName(rvOf(() => p11.C_GetMechanismInfo(slot, m)))).toBe(rvName(CKR.MECHANISM_INVALID));
        } else {
          expect(listed).toContain(m);
          expect(p11.C_GetMechanismInfo(slot, m).flags).toBe(offered.find((o) => o.type === m)!.flags);
        }
      }
      for (const m of [CKM.AES_GCM, CKM.SHA256, CKM.ECDSA_SHA256, CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256_HMAC]) expect(listed).toContain(m);
    });
  });
}

describe.sequential('policy: stricter sizes, deny list and SHA-1 verification', () => {
  let daemon: Daemon;
  let mod: LoadedModule;
  let p11: PKCS11;
  let s: Buffer;
  let slot: Buffer;

  beforeAll(async () => {
    daemon = await startDaemon({ extraToml: '[algorithms]\nrsa_min_bits = 3072\ndeny = ["CKM_AES_CBC_PAD"]\nallow_sha1_verify = true' });
    mod = loadModule(daemon.socketPath);
    p11 = mod.p11;
    ({ slot, session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'policy-sizes' }));
  });
  afterAll(async () => {
    mod?.close();
    await daemon?.stop();
  });

  it('RSA-2048 generation is below rsa_min_bits = 3072 → CKR_KEY_SIZE_RANGE; the info says 3072', () => {
    const rv = rvOf(() => p11.C_GenerateKeyPair(s, { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN }, [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.TOKEN, value: false }], [{ type: CKA.TOKEN, value: false }]));
    expect(rvName(rv)).toBe(rvName(CKR.KEY_SIZE_RANGE));
    expect(p11.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN).minKeySize).toBe(3072);
  });

  it('a denied approved mechanism is refused and unlisted', () => {
    const aes = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: false }, { type: CKA.ENCRYPT, value: true }] as never);
    expect(rvName(rvOf(() => p11.C_EncryptInit(s, { mechanism: CKM.AES_CBC_PAD, parameter: Buffer.alloc(16) }, aes)))).toBe(rvName(CKR.MECHANISM_INVALID));
    expect(p11.C_GetMechanismList(slot)).not.toContain(CKM.AES_CBC_PAD);
    expect(p11.C_GetMechanismList(slot)).toContain(CKM.AES_CBC);
  });

  it('allow_sha1_verify: ECDSA-SHA1 verifies but does not sign; the info shows CKF_VERIFY only', () => {
    const ec = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: false }, { type: CKA.VERIFY, value: true }],
      [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }],
    );
    expect(rvName(rvOf(() => p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA1 }, ec.privateKey)))).toBe(rvName(CKR.MECHANISM_INVALID));
    // A legacy signature: ECDSA over SHA-1(DATA), made with raw CKM_ECDSA.
    p11.C_SignInit(s, { mechanism: CKM.ECDSA }, ec.privateKey);
    const sig = p11.C_Sign(s, createHash('sha1').update(DATA).digest(), Buffer.alloc(64));
    p11.C_VerifyInit(s, { mechanism: CKM.ECDSA_SHA1 }, ec.publicKey);
    expect(p11.C_Verify(s, DATA, sig)).toBe(true);
    const info = p11.C_GetMechanismInfo(slot, CKM.ECDSA_SHA1);
    expect(info.flags & CKF.VERIFY).toBeTruthy();
    expect(info.flags & CKF.SIGN).toBe(0);
  });
});
