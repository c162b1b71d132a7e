// `craton-hsm-admin migrate` from a real SoftHSM2 token (populated with pkcs11-tool) into a
// real daemon's token through build/libcraton_hsm.so: what is copied keeps its attributes
// and works (signatures verify with the SOURCE public keys, AES interoperates both ways),
// what may not leave the source is reported and absent, a rerun copies nothing, the daemon
// audits the unwraps and creations, and bad input gives one clear line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, loadModule, pkcs11js, rvOf, runCli, type CliResult, type LoadedModule, type PKCS11 } from '../helpers/module.js';
import { p11ok } from '../helpers/p11tool.js';
import { SOFTHSM, softhsmInit, softhsmLoad, type SoftToken } from '../helpers/softhsm.js';

const ADMIN_BIN = process.env.CRATON_TEST_ADMIN_BIN ?? path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const SRC_SO_PIN = '87654321';
const SRC_PIN = '123456';
const DST_SO_PIN = '12345678';
const DST_PIN = '1234';
const TRANSPORT_LABEL = 'craton-hsm-admin migrate transport key';

let d: Daemon;
let work: string;
let softToken: SoftToken | undefined;
let soft: PKCS11;
let softSlot: Buffer;
let softSlotId: bigint;
let softSession: Buffer;
let ours: LoadedModule;
let ourSession: Buffer;
let srcPinFile: string;
let dstPinFile: string;
let certDer: Buffer;

function admin(args: string[], input?: string): Promise<CliResult> {
  return runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', d.socketPath, ...args], {
    env: { ...process.env, CRATON_HSM_CONFIG: '' },
    timeoutMs: 120_000,
    input,
  });
}

const migrateArgs = (...more: string[]) => ['migrate', '--from-module', SOFTHSM, '--from-slot', String(softSlotId), ...more];

interface Row {
  class: string;
  key_type: string | null;
  label: string;
  id: string;
  result: string;
  reason?: string;
  rv?: string;
  method?: string;
  notes: string[];
}
interface Report {
  dry_run: boolean;
  objects: Row[];
  summary: { objects: number; copied: number; would_copy: number; skipped: number; failed: number };
  cleanup: string[];
  exit_code: number;
}

async function migrateJson(args: string[], input?: string): Promise<Report> {
  const r = await admin([...args, '--json'], input);
  expect(r.code, describeRun(r)).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

const row = (rep: Report, cls: string, label: string): Row => {
  const hit = rep.objects.filter((o) => o.class === cls && o.label === label);
  expect(hit, `${cls} "${label}" in ${JSON.stringify(rep.objects)}`).toHaveLength(1);
  return hit[0]!;
};

function pkcs11Tool(args: string[]): string {
  return execFileSync('pkcs11-tool', ['--module', SOFTHSM, '--token-label', 'src', '--login', '--pin', SRC_PIN, ...args], { encoding: 'utf8', stdio: 'pipe' });
}

function find(p: PKCS11, s: Buffer, tpl: Array<{ type: number; value: unknown }>): Buffer[] {
  p.C_FindObjectsInit(s, tpl as pkcs11js.Template);
  const out = p.C_FindObjects(s, 100);
  p.C_FindObjectsFinal(s);
  return out;
}

function one(p: PKCS11, s: Buffer, cls: number, label: string): Buffer {
  const hits = find(p, s, [
    { type: CKA.CLASS, value: cls },
    { type: CKA.LABEL, value: label },
    { type: CKA.TOKEN, value: true },
  ]);
  expect(hits, `one object of class ${cls} labelled ${label}`).toHaveLength(1);
  return hits[0]!;
}

/** Each attribute on its own (pkcs11js throws for the whole call on one invalid type). */
function attrs(p: PKCS11, s: Buffer, h: Buffer, types: number[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of types) {
    try {
      out[`0x${t.toString(16)}`] = p.C_GetAttributeValue(s, h, [{ type: t }])[0]!.value!.toString('hex');
    } catch (e) {
      out[`0x${t.toString(16)}`] = `error ${(e as Error).message}`;
    }
  }
  return out;
}

const STORAGE = [CKA.LABEL, CKA.PRIVATE, CKA.MODIFIABLE];
const KEY = [...STORAGE, CKA.ID, CKA.KEY_TYPE, CKA.DERIVE];
const COMPARED: Record<string, number[]> = {
  private: [...KEY, CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.DECRYPT, CKA.SIGN, CKA.SIGN_RECOVER, CKA.UNWRAP],
  public: [...KEY, CKA.ENCRYPT, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.WRAP],
  secret: [...KEY, CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP, CKA.VALUE_LEN],
  cert: [...STORAGE, CKA.ID, CKA.CERTIFICATE_TYPE, CKA.SUBJECT, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.VALUE],
  data: [...STORAGE, CKA.APPLICATION, CKA.VALUE],
};

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-migrate-'));
  // SOFTHSM2_CONF is set before SoftHSM2 is loaded here, and inherited by pkcs11-tool and the CLI.
  softhsmInit(work, { label: 'src', soPin: SRC_SO_PIN, pin: SRC_PIN });

  // The source token: extractable RSA and EC key pairs, an extractable sensitive AES key,
  // a non-extractable RSA key pair (pkcs11-tool's default), a non-extractable AES key, a
  // certificate sharing the RSA pair's id, and a private data object.
  pkcs11Tool(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa1', '--id', '01', '--usage-sign', '--extractable']);
  pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'ec1', '--id', '02', '--usage-sign', '--usage-derive', '--extractable']);
  pkcs11Tool(['--keygen', '--key-type', 'AES:32', '--label', 'aes1', '--id', '03', '--extractable', '--sensitive']);
  pkcs11Tool(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'locked', '--id', '04', '--usage-sign']);
  pkcs11Tool(['--keygen', '--key-type', 'AES:16', '--label', 'aes-locked', '--id', '05']);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(work, 'cert.key'),
    '-subj', '/CN=craton migrate test', '-days', '2', '-outform', 'der', '-out', path.join(work, 'cert.der')], { stdio: 'pipe' });
  certDer = readFileSync(path.join(work, 'cert.der'));
  pkcs11Tool(['--write-object', path.join(work, 'cert.der'), '--type', 'cert', '--id', '01', '--label', 'cert1']);
  writeFileSync(path.join(work, 'data.bin'), 'configuration blob\n');
  pkcs11Tool(['--write-object', path.join(work, 'data.bin'), '--type', 'data', '--label', 'data1', '--application-label', 'app1', '--private']);

  softToken = softhsmLoad('src');
  soft = softToken.p11;
  softSlot = softToken.slot;
  softSlotId = softSlot.readBigUInt64LE(0);
  softSession = soft.C_OpenSession(softSlot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  soft.C_Login(softSession, CKU.USER, SRC_PIN);

  d = await startDaemon();
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 'dst', '--so-pin', DST_SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', DST_SO_PIN, '--pin', DST_PIN]);
  ours = loadModule(d.socketPath);
  const slot = ours.p11.C_GetSlotList(true)[0]!;
  ourSession = ours.p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  ours.p11.C_Login(ourSession, CKU.USER, DST_PIN);

  srcPinFile = path.join(work, 'src.pin');
  dstPinFile = path.join(work, 'dst.pin');
  writeFileSync(srcPinFile, `${SRC_PIN}\n`, { mode: 0o600 });
  writeFileSync(dstPinFile, `${DST_PIN}\n`, { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  softToken?.close();
  ours?.close();
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the source token as pkcs11-tool made it', () => {
  it('holds the extractable and non-extractable keys the migration is judged on', () => {
    const ext = (cls: number, label: string) => attrs(soft, softSession, one(soft, softSession, cls, label), [CKA.EXTRACTABLE])[`0x${CKA.EXTRACTABLE.toString(16)}`];
    expect(ext(CKO.PRIVATE_KEY, 'rsa1')).toBe('01');
    expect(ext(CKO.PRIVATE_KEY, 'ec1')).toBe('01');
    expect(ext(CKO.SECRET_KEY, 'aes1')).toBe('01');
    expect(ext(CKO.PRIVATE_KEY, 'locked')).toBe('00');
    expect(ext(CKO.SECRET_KEY, 'aes-locked')).toBe('00');
  });
});

describe('craton-hsm-admin migrate', () => {
  let first: Report;

  it('--dry-run reports what would be copied and changes nothing', async () => {
    const rep = await migrateJson(migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile, '--dry-run'));
    expect(rep.dry_run).toBe(true);
    expect(row(rep, 'CKO_PRIVATE_KEY', 'rsa1')).toMatchObject({ result: 'would-copy', method: 'CKM_AES_KEY_WRAP_PAD' });
    expect(row(rep, 'CKO_CERTIFICATE', 'cert1')).toMatchObject({ result: 'would-copy', method: 'C_CreateObject' });
    expect(row(rep, 'CKO_PRIVATE_KEY', 'locked').result).toBe('skipped');
    expect(rep.summary).toMatchObject({ objects: 10, would_copy: 8, skipped: 2, failed: 0, copied: 0 });
    expect(find(ours.p11, ourSession, [{ type: CKA.TOKEN, value: true }])).toHaveLength(0);
  });

  it('copies everything the source lets out, and says why the rest stays', async () => {
    first = await migrateJson(migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile));
    expect(first.summary).toEqual({ objects: 10, copied: 8, would_copy: 0, skipped: 2, failed: 0 });
    expect(first.cleanup).toEqual([]);
    for (const label of ['rsa1', 'ec1']) expect(row(first, 'CKO_PRIVATE_KEY', label)).toMatchObject({ result: 'copied', method: 'CKM_AES_KEY_WRAP_PAD' });
    expect(row(first, 'CKO_SECRET_KEY', 'aes1')).toMatchObject({ result: 'copied', method: 'CKM_AES_KEY_WRAP_PAD', key_type: 'CKK_AES', id: '03' });
    for (const label of ['rsa1', 'ec1', 'locked']) expect(row(first, 'CKO_PUBLIC_KEY', label)).toMatchObject({ result: 'copied', method: 'C_CreateObject' });
    expect(row(first, 'CKO_CERTIFICATE', 'cert1').result).toBe('copied');
    expect(row(first, 'CKO_DATA', 'data1').result).toBe('copied');
    for (const [cls, label] of [['CKO_PRIVATE_KEY', 'locked'], ['CKO_SECRET_KEY', 'aes-locked']] as const) {
      expect(row(first, cls, label)).toMatchObject({ result: 'skipped', reason: 'non-extractable (CKA_EXTRACTABLE=false): cannot leave the source token' });
    }
    expect(find(ours.p11, ourSession, [{ type: CKA.TOKEN, value: true }])).toHaveLength(8);
  });

  it('the human report is a table with one line per object and a summary', async () => {
    const r = await admin(migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile, '--dry-run'));
    expect(r.code, describeRun(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^CLASS\s+KEY TYPE\s+LABEL\s+ID\s+RESULT$/);
    expect(lines.find((l) => /^PRIVATE_KEY\s+RSA\s+locked\s+04\s+skipped: non-extractable/.test(l))).toBeDefined();
    expect(lines.at(-1)).toBe('10 object(s) on the source: 0 would be copied, 10 skipped, 0 failed');
  });

  it('labels, ids, usage and access attributes equal the source, object by object', () => {
    const cases: Array<[number, string, keyof typeof COMPARED, number[]]> = [
      [CKO.PRIVATE_KEY, 'rsa1', 'private', []],
      [CKO.PUBLIC_KEY, 'rsa1', 'public', [CKA.MODULUS, CKA.PUBLIC_EXPONENT]],
      [CKO.PRIVATE_KEY, 'ec1', 'private', [CKA.EC_PARAMS]],
      [CKO.PUBLIC_KEY, 'ec1', 'public', [CKA.EC_PARAMS, CKA.EC_POINT]],
      [CKO.PUBLIC_KEY, 'locked', 'public', [CKA.MODULUS]],
      [CKO.SECRET_KEY, 'aes1', 'secret', []],
      [CKO.CERTIFICATE, 'cert1', 'cert', []],
      [CKO.DATA, 'data1', 'data', []],
    ];
    for (const [cls, label, kind, extra] of cases) {
      const types = [...COMPARED[kind]!, ...extra];
      const src = attrs(soft, softSession, one(soft, softSession, cls, label), types);
      const dst = attrs(ours.p11, ourSession, one(ours.p11, ourSession, cls, label), types);
      expect(dst, `${kind} ${label}`).toEqual(src);
      expect(Object.values(src).some((v) => v.startsWith('error')), `${kind} ${label}: ${JSON.stringify(src)}`).toBe(false);
    }
    // The pairs stay pairs: rsa1's private key, public key and certificate share id 01 on both sides.
    for (const cls of [CKO.PRIVATE_KEY, CKO.PUBLIC_KEY, CKO.CERTIFICATE]) {
      expect(find(ours.p11, ourSession, [{ type: CKA.CLASS, value: cls }, { type: CKA.ID, value: Buffer.from([1]) }])).toHaveLength(1);
    }
    // What the usage flags say was actually migrated, not defaulted: ec1 derives, aes1 is sensitive.
    const flag = (cls: number, label: string, t: number) => attrs(ours.p11, ourSession, one(ours.p11, ourSession, cls, label), [t])[`0x${t.toString(16)}`];
    expect(flag(CKO.PRIVATE_KEY, 'ec1', CKA.DERIVE)).toBe('01');
    expect(flag(CKO.SECRET_KEY, 'aes1', CKA.SENSITIVE)).toBe('01');
    expect(flag(CKO.DATA, 'data1', CKA.PRIVATE)).toBe('01');
  });

  it('the certificate bytes are identical to the file pkcs11-tool wrote', () => {
    const v = ours.p11.C_GetAttributeValue(ourSession, one(ours.p11, ourSession, CKO.CERTIFICATE, 'cert1'), [{ type: CKA.VALUE }])[0]!.value!;
    expect(v.equals(certDer)).toBe(true);
  });

  it('the migrated RSA and EC private keys sign on our token; the SOURCE public keys verify', () => {
    const msg = Buffer.from('signed by a migrated key');
    const digest = createHash('sha256').update(msg).digest();
    // SoftHSM2 2.6 verifies ECDSA only over a digest (CKM_ECDSA); ours hashes inside.
    for (const [label, signMech, verifyMech, verifyInput] of [
      ['rsa1', CKM.SHA256_RSA_PKCS, CKM.SHA256_RSA_PKCS, msg],
      ['ec1', CKM.ECDSA_SHA256, CKM.ECDSA, digest],
    ] as const) {
      ours.p11.C_SignInit(ourSession, { mechanism: signMech }, one(ours.p11, ourSession, CKO.PRIVATE_KEY, label));
      const sig = ours.p11.C_Sign(ourSession, msg, Buffer.alloc(512));
      const srcPub = one(soft, softSession, CKO.PUBLIC_KEY, label);
      soft.C_VerifyInit(softSession, { mechanism: verifyMech }, srcPub);
      expect(soft.C_Verify(softSession, verifyInput, sig), label).toBe(true);
      // and the check can fail: a flipped signature bit does not verify
      const bad = Buffer.from(sig);
      bad[bad.length - 1]! ^= 1;
      soft.C_VerifyInit(softSession, { mechanism: verifyMech }, srcPub);
      expect(rvOf(() => soft.C_Verify(softSession, verifyInput, bad))).toBe(CKR.SIGNATURE_INVALID);
    }
  });

  it('the migrated AES key interoperates with the source key in both directions (CBC-PAD, same IV)', () => {
    const iv = Buffer.alloc(16, 0x42);
    const pt = Buffer.from('forty-one bytes of plaintext for AES CBC!');
    const mine = one(ours.p11, ourSession, CKO.SECRET_KEY, 'aes1');
    const theirs = one(soft, softSession, CKO.SECRET_KEY, 'aes1');
    ours.p11.C_EncryptInit(ourSession, { mechanism: CKM.AES_CBC_PAD, parameter: iv }, mine);
    const ctOurs = ours.p11.C_Encrypt(ourSession, pt, Buffer.alloc(64));
    soft.C_DecryptInit(softSession, { mechanism: CKM.AES_CBC_PAD, parameter: iv }, theirs);
    expect(soft.C_Decrypt(softSession, ctOurs, Buffer.alloc(64)).equals(pt)).toBe(true);
    soft.C_EncryptInit(softSession, { mechanism: CKM.AES_CBC_PAD, parameter: iv }, theirs);
    expect(soft.C_Encrypt(softSession, pt, Buffer.alloc(64)).equals(ctOurs)).toBe(true);
  });

  it('the non-extractable keys are absent from our token', () => {
    expect(find(ours.p11, ourSession, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.LABEL, value: 'locked' }])).toHaveLength(0);
    expect(find(ours.p11, ourSession, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.LABEL, value: 'aes-locked' }])).toHaveLength(0);
  });

  it('the daemon audited the unwraps and creations, and the transport key was destroyed on both tokens', async () => {
    const r = await admin(['audit', 'dump', '--last', '100000', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const entries = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { operation: string; pid: number; key_id: number | null; mechanism: string | null; result: unknown });
    const unwraps = entries.filter((e) => e.operation === 'UnwrapKey');
    expect(unwraps).toHaveLength(3);
    for (const u of unwraps) expect(u).toMatchObject({ mechanism: 'CKM_AES_KEY_WRAP_PAD', result: { Success: null } });
    const pid = unwraps[0]!.pid;
    const creates = entries.filter((e) => e.operation === 'CreateObject' && e.pid === pid);
    // 3 public keys, a certificate and a data object, plus the transport key
    expect(creates.filter((e) => (e.result as { Success?: null }).Success === null)).toHaveLength(5 + 1);
    const destroys = entries.filter((e) => e.operation === 'DestroyObject' && e.pid === pid);
    expect(destroys).toHaveLength(1);
    expect(creates.map((e) => e.key_id)).toContain(destroys[0]!.key_id);
    // Nothing of the transport key is left anywhere either token can show.
    expect(find(soft, softSession, [{ type: CKA.LABEL, value: TRANSPORT_LABEL }])).toHaveLength(0);
    expect(find(ours.p11, ourSession, [{ type: CKA.LABEL, value: TRANSPORT_LABEL }])).toHaveLength(0);
  });

  it('a second run (PINs on stdin, source first) copies nothing and reports "already present"', async () => {
    const rep = await migrateJson(migrateArgs('--from-pin-stdin', '--to-pin-stdin'), `${SRC_PIN}\n${DST_PIN}\n`);
    expect(rep.summary).toEqual({ objects: 10, copied: 0, would_copy: 0, skipped: 10, failed: 0 });
    for (const o of rep.objects) {
      if (o.label === 'locked' && o.class === 'CKO_PRIVATE_KEY') continue;
      if (o.label === 'aes-locked') continue;
      expect(o.reason, JSON.stringify(o)).toBe('already present (same class, label and id on the target, same content)');
    }
    expect(find(ours.p11, ourSession, [{ type: CKA.TOKEN, value: true }])).toHaveLength(8);
  });

  it('an object of the same class and label but other content on the target is a conflict: not copied, exit 1', async () => {
    const data = (p: PKCS11, s: Buffer, value: string) =>
      p.C_CreateObject(s, [
        { type: CKA.CLASS, value: CKO.DATA },
        { type: CKA.TOKEN, value: true },
        { type: CKA.LABEL, value: 'data2' },
        { type: CKA.APPLICATION, value: 'app2' },
        { type: CKA.VALUE, value: Buffer.from(value) },
      ] as pkcs11js.Template);
    const theirs = data(soft, softSession, 'from the source');
    const mine = data(ours.p11, ourSession, 'already here, different');
    const r = await admin([...migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile), '--json']);
    expect(r.code, describeRun(r)).toBe(1);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.summary).toMatchObject({ objects: 11, copied: 0, failed: 1 });
    const conflict = row(rep, 'CKO_DATA', 'data2');
    expect(conflict.result).toBe('failed');
    expect(conflict.reason).toBe('the target already has a CKO_DATA with this label and id but a different CKA_VALUE: not copied; rename or remove one of them');
    // ours is untouched
    expect(Buffer.from(ours.p11.C_GetAttributeValue(ourSession, mine, [{ type: CKA.VALUE }])[0]!.value as Buffer).toString()).toBe('already here, different');
    // the tests below count the source's objects as they were
    soft.C_DestroyObject(softSession, theirs);
    ours.p11.C_DestroyObject(ourSession, mine);
  });
});

describe('craton-hsm-admin migrate: bad input', () => {
  it('a wrong source PIN is refused with CKR_PIN_INCORRECT named, exit 1', async () => {
    const bad = path.join(work, 'bad.pin');
    writeFileSync(bad, '000000\n', { mode: 0o600 });
    const r = await admin(migrateArgs('--from-pin-file', bad, '--to-pin-file', dstPinFile));
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('source token');
    expect(r.stderr).toContain('CKR_PIN_INCORRECT');
    expect(r.stderr).toContain(`--from-pin-file ${bad}`);
    expect(r.stdout).toBe('');
  });

  it('a module path that does not exist is one line and exit 2', async () => {
    const r = await admin(['migrate', '--from-module', '/nonexistent/libnope.so', '--from-slot', '0', '--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toBe('craton-hsm-admin migrate: --from-module /nonexistent/libnope.so: no such file; give the path of the PKCS#11 module (.so)\n');
  });

  it('a daemon that does not answer is exit 3, naming the socket', async () => {
    const sock = path.join(work, 'nobody-listens.sock');
    const r = await runCli(process.execPath, [ADMIN_BIN, '--config', d.configPath, '--data-dir', d.dataDir, '--socket', sock, ...migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile)], {
      env: { ...process.env, CRATON_HSM_CONFIG: '' },
      timeoutMs: 60_000,
    });
    expect(r.code, describeRun(r)).toBe(3);
    expect(r.stderr).toBe(`craton-hsm-admin migrate: craton-hsmd does not answer on ${sock} (ENOENT); start it or pass --socket\n`);
  });

  it('a slot the source does not have lists the slots it has', async () => {
    const r = await admin(['migrate', '--from-module', SOFTHSM, '--from-slot', '424242', '--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain(`${softSlotId} ("src")`);
  });

  it('without a PIN source and no terminal it names the option to use; PINs are never arguments', async () => {
    const r = await admin(migrateArgs('--from-pin-file', srcPinFile));
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain('--to-pin-file FILE or --to-pin-stdin');
    const pinArg = await admin(migrateArgs('--from-pin', SRC_PIN, '--to-pin-file', dstPinFile));
    expect(pinArg.code).toBe(2);
  });
});

describe('craton-hsm-admin migrate: an object the target refuses', () => {
  it('is a failure with the CK_RV named, exit 1, and the rest of the walk still happens', async () => {
    // SoftHSM2 takes a 20-byte "AES" key; a conforming token cannot hold one.
    soft.C_CreateObject(softSession, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY },
      { type: CKA.KEY_TYPE, value: CKK.AES },
      { type: CKA.TOKEN, value: true },
      { type: CKA.LABEL, value: 'odd-aes' },
      { type: CKA.ID, value: Buffer.from([9]) },
      { type: CKA.EXTRACTABLE, value: true },
      { type: CKA.VALUE, value: Buffer.alloc(20, 3) },
    ]);
    const r = await admin([...migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile), '--json']);
    expect(r.code, describeRun(r)).toBe(1);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.exit_code).toBe(1);
    expect(rep.summary).toEqual({ objects: 11, copied: 0, would_copy: 0, skipped: 10, failed: 1 });
    expect(row(rep, 'CKO_SECRET_KEY', 'odd-aes')).toMatchObject({
      result: 'failed',
      rv: 'CKR_ATTRIBUTE_VALUE_INVALID',
      reason: 'C_UnwrapKey on the target returned CKR_ATTRIBUTE_VALUE_INVALID',
      method: 'CKM_AES_KEY_WRAP_PAD',
    });
    expect(find(ours.p11, ourSession, [{ type: CKA.LABEL, value: 'odd-aes' }])).toHaveLength(0);
    const human = await admin(migrateArgs('--from-pin-file', srcPinFile, '--to-pin-file', dstPinFile));
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^SECRET_KEY\s+AES\s+odd-aes\s+09\s+FAILED: C_UnwrapKey on the target returned CKR_ATTRIBUTE_VALUE_INVALID$/m);
  });
});
