// craton-hsm-admin backup / restore against real daemons (docs/backup.md): a token with
// RSA, EC and AES keys made through the real module is backed up, restored on a new host
// (a daemon on an empty data directory) and onto a re-initialised token of the same daemon;
// the same keys sign, signatures verify with the public keys saved before the backup, the
// GCM counter resumes past the backed-up mark plus the restore gap, the PINs of the backup
// work, and `audit verify` passes across the checkpoint key change. A tampered, truncated
// or wrong-passphrase file, a wrong SO PIN and an open session are refused and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, initTokenAndLogin, loadModule, pkcs11js, runCli, rvOf, type CliResult, type LoadedModule } from '../helpers/module.js';
import { readTokenStore } from '../../hsm-daemon/src/store/token-file.js';

const ADMIN_BIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SO_PIN = '11223344';
const USER_PIN = '5678';
const PASSPHRASE = 'a long backup passphrase 7';
const GAP = 16_777_216; // the default [nonce] restore_gap
const TOML = '[nonce]\ncaller_iv = "generate"\n';
const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const MESSAGE = Buffer.from('signed before and after the restore');

const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-backup-'));
const secret = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
};
const passFile = secret('pass', PASSPHRASE);
const wrongPassFile = secret('wrong-pass', 'not the passphrase at all');
const soPinFile = secret('so', SO_PIN);
const wrongSoPinFile = secret('so-wrong', '99999999');
const userPinFile = secret('user', USER_PIN);

function admin(d: Daemon, args: string[]): Promise<CliResult> {
  return runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
    env: { ...process.env, CRATON_HSM_CONFIG: '' },
    timeoutMs: 120_000,
  });
}
async function adminOk(d: Daemon, args: string[]): Promise<CliResult> {
  const r = await admin(d, args);
  expect(r.code, `craton-hsm-admin ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}
const adminJson = async (d: Daemon, args: string[]): Promise<Record<string, any>> => JSON.parse((await adminOk(d, [...args, '--json'])).stdout);

interface Row {
  uid: string;
  label: string;
  id: string;
  class: string;
  key_type: string | null;
  gcm: { used: number } | null;
}
async function keyList(d: Daemon, slot = 0): Promise<Row[]> {
  const r = await adminJson(d, ['key', 'list', '--slot', String(slot), '--pin-file', userPinFile]);
  return (r.slots[0].objects as Row[]).sort((a, b) => a.uid.localeCompare(b.uid));
}
const identity = (rows: Row[]) => rows.map((r) => ({ uid: r.uid, label: r.label, id: r.id, class: r.class, key_type: r.key_type }));

/** What a refused restore must leave exactly as it was. */
async function tokenState(d: Daemon, slot = 0) {
  const info = (await adminJson(d, ['token', 'info', '--slot', String(slot)])).tokens[0];
  const status = await adminJson(d, ['status']);
  return {
    info: { label: info.label, serial: info.serial, initialized: info.initialized, objects: info.objects, user: info.user_pin_initialized },
    keys: await keyList(d, slot),
    gcm: status.gcm.keys,
    counterFile: readFileSync(path.join(d.dataDir, 'nonce', 'gcm-counters.json'), 'utf8'),
    tokenFile: readFileSync(path.join(d.dataDir, 'tokens', `slot-${slot}.json`), 'utf8'),
    store: readTokenStore(d.dataDir, slot),
    tokenJournal: existsSync(path.join(d.dataDir, 'tokens', `slot-${slot}.journal`)) ? readFileSync(path.join(d.dataDir, 'tokens', `slot-${slot}.journal`), 'utf8') : null,
  };
}

async function auditOps(d: Daemon): Promise<Array<Record<string, any>>> {
  const r = await adminOk(d, ['audit', 'dump', '--last', '100000', '--json']);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
}

// ---- keys made through the module ---------------------------------------------------------

interface Saved {
  rsaPub: KeyObject;
  ecPub: KeyObject;
  reservedBefore: number;
  aesUid: string;
}

function findOne(p11: LoadedModule['p11'], s: Buffer, cls: number, label: string): Buffer {
  p11.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: cls }, { type: CKA.LABEL, value: label }]);
  const found = p11.C_FindObjects(s, 10);
  p11.C_FindObjectsFinal(s);
  expect(found, `${label}`).toHaveLength(1);
  return found[0]!;
}

const gcm = () => ({ mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv: Buffer.alloc(12), ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } }) as never;

function gcmEncrypt(p11: LoadedModule['p11'], s: Buffer, key: Buffer): void {
  p11.C_EncryptInit(s, gcm(), key);
  p11.C_Encrypt(s, Buffer.from('sixteen byte msg'), Buffer.alloc(64));
}

/** Signs MESSAGE with the token's RSA and EC keys and checks both with the saved public keys. */
function signsAsBefore(p11: LoadedModule['p11'], s: Buffer, saved: Saved): void {
  p11.C_SignInit(s, { mechanism: CKM.SHA256_RSA_PKCS }, findOne(p11, s, CKO.PRIVATE_KEY, 'rsa'));
  const rsaSig = Buffer.from(p11.C_Sign(s, MESSAGE, Buffer.alloc(512)));
  expect(nodeVerify('sha256', MESSAGE, saved.rsaPub, rsaSig)).toBe(true);
  p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, findOne(p11, s, CKO.PRIVATE_KEY, 'ec'));
  const ecSig = Buffer.from(p11.C_Sign(s, MESSAGE, Buffer.alloc(128)));
  expect(nodeVerify('sha256', MESSAGE, { key: saved.ecPub, dsaEncoding: 'ieee-p1363' }, ecSig)).toBe(true);
}

function makeKeys(d: Daemon): Saved {
  const m = loadModule(d.socketPath);
  try {
    const { p11 } = m;
    const { session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'source' });
    const token = (label: string, id: number) => [
      { type: CKA.TOKEN, value: true },
      { type: CKA.LABEL, value: label },
      { type: CKA.ID, value: Buffer.from([id]) },
    ];
    const rsa = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN },
      [...token('rsa', 1), { type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: CKA.VERIFY, value: true }],
      [...token('rsa', 1), { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.SIGN, value: true }],
    );
    const ec = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [...token('ec', 2), { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }],
      [...token('ec', 2), { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.SIGN, value: true }],
    );
    const aes = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
      ...token('aes', 3),
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.ENCRYPT, value: true },
      { type: CKA.DECRYPT, value: true },
    ]);
    const [n, e] = p11.C_GetAttributeValue(s, rsa.publicKey, [{ type: CKA.MODULUS }, { type: CKA.PUBLIC_EXPONENT }]);
    const rsaPub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(n!.value!).toString('base64url'), e: Buffer.from(e!.value!).toString('base64url') }, format: 'jwk' });
    const [pt] = p11.C_GetAttributeValue(s, ec.publicKey, [{ type: CKA.EC_POINT }]);
    const point = Buffer.from(pt!.value!).subarray(2); // DER OCTET STRING header
    const ecPub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') }, format: 'jwk' });
    const saved: Saved = { rsaPub, ecPub, reservedBefore: 0, aesUid: '' };
    signsAsBefore(p11, s, saved);
    for (let i = 0; i < 3; i++) gcmEncrypt(p11, s, aes);
    expect(p11.C_GetAttributeValue(s, aes, [{ type: CKA.KEY_TYPE }])[0]!.value!.readUInt32LE(0)).toBe(CKK.AES);
    p11.C_CloseAllSessions(p11.C_GetSlotList(true)[0]!);
    return saved;
  } finally {
    m.close();
  }
}

function counterFile(d: Daemon): { keys: Record<string, { reserved: number; epoch?: string }>; restored?: Record<string, { epoch: string; start: number }> } {
  return JSON.parse(readFileSync(path.join(d.dataDir, 'nonce', 'gcm-counters.json'), 'utf8'));
}

// ---- the suite -------------------------------------------------------------------------------

let src: Daemon;
let host: Daemon;
let saved: Saved;
let before: Row[];
let sourceSerial: string;
let sourceKeyId: string;
const backupFile = path.join(dir, 'token.crbk');

beforeAll(async () => {
  src = await startDaemon({ slots: 1, extraToml: TOML });
  saved = makeKeys(src);
  before = await keyList(src);
  sourceSerial = (await adminJson(src, ['token', 'info', '--slot', '0'])).tokens[0].serial;
  const aes = before.find((r) => r.label === 'aes')!;
  saved.aesUid = aes.uid;
  saved.reservedBefore = counterFile(src).keys[`slot-0/${aes.uid}`]!.reserved;
  const pem = (await adminOk(src, ['audit', 'pubkey'])).stdout;
  sourceKeyId = createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('hex');
}, 120_000);

afterAll(async () => {
  await src?.stop();
  await host?.stop();
});

describe('backup', () => {
  it('writes a 0600 file holding every object, the GCM counter and the audit key; audited with its digest', async () => {
    expect(before.map((r) => r.label).sort()).toEqual(['aes', 'ec', 'ec', 'rsa', 'rsa']);
    expect(aesUsed(before)).toBe(3);
    const r = await adminJson(src, ['backup', '--output', backupFile, '--slot', '0', '--passphrase-file', passFile, '--pin-file', soPinFile]);
    expect(r).toMatchObject({ slot: 0, serial: sourceSerial, objects: 5, gcm_counters: 1, audit_key: true, file: backupFile });
    expect(r.backup).toBeUndefined();
    const data = readFileSync(backupFile);
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(data.subarray(0, 8).toString()).toBe('CRHSMBAK');
    const digest = createHash('sha256').update(data).digest('hex');
    expect(r.sha256).toBe(digest);
    // nothing secret in the clear: the PINs, the passphrase, the labels of private objects
    for (const s of [SO_PIN, USER_PIN, PASSPHRASE, 'BEGIN PRIVATE KEY']) expect(data.includes(Buffer.from(s))).toBe(false);
    const e = (await auditOps(src)).filter((x) => x.operation === 'AdminTokenBackup');
    expect(e).toHaveLength(1);
    expect(e[0]!.result).toEqual({ Success: null });
    expect(e[0]!.details).toMatchObject({ slot: 0, serial: sourceSerial, objects: 5, output_sha256: digest, credentials: ['so'] });
    expect(JSON.stringify(e[0])).not.toContain(PASSPHRASE);
  });

  it('refuses to overwrite without --force, and a wrong SO PIN (no file written)', async () => {
    const data = readFileSync(backupFile);
    const again = await admin(src, ['backup', '--output', backupFile, '--passphrase-file', passFile, '--pin-file', soPinFile]);
    expect(again.code, describeRun(again)).toBe(2);
    expect(again.stderr).toMatch(/exists; refusing to overwrite/);
    expect(readFileSync(backupFile).equals(data)).toBe(true);
    const other = path.join(dir, 'wrong-pin.crbk');
    const wrong = await admin(src, ['backup', '--output', other, '--passphrase-file', passFile, '--pin-file', wrongSoPinFile]);
    expect(wrong.code, describeRun(wrong)).toBe(1);
    expect(wrong.stderr).toMatch(/SO PIN of the token in slot 0 is incorrect/);
    expect(existsSync(other)).toBe(false);
    // the wrong PIN counted towards the lockout, as C_Login would; a right one clears it
    expect((await adminJson(src, ['token', 'info', '--slot', '0'])).tokens[0].failed_logins.so).toBe(1);
    const forced = await adminJson(src, ['backup', '--output', path.join(dir, 'second.crbk'), '--passphrase-file', passFile, '--pin-file', soPinFile]);
    expect(forced.objects).toBe(5);
    expect((await adminJson(src, ['token', 'info', '--slot', '0'])).tokens[0].failed_logins.so).toBe(0);
  });
});

const aesUsed = (rows: Row[]) => rows.find((r) => r.label === 'aes')!.gcm!.used;

describe('restore on a new host (a daemon on an empty data directory)', () => {
  it('brings back the keys, PINs and counters past the gap; the keys sign as before', async () => {
    await src.stop();
    host = await startDaemon({ slots: 2, extraToml: TOML });
    const r = await adminJson(host, ['restore', '--input', backupFile, '--slot', '0', '--passphrase-file', passFile]);
    expect(r).toMatchObject({ slot: 0, serial: sourceSerial, objects: 5, replaced_initialized_token: false, source: { slot: 0, serial: sourceSerial } });
    expect(r.gcm).toMatchObject({ restore_gap: GAP, counters_raised: 1 });
    expect(r.audit_key).toMatchObject({ installed: true, changed: true, new_key_id: sourceKeyId });

    const after = await keyList(host);
    expect(identity(after)).toEqual(identity(before));
    expect(aesUsed(after)).toBeGreaterThanOrEqual(saved.reservedBefore + GAP);
    const cf = counterFile(host);
    expect(cf.keys[`slot-0/${saved.aesUid}`]!.reserved).toBeGreaterThanOrEqual(saved.reservedBefore + GAP);
    expect(cf.keys[`slot-0/${saved.aesUid}`]!.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(cf.restored?.['slot-0/']).toMatchObject({ start: GAP });
    const info = (await adminJson(host, ['token', 'info', '--slot', '0'])).tokens[0];
    expect(info).toMatchObject({ label: 'source', serial: sourceSerial, initialized: true, user_pin_initialized: true });

    const m = loadModule(host.socketPath);
    try {
      const { p11 } = m;
      const slot = p11.C_GetSlotList(true)[0]!;
      const so = p11.C_OpenSession(slot, RW);
      p11.C_Login(so, CKU.SO, SO_PIN); // the backup's SO PIN
      p11.C_Logout(so);
      const s = p11.C_OpenSession(slot, RW);
      p11.C_Login(s, CKU.USER, USER_PIN); // the backup's user PIN
      signsAsBefore(p11, s, saved);
      gcmEncrypt(p11, s, findOne(p11, s, CKO.SECRET_KEY, 'aes'));
      p11.C_CloseAllSessions(slot);
    } finally {
      m.close();
    }
    expect(aesUsed(await keyList(host))).toBeGreaterThan(saved.reservedBefore + GAP);
  });

  it('audit verify passes across the checkpoint key change, and after a restart', async () => {
    const ops = await auditOps(host);
    const change = ops.filter((e) => e.operation === 'CheckpointKeyChange');
    expect(change).toHaveLength(1);
    expect(change[0]!.details).toMatchObject({ new_key_id: sourceKeyId, reason: 'restore', source_serial: sourceSerial });
    const restore = ops.filter((e) => e.operation === 'AdminTokenRestore');
    expect(restore).toHaveLength(1);
    expect(restore[0]!.details).toMatchObject({ slot: 0, source_serial: sourceSerial, objects: 5, counters_raised: 1, audit_checkpoint_key: sourceKeyId });
    expect(restore[0]!.seq).toBeGreaterThan(change[0]!.seq);
    let v = await adminJson(host, ['audit', 'verify']);
    expect(v.ok, JSON.stringify(v.failure)).toBe(true);
    // so far only this host's own key signed (the key change is covered by its checkpoint)
    expect(v.checkpointKeys).toHaveLength(1);
    expect(v.checkpointKeys[0]).not.toBe(sourceKeyId);
    // the daemon now signs with the restored key, also after a restart
    expect((await adminOk(host, ['audit', 'pubkey'])).stdout).toBe(readFileSync(path.join(src.dataDir, 'audit-checkpoint-pub.pem'), 'utf8'));
    await host.stop();
    host = await startDaemon({ slots: 2, extraToml: TOML, dataDir: host.dataDir });
    v = await adminJson(host, ['audit', 'verify']);
    expect(v.ok, JSON.stringify(v.failure)).toBe(true);
    // the shutdown checkpoint and those after the restart: the restored key
    expect(v.checkpointKeys).toHaveLength(2);
    expect(v.checkpointKeys[1]).toBe(sourceKeyId);
  });

  it('fails verification clearly when a checkpoint is signed by a key outside the keyring', async () => {
    const onlyOld = path.join(dir, 'only-source.pem');
    writeFileSync(onlyOld, readFileSync(path.join(src.dataDir, 'audit-checkpoint-pub.pem')));
    // trusting only the restored key: the log's first checkpoints were signed by this host's own key
    const r = await admin(host, ['audit', 'verify', '--pubkey', onlyOld]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(/checkpoint signed by an unknown key [0-9a-f]{64}/);
  });

  it('restores into another slot too (sealed objects stay bound to the slot they were sealed on)', async () => {
    const r = await adminJson(host, ['restore', '--input', backupFile, '--slot', '1', '--passphrase-file', passFile, '--keep-audit-key']);
    expect(r).toMatchObject({ slot: 1, objects: 5, audit_key: { installed: false } });
    expect(identity(await keyList(host, 1))).toEqual(identity(before));
    const m = loadModule(host.socketPath);
    try {
      const { p11 } = m;
      const slot = p11.C_GetSlotList(true)[1]!;
      const s = p11.C_OpenSession(slot, RW);
      p11.C_Login(s, CKU.USER, USER_PIN);
      signsAsBefore(p11, s, saved);
      p11.C_CloseAllSessions(slot);
    } finally {
      m.close();
    }
  });
});

describe('refusals change nothing', () => {
  const tampered = path.join(dir, 'tampered.crbk');
  const truncated = path.join(dir, 'truncated.crbk');

  beforeAll(() => {
    const data = readFileSync(backupFile);
    const bad = Buffer.from(data);
    bad[Math.floor(data.length / 2)]! ^= 0x01;
    writeFileSync(tampered, bad, { mode: 0o600 });
    writeFileSync(truncated, data.subarray(0, data.length - 100), { mode: 0o600 });
  });

  const cases: Array<[string, () => string[], RegExp, string]> = [
    ['a tampered byte', () => ['--input', tampered, '--passphrase-file', passFile, '--pin-file', soPinFile], /corrupted or was altered/, rvName(CKR.ENCRYPTED_DATA_INVALID)],
    ['a truncated file', () => ['--input', truncated, '--passphrase-file', passFile, '--pin-file', soPinFile], /not a complete Craton HSM backup \(truncated or not a backup file\)/, rvName(CKR.ENCRYPTED_DATA_LEN_RANGE)],
    ['a wrong passphrase', () => ['--input', backupFile, '--passphrase-file', wrongPassFile, '--pin-file', soPinFile], /wrong passphrase/, rvName(CKR.PIN_INCORRECT)],
    ['a wrong SO PIN of the initialised target', () => ['--input', backupFile, '--passphrase-file', passFile, '--pin-file', wrongSoPinFile], /SO PIN of the token in slot 0 is incorrect/, rvName(CKR.PIN_INCORRECT)],
  ];
  for (const [what, args, message, code] of cases) {
    it(`refuses ${what}`, async () => {
      const was = await tokenState(host);
      const r = await admin(host, ['restore', '--slot', '0', ...args(), '--json']);
      expect(r.code, describeRun(r)).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(JSON.parse(r.stdout).error.code).toBe(code);
      const now = await tokenState(host);
      if (what.includes('SO PIN')) {
        // the wrong PIN counts towards the SO PIN lockout, as C_Login's would (the token
        // file records it); everything else is as it was
        expect((await adminJson(host, ['token', 'info', '--slot', '0'])).tokens[0].failed_logins.so).toBe(1);
        const files = { tokenFile: null, tokenJournal: null, store: null };
        expect({ ...now, ...files }).toEqual({ ...was, ...files });
        expect(now.store!.failedLogins.so).toBe(1);
        expect({ ...now.store, failedLogins: null }).toEqual({ ...was.store, failedLogins: null });
      } else {
        expect(now).toEqual(was);
      }
      const last = (await auditOps(host)).filter((e) => e.operation === 'AdminTokenRestore').at(-1)!;
      expect(last.result).toEqual({ Failure: code });
    });
  }

  it('refuses while a session is open on the target (CKR_SESSION_EXISTS)', async () => {
    const m = loadModule(host.socketPath);
    try {
      const slot = m.p11.C_GetSlotList(true)[0]!;
      const s = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
      const was = await tokenState(host);
      const r = await admin(host, ['restore', '--slot', '0', '--input', backupFile, '--passphrase-file', passFile, '--pin-file', soPinFile]);
      expect(r.code, describeRun(r)).toBe(1);
      expect(r.stderr).toMatch(/CKR_SESSION_EXISTS: close every session on slot 0/);
      expect(await tokenState(host)).toEqual(was);
      m.p11.C_CloseSession(s);
    } finally {
      m.close();
    }
  });
});

describe('restore onto a re-initialised token of the same daemon', () => {
  it('token init wipes it; restore with the SO PIN brings the keys back with counters moved on', async () => {
    const epochBefore = counterFile(host).keys[`slot-0/${saved.aesUid}`]!.epoch;
    expect(epochBefore).toMatch(/^[0-9a-f]{16}$/);
    await adminOk(host, ['token', 'init', '--slot', '0', '--label', 'wiped', '--pin-file', soPinFile]);
    expect((await adminJson(host, ['key', 'list', '--slot', '0'])).slots[0].objects).toHaveLength(0);
    expect(counterFile(host).keys[`slot-0/${saved.aesUid}`]).toBeUndefined();
    const r = await adminJson(host, ['restore', '--input', backupFile, '--slot', '0', '--passphrase-file', passFile, '--pin-file', soPinFile]);
    expect(r).toMatchObject({ replaced_initialized_token: true, replaced_objects: 0, objects: 5, audit_key: { installed: true, changed: false } });
    expect((await adminJson(host, ['token', 'info', '--slot', '0'])).tokens[0].failed_logins.so).toBe(0);
    const after = await keyList(host);
    expect(identity(after)).toEqual(identity(before));
    // C_InitToken dropped the counter with the keys; the restore puts it past the backed-up
    // mark plus the gap, under a new IV epoch (a fresh fixed field: IVs this host generated
    // under the previous epoch cannot come back, whatever the count)
    expect(aesUsed(after)).toBeGreaterThanOrEqual(saved.reservedBefore + GAP);
    const epochAfter = counterFile(host).keys[`slot-0/${saved.aesUid}`]!.epoch;
    expect(epochAfter).toMatch(/^[0-9a-f]{16}$/);
    expect(epochAfter).not.toBe(epochBefore);
    const m = loadModule(host.socketPath);
    try {
      const slot = m.p11.C_GetSlotList(true)[0]!;
      const s = m.p11.C_OpenSession(slot, RW);
      m.p11.C_Login(s, CKU.USER, USER_PIN);
      signsAsBefore(m.p11, s, saved);
      expect(rvName(rvOf(() => gcmEncrypt(m.p11, s, findOne(m.p11, s, CKO.SECRET_KEY, 'aes'))))).toBe('CKR_OK');
      m.p11.C_CloseAllSessions(slot);
    } finally {
      m.close();
    }
    const v = await adminJson(host, ['audit', 'verify']);
    expect(v.ok, JSON.stringify(v.failure)).toBe(true);
    const ops = await auditOps(host);
    expect(ops.filter((e) => e.operation === 'AdminTokenRestore' && e.result.Success === null)).toHaveLength(3);
    // What went with the token is on record, for evidence: the init destroyed the 5 objects.
    expect(ops.filter((e) => e.operation === 'AdminTokenInit').at(-1)!.details).toMatchObject({ reinitialized: true, destroyed_objects: 5 });
    expect(ops.filter((e) => e.operation === 'AdminTokenRestore').at(-1)!.details).toMatchObject({ objects: 5, replaced_objects: 0 });
  });
});
