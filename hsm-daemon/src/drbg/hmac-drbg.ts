// NIST SP 800-90A Rev. 1 §10.1.2 HMAC_DRBG with SHA-256 (security strength 256 bits),
// built on node:crypto's HMAC. This class is the pure mechanism: it is given its
// entropy input and nonce; where they come from (and their health) is index.ts's job.
import { createHmac } from 'node:crypto';

const OUTLEN = 32; // SHA-256 output, bytes
/** SP 800-90A Table 2: max_number_of_bits_per_request = 2^19 bits. */
export const MAX_BYTES_PER_REQUEST = (1 << 19) / 8;
/** SP 800-90A Table 2: reseed_interval ≤ 2^48; we default far lower (see index.ts). */
export const MAX_RESEED_INTERVAL = 2 ** 48;
/** Entropy input for 256-bit security strength, and the nonce (≥ half the strength). */
export const ENTROPY_BYTES = 32;
export const NONCE_BYTES = 16;

export class ReseedRequired extends Error {
  constructor() {
    super('HMAC_DRBG reseed counter exceeded the reseed interval');
    this.name = 'ReseedRequired';
  }
}

const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

export class HmacDrbg {
  private key: Buffer = Buffer.alloc(OUTLEN);
  private v: Buffer = Buffer.alloc(OUTLEN);
  private counter = 1;

  /** §10.1.2.3 Instantiate: seed_material = entropy_input || nonce || personalization. */
  constructor(
    entropy: Buffer,
    nonce: Buffer,
    personalization: Buffer = Buffer.alloc(0),
    readonly reseedInterval = 2 ** 20,
  ) {
    if (reseedInterval < 1 || reseedInterval > MAX_RESEED_INTERVAL) throw new RangeError('reseed interval out of range');
    this.key.fill(0x00);
    this.v.fill(0x01);
    this.update(Buffer.concat([entropy, nonce, personalization]));
    this.counter = 1;
  }

  /** §10.1.2.2 HMAC_DRBG_Update. */
  private update(provided: Buffer): void {
    const nextKey = hmac(this.key, this.v, Buffer.from([0x00]), provided);
    this.key.fill(0);
    this.key = nextKey;
    this.v = hmac(this.key, this.v);
    if (provided.length === 0) return;
    const k2 = hmac(this.key, this.v, Buffer.from([0x01]), provided);
    this.key.fill(0);
    this.key = k2;
    this.v = hmac(this.key, this.v);
  }

  /** §10.1.2.4 Reseed: seed_material = entropy_input || additional_input. */
  reseed(entropy: Buffer, additional: Buffer = Buffer.alloc(0)): void {
    this.update(Buffer.concat([entropy, additional]));
    this.counter = 1;
  }

  /** True when the next generate would exceed the reseed interval (§10.1.2.5 step 1). */
  needsReseed(): boolean {
    return this.counter > this.reseedInterval;
  }

  /** §10.1.2.5 Generate. Throws ReseedRequired when the caller must reseed first. */
  generate(n: number, additional: Buffer = Buffer.alloc(0)): Buffer {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_BYTES_PER_REQUEST) throw new RangeError('request length out of range');
    if (this.needsReseed()) throw new ReseedRequired();
    if (additional.length) this.update(additional);
    const out = Buffer.alloc(n);
    let off = 0;
    while (off < n) {
      this.v = hmac(this.key, this.v);
      off += this.v.copy(out, off);
    }
    this.update(additional);
    this.counter++;
    return out;
  }

  /** Test hook for the CAVP intermediate values (V, Key); never used on the serving path. */
  internalState(): { v: string; key: string; counter: number } {
    return { v: this.v.toString('hex'), key: this.key.toString('hex'), counter: this.counter };
  }

  /** Zeroise (SP 800-90A §9.4 Uninstantiate). */
  destroy(): void {
    this.key.fill(0);
    this.v.fill(0);
  }
}
