// The EWMA mean/variance and the rate band (anomaly/ewma.ts).
import { describe, expect, it } from 'vitest';
import { alphaFromHalfLife, band, emptyEwma, learn, sigmasAbove } from '../../../hsm-daemon/src/anomaly/ewma.js';

describe('EWMA', () => {
  it('halves a bucket\'s weight every half-life', () => {
    const a = alphaFromHalfLife(10);
    expect(Math.pow(1 - a, 10)).toBeCloseTo(0.5, 12);
    expect(alphaFromHalfLife(1)).toBeCloseTo(0.5, 12);
  });

  it('is the plain mean and population variance while n < 1/alpha', () => {
    const e = emptyEwma();
    const xs = [4, 8, 6, 2, 10];
    for (const x of xs) learn(e, x, alphaFromHalfLife(1000));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(e.n).toBe(5);
    expect(e.mean).toBeCloseTo(mean, 12);
    expect(e.var).toBeCloseTo(variance, 12);
  });

  it('forgets exponentially once n >= 1/alpha', () => {
    const e = emptyEwma();
    for (let i = 0; i < 50; i++) learn(e, 10, 0.1);
    expect(e.mean).toBe(10);
    expect(e.var).toBe(0);
    learn(e, 20, 0.1);
    expect(e.mean).toBeCloseTo(11, 12);
    // (1 - a)(var + a d²) = 0.9 * (0 + 0.1 * 100)
    expect(e.var).toBeCloseTo(9, 12);
  });

  it('never makes the band narrower than the floor', () => {
    const e = { n: 10, mean: 10, var: 0 };
    const b = band(e, 4, 8);
    expect(b.sigma).toBe(0);
    expect(b.sigmaEff).toBe(2);
    expect(b.upper).toBe(18);
    expect(sigmasAbove(b, 30)).toBe(10);
    const wide = band({ n: 10, mean: 10, var: 25 }, 4, 8);
    expect(wide.sigmaEff).toBe(5);
    expect(wide.upper).toBe(30);
  });
});
