// AES-256-GCM sealing of secrets at rest under a 256-bit key (token, device or daemon key).
// The caller's AAD binds a sealed blob to what it belongs to (an object's slot, uid and key
// domain, a key id), so blobs cannot be swapped between objects, tokens or domains.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomBytes } from '../drbg/index.js';

const IV_LEN = 12;
const TAG_LEN = 16;

export function seal(key: Buffer, aad: string, plaintext: Buffer): string {
  const iv = randomBytes(IV_LEN);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
}

/** Returns null when the blob does not authenticate (wrong key, tampered, or swapped). */
export function unseal(key: Buffer, aad: string, blob: string): Buffer | null {
  const raw = Buffer.from(blob, 'base64');
  if (raw.length < IV_LEN + TAG_LEN) return null;
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_LEN));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(raw.subarray(raw.length - TAG_LEN));
  try {
    return Buffer.concat([d.update(raw.subarray(IV_LEN, raw.length - TAG_LEN)), d.final()]);
  } catch {
    return null;
  }
}
