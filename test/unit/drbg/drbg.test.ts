// SP 800-90A HMAC_DRBG known answers (NIST CAVP) and the SP 800-90B health tests with a
// rigged entropy source.
import { randomBytes as osRandom } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HmacDrbg, MAX_BYTES_PER_REQUEST, ReseedRequired } from '../../../hsm-daemon/src/drbg/hmac-drbg.js';
import { CAVP_HMAC_DRBG_SHA256, hmacDrbgKat } from '../../../hsm-daemon/src/drbg/kat.js';
import { EntropyHealth, HealthTestFailure, aptCutoff, rctCutoff } from '../../../hsm-daemon/src/drbg/health.js';
import { addInput, drbgStatus, onDrbgFailure, randomBytes, resetDrbg, type EntropySource } from '../../../hsm-daemon/src/drbg/index.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { CKR } from '../../../hsm-daemon/src/pkcs11/index.js';

const hex = (s: string) => Buffer.from(s, 'hex');

function rvOf(f: () => unknown): number | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof CkError) return e.rv;
    throw e;
  }
}

afterEach(() => resetDrbg());

describe('HMAC_DRBG (SP 800-90A §10.1.2) against NIST CAVP', () => {
  const v = CAVP_HMAC_DRBG_SHA256;

  it('instantiate gives the .rsp file’s intermediate V and Key', () => {
    const d = new HmacDrbg(hex(v.entropyInput), hex(v.nonce));
    expect(d.internalState()).toMatchObject({ v: v.instantiateV, key: v.instantiateKey, counter: 1 });
  });

  it('pr_false [SHA-256] COUNT 0: instantiate, reseed, generate twice', () => {
    const d = new HmacDrbg(hex(v.entropyInput), hex(v.nonce));
    d.reseed(hex(v.entropyInputReseed));
    // RESEED state listed in the .rsp file
    expect(d.internalState().v).toBe('c246fa97570ba2b9d9e5b453fe4632366f146fbd8491146563eb463c9eafe50c');
    expect(d.internalState().key).toBe('ca43e73325de43c41d7e0a7a3163fb04061b09fcee4c7b8884e969e3bdfdff9a');
    d.generate(128);
    expect(d.generate(128).toString('hex')).toBe(v.returnedBits);
  });

  it('the self-test wrapper passes, and fails when corrupted', () => {
    expect(hmacDrbgKat()).toBe(true);
    expect(hmacDrbgKat(true)).toBe(false);
  });

  it('enforces the reseed interval and the per-request limit', () => {
    const d = new HmacDrbg(osRandom(32), osRandom(16), Buffer.alloc(0), 2);
    d.generate(16);
    d.generate(16);
    expect(() => d.generate(16)).toThrow(ReseedRequired);
    d.reseed(osRandom(32));
    expect(d.generate(16)).toHaveLength(16);
    expect(() => d.generate(MAX_BYTES_PER_REQUEST + 1)).toThrow(RangeError);
  });
});

describe('SP 800-90B health tests', () => {
  it('cutoffs for H = 4 bits/byte, α = 2^-20', () => {
    expect(rctCutoff()).toBe(6);
    expect(aptCutoff()).toBe(62);
    // SP 800-90B §4.4.2 Table 2 (non-binary, W = 512)
    expect([0.5, 1, 2, 4, 8].map((h) => aptCutoff(h))).toEqual([410, 311, 177, 62, 13]);
  });

  it('a healthy source passes 1 MiB of samples', () => {
    const h = new EntropyHealth();
    for (let i = 0; i < 16; i++) h.feed(osRandom(65536));
    expect(h.samples).toBe(1 << 20);
  });

  it('repetition count test trips on a stuck sample', () => {
    const h = new EntropyHealth();
    h.feed(Buffer.from([1, 2, 3, 4, 4, 4, 4, 4]));
    expect(() => h.feed(Buffer.from([4]))).toThrow(HealthTestFailure);
    expect(() => new EntropyHealth().feed(Buffer.alloc(6, 7))).toThrow(/repetition count/);
  });

  it('adaptive proportion test trips on a biased source the RCT misses', () => {
    // every other sample is 0xAA: never 2 in a row, but 256 of every 512
    const b = Buffer.alloc(512);
    for (let i = 0; i < b.length; i++) b[i] = i % 2 === 0 ? 0xaa : i & 0xff;
    expect(() => new EntropyHealth().feed(b)).toThrow(/adaptive proportion/);
  });
});

describe('the daemon DRBG', () => {
  it('serves random bytes, including requests larger than one generate', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(a.equals(b)).toBe(false);
    expect(randomBytes(200_000)).toHaveLength(200_000);
    expect(randomBytes(0)).toHaveLength(0);
    expect(drbgStatus().state).toBe('ready');
  });

  it('start-up health test failure latches the error state: CKR_GENERAL_ERROR, listener told once', () => {
    const reasons: string[] = [];
    const off = onDrbgFailure((r) => reasons.push(r));
    try {
      expect(() => resetDrbg({ source: (n) => Buffer.alloc(n, 0x42) })).toThrow(CkError);
      expect(rvOf(() => randomBytes(16))).toBe(CKR.GENERAL_ERROR);
      expect(rvOf(() => addInput(Buffer.from('x')))).toBe(CKR.GENERAL_ERROR);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toMatch(/repetition count/);
      expect(drbgStatus().state).toBe('error');
    } finally {
      off();
    }
    resetDrbg();
    expect(randomBytes(8)).toHaveLength(8);
  });

  it('continuous test failure at a reseed latches the error state', () => {
    let served = 0;
    const source: EntropySource = (n) => {
      served += n;
      return served > 1024 + 48 + 32 ? Buffer.alloc(n, 0) : osRandom(n);
    };
    resetDrbg({ source, reseedInterval: 1 });
    expect(randomBytes(16)).toHaveLength(16); // first generate: no reseed needed
    expect(rvOf(() => randomBytes(16))).toBe('ok'); // reseed with healthy bytes
    expect(rvOf(() => randomBytes(16))).toBe(CKR.GENERAL_ERROR); // reseed with a stuck source
  });

  it('reseeds after the interval, and before every request with prediction resistance', () => {
    let calls = 0;
    const counting: EntropySource = (n) => (calls++, osRandom(n));
    resetDrbg({ source: counting, reseedInterval: 3 });
    const afterInit = calls; // start-up samples, entropy input, nonce
    for (let i = 0; i < 3; i++) randomBytes(8);
    expect(calls).toBe(afterInit);
    randomBytes(8);
    expect(calls).toBe(afterInit + 1);
    resetDrbg({ source: counting, predictionResistance: true });
    const base = calls;
    randomBytes(8);
    randomBytes(8);
    expect(calls).toBe(base + 2);
  });

  it('C_SeedRandom input reseeds with fresh entropy as additional input', () => {
    let calls = 0;
    resetDrbg({ source: (n) => (calls++, osRandom(n)) });
    const before = calls;
    addInput(Buffer.from('caller seed'));
    expect(calls).toBe(before + 1);
    expect(randomBytes(16)).toHaveLength(16);
  });

  it('a source that throws or returns short input is a DRBG failure', () => {
    expect(() => resetDrbg({ source: () => Buffer.alloc(1) })).toThrow(CkError);
    expect(() =>
      resetDrbg({
        source: () => {
          throw new Error('getrandom failed');
        },
      }),
    ).toThrow(/getrandom failed/);
  });
});
