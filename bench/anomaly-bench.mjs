#!/usr/bin/env node
// Per-call cost of usage-anomaly detection (docs/anomaly.md "Overhead"): the dispatcher
// observer's work — observationOf (identity, key lookup on the tokens) + Detector.observe
// (bucket counting, the checks, a bucket close per client per bucket) — in process, on
// synthetic call records: ANOMALY_BENCH_CLIENTS clients (default 100) × 20 token keys,
// 1-minute buckets, steady traffic (no findings after warm-up). Needs `npm run build`.
// Usage: node bench/anomaly-bench.mjs   (ANOMALY_BENCH_CALLS, default 2000000)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist', 'hsm-daemon', 'src');
const { Detector } = await import(path.join(DIST, 'anomaly', 'detector.js'));
const { observationOf } = await import(path.join(DIST, 'anomaly', 'identity.js'));
const { CKM, CKA } = await import(path.join(DIST, 'pkcs11', 'index.js'));

const CLIENTS = Number(process.env.ANOMALY_BENCH_CLIENTS ?? 100);
const CALLS = Number(process.env.ANOMALY_BENCH_CALLS ?? 2_000_000);
const KEYS = 20;

const settings = {
  bucketSeconds: 60, warmupBuckets: 60, halfLifeBuckets: 1440, rateSigma: 4, rateFloor: 20, failureRatio: 0.5,
  minFailures: 10, newMechanism: true, newKey: true, unusualHour: true, maxClients: 1000, maxKeysPerClient: 256,
};
// Two tokens of 10,000 objects each, like the daemon's Map-backed token.find().
const objects = new Map();
for (let h = 1; h <= 20_000; h++) {
  objects.set(h, { slotId: h % 2, uid: `u${h.toString(16).padStart(16, '0')}`, isToken: true, attrs: new Map([[CKA.LABEL, Buffer.from(`key-${h}`)]]) });
}
const tokens = [{ find: (h) => (h % 2 === 0 ? objects.get(h) : undefined) }, { find: (h) => (h % 2 === 1 ? objects.get(h) : undefined) }];
const apps = Array.from({ length: CLIENTS }, (_, i) => ({ id: `app${i}`, peer: { pid: 1000 + i, uid: 1000 + (i % 10), gid: 1000, exe: `/usr/bin/service-${i}` } }));
const mechs = [CKM.ECDSA_SHA256, CKM.SHA256, CKM.AES_GCM];
const records = Array.from({ length: 4096 }, (_, i) => {
  const app = apps[i % CLIENTS];
  const key = 1 + ((i % CLIENTS) * KEYS + (i % KEYS)) % 20_000;
  return { app, fn: 'C_Sign', rv: 0, note: { session: 1, mechanism: mechs[i % 3], key } };
});

function run(observe, n, t0) {
  // 3000 calls per simulated second: every client gets ~30 calls per second
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) observe(records[i & 4095], t0 + Math.floor(i / 3));
  return Number(process.hrtime.bigint() - start) / n;
}

const T0 = Date.UTC(2025, 0, 6, 9, 0, 0);
const d = new Detector(settings);
let sink = 0;
const observe = (rec, at) => {
  sink += d.observe(observationOf(rec, tokens, at)).length;
};
// warm-up of the detector (60 buckets) and of the JIT, then measure
run(observe, 3000 * 60 * 62 > CALLS ? CALLS : 3000 * 60 * 62, T0);
const nsAnomaly = run(observe, CALLS, T0 + 62 * 60_000);
const nsEmpty = run((rec, at) => (sink += rec.note.key === at ? 1 : 0), CALLS, T0);
const mem = process.memoryUsage().heapUsed / 1024 / 1024;
console.log(`anomaly observer: ${nsAnomaly.toFixed(0)} ns/call (empty loop ${nsEmpty.toFixed(0)} ns/call), ${CLIENTS} clients × ${KEYS} keys, ${CALLS} calls, findings ${sink}, heap ${mem.toFixed(0)} MiB`);
