// The encrypted token backup file (docs/backup.md, byte by byte): pure encode / decode /
// encrypt / decrypt, no daemon state, so every refusal can be unit-tested.
//
//   magic "CRHSMBAK" (8) | header length (u32 BE) | header JSON (UTF-8)
//   | ciphertext (header.ciphertext_bytes) | GCM tag (16) | SHA-256 of everything before (32)
//
// The header travels in the clear and is bound as AAD. PBKDF2-HMAC-SHA256(passphrase, salt)
// gives a master secret; HKDF-SHA256 splits it into the AES-256-GCM key and a passphrase
// check value kept in the header, so a wrong passphrase is told apart from an altered file.
// The trailing SHA-256 is not a security layer (anyone can recompute it): it tells
// accidental corruption apart from a wrong passphrase when the salt bytes are hit.
import { createCipheriv, createDecipheriv, createHash, hkdf, pbkdf2, timingSafeEqual } from 'node:crypto';
import { randomBytes } from '../drbg/index.js';

export const BACKUP_MAGIC = Buffer.from('CRHSMBAK', 'ascii');
export const BACKUP_FORMAT = 'craton-hsm-backup';
export const BACKUP_VERSION = 1;
export const KDF_NAME = 'PBKDF2-HMAC-SHA256';
export const CIPHER_NAME = 'AES-256-GCM';
/** OWASP's 2023 figure for PBKDF2-HMAC-SHA256; [backup] pbkdf2_iterations. */
export const DEFAULT_BACKUP_ITERATIONS = 600_000;
/** A file may not ask for more (a crafted header must not pin a CPU for minutes). */
export const MAX_BACKUP_ITERATIONS = 10_000_000;
export const MIN_BACKUP_ITERATIONS = 1_000;
export const SALT_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const CHECKSUM_BYTES = 32;
const PREFIX_BYTES = BACKUP_MAGIC.length + 4;
/** A header is a few hundred bytes; anything near this is not ours. */
const MAX_HEADER_BYTES = 64 * 1024;
const HKDF_ENC = 'craton-hsm/backup/v1/encryption-key';
const HKDF_CHECK = 'craton-hsm/backup/v1/passphrase-check';

export interface BackupSource {
  slot: number;
  serial: string;
  label: string;
  daemon_version: string;
  /** Token objects in the payload (for `restore` messages before decrypting). */
  objects: number;
}

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  created_at: string;
  source: BackupSource;
  kdf: { name: typeof KDF_NAME; salt: string; iterations: number; split: 'HKDF-SHA256' };
  cipher: { name: typeof CIPHER_NAME; iv: string; tag_bytes: typeof TAG_BYTES };
  /** HKDF(master, "…passphrase-check"), base64: compared in constant time before decrypting. */
  passphrase_check: string;
  ciphertext_bytes: number;
}

export type BackupErrorKind = 'not_a_backup' | 'corrupted' | 'wrong_passphrase' | 'not_authentic' | 'unsupported';

/** Every refusal of a backup file; `kind` lets callers map it to an answer. */
export class BackupFileError extends Error {
  constructor(
    readonly kind: BackupErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'BackupFileError';
  }
}

const NOT_A_BACKUP = 'not a complete Craton HSM backup (truncated or not a backup file)';

export function isBackupFileError(e: unknown): e is BackupFileError {
  return e instanceof BackupFileError;
}

function pbkdf2Async(pass: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(pass, salt, iterations, 32, 'sha256', (err, out) => (err ? reject(err) : resolve(out))));
}

function hkdfAsync(master: Buffer, info: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    hkdf('sha256', master, Buffer.alloc(0), info, 32, (err, out) => (err ? reject(err) : resolve(Buffer.from(out)))),
  );
}

/** The encryption key and the check value for one passphrase and salt; caller zeroes both. */
async function deriveKeys(passphrase: Buffer, salt: Buffer, iterations: number): Promise<{ key: Buffer; check: Buffer }> {
  const master = await pbkdf2Async(passphrase, salt, iterations);
  try {
    return { key: await hkdfAsync(master, HKDF_ENC), check: await hkdfAsync(master, HKDF_CHECK) };
  } finally {
    master.fill(0);
  }
}

export interface EncryptOptions {
  source: BackupSource;
  iterations?: number;
  /** Fixed time for tests; default now. */
  createdAt?: Date;
}

/** Encrypts `plaintext` under `passphrase` into the file format. Does not zero its inputs. */
export async function encryptBackup(plaintext: Buffer, passphrase: Buffer, opts: EncryptOptions): Promise<Buffer> {
  const iterations = opts.iterations ?? DEFAULT_BACKUP_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < MIN_BACKUP_ITERATIONS || iterations > MAX_BACKUP_ITERATIONS) {
    throw new RangeError(`iterations: from ${MIN_BACKUP_ITERATIONS} to ${MAX_BACKUP_ITERATIONS}`);
  }
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const { key, check } = await deriveKeys(passphrase, salt, iterations);
  try {
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      created_at: (opts.createdAt ?? new Date()).toISOString(),
      source: opts.source,
      kdf: { name: KDF_NAME, salt: salt.toString('base64'), iterations, split: 'HKDF-SHA256' },
      cipher: { name: CIPHER_NAME, iv: iv.toString('base64'), tag_bytes: TAG_BYTES },
      passphrase_check: check.toString('base64'),
      ciphertext_bytes: plaintext.length, // GCM: ciphertext length = plaintext length
    };
    const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(PREFIX_BYTES);
    BACKUP_MAGIC.copy(prefix, 0);
    prefix.writeUInt32BE(headerBytes.length, BACKUP_MAGIC.length);
    const aad = Buffer.concat([prefix, headerBytes]);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const body = Buffer.concat([aad, ct, c.getAuthTag()]);
    return Buffer.concat([body, createHash('sha256').update(body).digest()]);
  } finally {
    key.fill(0);
    check.fill(0);
  }
}

interface Parsed {
  header: BackupHeader;
  aad: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

function fail(kind: BackupErrorKind, message: string): never {
  throw new BackupFileError(kind, message);
}

const isB64 = (v: unknown, bytes: number): v is string => typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) && Buffer.from(v, 'base64').length === bytes;

/** Structure and checksum only (no passphrase): what `restore` can say before decrypting. */
export function parseBackup(file: Buffer): Parsed {
  if (file.length < PREFIX_BYTES + TAG_BYTES + CHECKSUM_BYTES || !file.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) fail('not_a_backup', NOT_A_BACKUP);
  const hlen = file.readUInt32BE(BACKUP_MAGIC.length);
  if (hlen === 0 || hlen > MAX_HEADER_BYTES || PREFIX_BYTES + hlen + TAG_BYTES + CHECKSUM_BYTES > file.length) fail('not_a_backup', NOT_A_BACKUP);
  let header: BackupHeader;
  try {
    header = JSON.parse(file.subarray(PREFIX_BYTES, PREFIX_BYTES + hlen).toString('utf8')) as BackupHeader;
  } catch {
    return checksumOrFail(file, NOT_A_BACKUP, 'not_a_backup');
  }
  const n = header?.ciphertext_bytes;
  if (typeof header !== 'object' || header === null || !Number.isSafeInteger(n) || n < 0) return checksumOrFail(file, NOT_A_BACKUP, 'not_a_backup');
  const total = PREFIX_BYTES + hlen + n + TAG_BYTES + CHECKSUM_BYTES;
  if (total !== file.length) {
    // A length field hit by corruption looks like truncation; the checksum tells them apart
    // only when the length is intact, so report the common case.
    fail('not_a_backup', NOT_A_BACKUP);
  }
  const bodyEnd = file.length - CHECKSUM_BYTES;
  const sum = createHash('sha256').update(file.subarray(0, bodyEnd)).digest();
  if (!timingSafeEqual(sum, file.subarray(bodyEnd))) fail('corrupted', 'the backup file is corrupted or was altered (its SHA-256 checksum does not match)');
  if (header.format !== BACKUP_FORMAT) fail('not_a_backup', NOT_A_BACKUP);
  if (header.version !== BACKUP_VERSION) fail('unsupported', `backup format version ${String(header.version)} is not supported (this daemon reads version ${BACKUP_VERSION})`);
  const k = header.kdf;
  const c = header.cipher;
  if (
    !k || k.name !== KDF_NAME || k.split !== 'HKDF-SHA256' || !isB64(k.salt, SALT_BYTES) ||
    !Number.isSafeInteger(k.iterations) || k.iterations < MIN_BACKUP_ITERATIONS || k.iterations > MAX_BACKUP_ITERATIONS ||
    !c || c.name !== CIPHER_NAME || c.tag_bytes !== TAG_BYTES || !isB64(c.iv, IV_BYTES) || !isB64(header.passphrase_check, 32) ||
    typeof header.created_at !== 'string' || typeof header.source !== 'object' || header.source === null
  ) {
    fail('unsupported', 'the backup header names a key derivation or cipher this daemon does not use (altered, or from another program)');
  }
  const ctStart = PREFIX_BYTES + hlen;
  return {
    header,
    aad: file.subarray(0, ctStart),
    ciphertext: file.subarray(ctStart, ctStart + n),
    tag: file.subarray(ctStart + n, bodyEnd),
  };
}

function checksumOrFail(file: Buffer, message: string, kind: BackupErrorKind): never {
  const bodyEnd = file.length - CHECKSUM_BYTES;
  const sum = createHash('sha256').update(file.subarray(0, bodyEnd)).digest();
  if (!sum.equals(file.subarray(bodyEnd))) fail('corrupted', 'the backup file is corrupted or was altered (its SHA-256 checksum does not match)');
  fail(kind, message);
}

/**
 * Checks and decrypts a backup. Throws BackupFileError: not_a_backup (truncated, not ours),
 * corrupted (checksum), unsupported (version, KDF or cipher), wrong_passphrase (check value),
 * not_authentic (GCM tag: altered after the checksum was recomputed). The caller zeroes
 * the returned plaintext.
 */
export async function decryptBackup(file: Buffer, passphrase: Buffer): Promise<{ header: BackupHeader; plaintext: Buffer }> {
  const p = parseBackup(file);
  const { key, check } = await deriveKeys(passphrase, Buffer.from(p.header.kdf.salt, 'base64'), p.header.kdf.iterations);
  try {
    if (!timingSafeEqual(check, Buffer.from(p.header.passphrase_check, 'base64'))) fail('wrong_passphrase', 'wrong passphrase for this backup');
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(p.header.cipher.iv, 'base64'));
    d.setAAD(p.aad);
    d.setAuthTag(p.tag);
    const first = d.update(p.ciphertext);
    try {
      const plaintext = Buffer.concat([first, d.final()]);
      return { header: p.header, plaintext };
    } catch {
      fail('not_authentic', 'the backup does not authenticate (AES-GCM tag mismatch): it was altered; nothing was restored');
    } finally {
      first.fill(0);
    }
  } finally {
    key.fill(0);
    check.fill(0);
  }
}

/** The SHA-256 of a backup file, hex (audited and printed by the CLI). */
export function backupDigest(file: Buffer): string {
  return createHash('sha256').update(file).digest('hex');
}
