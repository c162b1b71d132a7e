// Checkpoint key changes (audit/key-change.ts, AuditWriter.changeSigner) and how the verifier
// accepts them (audit/verify.ts): only as recorded in the chain and covered by the old key.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_PENDING_FILE,
  CHECKPOINT_PUB_FILE,
  loadOrCreateSigner,
  readCheckpointKeyring,
  signerFromPkcs8,
  stageCheckpointKey,
} from '../../../hsm-daemon/src/audit/checkpoint.js';
import { installCheckpointKey, resolvePendingCheckpointKey } from '../../../hsm-daemon/src/audit/key-change.js';
import { verifySegments } from '../../../hsm-daemon/src/audit/verify.js';
import { callDraft, makeWriter, tempDir } from './helpers.js';

const newKeyDer = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
const logOf = (dir: string) => path.join(dir, 'craton_hsm_audit.jsonl');

describe('checkpoint key change', () => {
  it('is recorded in the log, installed on disk, and verifies with the keyring', async () => {
    const dir = tempDir();
    const w = makeWriter(dir);
    await w.open();
    const oldId = w.opts.signer!.keyId;
    await w.append(callDraft());
    await w.checkpoint('periodic');
    const der = newKeyDer();
    const r = await installCheckpointKey(w, dir, der, { reason: 'restore' });
    expect(r).toEqual({ changed: true, previous_key_id: oldId, new_key_id: signerFromPkcs8(der).keyId });
    await w.append(callDraft());
    await w.checkpoint('periodic');
    await w.close();
    expect(existsSync(path.join(dir, CHECKPOINT_PENDING_FILE))).toBe(false);
    expect(readFileSync(path.join(dir, CHECKPOINT_PUB_FILE), 'utf8')).toBe(signerFromPkcs8(der).publicKeyPem);
    expect(loadOrCreateSigner(dir).keyId).toBe(r.new_key_id); // what the next start loads
    const ring = readCheckpointKeyring(dir);
    expect([...ring.keys()].sort()).toEqual([oldId, r.new_key_id].sort());

    const v = await verifySegments([logOf(dir)], { publicKeys: ring });
    expect(v.failure).toBeUndefined();
    expect(v.checkpointKeys).toEqual([oldId, r.new_key_id]);
    expect(v.checkpointsVerified).toBe(4);
    // trusting only the old key is enough: the new one comes from the covered change entry
    expect((await verifySegments([logOf(dir)], { publicKeys: new Map([[oldId, ring.get(oldId)!]]) })).ok).toBe(true);
    // trusting only the new key is not: the first checkpoints are by an unknown key
    const onlyNew = await verifySegments([logOf(dir)], { publicKey: ring.get(r.new_key_id)! });
    expect(onlyNew.failure?.what).toMatch(/checkpoint signed by an unknown key/);
  });

  it('refuses a switch to another trusted key that the log does not record', async () => {
    const dir = tempDir();
    const w = makeWriter(dir);
    await w.open();
    await w.checkpoint('periodic');
    const other = signerFromPkcs8(newKeyDer());
    w.opts.signer = other; // a signer swapped without a CheckpointKeyChange entry
    await w.append(callDraft());
    await w.checkpoint('periodic');
    await w.close();
    const ring = readCheckpointKeyring(dir);
    ring.set(other.keyId, (await import('node:crypto')).createPublicKey(other.publicKeyPem));
    const v = await verifySegments([logOf(dir)], { publicKeys: ring });
    expect(v.ok).toBe(false);
    expect(v.failure?.what).toMatch(/no CheckpointKeyChange entry hands over to it/);
  });

  it('a pending key is installed at start only when the log holds its covered change', async () => {
    const dir = tempDir();
    const w = makeWriter(dir);
    await w.open();
    const oldId = w.opts.signer!.keyId;
    const der = newKeyDer();
    const next = stageCheckpointKey(dir, der);
    await w.changeSigner(next, { reason: 'restore' }); // crash before the commit step
    await w.close();
    resolvePendingCheckpointKey(dir, logOf(dir), () => undefined);
    expect(loadOrCreateSigner(dir).keyId).toBe(next.keyId);

    const dir2 = tempDir();
    const w2 = makeWriter(dir2);
    await w2.open();
    await w2.append(callDraft());
    await w2.close();
    stageCheckpointKey(dir2, newKeyDer()); // crash before the log recorded anything
    const before = loadOrCreateSigner(dir2).keyId;
    resolvePendingCheckpointKey(dir2, logOf(dir2), () => undefined);
    expect(existsSync(path.join(dir2, CHECKPOINT_PENDING_FILE))).toBe(false);
    expect(loadOrCreateSigner(dir2).keyId).toBe(before);
    expect(oldId).not.toBe(next.keyId);
  });
});
