// node:crypto plumbing shared by the asymmetric families: promise forms of the
// thread-pool APIs, and a uniform way to keep parsed keys in KeyRef.cache.
import { generateKeyPair, sign, verify, type KeyObject, type SignKeyObjectInput, type VerifyKeyObjectInput } from 'node:crypto';
import { CKA, CKO, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { readUlong } from './attrs.js';
import type { KeyRef } from './types.js';

/** crypto.sign's callback form runs on libuv's thread pool, off the event loop. */
export function signAsync(alg: string | null, data: Buffer, key: SignKeyObjectInput | KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(alg, data, key, (err, sig) => (err ? reject(failed()) : resolve(sig))));
}

export function verifyAsync(alg: string | null, data: Buffer, key: VerifyKeyObjectInput | KeyObject, sig: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => verify(alg, data, key, sig, (err, ok) => (err ? reject(failed()) : resolve(ok))));
}

export function generateKeyPairAsync(type: 'rsa' | 'ec' | 'ed25519' | 'x25519', options: object): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) =>
    // The overloads of generateKeyPair are keyed on literal types; the options were
    // built per type by the caller.
    (generateKeyPair as (t: string, o: object, cb: (e: Error | null, pub: KeyObject, priv: KeyObject) => void) => void)(
      type,
      options,
      (err, publicKey, privateKey) => (err ? reject(failed()) : resolve({ publicKey, privateKey })),
    ),
  );
}

/** OpenSSL's messages can quote key material; none of it goes back to the caller. */
export function failed(): CkError {
  return new CkError(CKR.FUNCTION_FAILED, 'cryptographic primitive failed');
}

export type KeyClass = 'private' | 'public';

/** The key's object class: CKA_CLASS when present, else inferred from the parts. */
export function keyClassOf(key: KeyRef, privatePart: number): KeyClass {
  const cls = key.attrs.get(CKA.CLASS);
  if (cls) {
    const c = readUlong(cls);
    if (c === CKO.PRIVATE_KEY) return 'private';
    if (c === CKO.PUBLIC_KEY) return 'public';
    throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  }
  return key.attrs.has(privatePart) ? 'private' : 'public';
}

/** Parses once per key object; the object layer clears cache when attributes change. */
export function cached<T extends { tag: string }>(key: KeyRef, tag: string, parse: () => T): T {
  const c = key.cache as T | null | undefined;
  if (c && typeof c === 'object' && c.tag === tag) return c;
  const v = parse();
  key.cache = v;
  return v;
}

export const b64u = (b: Buffer): string => b.toString('base64url');
export const fromB64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');

const PAIRWISE_MESSAGE = Buffer.from('Craton HSM pairwise consistency test');

/** FIPS 140-3 pairwise consistency test: a fresh key pair must sign and verify. */
export async function pairwiseTest(alg: string | null, priv: SignKeyObjectInput, pub: VerifyKeyObjectInput): Promise<void> {
  try {
    const sig = await signAsync(alg, PAIRWISE_MESSAGE, priv);
    if (await verifyAsync(alg, PAIRWISE_MESSAGE, pub, sig)) return;
  } catch {
    // any failure is a failed self-test
  }
  throw new CkError(CKR.GENERAL_ERROR, 'pairwise consistency test failed');
}
