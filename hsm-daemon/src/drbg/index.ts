// The daemon's one random bit generator. Every random byte the daemon uses (C_GenerateRandom,
// secret keys, EC/HKDF/generic secrets, IVs, nonces, salts) comes through randomBytes().
//
// Construction: SP 800-90A HMAC_DRBG (SHA-256, hmac-drbg.ts), seeded and reseeded from
// the OS entropy source (getrandom(2) through crypto.randomBytes). Every byte taken from
// the source passes the SP 800-90B start-up and continuous health tests (health.ts).
//
// Failure: any health-test failure, source failure or DRBG fault latches the DRBG error
// state. From then on randomBytes() throws CkError(CKR_GENERAL_ERROR) — GENERAL_ERROR,
// not DEVICE_ERROR, because it is the same "module in error state" answer every C_* call
// gets once the daemon-wide latch (selftest/state.ts) is set by the failure listener.
// Only a successful re-run of the self-tests (resetDrbg via rerunSelfTests) clears it.
import { randomBytes as osRandom } from 'node:crypto';
import os from 'node:os';
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import { ENTROPY_BYTES, HmacDrbg, MAX_BYTES_PER_REQUEST, NONCE_BYTES } from './hmac-drbg.js';
import { EntropyHealth, STARTUP_SAMPLES } from './health.js';

export type EntropySource = (n: number) => Buffer;

export interface DrbgOptions {
  /** Entropy source; default the OS (crypto.randomBytes → getrandom). Tests rig this. */
  source?: EntropySource;
  /** Generate requests between automatic reseeds (SP 800-90A reseed_interval). */
  reseedInterval?: number;
  /** Reseed from the source before every request (SP 800-90A prediction resistance). */
  predictionResistance?: boolean;
}

export const DEFAULT_RESEED_INTERVAL = 1 << 16;

export type DrbgFailureListener = (reason: string) => void;

let opts: Required<DrbgOptions> = { source: osRandom, reseedInterval: DEFAULT_RESEED_INTERVAL, predictionResistance: false };
let drbg: HmacDrbg | null = null;
let health: EntropyHealth | null = null;
let failure: string | null = null;
let instantiations = 0;
const listeners: DrbgFailureListener[] = [];

function fail(reason: string): never {
  const first = failure === null;
  failure = reason;
  drbg?.destroy();
  drbg = null;
  if (first) {
    for (const l of listeners) {
      try {
        l(reason);
      } catch {
        // a listener must never turn a DRBG failure into something else
      }
    }
  }
  throw new CkError(CKR.GENERAL_ERROR, `DRBG error state: ${reason}`);
}

/** Entropy input, health-tested sample by sample. */
function entropy(n: number): Buffer {
  const b = opts.source(n);
  if (!Buffer.isBuffer(b) || b.length !== n) throw new Error('entropy source returned the wrong length');
  health!.feed(b);
  return b;
}

function guarded<T>(what: string, f: () => T): T {
  if (failure !== null) throw new CkError(CKR.GENERAL_ERROR, `DRBG error state: ${failure}`);
  try {
    return f();
  } catch (e) {
    if (e instanceof CkError) throw e;
    return fail(`${what}: ${(e as Error)?.message ?? String(e)}`);
  }
}

function ready(): HmacDrbg {
  if (drbg) return drbg;
  return guarded('instantiate', () => {
    health = new EntropyHealth();
    // SP 800-90B §4.3: start-up tests over STARTUP_SAMPLES samples, which are discarded.
    entropy(STARTUP_SAMPLES).fill(0);
    const e = entropy(ENTROPY_BYTES);
    const nonce = entropy(NONCE_BYTES);
    const personalization = Buffer.from(`craton-hsm/${os.hostname()}/${process.pid}/${process.hrtime.bigint()}/${++instantiations}`);
    drbg = new HmacDrbg(e, nonce, personalization, opts.reseedInterval);
    e.fill(0);
    nonce.fill(0);
    return drbg;
  });
}

/** n random bytes from the HMAC_DRBG. Throws CkError(CKR_GENERAL_ERROR) in the error state. */
export function randomBytes(n: number): Buffer {
  const d = ready();
  return guarded('generate', () => {
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += MAX_BYTES_PER_REQUEST) {
      if (opts.predictionResistance || d.needsReseed()) d.reseed(entropy(ENTROPY_BYTES));
      const chunk = d.generate(Math.min(MAX_BYTES_PER_REQUEST, n - off));
      chunk.copy(out, off);
      chunk.fill(0);
    }
    return out;
  });
}

/** C_SeedRandom: the caller's bytes become the additional input of a reseed with fresh
 * entropy (SP 800-90A §9.2); they are never credited as entropy. */
export function addInput(seed: Buffer): void {
  const d = ready();
  guarded('reseed', () => d.reseed(entropy(ENTROPY_BYTES), seed));
}

/** Called once per transition into the DRBG error state. */
export function onDrbgFailure(cb: DrbgFailureListener): () => void {
  listeners.push(cb);
  return () => {
    const i = listeners.indexOf(cb);
    if (i >= 0) listeners.splice(i, 1);
  };
}

export function drbgStatus(): { state: 'uninstantiated' | 'ready' | 'error'; reason?: string; samples: number } {
  if (failure !== null) return { state: 'error', reason: failure, samples: health?.samples ?? 0 };
  return { state: drbg ? 'ready' : 'uninstantiated', samples: health?.samples ?? 0 };
}

/**
 * Uninstantiates and instantiates afresh (running the start-up health tests again),
 * clearing the DRBG error state if they pass. Used by the self-tests, by their on-demand
 * re-run, and by unit tests to rig the entropy source. Throws CkError on failure (and the
 * error state is latched again).
 */
export function resetDrbg(options: DrbgOptions = {}): void {
  drbg?.destroy();
  drbg = null;
  failure = null;
  opts = {
    source: options.source ?? osRandom,
    reseedInterval: options.reseedInterval ?? DEFAULT_RESEED_INTERVAL,
    predictionResistance: options.predictionResistance ?? false,
  };
  ready();
}
