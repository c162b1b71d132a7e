import { createHash, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CURVES, bytesToInt, ecVerifyKey, ecdsaSignDigest, ecdsaVerifyDigest, ecdsaVerifyDigestSync, intToBytes, modInvVar } from '../../../hsm-daemon/src/mechanisms/ecmath.js';
import { ecdsaVerifyOffloaded } from '../../../hsm-daemon/src/mechanisms/ec-offload.js';

const HASH: Record<string, string> = { 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512' };

function keyFor(jwkCrv: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: jwkCrv });
  const jwk = privateKey.export({ format: 'jwk' });
  const b = (s: string | undefined) => bytesToInt(Buffer.from(s!, 'base64url'));
  return { privateKey, publicKey, d: b(jwk.d), x: b(jwk.x), y: b(jwk.y) };
}

describe('ecmath raw ECDSA (tables, wNAF, comb)', () => {
  for (const c of CURVES) {
    it(`${c.jwk}: agrees with node both ways for random keys and digests, incl. cached per-key tables`, async () => {
      for (let kk = 0; kk < 3; kk++) {
        const k = keyFor(c.jwk);
        const vk = ecVerifyKey(c, k.x, k.y);
        for (let i = 0; i < 6; i++) {
          // uses 1..3 run wNAF, later ones the per-key comb
          const msg = randomBytes(40);
          const hash = i % 2 ? 'sha256' : HASH[c.jwk]!;
          const dg = createHash(hash).update(msg).digest();
          const nodeSig = sign(hash, msg, { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
          expect(ecdsaVerifyDigestSync(vk, dg, nodeSig)).toBe(true);
          expect(await ecdsaVerifyDigest(c, k.x, k.y, dg, nodeSig)).toBe(true);
          const ours = ecdsaSignDigest(c, k.d, dg);
          expect(verify(hash, msg, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, ours)).toBe(true);
          expect(ecdsaVerifyDigestSync(vk, dg, ours)).toBe(true);
          expect(await ecdsaVerifyOffloaded(vk, dg, ours)).toBe(true);
          // tampered signature, digest, and wrong key are all rejected
          const bad = Buffer.from(ours);
          bad[(i * 7) % bad.length]! ^= 1 << i % 8;
          expect(ecdsaVerifyDigestSync(vk, dg, bad)).toBe(false);
          const dg2 = Buffer.from(dg);
          dg2[0]! ^= 0x80;
          expect(ecdsaVerifyDigestSync(vk, dg2, ours)).toBe(false);
        }
        expect(vk.comb).toBeDefined();
        const other = keyFor(c.jwk);
        const dg = createHash('sha256').update('x').digest();
        expect(ecdsaVerifyDigestSync(ecVerifyKey(c, other.x, other.y), dg, ecdsaSignDigest(c, k.d, dg))).toBe(false);
      }
    });

    it(`${c.jwk}: rejects r or s out of range, bad length, off-curve key`, async () => {
      const k = keyFor(c.jwk);
      const vk = ecVerifyKey(c, k.x, k.y);
      const dg = createHash('sha256').update('range').digest();
      const sig = ecdsaSignDigest(c, k.d, dg);
      const r = bytesToInt(sig.subarray(0, c.size));
      const s = bytesToInt(sig.subarray(c.size));
      const mk = (rr: bigint, ss: bigint) => Buffer.concat([intToBytes(rr, c.size), intToBytes(ss, c.size)]);
      expect(ecdsaVerifyDigestSync(vk, dg, mk(r, s))).toBe(true);
      for (const [rr, ss] of [
        [0n, s],
        [r, 0n],
        [c.n, s],
        [r, c.n],
        [r, c.n - s], // (r, -s) is also valid ECDSA; must still verify (no low-s rule)
      ] as const) {
        const expected = rr === r && ss === c.n - s;
        expect(ecdsaVerifyDigestSync(vk, dg, mk(rr, ss))).toBe(expected);
      }
      if (r + c.n < 1n << BigInt(8 * c.size)) expect(ecdsaVerifyDigestSync(vk, dg, mk(r + c.n, s))).toBe(false);
      expect(ecdsaVerifyDigestSync(vk, dg, sig.subarray(1))).toBe(false);
      expect(ecdsaVerifyDigestSync(ecVerifyKey(c, k.x, (k.y + 1n) % c.p), dg, sig)).toBe(false);
      expect(await ecdsaVerifyOffloaded(ecVerifyKey(c, k.x, (k.y + 1n) % c.p), dg, sig)).toBe(false);
    });
  }

  it('modInvVar matches Fermat inversion', () => {
    for (const c of CURVES) {
      for (let i = 0; i < 5; i++) {
        const a = (bytesToInt(randomBytes(c.size)) % (c.n - 1n)) + 1n;
        expect((modInvVar(a, c.n) * a) % c.n).toBe(1n);
        expect((modInvVar(a, c.p) * a) % c.p).toBe(1n);
      }
    }
  });
});
