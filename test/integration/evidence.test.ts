// `craton-hsm-admin evidence` end to end: a real craton-hsmd, known activity through the
// real module (pkcs11js) — ECDSA signs, SHA-256 digests, a strict-policy refusal, wrong PINs
// up to the lockout, keys created and destroyed, AES-GCM up to a low invocation limit — then
// the evidence document for a window around it must report exactly that, signed by the
// HSM's audit key; `evidence verify` accepts it and rejects one edited number. The trace
// part runs the real craton-trace (eBPF, root; the same requirement as tracer.test.ts) on
// private copies of openssl. The HTML rendering is opened in headless Chromium and every
// figure it shows is compared with the JSON.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../hsm-daemon/src/pkcs11/index.js';
import type { CryptoOpEvent } from '../../tracer/src/events.js';
import type { EvidenceDocument } from '../../admin-cli/src/evidence/document.js';
import { MODULE_PATH, REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, initTokenAndLogin, loadModule, pkcs11js, rvOf, runCli } from '../helpers/module.js';

const ADMIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');
const TRACE = path.join(REPO_ROOT, 'bin', 'craton-trace');
const CHROMIUM = '/usr/bin/chromium';
const SO_PIN = '12345678';
const USER_PIN = '1234';
const SIGNS = 5;
const DIGESTS = 3;
const GCM_LIMIT = 4;
const MAX_FAILED = 3;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
/** SHA-256 digests by a second process of the same executable (node) and uid. */
const CHILD_DIGESTS = 2;

let d: Daemon;
let dir: string;
let t0: number;
let t1: number;
let me: { pid: number; uid: number; exe: string };
let traceLog: string;
let childPid: number;
const admin = (args: string[]) => runCli(process.execPath, [ADMIN, '--config', d.configPath, '--data-dir', d.dataDir, ...args], { env: d.env });
const readDoc = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as EvidenceDocument;
const rawLog = () =>
  readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);

const gcmParams = (i: number) => {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(i, 8);
  return { mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } } as never;
};

/** The known activity, through the real module. */
function drive(): void {
  const m = loadModule(d.socketPath);
  const p11 = m.p11;
  try {
    const { session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'evidence' });
    // created #1: an EC key pair (session objects)
    const { privateKey } = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: false }, { type: CKA.VERIFY, value: true }] as never,
      [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }] as never,
    );
    for (let i = 0; i < SIGNS; i++) {
      p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, privateKey);
      p11.C_Sign(s, Buffer.from(`message ${i}`), Buffer.alloc(64));
    }
    for (let i = 0; i < DIGESTS; i++) {
      p11.C_DigestInit(s, { mechanism: CKM.SHA256 });
      p11.C_Digest(s, Buffer.from(`data ${i}`), Buffer.alloc(32));
    }
    // created #2: the AES key for GCM (a token key: its counter is durable)
    const aes = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true }] as never);
    // strict policy: AES-ECB is refused at C_EncryptInit
    expect(rvOf(() => p11.C_EncryptInit(s, { mechanism: CKM.AES_ECB }, aes))).toBe(CKR.MECHANISM_INVALID);
    for (let i = 0; i < GCM_LIMIT; i++) {
      p11.C_EncryptInit(s, gcmParams(i), aes);
      p11.C_Encrypt(s, Buffer.alloc(16, i), Buffer.alloc(32));
    }
    expect(rvOf(() => p11.C_EncryptInit(s, gcmParams(GCM_LIMIT), aes))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    // created #3 and destroyed #1
    const tmp = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }, { type: CKA.CLASS, value: CKO.SECRET_KEY }] as never);
    p11.C_DestroyObject(s, tmp);
    // created #4: an AES key whose CKA_END_DATE has passed: AES-GCM encryption is refused by
    // the date window with the same CK_RV as the GCM limit (the log must tell them apart)
    const expired = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: false }, { type: CKA.ENCRYPT, value: true }, { type: CKA.END_DATE, value: Buffer.from('20000102') }] as never);
    expect(rvOf(() => p11.C_EncryptInit(s, gcmParams(99), expired))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
  } finally {
    // C_Finalize is audited: its entry is written after every event queued before it.
    m.close();
  }
}

/** Wrong PINs: MAX_FAILED × CKR_PIN_INCORRECT (the last one locks), then CKR_PIN_LOCKED. */
function lockOut(): void {
  const m = loadModule(d.socketPath);
  const p11 = m.p11;
  try {
    const s = p11.C_OpenSession(p11.C_GetSlotList(true)[0]!, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    for (let i = 0; i < MAX_FAILED; i++) expect(rvOf(() => p11.C_Login(s, CKU.USER, '9999'))).toBe(CKR.PIN_INCORRECT);
    expect(rvOf(() => p11.C_Login(s, CKU.USER, USER_PIN))).toBe(CKR.PIN_LOCKED);
  } finally {
    // C_Finalize is audited: its entry is written after every event queued before it.
    m.close();
  }
}

/** A second process of this executable and uid: its calls belong to the same client row. */
async function childDigests(): Promise<number> {
  const script = path.join(dir, 'child.cjs');
  writeFileSync(
    script,
    `const pkcs11js = require(${JSON.stringify(path.join(REPO_ROOT, 'node_modules', 'pkcs11js'))});
const p = new pkcs11js.PKCS11();
p.load(${JSON.stringify(MODULE_PATH)});
p.C_Initialize();
const s = p.C_OpenSession(p.C_GetSlotList(true)[0], ${CKF.SERIAL_SESSION});
for (let i = 0; i < ${CHILD_DIGESTS}; i++) {
  p.C_DigestInit(s, { mechanism: ${CKM.SHA256} });
  p.C_Digest(s, Buffer.from('child ' + i), Buffer.alloc(32));
}
p.C_Finalize();
p.close();
process.stdout.write(String(process.pid));
`,
  );
  const r = await runCli(process.execPath, [script], { env: { ...process.env, CRATON_HSM_SOCKET: d.socketPath } });
  expect(r.code, describeRun(r)).toBe(0);
  return Number(r.stdout);
}

/** An admin `key import` of a PKCS#12 made by openssl: EC private key, its public key, its certificate. */
async function importP12(): Promise<void> {
  const ossl = async (args: string[]) => {
    const r = await runCli('openssl', args, { timeoutMs: 60_000 });
    expect(r.code, `openssl ${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  };
  writeFileSync(path.join(dir, 'pass.txt'), 'evidence passphrase\n', { mode: 0o600 });
  writeFileSync(path.join(dir, 'pin.txt'), `${USER_PIN}\n`, { mode: 0o600 });
  await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'leaf.key'), '-out', path.join(dir, 'leaf.pem'), '-subj', '/CN=evidence import', '-days', '2']);
  await ossl(['pkcs12', '-export', '-inkey', path.join(dir, 'leaf.key'), '-in', path.join(dir, 'leaf.pem'), '-out', path.join(dir, 'leaf.p12'), '-passout', `file:${path.join(dir, 'pass.txt')}`]);
  const r = await admin(['key', 'import', '--file', path.join(dir, 'leaf.p12'), '--label', 'ev-import', '--passphrase-file', path.join(dir, 'pass.txt'), '--pin-file', path.join(dir, 'pin.txt'), '--json']);
  expect(r.code, describeRun(r)).toBe(0);
  expect((JSON.parse(r.stdout) as { imported: Array<{ class: string }> }).imported.map((o) => o.class)).toEqual(['CKO_PRIVATE_KEY', 'CKO_PUBLIC_KEY', 'CKO_CERTIFICATE']);
}

async function traceOpenssl(): Promise<string> {
  const strict = path.join(dir, 'ctev-strict');
  const plain = path.join(dir, 'ctev-plain');
  copyFileSync('/usr/bin/openssl', strict);
  copyFileSync('/usr/bin/openssl', plain);
  spawnSync('chmod', ['755', strict, plain]);
  const data = path.join(dir, 'data.txt');
  writeFileSync(data, 'evidence\n');
  const log = path.join(dir, 'trace.jsonl');
  const tracer = spawn(process.execPath, [TRACE, 'monitor', '--name', 'ctev-', '--enforce', 'strict', '--enforce-only', strict, '--no-alerts', '--output', log], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const closed = new Promise<void>((r) => tracer.on('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    tracer.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      if (err.includes('craton-trace: ready')) resolve();
    });
    tracer.once('exit', (code) => reject(new Error(`craton-trace exited ${code} before it was ready: ${err}`)));
  });
  expect(spawnSync(plain, ['dgst', '-sha256', data]).status).toBe(0); // approved, allowed
  expect(spawnSync(plain, ['dgst', '-md5', data]).status).toBe(0); // observed: WARNED
  expect(spawnSync(strict, ['dgst', '-md5', data]).signal).toBe('SIGKILL'); // strict scope: BLOCKED
  // The strict copy's kill proves its event reached the kernel's decision; let the ring
  // buffer drain into the log before stopping (the count is read from the log itself).
  await new Promise((r) => setTimeout(r, 500));
  tracer.kill('SIGTERM');
  await closed;
  return log;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'craton-evidence-'));
  me = { pid: process.pid, uid: process.getuid!(), exe: realpathSync(process.execPath) };
  t0 = Math.floor(Date.now() / 1000);
  d = await startDaemon({
    slots: 1,
    extraToml: `[nonce]\ngcm_invocation_limit = ${GCM_LIMIT}\n[security]\nmax_failed_logins = ${MAX_FAILED}\nfailed_login_delay_base_ms = 0\n[audit]\ncheckpoint_interval_entries = 16\n`,
  });
  drive();
  childPid = await childDigests();
  await importP12();
  lockOut();
  traceLog = await traceOpenssl();
  t1 = Math.floor(Date.now() / 1000) + 1;
}, 60_000);

afterAll(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('craton-hsm-admin evidence', () => {
  let doc: EvidenceDocument;
  let jsonFile: string;
  let htmlFile: string;

  it('reports exactly the activity driven in the window, with client identity, verified chain and signature', async () => {
    jsonFile = path.join(dir, 'evidence.json');
    htmlFile = path.join(dir, 'evidence.html');
    const r = await admin(['evidence', '--since', new Date(t0 * 1000).toISOString(), '--until', String(t1), '--output', jsonFile, '--html', htmlFile, '--trace', traceLog]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/audit chain: verified/);
    doc = readDoc(jsonFile);

    const mech = (m: string) => doc.operations.by_mechanism.find((x) => x.mechanism === m)!;
    expect(mech('CKM_ECDSA_SHA256')).toMatchObject({ operations: SIGNS, approved: SIGNS, non_approved: 0, failed: 0, calls: 2 * SIGNS });
    const digests = DIGESTS + CHILD_DIGESTS;
    expect(mech('CKM_SHA256')).toMatchObject({ operations: digests, approved: digests, non_approved: 0, calls: 2 * digests });
    // caller-supplied GCM IVs make the encryption non-approved (FIPS 140-3 IG C.H, nonce/guard.ts)
    expect(mech('CKM_AES_GCM')).toMatchObject({ operations: GCM_LIMIT, approved: 0, non_approved: GCM_LIMIT });
    expect(mech('CKM_AES_KEY_GEN')).toMatchObject({ operations: 3, approved: 3 });
    expect(doc.operations.by_mechanism.find((x) => /^CKM_EC(DSA)?_KEY_PAIR_GEN$/.test(x.mechanism))!.operations).toBe(1);
    const total = SIGNS + digests + GCM_LIMIT + 3 + 1;
    expect(doc.operations).toMatchObject({ total, approved: SIGNS + digests + 4, non_approved: GCM_LIMIT });
    // objects, not entries: the key pair is 2, the PKCS#12 import 3
    expect(doc.summary).toMatchObject({ operations: total, refusals: 4, failed_logins: MAX_FAILED, keys_created: 2 + 3 + 3, keys_destroyed: 1, keys_rotated: 0, chain_ok: true });
    expect(doc.summary.approval_rate).toBe(((100 * (SIGNS + digests + 4)) / total).toFixed(2));

    // refused operations, each classified by the control that refused it as the daemon
    // recorded it (details.refused_by), with the identity of this test process
    expect(doc.refusals.by_kind).toEqual({ policy: 1, lockout: 1, gcm_limit: 1, key_dates: 1 });
    expect(doc.refusals.entries.map((r) => r.classified)).toEqual(['recorded', 'recorded', 'recorded', 'recorded']);
    const byKind = Object.fromEntries(doc.refusals.entries.map((x) => [x.kind, x]));
    expect(byKind.policy).toMatchObject({ operation: 'EncryptInit', mechanism: 'CKM_AES_ECB', result: 'CKR_MECHANISM_INVALID', ...me });
    expect(byKind.policy!.reason).toMatch(/AES-ECB/);
    expect(byKind.lockout).toMatchObject({ operation: 'Login', result: 'CKR_PIN_LOCKED', ...me });
    expect(byKind.gcm_limit).toMatchObject({ operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', result: 'CKR_KEY_FUNCTION_NOT_PERMITTED', ...me });
    // the same CK_RV and mechanism as the GCM limit, told apart by the entry
    expect(byKind.key_dates).toMatchObject({ operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', result: 'CKR_KEY_FUNCTION_NOT_PERMITTED', ...me });
    expect(byKind.gcm_limit!.seq).toBeLessThan(byKind.key_dates!.seq);
    const log = rawLog();
    const entryAt = (seq: number) => log.find((e) => e.seq === seq)!;
    expect(entryAt(byKind.policy!.seq).details).toEqual({ refused_by: 'policy', policy_violation: byKind.policy!.reason });
    expect(entryAt(byKind.lockout!.seq).details).toEqual({ refused_by: 'lockout' });
    expect(entryAt(byKind.key_dates!.seq).details).toEqual({ refused_by: 'key_dates' });
    expect(entryAt(byKind.gcm_limit!.seq).details).toMatchObject({ refused_by: 'gcm_limit', gcm_used: GCM_LIMIT, gcm_limit: GCM_LIMIT });
    // the wrong PINs before the lock are failed logins, not refusals by a control
    expect(log.filter((e) => e.operation === 'Login' && e.result.Failure === 'CKR_PIN_INCORRECT').map((e) => e.details)).toEqual(Array(MAX_FAILED).fill(undefined));

    // one client per uid + executable: this process, the child process and the admin CLI
    // that imported the PKCS#12 all run this node binary as this uid
    const importEntry = log.find((e) => e.operation === 'AdminKeyImport')!;
    expect(new Set([me.pid, childPid, importEntry.pid]).size).toBe(3);
    expect(doc.operations.by_client).toHaveLength(1);
    const client = doc.operations.by_client[0]!;
    expect(client).toMatchObject({ uid: me.uid, exe: me.exe, pids: 3, pid_list: [me.pid, childPid, importEntry.pid].sort((a, b) => a - b), operations: total, refused: 4, failed_logins: MAX_FAILED });
    const clientPids = [me.pid, childPid, importEntry.pid];
    expect(client.calls).toBe(log.filter((e) => clientPids.includes(e.pid) && e.seq < log.find((x) => x.operation === 'AdminEvidenceSign')!.seq).length);
    expect(doc.authentication.lockouts.filter((l) => l.transition)).toHaveLength(1);
    expect(doc.policy_violations).toMatchObject({ total: 1, refused: 1, warned: 0 });

    // keys: objects by class, from the entries' details (class, key type) and the import's object list
    expect(doc.keys.created_by_class).toEqual({ key_pairs: 1, secret_keys: 3, private_keys: 2, public_keys: 2, certificates: 1, other: 0, unknown: 0 });
    expect(doc.keys.destroyed_by_class).toEqual({ key_pairs: 0, secret_keys: 1, private_keys: 0, public_keys: 0, certificates: 0, other: 0, unknown: 0 });
    expect(doc.keys.events.map((k) => `${k.action}:${k.operation}:${k.objects}`)).toEqual([
      'created:GenerateKeyPair:2',
      'created:GenerateKey:1',
      'created:GenerateKey:1',
      'destroyed:DestroyObject:1',
      'created:GenerateKey:1',
      'created:AdminKeyImport:3',
    ]);
    expect(doc.keys.events[3]!.key_handle).toBe(doc.keys.events[2]!.key_handle);
    expect(doc.keys.events.map((k) => k.detail)).toEqual(['key pair CKK_ECDSA', 'CKO_SECRET_KEY CKK_AES', 'CKO_SECRET_KEY CKK_AES', 'CKO_SECRET_KEY CKK_AES', 'CKO_SECRET_KEY CKK_AES', null]);
    expect(doc.keys.events[5]!.pid).toBe(importEntry.pid);
    // entries that record nothing beyond seed 003 keep its shape exactly
    for (const e of log.filter((x) => x.operation === 'Sign' || x.operation === 'Digest')) expect(e.details).toBeUndefined();

    // GCM counters: the 50% and 75% thresholds, then exhaustion at the limit
    expect(doc.gcm.encryptions).toBe(GCM_LIMIT);
    expect(doc.gcm.limit_refusals).toBe(1);
    expect(doc.gcm.thresholds.map((t) => [t.percent, t.used, t.exhausted])).toEqual([
      [50, 2, false],
      [75, 3, false],
      [100, 4, true],
    ]);
    expect(doc.gcm.peaks).toEqual([{ key: doc.gcm.thresholds[0]!.key, used: GCM_LIMIT, limit: GCM_LIMIT, percent: 100 }]);
    // every admission's count is in its entry: 1..limit, then the refusal at the limit
    const gcmInits = log.filter((e) => e.operation === 'EncryptInit' && e.mechanism === 'CKM_AES_GCM' && e.details?.gcm_key);
    expect(gcmInits.map((e) => [e.details.gcm_used, e.details.gcm_limit, e.details.gcm_key])).toEqual([1, 2, 3, 4, 4].map((n) => [n, GCM_LIMIT, doc.gcm.thresholds[0]!.key]));

    // self-tests at start, the policy in force (strict) with its hash, alerts
    expect(doc.self_tests.runs).toHaveLength(1);
    expect(doc.self_tests.runs[0]).toMatchObject({ trigger: 'startup', passed: true, integrity: true, drbg: true, failed: [] });
    expect(doc.self_tests.runs[0]!.known_answer_tests).toBeGreaterThan(10);
    expect(doc.policy.in_force).toHaveLength(1);
    expect(doc.policy.in_force[0]).toMatchObject({ source: 'audit', reason: 'startup', hash_ok: true });
    expect(doc.policy.in_force[0]!.settings.enforce).toBe('strict');
    expect(doc.policy.matches_configuration).toBe(true);
    const kinds = doc.alerts.by_kind.map((a) => a.kind);
    for (const k of ['policy_violation', 'gcm_counter_ticket', 'gcm_counter_page', 'pin_incorrect_repeated', 'pin_locked']) expect(kinds).toContain(k);
    // The CLI read the log, then asked the daemon to sign: the AdminEvidenceSign entry is the
    // first one written after the reading, so the log before it is what the document covers.
    const signedEntry = log.find((e) => e.operation === 'AdminEvidenceSign')!;
    expect(signedEntry.details.digest).toBe(doc.signature!.digest);
    expect(signedEntry.pid).not.toBe(me.pid); // the CLI process, not this one
    const read = log.filter((e) => e.seq < signedEntry.seq);
    expect(doc.alerts.total).toBe(read.filter((e) => e.operation === 'AlertRaised').length);

    // the chain: verified over the whole log, the period's range reported
    const inWindow = read.filter((e) => e.timestamp >= t0 && e.timestamp <= t1);
    expect(doc.audit_chain).toMatchObject({ ok: true, covers_period: true, failure: null, entries_total: read.length, entries_in_period: inWindow.length });
    expect(doc.audit_chain.first_seq_in_period).toBe(inWindow[0]!.seq);
    expect(doc.audit_chain.last_seq_in_period).toBe(inWindow[inWindow.length - 1]!.seq);
    expect(doc.audit_chain.checkpoints_verified).toBe(read.filter((e) => e.operation === 'Checkpoint').length);
    expect(doc.audit_chain.checkpoints_verified).toBeGreaterThanOrEqual(1);
    expect(doc.audit_chain.layers).toContain('checkpoint signatures');

    // signed by the daemon's audit key
    expect(doc.signature!.public_key).toBe(readFileSync(path.join(d.dataDir, 'audit-checkpoint-pub.pem'), 'utf8'));
  });

  it('merges the craton-trace log: per-process approval rates and blocked algorithms, equal to the trace', () => {
    const ops = readFileSync(traceLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as CryptoOpEvent)
      .filter((e) => e.event_type === 'crypto_op');
    expect(doc.trace).not.toBeNull();
    const t = doc.trace!;
    expect(t.total_operations).toBe(ops.length);
    expect(t.approved_operations).toBe(ops.filter((e) => e.approved).length);
    expect(t.blocked_algorithms).toEqual([{ algorithm: 'MD5', count: ops.filter((e) => e.action === 'BLOCKED').length }]);
    expect(t.blocked_operations).toBeGreaterThanOrEqual(1);
    const pids = [...new Set(ops.map((e) => e.pid))];
    expect(pids).toHaveLength(3);
    for (const pid of pids) {
      const mine = ops.filter((e) => e.pid === pid);
      const approved = mine.filter((e) => e.approved).length;
      const p = t.processes.find((x) => x.pid === pid)!;
      expect(p).toMatchObject({ operations: mine.length, approved, blocked: mine.filter((e) => e.action === 'BLOCKED').length });
      expect(p.approval_rate).toBe(((100 * approved) / mine.length).toFixed(2));
    }
    const sha = t.processes.find((p) => ops.some((e) => e.pid === p.pid && e.algorithm === 'SHA-256'))!;
    expect(sha.approval_rate).toBe('100.00');
    expect(t.processes.filter((p) => p.approval_rate === '0.00')).toHaveLength(2);
  });

  it('evidence verify accepts the document, and rejects an edited number, a foreign key and a missing signature', async () => {
    const ok = await admin(['evidence', 'verify', jsonFile]);
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(ok.stdout).toMatch(/evidence verified/);

    const tampered = readDoc(jsonFile);
    tampered.operations.by_mechanism.find((m) => m.mechanism === 'CKM_ECDSA_SHA256')!.approved -= 1;
    const tf = path.join(dir, 'tampered.json');
    writeFileSync(tf, JSON.stringify(tampered, null, 2));
    const bad = await admin(['evidence', 'verify', tf]);
    expect(bad.code, describeRun(bad)).toBe(1);
    expect(bad.stderr).toMatch(/FAILED \(digest\): content changed since signing/);

    // re-signing the edit with another key: the signature checks, the key is not the HSM's
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherPem = path.join(dir, 'other.pem');
    writeFileSync(otherPem, other.publicKey.export({ type: 'spki', format: 'pem' }));
    const foreign = await admin(['evidence', 'verify', jsonFile, '--pubkey', otherPem]);
    expect(foreign.code, describeRun(foreign)).toBe(1);
    expect(foreign.stderr).toMatch(/FAILED \(trusted key\)/);

    const unsigned = readDoc(jsonFile);
    delete unsigned.signature;
    const uf = path.join(dir, 'unsigned.json');
    writeFileSync(uf, JSON.stringify(unsigned));
    const u = await admin(['evidence', 'verify', uf]);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/FAILED \(signed\)/);
  });

  it('a window that excludes the activity counts zero (and still verifies the whole chain)', async () => {
    const f = path.join(dir, 'empty.json');
    const r = await admin(['evidence', '--since', String(t0 - 7200), '--until', String(t0 - 3600), '--output', f]);
    expect(r.code, describeRun(r)).toBe(0);
    const e = readDoc(f);
    expect(e.summary).toMatchObject({ operations: 0, approved: 0, refusals: 0, failed_logins: 0, keys_created: 0, keys_destroyed: 0, alerts: 0, self_tests: 0, approval_rate: null, chain_ok: true });
    expect(e.audit_chain).toMatchObject({ ok: true, entries_in_period: 0, first_seq_in_period: null });
    expect(e.audit_chain.entries_total).toBeGreaterThan(0);
    expect(e.refusals.entries).toEqual([]);
    // the policy in force then: none recorded yet (the log began later)
    expect(e.policy.in_force).toEqual([]);
    const v = await admin(['evidence', 'verify', f]);
    expect(v.code, describeRun(v)).toBe(0);
  });

  it('refuses bad times with a one-line reason (exit 2)', async () => {
    const f = path.join(dir, 'x.json');
    const garbage = await admin(['evidence', '--since', 'yesterday', '--output', f]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toMatch(/--since: "yesterday" is not a time; give ISO 8601/);
    const zoneless = await admin(['evidence', '--since', '2026-01-01T00:00:00', '--output', f]);
    expect(zoneless.code).toBe(2);
    expect(zoneless.stderr).toMatch(/add a time zone/);
    const reversed = await admin(['evidence', '--since', String(t1), '--until', String(t0), '--output', f]);
    expect(reversed.code).toBe(2);
    expect(reversed.stderr).toMatch(/--since .* is after --until/);
    expect(existsSync(f)).toBe(false);
  });

  it('the HTML page, rendered by headless Chromium, shows the JSON figures and loads nothing external', async () => {
    const html = readFileSync(htmlFile, 'utf8');
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/<script/i);
    const r = await runCli(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--dump-dom', `file://${htmlFile}`], { timeoutMs: 60_000 });
    expect(r.code, describeRun(r)).toBe(0);
    const dom = r.stdout;
    expect(dom).toContain('chart-approval');
    const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    const shown = [...dom.matchAll(/<(\w+)[^>]*\bdata-ev="([^"]+)"[^>]*>([^<]*)<\/\1>/g)].map((m) => ({ path: m[2]!, text: unescape(m[3]!) }));
    const resolve = (p: string): unknown => p.split('.').reduce<any>((o, k) => (o === null || o === undefined ? undefined : o[k]), doc);
    // the figures an auditor looks for first are all there
    const paths = new Set(shown.map((s) => s.path));
    for (const p of ['summary.operations', 'summary.approved', 'summary.approval_rate', 'summary.refusals', 'refusals.by_kind.policy', 'refusals.by_kind.lockout', 'refusals.by_kind.gcm_limit', 'refusals.by_kind.key_dates', 'audit_chain.entries_in_period', 'audit_chain.checkpoints_verified', 'trace.approval_rate', 'operations.by_client.0.calls', 'operations.by_client.0.pids', 'keys.created_by_class.private_keys', 'keys.created_by_class.key_pairs', 'keys.events.5.objects', 'timeline.buckets.0.approval_rate'])
      expect(paths, p).toContain(p);
    expect(shown.length).toBeGreaterThan(50);
    for (const s of shown) {
      const v = resolve(s.path);
      expect(v, `${s.path} exists in the JSON`).not.toBeUndefined();
      expect(s.text, s.path).toBe(v === null ? '—' : String(v));
    }
    // the charts' bars carry the same figures as the tables
    const refusalsChart = /<svg id="chart-refusals"[\s\S]*?<\/svg>/.exec(dom)![0];
    expect([...refusalsChart.matchAll(/data-ev="refusals\.by_kind\.(\w+)">(\d+)</g)].map((m) => [m[1], Number(m[2])])).toEqual([
      ['policy', 1],
      ['lockout', 1],
      ['gcm_limit', 1],
      ['key_dates', 1],
    ]);
    // one row per client (uid + executable), naming how many pids it had
    const clientsChart = /<svg id="chart-clients"[\s\S]*?<\/svg>/.exec(dom)![0];
    expect(clientsChart).toContain('3 pids');
  }, 90_000);
});
