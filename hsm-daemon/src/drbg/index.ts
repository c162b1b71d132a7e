// TEMPORARY SEAM while the SP 800-90A DRBG is being built (issue 4): every random
// byte the daemon uses comes through randomBytes() so the DRBG replaces this body.
import { randomBytes as osRandom } from 'node:crypto';

export function randomBytes(n: number): Buffer {
  return osRandom(n);
}
