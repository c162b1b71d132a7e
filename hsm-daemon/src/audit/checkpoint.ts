// Signed checkpoints: an ECDSA P-256 statement over (head_seq, head_chain, timestamp),
// written into the log as a Checkpoint entry and beside it as <log>.head.json.
//
// Key custody (gap, documented in docs/audit.md): the private key lives in
// <data_dir>/audit-checkpoint-key.pem (PKCS#8, 0600, refused if a symlink or group/other
// accessible), not yet as a non-extractable object in the HSM's own token store.
import { createPublicKey, generateKeyPairSync, sign, verify, createPrivateKey, type KeyObject } from 'node:crypto';
import { constants, closeSync, fstatSync, lstatSync, openSync, readFileSync, writeSync, fsyncSync, existsSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from './canonical.js';
import { sha256hex } from './entry.js';

export const CHECKPOINT_KEY_FILE = 'audit-checkpoint-key.pem';
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

export function loadOrCreateSigner(dataDir: string): CheckpointSigner {
  const keyFile = path.join(dataDir, CHECKPOINT_KEY_FILE);
  const pubFile = path.join(dataDir, CHECKPOINT_PUB_FILE);
  let priv: KeyObject;
  if (!existsSync(keyFile)) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    priv = pair.privateKey;
    writeNewSecretFile(keyFile, priv.export({ type: 'pkcs8', format: 'pem' }) as string);
  } else {
    priv = createPrivateKey(readSecretFile(keyFile));
    if (priv.asymmetricKeyType !== 'ec' || priv.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new Error(`${keyFile} is not an ECDSA P-256 key`);
  }
  const pub = createPublicKey(priv);
  const publicKeyPem = pub.export({ type: 'spki', format: 'pem' }) as string;
  if (!existsSync(pubFile)) writeNewSecretFile(pubFile, publicKeyPem, 0o644);
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
