// NIST SP 800-90B §4.4 continuous health tests on the raw entropy input, applied to
// every byte (one 8-bit sample) the DRBG takes from its source, plus the §4.3
// start-up test (the same tests over at least 1024 consecutive samples before first use).
//
// Claimed min-entropy per sample: H = 4 bits per byte. The OS source (getrandom via
// crypto.randomBytes) is a conditioned, full-entropy source, so this claim is
// deliberately conservative; a lower H only raises the cutoffs, i.e. makes false
// alarms on a healthy source rarer, while a stuck or biased source still trips them.

/** False-positive probability per test: α = 2^-20 (SP 800-90B §4.4.1 recommends 2^-20 … 2^-40). */
export const ALPHA_LOG2 = 20;
export const CLAIMED_H = 4;
/** §4.4.2: W = 512 for non-binary samples. */
export const APT_WINDOW = 512;
/** §4.3 item 8 (start-up): at least 1024 consecutive samples. */
export const STARTUP_SAMPLES = 1024;

/** §4.4.1: C = 1 + ⌈−log2(α) / H⌉. */
export function rctCutoff(h = CLAIMED_H, alphaLog2 = ALPHA_LOG2): number {
  return 1 + Math.ceil(alphaLog2 / h);
}

/** §4.4.2: C = 1 + CRITBINOM(W, 2^−H, 1 − α), the smallest k with P(X ≤ k) ≥ 1 − α
 * for X ~ Binomial(W, 2^−H). */
export function aptCutoff(h = CLAIMED_H, w = APT_WINDOW, alphaLog2 = ALPHA_LOG2): number {
  const p = 2 ** -h;
  const target = 1 - 2 ** -alphaLog2;
  let pmf = (1 - p) ** w;
  let cdf = pmf;
  let k = 0;
  while (cdf < target && k < w) {
    pmf *= ((w - k) / (k + 1)) * (p / (1 - p));
    k++;
    cdf += pmf;
  }
  return 1 + k;
}

export class HealthTestFailure extends Error {
  constructor(readonly test: 'repetition_count' | 'adaptive_proportion', detail: string) {
    super(`SP 800-90B ${test === 'repetition_count' ? 'repetition count' : 'adaptive proportion'} test failed: ${detail}`);
    this.name = 'HealthTestFailure';
  }
}

/** Stateful across calls: the tests are continuous over the whole sample stream. */
export class EntropyHealth {
  readonly rctC: number;
  readonly aptC: number;
  private last = -1;
  private run = 0;
  private aptA = -1;
  private aptB = 0;
  private aptSeen = 0;
  samples = 0;

  constructor(h = CLAIMED_H) {
    this.rctC = rctCutoff(h);
    this.aptC = aptCutoff(h);
  }

  /** Runs both tests over every sample; throws HealthTestFailure at the first failure. */
  feed(buf: Buffer): void {
    for (const s of buf) {
      this.samples++;
      // Repetition count test (§4.4.1).
      if (s === this.last) {
        if (++this.run >= this.rctC) throw new HealthTestFailure('repetition_count', `${this.run} identical samples (cutoff ${this.rctC})`);
      } else {
        this.last = s;
        this.run = 1;
      }
      // Adaptive proportion test (§4.4.2).
      if (this.aptSeen === 0) {
        this.aptA = s;
        this.aptB = 1;
        this.aptSeen = 1;
      } else {
        if (s === this.aptA && ++this.aptB >= this.aptC)
          throw new HealthTestFailure('adaptive_proportion', `${this.aptB} of ${APT_WINDOW} samples equal the first (cutoff ${this.aptC})`);
        if (++this.aptSeen === APT_WINDOW) this.aptSeen = 0;
      }
    }
  }
}
