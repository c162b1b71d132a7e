// The checkpoint key at rest (sealed under the daemon key; legacy PEM migrated) and the
// writer's one-serialization sealing (same bytes as the verifier-side functions).
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_KEK_FILE,
  CHECKPOINT_KEY_FILE,
  CHECKPOINT_PUB_FILE,
  CHECKPOINT_SEALED_FILE,
  loadOrCreateSigner,
  readCheckpointPublicKey,
  verifyCheckpoint,
} from '../../../hsm-daemon/src/audit/checkpoint.js';
import { type AuditEntry, chainOf, hmacOf, sealEntry, seedHash, serializeEntry } from '../../../hsm-daemon/src/audit/entry.js';
import { tempDir } from './helpers.js';

describe('checkpoint key custody', () => {
  it('creates a sealed key; reloading gives the same key; only the public half is in the clear', () => {
    const dir = tempDir();
    const a = loadOrCreateSigner(dir);
    const b = loadOrCreateSigner(dir);
    expect(b.keyId).toBe(a.keyId);
    const cp = b.sign({ head_seq: 5, head_chain: 'ab'.repeat(32), timestamp: 1 });
    expect(verifyCheckpoint(createPublicKey(readFileSync(path.join(dir, CHECKPOINT_PUB_FILE))), cp)).toBe(true);
    expect(readFileSync(path.join(dir, CHECKPOINT_SEALED_FILE), 'utf8')).not.toMatch(/PRIVATE KEY/);
    expect(existsSync(path.join(dir, CHECKPOINT_KEY_FILE))).toBe(false);
    expect(readCheckpointPublicKey(dir)).toBe(a.publicKeyPem);
  });

  it('refuses a sealed key that does not authenticate (tampered blob or other daemon key)', () => {
    const dir = tempDir();
    loadOrCreateSigner(dir);
    writeFileSync(path.join(dir, CHECKPOINT_KEK_FILE), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    expect(() => loadOrCreateSigner(dir)).toThrow(/does not authenticate/);
  });

  it('migrates a plaintext PEM from older versions: same key id, PEM overwritten and removed', () => {
    const dir = tempDir();
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(path.join(dir, CHECKPOINT_KEY_FILE), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const msgs: string[] = [];
    const s = loadOrCreateSigner(dir, (m) => msgs.push(m));
    expect(s.publicKeyPem).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
    expect(existsSync(path.join(dir, CHECKPOINT_KEY_FILE))).toBe(false);
    expect(msgs.join('\n')).toMatch(/moved from .*audit-checkpoint-key\.pem/);
    expect(loadOrCreateSigner(dir).keyId).toBe(s.keyId);
  });
});

describe('sealEntry', () => {
  it('equals chainOf/hmacOf/serializeEntry/seedHash on the completed entry (also with details and non-ASCII)', () => {
    for (const details of [undefined, { reason: 'Schlüssel "x" \\ 鍵 😀', n: 12345678901234567890n, list: [1, null, true] }]) {
      const prev = randomBytes(32).toString('hex');
      const key = randomBytes(32);
      const e: Record<string, unknown> = {
        timestamp: 1_700_000_000,
        session_handle: 3,
        operation: 'Sign',
        key_id: null,
        result: { Failure: 'CKR_DEVICE_ERROR' },
        previous_hash: randomBytes(32).toString('hex'),
        seq: 77,
        pid: 1,
        uid: 0,
        exe: '/usr/bin/ä',
        mechanism: 'CKM_ECDSA',
        fips_approved: false,
      };
      if (details) e.details = details;
      const s = sealEntry(prev, key, e as unknown as Omit<AuditEntry, 'chain' | 'hmac'>);
      const chain = chainOf(prev, e);
      expect(s.chain).toBe(chain);
      const withChain = { ...e, chain };
      expect(s.hmac).toBe(hmacOf(key, withChain));
      const full = { ...withChain, hmac: s.hmac };
      expect(s.line).toBe(serializeEntry(full as unknown as AuditEntry));
      expect(s.seedHash).toBe(seedHash(full));
    }
  });
});
