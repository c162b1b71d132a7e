// Public token objects (CKA_PRIVATE false) that hold key material, through the real module:
// PKCS#11 makes them visible and usable in public sessions, without a login, also after a
// daemon restart. Their secrets are sealed under the data directory's device key
// (tokens/device.key, 0600), never stored in the clear; private objects stay behind the
// login. An R/W public session may create such objects before anyone logged in. A backup
// carries them to a new host, where they work without a login after the restore.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, initTokenAndLogin, loadModule, runCli, rvOf, type CliResult, type LoadedModule } from '../helpers/module.js';
import { readTokenStore } from '../../hsm-daemon/src/store/token-file.js';

type P11 = LoadedModule['p11'];

const ADMIN_BIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SO_PIN = '11223344';
const USER_PIN = '5678';
const PASSPHRASE = 'public objects backup passphrase';
const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const RO = CKF.SERIAL_SESSION;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const IV = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const PLAIN = Buffer.from('thirty-two bytes of cbc message!');
const MESSAGE = Buffer.from('signed by a public EC key without a login');
const AES_VALUE = Buffer.from('8f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
const LATE_VALUE = Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f90', 'hex');

const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-public-'));
const secretFile = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
};
const passFile = secretFile('pass', PASSPHRASE);
const soPinFile = secretFile('so', SO_PIN);

function admin(d: Daemon, args: string[]): Promise<CliResult> {
  return runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
    env: { ...process.env, CRATON_HSM_CONFIG: '' },
    timeoutMs: 120_000,
  });
}
async function adminJson(d: Daemon, args: string[]): Promise<Record<string, any>> {
  const r = await admin(d, [...args, '--json']);
  expect(r.code, `craton-hsm-admin ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return JSON.parse(r.stdout);
}

const tokenAttrs = (label: string, priv: boolean) => [
  { type: CKA.TOKEN, value: true },
  { type: CKA.PRIVATE, value: priv },
  { type: CKA.LABEL, value: label },
];
const aesTemplate = (label: string, value: Buffer, priv: boolean) => [
  { type: CKA.CLASS, value: CKO.SECRET_KEY },
  { type: CKA.KEY_TYPE, value: CKK.AES },
  ...tokenAttrs(label, priv),
  { type: CKA.VALUE, value },
  { type: CKA.SENSITIVE, value: true },
  { type: CKA.ENCRYPT, value: true },
  { type: CKA.DECRYPT, value: true },
];

/** Token objects this session can see, by label. */
function labels(p11: P11, s: Buffer): string[] {
  p11.C_FindObjectsInit(s, [{ type: CKA.TOKEN, value: true }]);
  const found = p11.C_FindObjects(s, 100);
  p11.C_FindObjectsFinal(s);
  return found.map((h) => p11.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])[0]!.value!.toString()).sort();
}

function findOne(p11: P11, s: Buffer, cls: number, label: string): Buffer {
  p11.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: cls }, { type: CKA.LABEL, value: label }]);
  const found = p11.C_FindObjects(s, 10);
  p11.C_FindObjectsFinal(s);
  expect(found, label).toHaveLength(1);
  return found[0]!;
}

function cbc(p11: P11, s: Buffer, key: Buffer): Buffer {
  p11.C_EncryptInit(s, { mechanism: CKM.AES_CBC, parameter: IV }, key);
  return Buffer.from(p11.C_Encrypt(s, PLAIN, Buffer.alloc(64)));
}

const expectedCbc = (value: Buffer): Buffer => {
  const c = createCipheriv(`aes-${value.length * 8}-cbc`, value, IV).setAutoPadding(false);
  return Buffer.concat([c.update(PLAIN), c.final()]);
};

function ecSignsAndVerifies(p11: P11, s: Buffer, pub: KeyObject): void {
  p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, findOne(p11, s, CKO.PRIVATE_KEY, 'pub-ec'));
  const sig = Buffer.from(p11.C_Sign(s, MESSAGE, Buffer.alloc(128)));
  expect(nodeVerify('sha256', MESSAGE, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
}

/** Opens a session with nobody logged in on this token (after a restart: no login yet). */
function withPublicSession<T>(d: Daemon, flags: number, fn: (p11: P11, s: Buffer) => T): T {
  const m = loadModule(d.socketPath);
  try {
    const slot = m.p11.C_GetSlotList(true)[0]!;
    const s = m.p11.C_OpenSession(slot, flags);
    try {
      return fn(m.p11, s);
    } finally {
      m.p11.C_CloseAllSessions(slot);
    }
  } finally {
    m.close();
  }
}

/** Everything the token store holds on disk: the snapshot and its journal. */
const tokenFileText = (d: Daemon) =>
  ['slot-0.json', 'slot-0.journal'].map((f) => path.join(d.dataDir, 'tokens', f)).filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('');
const noValueIn = (text: string, value: Buffer) => {
  for (const enc of [value.toString('hex'), value.toString('hex').toUpperCase(), value.toString('base64'), value.toString('base64url')]) expect(text).not.toContain(enc);
};

let d: Daemon;
let ecPub: KeyObject;
let cbcBefore: Buffer;
const restart = async () => {
  await d.stop();
  d = await startDaemon({ slots: 1, dataDir: d.dataDir });
};

beforeAll(async () => {
  d = await startDaemon({ slots: 1 });
  const m = loadModule(d.socketPath);
  try {
    const { p11 } = m;
    const { slot, session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'public' });
    const aes = p11.C_CreateObject(s, aesTemplate('pub-aes', AES_VALUE, false));
    p11.C_CreateObject(s, aesTemplate('priv-aes', AES_VALUE, true));
    const ec = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [...tokenAttrs('pub-ec', false), { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }],
      [...tokenAttrs('pub-ec', false), { type: CKA.SENSITIVE, value: true }, { type: CKA.SIGN, value: true }],
    );
    const point = Buffer.from(p11.C_GetAttributeValue(s, ec.publicKey, [{ type: CKA.EC_POINT }])[0]!.value!).subarray(2);
    ecPub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') }, format: 'jwk' });
    cbcBefore = cbc(p11, s, aes);
    expect(cbcBefore).toEqual(expectedCbc(AES_VALUE));
    ecSignsAndVerifies(p11, s, ecPub);
    p11.C_CloseAllSessions(slot);
  } finally {
    m.close();
  }
}, 120_000);

afterAll(async () => {
  await d?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('public token objects with key material', () => {
  it('are sealed under a 0600 device key: the token file holds no key value', () => {
    const keyFile = path.join(d.dataDir, 'tokens', 'device.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(keyFile).size).toBe(32);
    const text = tokenFileText(d);
    noValueIn(text, AES_VALUE);
    const objects = readTokenStore(d.dataDir, 0)!.objects;
    const pub = objects.filter((o) => !o.private && o.sealKey === 'device');
    expect(pub).toHaveLength(2); // the AES key and the EC private key (the EC public key has no secret)
    expect(objects.filter((o) => o.private && o.sealKey !== undefined)).toHaveLength(0);
  });

  it('after a restart, a public session without login finds and uses them; private objects stay hidden', async () => {
    await restart();
    withPublicSession(d, RO, (p11, s) => {
      expect(labels(p11, s)).toEqual(['pub-aes', 'pub-ec', 'pub-ec']);
      expect(cbc(p11, s, findOne(p11, s, CKO.SECRET_KEY, 'pub-aes'))).toEqual(cbcBefore);
      ecSignsAndVerifies(p11, s, ecPub);
      // sensitive stays sensitive without a login too
      const aes = findOne(p11, s, CKO.SECRET_KEY, 'pub-aes');
      expect(rvOf(() => p11.C_GetAttributeValue(s, aes, [{ type: CKA.VALUE }]))).toBe(CKR.ATTRIBUTE_SENSITIVE);
      // the user's login shows the private one as well
      p11.C_Login(s, CKU.USER, USER_PIN);
      expect(labels(p11, s)).toEqual(['priv-aes', 'pub-aes', 'pub-ec', 'pub-ec']);
      expect(cbc(p11, s, findOne(p11, s, CKO.SECRET_KEY, 'priv-aes'))).toEqual(cbcBefore);
      p11.C_Logout(s);
      expect(labels(p11, s)).toEqual(['pub-aes', 'pub-ec', 'pub-ec']);
    });
  });

  it('an R/W public session creates one before any login; it works and survives a restart', async () => {
    await restart();
    const late = withPublicSession(d, RW, (p11, s) => {
      // a private token object still needs the user's login
      expect(rvOf(() => p11.C_CreateObject(s, aesTemplate('no', LATE_VALUE, true)))).toBe(CKR.USER_NOT_LOGGED_IN);
      const h = p11.C_CreateObject(s, aesTemplate('late-aes', LATE_VALUE, false));
      return cbc(p11, s, h);
    });
    expect(late).toEqual(expectedCbc(LATE_VALUE));
    noValueIn(tokenFileText(d), LATE_VALUE);
    await restart();
    withPublicSession(d, RO, (p11, s) => {
      expect(labels(p11, s)).toEqual(['late-aes', 'pub-aes', 'pub-ec', 'pub-ec']);
      expect(cbc(p11, s, findOne(p11, s, CKO.SECRET_KEY, 'late-aes'))).toEqual(late);
    });
  });
});

describe('backup and restore onto a new host', () => {
  it('the public keys work there without a login, sealed under that host\'s own device key', async () => {
    const file = path.join(dir, 'public.crbk');
    const b = await adminJson(d, ['backup', '--output', file, '--slot', '0', '--passphrase-file', passFile, '--pin-file', soPinFile]);
    expect(b.objects).toBe(5);
    const host = await startDaemon({ slots: 1 });
    try {
      const r = await adminJson(host, ['restore', '--input', file, '--slot', '0', '--passphrase-file', passFile]);
      expect(r).toMatchObject({ objects: 5, replaced_initialized_token: false });
      const srcKey = readFileSync(path.join(d.dataDir, 'tokens', 'device.key'));
      const hostKey = readFileSync(path.join(host.dataDir, 'tokens', 'device.key'));
      expect(statSync(path.join(host.dataDir, 'tokens', 'device.key')).mode & 0o777).toBe(0o600);
      expect(hostKey.equals(srcKey)).toBe(false);
      noValueIn(tokenFileText(host), AES_VALUE);
      const check = (h: Daemon) =>
        withPublicSession(h, RO, (p11, s) => {
          expect(labels(p11, s)).toEqual(['late-aes', 'pub-aes', 'pub-ec', 'pub-ec']);
          expect(cbc(p11, s, findOne(p11, s, CKO.SECRET_KEY, 'pub-aes'))).toEqual(cbcBefore);
          ecSignsAndVerifies(p11, s, ecPub);
        });
      check(host);
      // persisted under the host's key: a restart opens them again
      await host.stop();
      const again = await startDaemon({ slots: 1, dataDir: host.dataDir });
      try {
        check(again);
      } finally {
        await again.stop();
      }
    } finally {
      await host.stop();
    }
  });
});
