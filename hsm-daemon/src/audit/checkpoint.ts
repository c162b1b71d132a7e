// Signed checkpoints: an ECDSA P-256 statement over (head_seq, head_chain, timestamp),
// written into the log as a Checkpoint entry and beside it as <log>.head.json.
//
// Key custody (docs/audit.md "Key files"): the private key never exists in plaintext on
// disk. It is kept in <data_dir>/audit-checkpoint-key.sealed, AES-256-GCM-sealed
// (store/seal.ts, AAD bound to the key id) under a 256-bit daemon key in
// <data_dir>/audit-checkpoint.kek (0600). The daemon unseals it at start into a KeyObject
// and never writes, returns or logs it; no PKCS#11 or admin command can reach it. Only the
// public half leaves: <data_dir>/audit-checkpoint-pub.pem (0644) and the sealed record's
// public_key field, which `craton-hsm-admin audit pubkey` prints. A plaintext PEM from
// older versions (audit-checkpoint-key.pem) is sealed and then overwritten and removed.
import { createPublicKey, generateKeyPairSync, sign, verify, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { constants, closeSync, fstatSync, lstatSync, openSync, readFileSync, renameSync, writeSync, fsyncSync, existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { seal, unseal } from '../store/seal.js';
import { canonicalJson } from './canonical.js';
import { sha256hex } from './entry.js';

/** Sealed private key record (JSON, 0600). */
export const CHECKPOINT_SEALED_FILE = 'audit-checkpoint-key.sealed';
/** The daemon key the private key is sealed under (hex, 0600). */
export const CHECKPOINT_KEK_FILE = 'audit-checkpoint.kek';
/** Plaintext PKCS#8 PEM written by older versions; migrated into the sealed file. */
export const CHECKPOINT_KEY_FILE = 'audit-checkpoint-key.pem';
export const SEALED_FORMAT = 'craton-hsm-audit-checkpoint-key-v1';
export const CHECKPOINT_PUB_FILE = 'audit-checkpoint-pub.pem';
export const CHECKPOINT_FORMAT = 'craton-hsm-audit-checkpoint-v1';

export interface CheckpointStatement {
  head_seq: number;
  head_chain: string;
  timestamp: number;
}

export interface SignedCheckpoint extends CheckpointStatement {
  signature: string; // base64 DER ECDSA-SHA256
  key_id: string; // SHA-256 of the SPKI DER, hex
}

export interface CheckpointSigner {
  keyId: string;
  publicKeyPem: string;
  sign(st: CheckpointStatement): SignedCheckpoint;
}

export function statementBytes(st: CheckpointStatement): Buffer {
  return Buffer.from(canonicalJson({ format: CHECKPOINT_FORMAT, head_seq: st.head_seq, head_chain: st.head_chain, timestamp: st.timestamp }));
}

export function keyIdOf(pub: KeyObject): string {
  return sha256hex(pub.export({ type: 'spki', format: 'der' }));
}

export function verifyCheckpoint(pub: KeyObject, cp: SignedCheckpoint): boolean {
  try {
    return verify('sha256', statementBytes(cp), { key: pub, dsaEncoding: 'der' }, Buffer.from(cp.signature, 'base64'));
  } catch {
    return false;
  }
}

/** Creates a 0600 file that must not exist yet (O_EXCL, O_NOFOLLOW) and fsyncs it. */
export function writeNewSecretFile(file: string, content: string | Buffer, mode = 0o600): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a secret file, refusing symlinks, non-regular files and group/other access. */
export function readSecretFile(file: string): Buffer {
  const st = lstatSync(file);
  if (st.isSymbolicLink()) throw new Error(`${file} is a symlink; refused`);
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new Error(`${file} is not a regular file`);
    if ((fst.mode & 0o077) !== 0) throw new Error(`${file} is accessible by group/other (mode ${(fst.mode & 0o777).toString(8)}); chmod 600 it`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface SealedKeyRecord {
  format: string;
  key_id: string;
  /** SPKI PEM: the public half, readable without the daemon key. */
  public_key: string;
  /** base64(iv || AES-256-GCM(PKCS#8 DER) || tag), AAD = sealedAad(key_id). */
  sealed: string;
}

const sealedAad = (keyId: string) => `${SEALED_FORMAT}:${keyId}`;

/** The public key of the checkpoint signer from what is on disk (no secret needed). */
export function readCheckpointPublicKey(dataDir: string): string | null {
  const pub = path.join(dataDir, CHECKPOINT_PUB_FILE);
  if (existsSync(pub)) return readFileSync(pub, 'utf8');
  const sealedFile = path.join(dataDir, CHECKPOINT_SEALED_FILE);
  if (existsSync(sealedFile)) return (JSON.parse(readFileSync(sealedFile, 'utf8')) as SealedKeyRecord).public_key;
  return null;
}

function loadOrCreateKek(file: string, mustExist: boolean): Buffer {
  if (existsSync(file)) {
    const k = Buffer.from(readSecretFile(file).toString('utf8').trim(), 'hex');
    if (k.length !== 32) throw new Error(`${file} is not a 256-bit key`);
    return k;
  }
  if (mustExist) throw new Error(`${file} is missing: the sealed checkpoint key cannot be opened`);
  const k = randomBytes(32);
  writeNewSecretFile(file, k.toString('hex') + '\n');
  return k;
}

/** Overwrites a plaintext key file with zeros, syncs, and removes it. */
function destroyFile(file: string): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    writeSync(fd, Buffer.alloc(fstatSync(fd).size));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(file);
}

export function loadOrCreateSigner(dataDir: string, log: (msg: string) => void = () => undefined): CheckpointSigner {
  const sealedFile = path.join(dataDir, CHECKPOINT_SEALED_FILE);
  const kekFile = path.join(dataDir, CHECKPOINT_KEK_FILE);
  const legacyFile = path.join(dataDir, CHECKPOINT_KEY_FILE);
  const pubFile = path.join(dataDir, CHECKPOINT_PUB_FILE);
  let priv: KeyObject;
  const haveSealed = existsSync(sealedFile);
  const kek = loadOrCreateKek(kekFile, haveSealed);
  try {
    if (haveSealed) {
      const rec = JSON.parse(readSecretFile(sealedFile).toString('utf8')) as SealedKeyRecord;
      if (rec.format !== SEALED_FORMAT) throw new Error(`${sealedFile}: unknown format ${String(rec.format)}`);
      const der = unseal(kek, sealedAad(rec.key_id), rec.sealed);
      if (!der) throw new Error(`${sealedFile} does not authenticate under ${kekFile} (wrong key or tampered)`);
      try {
        priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      } finally {
        der.fill(0);
      }
      if (keyIdOf(createPublicKey(priv)) !== rec.key_id) throw new Error(`${sealedFile}: key id does not match the key`);
    } else {
      const migrate = existsSync(legacyFile);
      priv = migrate ? createPrivateKey(readSecretFile(legacyFile)) : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const pub = createPublicKey(priv);
      const keyId = keyIdOf(pub);
      const der = priv.export({ type: 'pkcs8', format: 'der' });
      let rec: SealedKeyRecord;
      try {
        rec = { format: SEALED_FORMAT, key_id: keyId, public_key: pub.export({ type: 'spki', format: 'pem' }) as string, sealed: seal(kek, sealedAad(keyId), der) };
      } finally {
        der.fill(0);
      }
      const tmp = `${sealedFile}.tmp-${process.pid}`;
      if (existsSync(tmp)) unlinkSync(tmp);
      writeNewSecretFile(tmp, JSON.stringify(rec) + '\n');
      renameSync(tmp, sealedFile);
      if (migrate) {
        destroyFile(legacyFile);
        log(`audit checkpoint key moved from ${legacyFile} (plaintext, now overwritten and removed) into ${sealedFile}`);
      }
    }
  } finally {
    kek.fill(0);
  }
  if (priv.asymmetricKeyType !== 'ec' || priv.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the checkpoint key is not an ECDSA P-256 key');
  const pub = createPublicKey(priv);
  const publicKeyPem = pub.export({ type: 'spki', format: 'pem' }) as string;
  if (!existsSync(pubFile) || readFileSync(pubFile, 'utf8') !== publicKeyPem) {
    const tmp = `${pubFile}.tmp-${process.pid}`;
    if (existsSync(tmp)) unlinkSync(tmp);
    writeNewSecretFile(tmp, publicKeyPem, 0o644);
    renameSync(tmp, pubFile);
  }
  const keyId = keyIdOf(pub);
  return {
    keyId,
    publicKeyPem,
    sign(st) {
      const signature = sign('sha256', statementBytes(st), { key: priv, dsaEncoding: 'der' }).toString('base64');
      return { ...st, signature, key_id: keyId };
    },
  };
}
