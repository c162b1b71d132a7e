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
import { constants, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync, fsyncSync, existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { seal, unseal } from '../store/seal.js';
import { syncDirSync as syncDir } from '../store/atomic-file.js';
import { readSecretFile, writeNewSecretFile } from '../store/secret-file.js';
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
/** Every checkpoint public key this data directory has used, <key_id>.pem (0644): the
 * keyring `audit verify` picks keys from by key_id (a restore installs a new key). */
export const CHECKPOINT_PUBS_DIR = 'audit-checkpoint-pubs';
/** A key being installed by a restore, sealed like the live one, until the log records the
 * change (docs/backup.md "Audit signing key"). */
export const CHECKPOINT_PENDING_FILE = 'audit-checkpoint-key.sealed.pending';
/** The log entry that hands checkpoint signing to a new key. */
export const KEY_CHANGE_OPERATION = 'CheckpointKeyChange';

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
  /** Signs a compliance evidence document's digest (admin/evidence-sign.ts) under its own
   * format string, so it can never be mistaken for a checkpoint. base64 DER. */
  signEvidence(digest: string, signedAt: string): string;
}

/** Evidence documents (docs/evidence.md): signed with the checkpoint key, domain-separated. */
export const EVIDENCE_FORMAT = 'craton-hsm-evidence-v1';

export function evidenceStatementBytes(digest: string, signedAt: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error('evidence digest: expected 64 lowercase hex digits');
  return Buffer.from(canonicalJson({ format: EVIDENCE_FORMAT, digest, signed_at: signedAt }));
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
  const signer = signerOf(priv);
  if (!existsSync(pubFile) || readFileSync(pubFile, 'utf8') !== signer.publicKeyPem) replacePublicFile(pubFile, signer.publicKeyPem);
  archivePublicKey(dataDir, signer.publicKeyPem);
  return signer;
}

function signerOf(priv: KeyObject): CheckpointSigner {
  if (priv.asymmetricKeyType !== 'ec' || priv.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the checkpoint key is not an ECDSA P-256 key');
  const pub = createPublicKey(priv);
  const publicKeyPem = pub.export({ type: 'spki', format: 'pem' }) as string;
  const keyId = keyIdOf(pub);
  return {
    keyId,
    publicKeyPem,
    sign(st) {
      const signature = sign('sha256', statementBytes(st), { key: priv, dsaEncoding: 'der' }).toString('base64');
      return { ...st, signature, key_id: keyId };
    },
    signEvidence(digest, signedAt) {
      return sign('sha256', evidenceStatementBytes(digest, signedAt), { key: priv, dsaEncoding: 'der' }).toString('base64');
    },
  };
}

function replacePublicFile(file: string, pem: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  if (existsSync(tmp)) unlinkSync(tmp);
  writeNewSecretFile(tmp, pem, 0o644);
  renameSync(tmp, file);
  syncDir(path.dirname(file));
}

/** Adds a public key to the keyring (<data_dir>/audit-checkpoint-pubs/<key_id>.pem) once. */
export function archivePublicKey(dataDir: string, publicKeyPem: string): string {
  const keyId = keyIdOf(createPublicKey(publicKeyPem));
  const dir = path.join(dataDir, CHECKPOINT_PUBS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, `${keyId}.pem`);
  if (!existsSync(file)) replacePublicFile(file, publicKeyPem);
  return keyId;
}

/** Every checkpoint public key known in `dataDir`, by key_id: the keyring and the current
 * public key file. Files that are not public keys named by their key_id are skipped. */
export function readCheckpointKeyring(dataDir: string): Map<string, KeyObject> {
  const ring = new Map<string, KeyObject>();
  const add = (pem: string, expectId?: string) => {
    try {
      const k = createPublicKey(pem);
      const id = keyIdOf(k);
      if (expectId === undefined || id === expectId) ring.set(id, k);
    } catch {
      // not a public key: ignored (verify names checkpoints whose key is missing)
    }
  };
  const dir = path.join(dataDir, CHECKPOINT_PUBS_DIR);
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const m = /^([0-9a-f]{64})\.pem$/.exec(f);
      if (m) add(readFileSync(path.join(dir, f), 'utf8'), m[1]);
    }
  }
  const current = readCheckpointPublicKey(dataDir);
  if (current) add(current);
  return ring;
}

/** The checkpoint private key for a backup: PKCS#8 DER (caller zeroes it) and its key_id;
 * null when this data directory has no sealed key (audit disabled since it was created). */
export function exportCheckpointKey(dataDir: string): { keyId: string; der: Buffer } | null {
  const sealedFile = path.join(dataDir, CHECKPOINT_SEALED_FILE);
  if (!existsSync(sealedFile)) return null;
  const kek = loadOrCreateKek(path.join(dataDir, CHECKPOINT_KEK_FILE), true);
  try {
    const rec = JSON.parse(readSecretFile(sealedFile).toString('utf8')) as SealedKeyRecord;
    const der = unseal(kek, sealedAad(rec.key_id), rec.sealed);
    if (!der) throw new Error(`${sealedFile} does not authenticate under the daemon key`);
    return { keyId: rec.key_id, der };
  } finally {
    kek.fill(0);
  }
}

/** A signer for a PKCS#8 DER P-256 key (restore); throws when it is not one. */
export function signerFromPkcs8(der: Buffer): CheckpointSigner {
  return signerOf(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
}

/** Seals `der` under this data directory's daemon key into the pending file (0600,
 * replacing an older pending file). Commit or discard it once the log says which. */
export function stageCheckpointKey(dataDir: string, der: Buffer): CheckpointSigner {
  const signer = signerFromPkcs8(der);
  const kek = loadOrCreateKek(path.join(dataDir, CHECKPOINT_KEK_FILE), false);
  let rec: SealedKeyRecord;
  try {
    rec = { format: SEALED_FORMAT, key_id: signer.keyId, public_key: signer.publicKeyPem, sealed: seal(kek, sealedAad(signer.keyId), der) };
  } finally {
    kek.fill(0);
  }
  const file = path.join(dataDir, CHECKPOINT_PENDING_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  for (const f of [tmp, file]) if (existsSync(f)) unlinkSync(f);
  writeNewSecretFile(tmp, JSON.stringify(rec) + '\n');
  renameSync(tmp, file);
  syncDir(dataDir);
  return signer;
}

/** The key_id of the pending key, or null when there is none. */
export function pendingCheckpointKeyId(dataDir: string): string | null {
  const file = path.join(dataDir, CHECKPOINT_PENDING_FILE);
  if (!existsSync(file)) return null;
  return (JSON.parse(readSecretFile(file).toString('utf8')) as SealedKeyRecord).key_id;
}

/** The pending key becomes the live one: keyring, sealed file (rename), public key file. */
export function commitStagedCheckpointKey(dataDir: string): void {
  const file = path.join(dataDir, CHECKPOINT_PENDING_FILE);
  const rec = JSON.parse(readSecretFile(file).toString('utf8')) as SealedKeyRecord;
  const old = readCheckpointPublicKey(dataDir);
  if (old) archivePublicKey(dataDir, old);
  archivePublicKey(dataDir, rec.public_key);
  renameSync(file, path.join(dataDir, CHECKPOINT_SEALED_FILE));
  syncDir(dataDir);
  replacePublicFile(path.join(dataDir, CHECKPOINT_PUB_FILE), rec.public_key);
}

export function discardStagedCheckpointKey(dataDir: string): void {
  const file = path.join(dataDir, CHECKPOINT_PENDING_FILE);
  if (existsSync(file)) {
    unlinkSync(file);
    syncDir(dataDir);
  }
}
