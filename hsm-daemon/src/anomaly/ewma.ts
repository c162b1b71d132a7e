// Exponentially weighted mean and variance of one per-bucket quantity (calls per bucket,
// failure ratio). The weight of a new bucket is max(alpha, 1/(n+1)): a plain running
// average until 1/alpha buckets have been seen, then exponential forgetting with the
// configured half-life. Without the 1/(n+1) start a slow alpha would keep the first,
// often partial, bucket as the mean for hours.
export interface Ewma {
  /** Buckets learned. */
  n: number;
  mean: number;
  /** Exponentially weighted variance (West 1979 incremental form). */
  var: number;
}

export const emptyEwma = (): Ewma => ({ n: 0, mean: 0, var: 0 });

/** alpha such that a bucket's weight halves every `halfLife` buckets. */
export function alphaFromHalfLife(halfLife: number): number {
  return 1 - Math.pow(2, -1 / halfLife);
}

export function learn(e: Ewma, x: number, alpha: number): void {
  const a = Math.max(alpha, 1 / (e.n + 1));
  const d = x - e.mean;
  const step = a * d;
  e.mean += step;
  e.var = (1 - a) * (e.var + d * step);
  e.n++;
}

export interface Band {
  mean: number;
  /** The learned standard deviation. */
  sigma: number;
  /** max(sigma, floor / k): the σ used for the band and for "x σ above", so a perfectly
   * steady client does not page on one extra call. */
  sigmaEff: number;
  upper: number;
  /** mean − k·σ_eff (may be negative: then nothing is below the band). */
  lower: number;
}

/** mean ± k·σ_eff, with σ_eff = max(σ, floor/k): the band is never narrower than `floor` on
 * either side of the mean. */
export function band(e: Ewma, k: number, floor: number): Band {
  const sigma = Math.sqrt(Math.max(0, e.var));
  const sigmaEff = Math.max(sigma, floor / k, Number.EPSILON);
  return { mean: e.mean, sigma, sigmaEff, upper: e.mean + k * sigmaEff, lower: e.mean - k * sigmaEff };
}

/** How many σ_eff `x` lies above the mean. */
export const sigmasAbove = (b: Band, x: number): number => (x - b.mean) / b.sigmaEff;

/** How many σ_eff `x` lies below the mean. */
export const sigmasBelow = (b: Band, x: number): number => (b.mean - x) / b.sigmaEff;
