// The backup file format (store/backup-file.ts) and its payload (store/backup-payload.ts):
// round trip, every byte altered → refused, every truncation → refused, a wrong passphrase
// reported as such, an altered file with a recomputed checksum still refused by GCM.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_MAGIC,
  BackupFileError,
  CHECKSUM_BYTES,
  decryptBackup,
  encryptBackup,
  parseBackup,
  type BackupSource,
} from '../../../hsm-daemon/src/store/backup-file.js';
import { PayloadError, decodePayload, encodePayload, type BackupPayload } from '../../../hsm-daemon/src/store/backup-payload.js';
import type { TokenRecord } from '../../../hsm-daemon/src/store/token-file.js';

const PASS = Buffer.from('correct horse battery staple');
const SOURCE: BackupSource = { slot: 0, serial: '0123456789ABCDEF', label: 'unit', daemon_version: '0.1.0', objects: 1 };
const ITER = 1000; // the format's minimum: keeps the byte-by-byte loops fast

const kindOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (e instanceof BackupFileError) return e.kind;
    throw e;
  }
};

/** Recomputes the trailing SHA-256, as an attacker who alters the file would. */
function resum(file: Buffer): Buffer {
  const body = file.subarray(0, file.length - CHECKSUM_BYTES);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

function token(): TokenRecord {
  return {
    format: 1,
    slot: 0,
    initialized: true,
    label: 'unit',
    serial: '0123456789ABCDEF',
    so: { salt: 'c2FsdA==', iterations: 1000, verifier: 'dg==', wrappedTokenKey: 'aw==' },
    user: null,
    failedLogins: { so: 1, user: 2 },
    objects: [{ uid: 'ab12', clear: { '0': 'AwAAAAAAAAA=' }, private: false }],
  };
}

describe('backup file', () => {
  it('round-trips, with the header in the clear and bound to the ciphertext', async () => {
    const plain = Buffer.from('the token state');
    const file = await encryptBackup(plain, PASS, { source: SOURCE, iterations: ITER });
    expect(file.subarray(0, 8)).toEqual(BACKUP_MAGIC);
    const { header } = parseBackup(file);
    expect(header).toMatchObject({ format: 'craton-hsm-backup', version: 1, source: SOURCE, kdf: { name: 'PBKDF2-HMAC-SHA256', iterations: ITER }, cipher: { name: 'AES-256-GCM' } });
    expect(Buffer.from(header.kdf.salt, 'base64')).toHaveLength(32);
    expect(Buffer.from(header.cipher.iv, 'base64')).toHaveLength(12);
    expect(file.includes(plain)).toBe(false);
    const d = await decryptBackup(file, PASS);
    expect(d.plaintext).toEqual(plain);
    // two backups of the same content differ (salt, IV)
    const again = await encryptBackup(plain, PASS, { source: SOURCE, iterations: ITER });
    expect(again.equals(file)).toBe(false);
  });

  it('refuses a wrong passphrase as such', async () => {
    const file = await encryptBackup(Buffer.from('x'), PASS, { source: SOURCE, iterations: ITER });
    await expect(decryptBackup(file, Buffer.from('correct horse battery stapler'))).rejects.toThrow(/wrong passphrase/);
    expect(await kindOf(decryptBackup(file, Buffer.from('nope nope nope')))).toBe('wrong_passphrase');
  });

  it('refuses every single altered byte, and says the file is corrupted or not a backup (never "wrong passphrase")', async () => {
    const file = await encryptBackup(Buffer.from('a small token state'), PASS, { source: SOURCE, iterations: ITER });
    const kinds = new Set<string>();
    for (let i = 0; i < file.length; i++) {
      const bad = Buffer.from(file);
      bad[i]! ^= 0x01;
      const k = await kindOf(decryptBackup(bad, PASS));
      expect(k, `byte ${i}`).not.toBe('accepted');
      expect(k, `byte ${i}`).not.toBe('wrong_passphrase');
      kinds.add(k);
    }
    expect(kinds.has('corrupted')).toBe(true);
  });

  it('refuses every truncation with the "not a complete backup" message', async () => {
    const file = await encryptBackup(Buffer.from('a small token state'), PASS, { source: SOURCE, iterations: ITER });
    for (let n = 0; n < file.length; n++) {
      await expect(decryptBackup(file.subarray(0, n), PASS), `length ${n}`).rejects.toThrow('not a complete Craton HSM backup (truncated or not a backup file)');
    }
    // and bytes appended
    await expect(decryptBackup(Buffer.concat([file, Buffer.from([0])]), PASS)).rejects.toThrow(/not a complete Craton HSM backup/);
    await expect(decryptBackup(Buffer.from('{"format":"craton-hsm-backup"}'), PASS)).rejects.toThrow(/not a complete Craton HSM backup/);
  });

  it('an alteration with a recomputed checksum is still refused: GCM over the ciphertext, AAD over the header', async () => {
    const file = await encryptBackup(Buffer.from('a small token state'), PASS, { source: SOURCE, iterations: ITER });
    const hlen = file.readUInt32BE(8);
    const ctStart = 12 + hlen;
    for (let i = ctStart; i < file.length - CHECKSUM_BYTES; i++) {
      const bad = Buffer.from(file);
      bad[i]! ^= 0x80;
      expect(await kindOf(decryptBackup(resum(bad), PASS)), `byte ${i}`).toBe('not_authentic');
    }
    // the header's source (clear, bound as AAD): changed serial, same length
    const header = file.subarray(12, ctStart).toString('utf8').replace('0123456789ABCDEF', 'FEDCBA9876543210');
    const forged = resum(Buffer.concat([file.subarray(0, 12), Buffer.from(header), file.subarray(ctStart)]));
    expect(await kindOf(decryptBackup(forged, PASS))).toBe('not_authentic');
    // an altered salt cannot be told from a wrong passphrase: it is reported as one
    const h = JSON.parse(file.subarray(12, ctStart).toString('utf8'));
    const salt = Buffer.from(h.kdf.salt, 'base64');
    salt[0]! ^= 1;
    const saltForged = resum(Buffer.concat([file.subarray(0, 12), Buffer.from(file.subarray(12, ctStart).toString('utf8').replace(h.kdf.salt, salt.toString('base64'))), file.subarray(ctStart)]));
    expect(await kindOf(decryptBackup(saltForged, PASS))).toBe('wrong_passphrase');
  });

  it('refuses a header asking for an iteration count out of bounds (a crafted file cannot pin the CPU)', async () => {
    const file = await encryptBackup(Buffer.from('x'), PASS, { source: SOURCE, iterations: ITER });
    const hlen = file.readUInt32BE(8);
    const text = file.subarray(12, 12 + hlen).toString('utf8').replace(`"iterations":${ITER}`, '"iterations":999999999');
    const head = Buffer.alloc(12);
    file.copy(head, 0, 0, 8);
    head.writeUInt32BE(Buffer.byteLength(text), 8);
    const forged = resum(Buffer.concat([head, Buffer.from(text), file.subarray(12 + hlen)]));
    expect(await kindOf(decryptBackup(forged, PASS))).toBe('unsupported');
  });
});

describe('backup payload', () => {
  const payload = (): BackupPayload => ({ token: token(), gcm: { limit: 100, counters: [{ uid: 'ab12', reserved: 7, alerted: 0 }] }, auditKeyId: null });

  it('round-trips the token record, counters and the audit key (raw DER after the JSON)', () => {
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    const p = { ...payload(), auditKeyId: 'a'.repeat(64) };
    const bytes = encodePayload(p, der);
    const d = decodePayload(bytes, { maxObjects: 10 });
    expect(d.payload).toEqual(p);
    expect(d.auditKeyDer).toEqual(der);
    // the key is a view into the payload: zeroing the payload zeroes it
    bytes.fill(0);
    expect(d.auditKeyDer!.every((b) => b === 0)).toBe(true);
  });

  it('refuses what a restore could not use', () => {
    const enc = (p: BackupPayload) => encodePayload(p, null);
    const bad: Array<[string, (p: BackupPayload) => void]> = [
      ['uninitialised', (p) => void (p.token.initialized = false)],
      ['no SO PIN', (p) => void (p.token.so = null)],
      ['bad uid', (p) => void (p.token.objects[0]!.uid = '../x')],
      ['duplicate uid', (p) => void p.token.objects.push({ ...p.token.objects[0]! })],
      ['counter of no object', (p) => void (p.gcm.counters[0]!.uid = 'zz')],
      ['negative counter', (p) => void (p.gcm.counters[0]!.reserved = -1)],
      ['bad attribute', (p) => void (p.token.objects[0]!.clear = { zz: '!!' })],
    ];
    for (const [what, mutate] of bad) {
      const p = payload();
      mutate(p);
      expect(() => decodePayload(enc(p), { maxObjects: 10 }), what).toThrow(PayloadError);
    }
    expect(() => decodePayload(enc(payload()), { maxObjects: 0 })).toThrow(/max_objects_per_token/);
    expect(() => decodePayload(Buffer.from([0, 0, 0, 9, 1]), { maxObjects: 10 })).toThrow(PayloadError);
  });
});
