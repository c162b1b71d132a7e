// collectAudit over synthetic audit lines: refusals classified from details.refused_by when
// the daemon recorded it, and inferred from the CK_RV only for logs of older versions;
// objects counted by class; one client row per uid + executable; GCM peaks from the
// entries' gcm_used. The lines carry no valid chain: collect counts, verify checks.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectAudit } from '../../../admin-cli/src/evidence/collect.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-collect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = 1_800_000_000;
const NODE = '/usr/bin/node';
type Line = Record<string, unknown>;

/** Entries in order, seq and timestamps assigned; fields default to a client call by pid 100. */
async function collect(name: string, lines: Line[]) {
  const file = path.join(dir, `${name}.jsonl`);
  const text = lines
    .map((l, i) =>
      JSON.stringify({
        timestamp: T + i,
        session_handle: 1,
        key_id: null,
        result: { Success: null },
        pid: 100,
        uid: 1000,
        exe: NODE,
        mechanism: null,
        fips_approved: null,
        ...l,
        seq: i + 1,
        previous_hash: '0'.repeat(64),
        chain: '0'.repeat(64),
        hmac: '0'.repeat(64),
      }),
    )
    .join('\n');
  writeFileSync(file, text + '\n');
  return collectAudit([file], { since: T, until: T + lines.length });
}

const fail = (rv: string) => ({ result: { Failure: rv } });
const event = (operation: string, details: Record<string, unknown>): Line => ({ operation, details, pid: 1, uid: 0, exe: '/usr/bin/craton-hsmd', session_handle: 0 });
const startup = (callDetails?: number) => event('Startup', { daemon_pid: 1, ...(callDetails === undefined ? {} : { call_details: callDetails }) });
const violation = (mechanism: string, algorithm: string) => event('PolicyViolation', { mechanism, algorithm, refused: true, reason: 'not approved' });

describe('evidence refusal classification', () => {
  it('a log of an older version (no call_details at Startup): inferred from CK_RV, PolicyViolation pairing and mechanism', async () => {
    const a = await collect('legacy', [
      startup(),
      violation('CKM_AES_ECB', 'AES-ECB'),
      { operation: 'EncryptInit', mechanism: 'CKM_AES_ECB', ...fail('CKR_MECHANISM_INVALID') },
      // no PolicyViolation before it: a plain CKR_MECHANISM_INVALID is no refusal
      { operation: 'EncryptInit', mechanism: 'CKM_AES_ECB', ...fail('CKR_MECHANISM_INVALID') },
      { operation: 'Login', ...fail('CKR_PIN_LOCKED') },
      { operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', ...fail('CKR_KEY_FUNCTION_NOT_PERMITTED') },
    ]);
    expect(a.refusals.by_kind).toEqual({ policy: 1, lockout: 1, gcm_limit: 1, key_dates: 0 });
    expect(a.refusals.entries.map((r) => [r.seq, r.kind, r.classified])).toEqual([
      [3, 'policy', 'inferred'],
      [5, 'lockout', 'inferred'],
      [6, 'gcm_limit', 'inferred'],
    ]);
    expect(a.refusals.entries[0]!.reason).toBe('AES-ECB: not approved');
    expect(a.gcm.limit_refusals).toBe(1);
  });

  it('a log of this version: refused_by decides, and a refused call without it is no refusal by a control', async () => {
    const a = await collect('recorded', [
      startup(1),
      violation('CKM_AES_ECB', 'AES-ECB'),
      { operation: 'EncryptInit', mechanism: 'CKM_AES_ECB', ...fail('CKR_MECHANISM_INVALID'), details: { refused_by: 'policy', policy_violation: 'AES-ECB: not approved for encryption' } },
      // the same CK_RV and mechanism as the GCM limit, refused by the key's date window
      { operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', ...fail('CKR_KEY_FUNCTION_NOT_PERMITTED'), details: { refused_by: 'key_dates' } },
      // a key without CKA_ENCRYPT: the heuristic would have called this the GCM limit
      { operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', ...fail('CKR_KEY_FUNCTION_NOT_PERMITTED') },
      { operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', ...fail('CKR_KEY_FUNCTION_NOT_PERMITTED'), details: { refused_by: 'gcm_limit', gcm_key: 'slot-0/k', gcm_used: 4, gcm_limit: 4 } },
      { operation: 'Login', ...fail('CKR_PIN_LOCKED'), details: { refused_by: 'lockout' } },
      { operation: 'Login', ...fail('CKR_PIN_INCORRECT') },
      // an admin action refused by the lockout
      { operation: 'AdminKeyList', ...fail('CKR_PIN_LOCKED'), session_handle: 0, details: { via: 'admin-socket', refused_by: 'lockout' } },
    ]);
    expect(a.refusals.by_kind).toEqual({ policy: 1, lockout: 2, gcm_limit: 1, key_dates: 1 });
    expect(a.refusals.entries.map((r) => [r.seq, r.kind, r.classified])).toEqual([
      [3, 'policy', 'recorded'],
      [4, 'key_dates', 'recorded'],
      [6, 'gcm_limit', 'recorded'],
      [7, 'lockout', 'recorded'],
      [9, 'lockout', 'recorded'],
    ]);
    expect(a.refusals.entries[0]!.reason).toBe('AES-ECB: not approved for encryption');
    expect(a.gcm.limit_refusals).toBe(1);
    expect(a.authentication.failed_logins).toBe(1);
  });

  it('a log whose Startup was rotated away: the first call entry with details shows the version', async () => {
    const a = await collect('headless', [
      { operation: 'GenerateKey', mechanism: 'CKM_AES_KEY_GEN', details: { class: 'CKO_SECRET_KEY', key_type: 'CKK_AES' } },
      { operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', ...fail('CKR_KEY_FUNCTION_NOT_PERMITTED') },
    ]);
    expect(a.refusals.total).toBe(0);
  });
});

describe('evidence objects, clients and GCM peaks', () => {
  it('counts objects by class: a key pair is two, an import its objects, a restore its count (class not recorded)', async () => {
    const a = await collect('objects', [
      startup(1),
      { operation: 'GenerateKeyPair', mechanism: 'CKM_EC_KEY_PAIR_GEN', details: { key_type: 'CKK_ECDSA' } },
      { operation: 'GenerateKey', mechanism: 'CKM_AES_KEY_GEN', details: { class: 'CKO_SECRET_KEY', key_type: 'CKK_AES' } },
      { operation: 'CreateObject', details: { class: 'CKO_CERTIFICATE' } },
      { operation: 'CreateObject', details: { class: 'CKO_DATA' } },
      { operation: 'UnwrapKey', mechanism: 'CKM_AES_KEY_WRAP_KWP', details: { class: 'CKO_PRIVATE_KEY', key_type: 'CKK_RSA' } },
      { operation: 'CopyObject', details: { class: 'CKO_PUBLIC_KEY', key_type: 'CKK_RSA' } },
      { operation: 'DeriveKey', mechanism: 'CKM_ECDH1_DERIVE', details: { class: 'CKO_SECRET_KEY', key_type: 'CKK_GENERIC_SECRET' } },
      { operation: 'CreateObject', ...fail('CKR_TEMPLATE_INCOMPLETE') },
      { operation: 'AdminKeyImport', session_handle: 0, details: { via: 'admin-socket', requested: 3, objects: [{ class: 'CKO_PRIVATE_KEY' }, { class: 'CKO_PUBLIC_KEY' }, { class: 'CKO_CERTIFICATE' }] } },
      { operation: 'AdminTokenRestore', session_handle: 0, details: { via: 'admin-socket', objects: 5 } },
      { operation: 'DestroyObject', details: { class: 'CKO_SECRET_KEY', key_type: 'CKK_AES' } },
      { operation: 'AdminKeyDelete', session_handle: 0, details: { via: 'admin-socket', class: 'CKO_CERTIFICATE' } },
    ]);
    expect(a.keys.created).toBe(2 + 1 + 1 + 1 + 1 + 1 + 1 + 3 + 5);
    expect(a.keys.created_by_class).toEqual({ key_pairs: 1, secret_keys: 2, private_keys: 3, public_keys: 3, certificates: 2, other: 1, unknown: 5 });
    expect(a.keys.destroyed).toBe(2);
    expect(a.keys.destroyed_by_class).toEqual({ key_pairs: 0, secret_keys: 1, private_keys: 0, public_keys: 0, certificates: 1, other: 0, unknown: 0 });
    expect(a.keys.events.map((k) => k.objects)).toEqual([2, 1, 1, 1, 1, 1, 1, 3, 5, 1, 1]);
  });

  it('objects that go with a token: C_InitToken and admin token init count their destroyed objects, a restore the ones it replaced', async () => {
    const a = await collect('objects-gone', [
      startup(1),
      { operation: 'InitToken', session_handle: 0, details: { destroyed_objects: 4 } },
      { operation: 'InitToken', session_handle: 0 }, // an empty token: nothing destroyed
      { operation: 'AdminTokenInit', session_handle: 0, details: { via: 'admin-socket', reinitialized: true, destroyed_objects: 2 } },
      { operation: 'AdminTokenRestore', session_handle: 0, details: { via: 'admin-socket', objects: 6, replaced_objects: 3 } },
      { operation: 'AdminTokenRestore', session_handle: 0, ...fail('CKR_PIN_INCORRECT'), details: { via: 'admin-socket', replaced_objects: 9 } },
    ]);
    expect(a.keys.destroyed).toBe(4 + 2 + 3);
    expect(a.keys.destroyed_by_class.unknown).toBe(9);
    expect(a.keys.created).toBe(6);
    expect(a.keys.events.map((k) => [k.action, k.objects])).toEqual([
      ['destroyed', 4],
      ['destroyed', 2],
      ['created', 6],
      ['destroyed', 3],
    ]);
  });

  it('older entries without a class: CreateObject / UnwrapKey unknown, GenerateKey and DeriveKey secret keys', async () => {
    const a = await collect('objects-legacy', [
      startup(),
      { operation: 'CreateObject' },
      { operation: 'UnwrapKey', mechanism: 'CKM_RSA_PKCS_OAEP' },
      { operation: 'GenerateKey', mechanism: 'CKM_AES_KEY_GEN' },
      { operation: 'DeriveKey', mechanism: 'CKM_ECDH1_DERIVE' },
      { operation: 'DestroyObject' },
    ]);
    expect(a.keys.created_by_class).toEqual({ key_pairs: 0, secret_keys: 2, private_keys: 0, public_keys: 0, certificates: 0, other: 0, unknown: 2 });
    expect(a.keys.destroyed_by_class.unknown).toBe(1);
  });

  it('one client row per uid + executable with its distinct pids; refusal rows keep the exact pid', async () => {
    const a = await collect('clients', [
      startup(1),
      { operation: 'Digest', mechanism: 'CKM_SHA256', fips_approved: true, pid: 200 },
      { operation: 'Digest', mechanism: 'CKM_SHA256', fips_approved: true, pid: 100 },
      { operation: 'Digest', mechanism: 'CKM_SHA256', fips_approved: true, pid: 200 },
      { operation: 'Login', ...fail('CKR_PIN_LOCKED'), details: { refused_by: 'lockout' }, pid: 200 },
      { operation: 'Digest', mechanism: 'CKM_SHA256', fips_approved: true, pid: 300, exe: '/usr/bin/python3' },
      { operation: 'Digest', mechanism: 'CKM_SHA256', fips_approved: true, pid: 400, uid: 0 },
    ]);
    expect(a.operations.by_client.map((c) => ({ uid: c.uid, exe: c.exe, pids: c.pids, pid_list: c.pid_list, calls: c.calls, operations: c.operations, refused: c.refused }))).toEqual([
      { uid: 1000, exe: NODE, pids: 2, pid_list: [100, 200], calls: 4, operations: 3, refused: 1 },
      { uid: 0, exe: NODE, pids: 1, pid_list: [400], calls: 1, operations: 1, refused: 0 },
      { uid: 1000, exe: '/usr/bin/python3', pids: 1, pid_list: [300], calls: 1, operations: 1, refused: 0 },
    ]);
    expect(a.refusals.entries[0]).toMatchObject({ pid: 200, uid: 1000, exe: NODE, kind: 'lockout' });
  });

  it('caps the pid list and keeps the count exact', async () => {
    const a = await collect('many-pids', [startup(1), ...Array.from({ length: 40 }, (_, i) => ({ operation: 'Digest', mechanism: 'CKM_SHA256', pid: 1000 + i }))]);
    const c = a.operations.by_client[0]!;
    expect(c.pids).toBe(40);
    expect(c.pid_list).toEqual(Array.from({ length: 32 }, (_, i) => 1000 + i));
  });

  it('GCM peaks: the highest gcm_used per key in the period, below any alert threshold too; threshold entries still count', async () => {
    const gcmInit = (key: string, used: number, extra: Line = {}): Line => ({ operation: 'EncryptInit', mechanism: 'CKM_AES_GCM', fips_approved: false, details: { gcm_key: key, gcm_used: used, gcm_limit: 1000 }, ...extra });
    const a = await collect('gcm', [
      startup(1),
      gcmInit('slot-0/a', 7),
      gcmInit('slot-0/a', 9),
      gcmInit('slot-0/b', 3),
      gcmInit('slot-0/a', 8),
      event('NonceThreshold', { key: 'slot-0/c', used: 500, limit: 1000, percent: 50 }),
    ]);
    expect(a.gcm.peaks).toEqual([
      { key: 'slot-0/c', used: 500, limit: 1000, percent: 50 },
      { key: 'slot-0/a', used: 9, limit: 1000, percent: 0 },
      { key: 'slot-0/b', used: 3, limit: 1000, percent: 0 },
    ]);
  });
});
