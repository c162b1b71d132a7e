// The [anomaly] section of the configuration: defaults, the fractional keys (the generic
// range checks in test/unit/config.test.ts cover the integer and boolean ones), and the
// settings the detector is built with.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../hsm-daemon/src/config/load.js';
import { settingsFrom } from '../../../hsm-daemon/src/anomaly/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-anomaly-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const loadWith = (text: string) => {
  const f = path.join(tmp, `c${n++}.toml`);
  writeFileSync(f, text);
  return loadConfig({ configPath: f });
};
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

let saved: string | undefined;
beforeEach(() => {
  saved = process.env.CRATON_HSM_CONFIG;
  delete process.env.CRATON_HSM_CONFIG;
});
afterEach(() => {
  if (saved === undefined) delete process.env.CRATON_HSM_CONFIG;
  else process.env.CRATON_HSM_CONFIG = saved;
});

describe('[anomaly] configuration', () => {
  it('is on by default with conservative thresholds', () => {
    expect(loadConfig().anomaly).toEqual({
      enabled: true,
      bucket_seconds: 60,
      warmup_buckets: 60,
      half_life_buckets: 1440,
      rate_sigma: 4,
      rate_floor: 20,
      rate_low: true,
      rate_low_min_calls: 10,
      failure_ratio: 0.5,
      min_failures: 10,
      new_mechanism: true,
      new_key: true,
      unusual_hour: true,
      max_clients: 1000,
      max_keys_per_client: 256,
      save_interval_seconds: 60,
    });
  });

  it('takes fractional rate_sigma and failure_ratio within range, with one-line errors outside', () => {
    const c = loadWith('[anomaly]\nrate_sigma = 2.5\nfailure_ratio = 0.25\n');
    expect(c.anomaly.rate_sigma).toBe(2.5);
    expect(c.anomaly.failure_ratio).toBe(0.25);
    expect(messageOf(() => loadWith('[anomaly]\nrate_sigma = 0.5\n'))).toMatch(/^config: anomaly\.rate_sigma = 0\.5 is not allowed; allowed: a number from 1 to 100 \(from /);
    expect(messageOf(() => loadWith('[anomaly]\nfailure_ratio = 1.5\n'))).toContain('anomaly.failure_ratio = 1.5 is not allowed; allowed: a number from 0.01 to 1');
    expect(messageOf(() => loadWith('[anomaly]\nfailure_ratio = "half"\n'))).toContain('anomaly.failure_ratio = "half" is not allowed');
    expect(messageOf(() => loadWith('[anomaly]\nwarmup = 3\n'))).toContain('unknown key anomaly.warmup');
  });

  it('maps onto the detector settings', () => {
    const c = loadWith('[anomaly]\nbucket_seconds = 1\nwarmup_buckets = 4\nnew_key = false\nrate_low = false\nrate_low_min_calls = 25\n');
    expect(settingsFrom(c.anomaly)).toMatchObject({ bucketSeconds: 1, warmupBuckets: 4, newKey: false, rateSigma: 4, rateFloor: 20, rateLow: false, rateLowMinCalls: 25, maxKeysPerClient: 256 });
  });
});
