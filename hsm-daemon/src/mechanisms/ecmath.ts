// ECDSA over a caller-supplied digest (CKM_ECDSA). node:crypto always hashes what
// it signs, so the raw form is done here:
//  - the nonce is RFC 6979 (HMAC-DRBG), hedged with fresh randomness per §3.6 so a
//    fault cannot turn two signatures of one digest into a key leak;
//  - k·G, the step that would leak k through bigint timing, is computed by OpenSSL
//    (ECDH key derivation from the scalar k);
//  - the remaining modular arithmetic on secrets is blinded by a random factor, so
//    bigint's variable timing sees only uniformly random values.
// Verification handles public data only and runs in variable-time bigint arithmetic
// with precomputed tables (per curve for G, per key for Q); see below.
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
    // Extended Euclid sees only k·blind, uniformly random and independent of k.
    const kInv = modInvVar((k * blind) % c.n, c.n);
    const s = mod(kInv * ((blind * e + ((blind * r) % c.n) * d) % c.n), c.n);
    if (s === 0n) continue;
    return Buffer.concat([intToBytes(r, c.size), intToBytes(s, c.size)]);
  }
  throw new Error('unreachable');
}

// ---- Verification: public data only, so variable-time arithmetic is fine. ----
// u1·G + u2·Q in Jacobian coordinates on y^2 = x^3 - 3x + b (Z = 0 is infinity):
//  - u1·G uses a per-curve fixed-base comb: table[i][j-1] = j·2^(6i)·G in affine form,
//    so u1·G costs one mixed addition per nonzero 6-bit window of u1 and no doublings;
//  - u2·Q uses width-5 wNAF over cached odd multiples of Q (Q, 3Q, .., 15Q), or, once a
//    key has been used a few times, a per-key comb like G's (4-bit windows).

type Jac = [bigint, bigint, bigint];
type Aff = [bigint, bigint];
const INF: Jac = [0n, 1n, 0n];

const md = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

/** Extended-Euclid inverse of a mod m (m prime, a ≠ 0 mod m). Variable time: callers
 * pass public values, or secrets blinded by a fresh random factor. */
export function modInvVar(a: bigint, m: bigint): bigint {
  let r0 = md(a, m);
  let r1 = m;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('not invertible');
  return s0 < 0n ? s0 + m : s0;
}

function jDouble(p: bigint, P: Jac): Jac {
  const [X, Y, Z] = P;
  if (Z === 0n || Y === 0n) return INF;
  const delta = (Z * Z) % p;
  const gamma = (Y * Y) % p;
  const beta = (X * gamma) % p;
  const alpha = (3n * (X - delta) * (X + delta)) % p;
  const X3 = md(alpha * alpha - 8n * beta, p);
  const Z3 = md((Y + Z) * (Y + Z) - gamma - delta, p);
  const Y3 = md(alpha * (4n * beta - X3) - 8n * ((gamma * gamma) % p), p);
  return [X3, Y3, Z3];
}

function jAdd(p: bigint, P: Jac, Q: Jac): Jac {
  if (P[2] === 0n) return Q;
  if (Q[2] === 0n) return P;
  const [X1, Y1, Z1] = P;
  const [X2, Y2, Z2] = Q;
  const z1z1 = (Z1 * Z1) % p;
  const z2z2 = (Z2 * Z2) % p;
  const u1 = (X1 * z2z2) % p;
  const u2 = (X2 * z1z1) % p;
  const s1 = (((Y1 * Z2) % p) * z2z2) % p;
  const s2 = (((Y2 * Z1) % p) * z1z1) % p;
  const hh = md(u2 - u1, p);
  const rr = md(2n * (s2 - s1), p);
  if (hh === 0n) return rr === 0n ? jDouble(p, P) : INF;
  const i = (4n * hh * hh) % p;
  const j = (hh * i) % p;
  const v = (u1 * i) % p;
  const X3 = md(rr * rr - j - 2n * v, p);
  const Y3 = md(rr * (v - X3) - 2n * ((s1 * j) % p), p);
  const Z3 = md(((Z1 + Z2) * (Z1 + Z2) - z1z1 - z2z2) * hh, p);
  return [X3, Y3, Z3];
}

/** P + (x2, y2) with the second point affine (madd-2007-bl). */
function jAddAff(p: bigint, P: Jac, x2: bigint, y2: bigint): Jac {
  const [X1, Y1, Z1] = P;
  if (Z1 === 0n) return [x2, y2, 1n];
  const z1z1 = (Z1 * Z1) % p;
  const u2 = (x2 * z1z1) % p;
  const s2 = (((y2 * Z1) % p) * z1z1) % p;
  const hh = md(u2 - X1, p);
  const rr = md(2n * (s2 - Y1), p);
  if (hh === 0n) return rr === 0n ? jDouble(p, P) : INF;
  const hh2 = (hh * hh) % p;
  const i = 4n * hh2;
  const j = (hh * i) % p;
  const v = (X1 * i) % p;
  const X3 = md(rr * rr - j - 2n * v, p);
  const Y3 = md(rr * (v - X3) - 2n * ((Y1 * j) % p), p);
  const Z3 = md((Z1 + hh) * (Z1 + hh) - z1z1 - hh2, p);
  return [X3, Y3, Z3];
}

/** Affine forms of Jacobian points (none at infinity) with one inversion. */
function toAffine(p: bigint, pts: Jac[]): Aff[] {
  const acc: bigint[] = new Array<bigint>(pts.length);
  let prod = 1n;
  for (let i = 0; i < pts.length; i++) {
    acc[i] = prod;
    prod = (prod * pts[i]![2]) % p;
  }
  let inv = modInvVar(prod, p);
  const out: Aff[] = new Array<Aff>(pts.length);
  for (let i = pts.length - 1; i >= 0; i--) {
    const [X, Y, Z] = pts[i]!;
    const zi = (inv * acc[i]!) % p;
    inv = (inv * Z) % p;
    const zi2 = (zi * zi) % p;
    out[i] = [(X * zi2) % p, (((Y * zi2) % p) * zi) % p];
  }
  return out;
}

/** Fixed-base comb: table[i][j-1] = j·2^(w·i)·P, affine, for scalars below 2^bits.
 * Returns null if some entry would be infinity (impossible for a point of prime order
 * n > 2^w·... with j < 2^w, but guarded rather than assumed). */
interface Comb {
  readonly w: number;
  readonly t: Aff[][];
}

function buildComb(c: Curve, x: bigint, y: bigint, w: number): Comb {
  const p = c.p;
  const windows = Math.ceil(c.bits / w);
  const per = (1 << w) - 1;
  const jac: Jac[] = [];
  let base: Jac = [x, y, 1n];
  for (let i = 0; i < windows; i++) {
    let acc = base;
    jac.push(acc);
    for (let j = 2; j <= per; j++) {
      acc = jAdd(p, acc, base);
      jac.push(acc);
    }
    for (let k = 0; k < w; k++) base = jDouble(p, base);
  }
  if (jac.some((P) => P[2] === 0n)) throw new Error('degenerate comb table');
  const aff = toAffine(p, jac);
  const t: Aff[][] = [];
  for (let i = 0; i < windows; i++) t.push(aff.slice(i * per, (i + 1) * per));
  return { w, t };
}

function combAdd(p: bigint, R: Jac, comb: Comb, k: bigint): Jac {
  const mask = BigInt((1 << comb.w) - 1);
  const shift = BigInt(comb.w);
  for (let i = 0; k > 0n; i++, k >>= shift) {
    const j = Number(k & mask);
    if (j !== 0) {
      const [ax, ay] = comb.t[i]![j - 1]!;
      R = jAddAff(p, R, ax, ay);
    }
  }
  return R;
}

const G_COMB = new Map<string, Comb>();
function gComb(c: Curve): Comb {
  let t = G_COMB.get(c.name);
  if (!t) {
    t = buildComb(c, c.gx, c.gy, 6);
    G_COMB.set(c.name, t);
  }
  return t;
}

/** Width-w NAF digits, least significant first. */
function wnaf(k: bigint, w: number): Int8Array {
  const out: number[] = [];
  const full = 1n << BigInt(w);
  const half = 1n << BigInt(w - 1);
  while (k > 0n) {
    let d = 0n;
    if (k & 1n) {
      d = k & (full - 1n);
      if (d >= half) d -= full;
      k -= d;
    }
    out.push(Number(d));
    k >>= 1n;
  }
  return Int8Array.from(out);
}

const WNAF_W = 5;
const COMB_AFTER_USES = 3;
const Q_COMB_W = 4;

/** Per-public-key verification state; keep one per key (e.g. in KeyRef.cache) and
 * pass it to every ecdsaVerifyDigest call for that key. */
export interface EcVerifyKey {
  readonly curve: Curve;
  readonly x: bigint;
  readonly y: bigint;
  readonly valid: boolean;
  uses: number;
  /** Odd multiples Q, 3Q, ..., (2^(w-1)-1)Q, affine. */
  odd?: Aff[];
  comb?: Comb;
}

export function ecVerifyKey(c: Curve, x: bigint, y: bigint): EcVerifyKey {
  return { curve: c, x, y, valid: onCurve(c, x, y), uses: 0 };
}

function oddMultiples(c: Curve, x: bigint, y: bigint): Aff[] {
  const Q: Jac = [x, y, 1n];
  const Q2 = jDouble(c.p, Q);
  const pts: Jac[] = [Q];
  for (let i = 1; i < 1 << (WNAF_W - 2); i++) pts.push(jAdd(c.p, pts[i - 1]!, Q2));
  if (pts.some((P) => P[2] === 0n)) throw new Error('degenerate wNAF table');
  return toAffine(c.p, pts);
}

function mulQ(c: Curve, vk: EcVerifyKey, R: Jac, k: bigint): Jac {
  const p = c.p;
  if (vk.comb) return combAdd(p, R, vk.comb, k);
  const odd = (vk.odd ??= oddMultiples(c, vk.x, vk.y));
  const digits = wnaf(k, WNAF_W);
  let A: Jac = INF;
  for (let i = digits.length - 1; i >= 0; i--) {
    A = jDouble(p, A);
    const d = digits[i]!;
    if (d > 0) A = jAddAff(p, A, odd[(d - 1) >> 1]![0], odd[(d - 1) >> 1]![1]);
    else if (d < 0) A = jAddAff(p, A, odd[(-d - 1) >> 1]![0], p - odd[(-d - 1) >> 1]![1]);
  }
  return jAdd(p, R, A);
}

export function onCurve(c: Curve, x: bigint, y: bigint): boolean {
  if (x < 0n || x >= c.p || y < 0n || y >= c.p) return false;
  return md(y * y - (x * x * x - 3n * x + c.b), c.p) === 0n;
}

/** Synchronous core of ECDSA verification (SEC 1 §4.1.4) of r||s over a digest. */
export function ecdsaVerifyDigestSync(vk: EcVerifyKey, digest: Buffer, sig: Buffer): boolean {
  const c = vk.curve;
  if (sig.length !== 2 * c.size || !vk.valid) return false;
  const r = bytesToInt(sig.subarray(0, c.size));
  const s = bytesToInt(sig.subarray(c.size));
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  const e = md(bits2int(c, digest), c.n);
  const w = modInvVar(s, c.n);
  const u1 = (e * w) % c.n;
  const u2 = (r * w) % c.n;
  vk.uses++;
  if (!vk.comb && vk.uses > COMB_AFTER_USES) vk.comb = buildComb(c, vk.x, vk.y, Q_COMB_W);
  let R = combAdd(c.p, INF, gComb(c), u1);
  R = mulQ(c, vk, R, u2);
  if (R[2] === 0n) return false;
  const zInv = modInvVar(R[2], c.p);
  const ax = (((R[0] * zInv) % c.p) * zInv) % c.p;
  return ax % c.n === r;
}

/** Verifies r||s over a digest against the uncompressed public point (x, y), or a
 * prepared EcVerifyKey (which caches per-key tables across calls). */
export async function ecdsaVerifyDigest(c: Curve, x: bigint, y: bigint, digest: Buffer, sig: Buffer, vk?: EcVerifyKey): Promise<boolean> {
  const key = vk && vk.curve === c && vk.x === x && vk.y === y ? vk : ecVerifyKey(c, x, y);
  return ecdsaVerifyDigestSync(key, digest, sig);
}
