// ECDSA over a caller-supplied digest (CKM_ECDSA). node:crypto always hashes what
// it signs, so the raw form is done here:
//  - the nonce is RFC 6979 (HMAC-DRBG), hedged with fresh randomness per §3.6 so a
//    fault cannot turn two signatures of one digest into a key leak;
//  - k·G, the step that would leak k through bigint timing, is computed by OpenSSL
//    (ECDH key derivation from the scalar k);
//  - the remaining modular arithmetic on secrets is blinded by a random factor, so
//    bigint's variable timing sees only uniformly random values.
// Verification handles public data only and runs in plain bigint arithmetic,
// yielding to the event loop every few dozen bits (P-521 takes ~12 ms in total).
import { createECDH, createHmac } from 'node:crypto';
import { randomBytes } from '../drbg/index.js';

export interface Curve {
  /** OpenSSL / node name. */
  readonly name: string;
  readonly jwk: string;
  readonly bits: number;
  /** Field element / scalar size in bytes. */
  readonly size: number;
  /** DER encoding of the named-curve OID, as in CKA_EC_PARAMS. */
  readonly oid: Buffer;
  readonly p: bigint;
  readonly b: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  /** HMAC hash for RFC 6979 nonces: one whose strength matches the curve. */
  readonly nonceHash: string;
}

const h = (s: string): bigint => BigInt('0x' + s);

export const CURVES: readonly Curve[] = [
  {
    name: 'prime256v1',
    jwk: 'P-256',
    bits: 256,
    size: 32,
    oid: Buffer.from('06082a8648ce3d030107', 'hex'),
    p: h('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
    b: h('5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b'),
    n: h('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
    gx: h('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'),
    gy: h('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5'),
    nonceHash: 'sha256',
  },
  {
    name: 'secp384r1',
    jwk: 'P-384',
    bits: 384,
    size: 48,
    oid: Buffer.from('06052b81040022', 'hex'),
    p: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff'),
    b: h('b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef'),
    n: h('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
    gx: h('aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7'),
    gy: h('3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f'),
    nonceHash: 'sha384',
  },
  {
    name: 'secp521r1',
    jwk: 'P-521',
    bits: 521,
    size: 66,
    oid: Buffer.from('06052b81040023', 'hex'),
    p: (1n << 521n) - 1n,
    b: h('0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00'),
    n: h('01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409'),
    gx: h('00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66'),
    gy: h('011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650'),
    nonceHash: 'sha512',
  },
];

export function curveByOid(der: Buffer): Curve | undefined {
  return CURVES.find((c) => c.oid.equals(der));
}

export function bytesToInt(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + b.toString('hex'));
}

export function intToBytes(x: bigint, len: number): Buffer {
  const hex = x.toString(16).padStart(2 * len, '0');
  if (hex.length > 2 * len) throw new RangeError('integer too large');
  return Buffer.from(hex, 'hex');
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  let b = mod(base, m);
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}

/** Inverse modulo a prime (all moduli here are prime). */
const modInv = (a: bigint, p: bigint): bigint => modPow(a, p - 2n, p);

/** SEC 1 / RFC 6979 bits2int: the leftmost qlen bits of the digest. */
function bits2int(c: Curve, b: Buffer): bigint {
  let x = bytesToInt(b);
  const blen = b.length * 8;
  if (blen > c.bits) x >>= BigInt(blen - c.bits);
  return x;
}

/** RFC 6979 §3.2 candidate nonces; `extra` is the optional §3.6 additional data. */
function* rfc6979(c: Curve, d: bigint, digest: Buffer, extra: Buffer): Generator<bigint> {
  const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
    const m = createHmac(c.nonceHash, key);
    for (const p of parts) m.update(p);
    return m.digest();
  };
  const hlen = hmac(Buffer.alloc(0)).length;
  const x = intToBytes(d, c.size);
  const h1 = intToBytes(mod(bits2int(c, digest), c.n), c.size);
  let v: Buffer = Buffer.alloc(hlen, 1);
  let k: Buffer = Buffer.alloc(hlen, 0);
  k = hmac(k, v, Buffer.from([0]), x, h1, extra);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.from([1]), x, h1, extra);
  v = hmac(k, v);
  x.fill(0);
  try {
    for (;;) {
      const t: Buffer[] = [];
      let tlen = 0;
      while (tlen < c.bits) {
        v = hmac(k, v);
        t.push(v);
        tlen += v.length * 8;
      }
      const cand = bits2int(c, Buffer.concat(t));
      if (cand >= 1n && cand < c.n) yield cand;
      k = hmac(k, v, Buffer.from([0]));
      v = hmac(k, v);
    }
  } finally {
    k.fill(0);
    v.fill(0);
  }
}

function randomScalar(c: Curve): bigint {
  for (;;) {
    const buf = randomBytes(c.size);
    const x = bits2int(c, buf);
    buf.fill(0);
    if (x >= 1n && x < c.n) return x;
  }
}

/** Signs a digest with private scalar d; returns r||s, each c.size bytes.
 * `hedge` = false gives plain deterministic RFC 6979 (used by known-answer tests). */
export function ecdsaSignDigest(c: Curve, d: bigint, digest: Buffer, hedge = true): Buffer {
  if (d < 1n || d >= c.n) throw new RangeError('private scalar out of range');
  const e = mod(bits2int(c, digest), c.n);
  const extra = hedge ? randomBytes(32) : Buffer.alloc(0);
  for (const k of rfc6979(c, d, digest, extra)) {
    const ecdh = createECDH(c.name);
    const kb = intToBytes(k, c.size);
    ecdh.setPrivateKey(kb);
    kb.fill(0);
    const R = ecdh.getPublicKey(); // 04 || X || Y
    const r = mod(bytesToInt(R.subarray(1, 1 + c.size)), c.n);
    if (r === 0n) continue;
    const blind = randomScalar(c);
    const kInv = modInv((k * blind) % c.n, c.n);
    const s = mod(kInv * ((blind * e + ((blind * r) % c.n) * d) % c.n), c.n);
    if (s === 0n) continue;
    return Buffer.concat([intToBytes(r, c.size), intToBytes(s, c.size)]);
  }
  throw new Error('unreachable');
}

// Jacobian points on y^2 = x^3 - 3x + b; Z = 0 is the point at infinity.
type Jac = [bigint, bigint, bigint];

function jDouble(c: Curve, P: Jac): Jac {
  const p = c.p;
  const [X, Y, Z] = P;
  if (Z === 0n || Y === 0n) return [0n, 1n, 0n];
  const delta = (Z * Z) % p;
  const gamma = (Y * Y) % p;
  const beta = (X * gamma) % p;
  const alpha = (3n * mod(X - delta, p) * ((X + delta) % p)) % p;
  const X3 = mod(alpha * alpha - 8n * beta, p);
  const Z3 = mod((Y + Z) * (Y + Z) - gamma - delta, p);
  const Y3 = mod(alpha * mod(4n * beta - X3, p) - 8n * gamma * gamma, p);
  return [X3, Y3, Z3];
}

function jAdd(c: Curve, P: Jac, Q: Jac): Jac {
  const p = c.p;
  if (P[2] === 0n) return Q;
  if (Q[2] === 0n) return P;
  const [X1, Y1, Z1] = P;
  const [X2, Y2, Z2] = Q;
  const z1z1 = (Z1 * Z1) % p;
  const z2z2 = (Z2 * Z2) % p;
  const u1 = (X1 * z2z2) % p;
  const u2 = (X2 * z1z1) % p;
  const s1 = (Y1 * Z2 * z2z2) % p;
  const s2 = (Y2 * Z1 * z1z1) % p;
  const hh = mod(u2 - u1, p);
  const rr = mod(2n * (s2 - s1), p);
  if (hh === 0n) return rr === 0n ? jDouble(c, P) : [0n, 1n, 0n];
  const i = (4n * hh * hh) % p;
  const j = (hh * i) % p;
  const v = (u1 * i) % p;
  const X3 = mod(rr * rr - j - 2n * v, p);
  const Y3 = mod(rr * (v - X3) - 2n * s1 * j, p);
  const Z3 = mod(((Z1 + Z2) * (Z1 + Z2) - z1z1 - z2z2) * hh, p);
  return [X3, Y3, Z3];
}

export function onCurve(c: Curve, x: bigint, y: bigint): boolean {
  if (x < 0n || x >= c.p || y < 0n || y >= c.p) return false;
  return mod(y * y - (x * x * x - 3n * x + c.b), c.p) === 0n;
}

const YIELD_EVERY_BITS = 48;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Verifies r||s over a digest against the uncompressed public point (x, y). */
export async function ecdsaVerifyDigest(c: Curve, x: bigint, y: bigint, digest: Buffer, sig: Buffer): Promise<boolean> {
  if (sig.length !== 2 * c.size || !onCurve(c, x, y)) return false;
  const r = bytesToInt(sig.subarray(0, c.size));
  const s = bytesToInt(sig.subarray(c.size));
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  const e = mod(bits2int(c, digest), c.n);
  const w = modInv(s, c.n);
  const u1 = (e * w) % c.n;
  const u2 = (r * w) % c.n;
  // Shamir's trick: one pass over the bits of both scalars.
  const G: Jac = [c.gx, c.gy, 1n];
  const Q: Jac = [x, y, 1n];
  const GQ = jAdd(c, G, Q);
  let R: Jac = [0n, 1n, 0n];
  const top = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = top - 1; i >= 0; i--) {
    if (i % YIELD_EVERY_BITS === 0) await yieldToLoop();
    R = jDouble(c, R);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 && b2) R = jAdd(c, R, GQ);
    else if (b1) R = jAdd(c, R, G);
    else if (b2) R = jAdd(c, R, Q);
  }
  if (R[2] === 0n) return false;
  const zInv = modInv(R[2], c.p);
  const ax = (R[0] * zInv * zInv) % c.p;
  return ax % c.n === r;
}
