// PIN verifiers and PIN-derived wrapping keys: PBKDF2-HMAC-SHA256 over a random salt,
// run on libuv's thread pool so a login never stalls other clients. One derivation gives
// both the verifier (compared in constant time) and the key that wraps the token key.
import { pbkdf2, timingSafeEqual } from 'node:crypto';
import { randomBytes } from '../drbg/index.js';
import { seal, unseal } from '../store/seal.js';
import type { PinRecord } from '../store/token-file.js';

interface Derived {
  verifier: Buffer;
  kek: Buffer;
}

function derive(pin: Buffer, salt: Buffer, iterations: number): Promise<Derived> {
  return new Promise((resolve, reject) => {
    pbkdf2(pin, salt, iterations, 64, 'sha256', (err, out) => {
      if (err) return reject(err);
      resolve({ verifier: out.subarray(0, 32), kek: out.subarray(32) });
    });
  });
}

const WRAP_AAD = 'craton-hsm/token-key/v1';

export async function makePinRecord(pin: Buffer, tokenKey: Buffer, iterations: number): Promise<PinRecord> {
  const salt = randomBytes(16);
  const d = await derive(pin, salt, iterations);
  try {
    return {
      salt: salt.toString('base64'),
      iterations,
      verifier: d.verifier.toString('base64'),
      wrappedTokenKey: seal(d.kek, WRAP_AAD, tokenKey),
    };
  } finally {
    d.kek.fill(0);
  }
}

/** The token key when the PIN is right, null when it is wrong. */
export async function openWithPin(pin: Buffer, rec: PinRecord): Promise<Buffer | null> {
  const d = await derive(pin, Buffer.from(rec.salt, 'base64'), rec.iterations);
  try {
    const expected = Buffer.from(rec.verifier, 'base64');
    if (expected.length !== d.verifier.length || !timingSafeEqual(expected, d.verifier)) return null;
    return unseal(d.kek, WRAP_AAD, rec.wrappedTokenKey);
  } finally {
    d.kek.fill(0);
    d.verifier.fill(0);
  }
}
