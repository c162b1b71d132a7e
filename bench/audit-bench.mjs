#!/usr/bin/env node
// The audit section of `npm run bench` (bench/run.mjs calls it last; also runs alone:
// `node bench/audit-bench.mjs`). Needs `npm run build`.
//
// 1. Audited throughput through the real stack (pkcs11js → libcraton_hsm.so → craton-hsmd):
//    [audit] log_level = "all" (an fsync'd, group-committed entry per call; the reply waits
//    for it) vs "none", at 1 and 8 client processes. Operations: C_Sign ECDSA P-256 (two
//    audited calls per op: C_SignInit + C_Sign) and C_GenerateRandom 32 bytes (one).
// 2. The writer alone, in process: sequential appends (1 in flight) and 8 in flight.
// 3. Verification speed: a 1,000,000-entry log made with the writer in a temp dir
//    (checkpoints every 10,000 entries, as the default config), then verifySegments with
//    every layer (previous_hash, seq, chain, HMAC, checkpoint signatures): entries/s.
//
// Environment: AUDIT_BENCH_SECONDS (per cell, default 2), AUDIT_BENCH_ENTRIES (default
// 1000000), AUDIT_BENCH_THREADS (default "1,8"), AUDIT_BENCH_SKIP=daemon,writer,verify,
// AUDIT_BENCH_TMPDIR (default os.tmpdir(); /dev/shm isolates the CPU cost per entry from the disk),
// AUDIT_BENCH_DAEMON_NODE_ARGS (node flags for the daemons, e.g. --cpu-prof --cpu-prof-dir=DIR).
// Prints a table; writes bench/results/audit-latest.json.
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncRate } from './lib/fsync-rate.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist', 'hsm-daemon', 'src', 'audit');
const MODULE = path.join(ROOT, 'build', 'libcraton_hsm.so');
const DAEMON = path.join(ROOT, 'bin', 'craton-hsmd');
const WORKER = path.join(ROOT, 'bench', 'audit-worker.mjs');
const SO_PIN = '12345678';
const USER_PIN = '123456';
const LABEL = 'bench';
const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 2);
const THREADS = (process.env.AUDIT_BENCH_THREADS ?? '1,8').split(',').map(Number);
const N_VERIFY = Number(process.env.AUDIT_BENCH_ENTRIES ?? 1_000_000);
const SKIP = new Set((process.env.AUDIT_BENCH_SKIP ?? '').split(',').filter(Boolean));
const OPS = ['ecdsa-p256-sign', 'random32'];
/** Node flags for the daemons, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the audit path. */
const DAEMON_NODE_ARGS = (process.env.AUDIT_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);

const TMPDIR = process.env.AUDIT_BENCH_TMPDIR ?? os.tmpdir();
const tmp = mkdtempSync(path.join(TMPDIR, 'craton-audit-bench-'));
const killers = [];
function cleanup() {
  for (const k of killers.splice(0)) {
    try {
      k();
    } catch {
      /* best effort */
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const log = (s) => process.stderr.write(`audit-bench: ${s}\n`);

// ---- 1. the daemon ------------------------------------------------------------------------
async function startDaemon(level) {
  const dir = path.join(tmp, `d-${level}`);
  mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
  const sock = path.join(dir, 'data', 'hsm.sock');
  const cfg = path.join(dir, 'craton_hsm.toml');
  writeFileSync(cfg, `[audit]\nlog_level = "${level}"\n`);
  const proc = spawn(process.execPath, [...DAEMON_NODE_ARGS, DAEMON, '--config', cfg, '--data-dir', path.join(dir, 'data'), '--socket', sock], {
    cwd: ROOT,
    env: { ...process.env, CRATON_HSM_CONFIG: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killers.push(() => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL'));
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`craton-hsmd (${level}) not ready\n${err}`)), 30_000);
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (/^craton-hsmd ready: /m.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once('exit', (c) => reject(new Error(`craton-hsmd exited ${c}\n${err}`)));
  });
  const env = { ...process.env, CRATON_HSM_SOCKET: sock };
  const tool = (args) => execFileSync('pkcs11-tool', ['--module', MODULE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  tool(['--init-token', '--slot', '0', '--label', LABEL, '--so-pin', SO_PIN]);
  tool(['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
  return { proc, env, logFile: path.join(dir, 'data', 'craton_hsm_audit.jsonl') };
}

function spawnWorker(env) {
  const child = fork(WORKER, [MODULE, LABEL, USER_PIN], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  killers.push(() => child.exitCode === null && child.kill('SIGKILL'));
  const q = [];
  child.on('message', (m) => q.shift()?.(m));
  const next = () => new Promise((r) => q.push(r));
  const ready = next();
  return {
    ready,
    ask(msg) {
      const p = next();
      child.send(msg);
      return p;
    },
    quit: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.send({ cmd: 'quit' })))),
  };
}

async function benchDaemon(level, results) {
  const d = await startDaemon(level);
  const workers = [];
  for (let i = 0; i < Math.max(...THREADS); i++) {
    const w = spawnWorker(d.env);
    const r = await w.ready;
    if (!r.ready) throw new Error(`worker: ${JSON.stringify(r)}`);
    workers.push(w);
  }
  const s = await workers[0].ask({ cmd: 'setup' });
  if (s.error) throw new Error(`setup: ${s.error}`);
  for (const op of OPS) {
    for (const n of THREADS) {
      const before = level === 'none' ? 0 : statSync(d.logFile).size;
      const rs = await Promise.all(workers.slice(0, n).map((w) => w.ask({ cmd: 'run', op, warmupMs: 200, ms: SECONDS * 1000 })));
      const bad = rs.find((r) => r.error);
      const cell = bad
        ? { error: bad.error }
        : {
            opsPerSec: Math.round(rs.reduce((a, r) => a + (r.ops * 1000) / r.elapsedMs, 0)),
            p50Us: Math.round(rs.reduce((a, r) => a + r.p50Us, 0) / rs.length),
            p99Us: Math.max(...rs.map((r) => r.p99Us)),
            logBytes: level === 'none' ? 0 : statSync(d.logFile).size - before,
          };
      ((results[op] ??= {})[n] ??= {})[level] = cell;
      log(`log_level=${level.padEnd(4)} ${op.padEnd(16)} x${n}: ${cell.error ?? `${cell.opsPerSec} ops/s (p50 ${cell.p50Us} µs, p99 ${cell.p99Us} µs)`}`);
    }
  }
  await Promise.all(workers.map((w) => w.quit()));
  d.proc.kill('SIGTERM');
  await new Promise((r) => (d.proc.exitCode !== null ? r() : d.proc.once('exit', r)));
}

// ---- 2/3. the writer and the verifier, in process --------------------------------------------
const { AuditWriter } = await import(path.join(DIST, 'writer.js'));
const { loadOrCreateSigner } = await import(path.join(DIST, 'checkpoint.js'));
const { verifySegments } = await import(path.join(DIST, 'verify.js'));
const { collectAudit } = await import(path.join(ROOT, 'dist', 'admin-cli', 'src', 'evidence', 'collect.js'));

function newWriter(dir, checkpointInterval = 10_000) {
  return new AuditWriter({
    logPath: path.join(dir, 'craton_hsm_audit.jsonl'),
    dataDir: dir,
    maxSegmentBytes: 64 * 1024 ** 3,
    checkpointInterval,
    signer: loadOrCreateSigner(dir),
    log: () => undefined,
    actor: { pid: process.pid, uid: 0, exe: process.execPath },
  });
}
let ts = 1_700_000_000;
const draft = (i) => ({
  timestamp: ts + Math.floor(i / 1000),
  session_handle: 1 + (i % 8),
  operation: i % 2 ? 'Sign' : 'SignInit',
  key_id: 42,
  result: { Success: null },
  pid: 4242 + (i % 8),
  uid: 1000,
  exe: '/usr/bin/pkcs11-tool',
  mechanism: 'CKM_ECDSA',
  fips_approved: true,
});

async function benchWriter() {
  const out = {};
  const dir = path.join(tmp, 'writer');
  mkdirSync(dir, { mode: 0o700 });
  const w = newWriter(dir);
  await w.open();
  for (const conc of THREADS) {
    let n = 0;
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (performance.now() < end) await w.append(draft(n++));
      }),
    );
    out[conc] = Math.round((n * 1000) / (performance.now() - t0));
    log(`writer, ${conc} append(s) in flight: ${out[conc]} entries/s`);
  }
  await w.close();
  return out;
}

async function benchVerify() {
  const dir = path.join(tmp, 'verify');
  mkdirSync(dir, { mode: 0o700 });
  const w = newWriter(dir);
  await w.open();
  const t0 = performance.now();
  const BATCH = 20_000;
  for (let i = 0; i < N_VERIFY; i += BATCH) {
    const ps = [];
    for (let j = i; j < Math.min(N_VERIFY, i + BATCH); j++) ps.push(w.append(draft(j)));
    await Promise.all(ps);
  }
  await w.checkpoint('bench');
  await w.close();
  const genS = (performance.now() - t0) / 1000;
  const file = path.join(dir, 'craton_hsm_audit.jsonl');
  const bytes = statSync(file).size;
  log(`generated ${N_VERIFY} entries (${(bytes / 1024 ** 2).toFixed(0)} MiB) with the writer in ${genS.toFixed(1)} s`);
  const initialKey = Buffer.from(readFileSync(path.join(dir, 'audit-hmac-initial.key'), 'utf8').trim(), 'hex');
  const publicKey = createPublicKey(readFileSync(path.join(dir, 'audit-checkpoint-pub.pem')));
  const t1 = performance.now();
  const r = await verifySegments([file], { initialKey, publicKey });
  const verS = (performance.now() - t1) / 1000;
  if (!r.ok) throw new Error(`verification failed: ${JSON.stringify(r.failure)}`);
  // The evidence report's aggregation pass over the same log (`craton-hsm-admin evidence`
  // reads the log twice: this pass, then verifySegments above).
  const t2 = performance.now();
  const ev = await collectAudit([file], { since: 0, until: Math.ceil(Date.now() / 1000) + 60 });
  const evS = (performance.now() - t2) / 1000;
  const res = {
    evidenceSeconds: Math.round(evS * 10) / 10,
    evidenceEntriesPerSec: Math.round(r.entries / evS),
    entries: r.entries,
    bytes,
    generateSeconds: Math.round(genS * 10) / 10,
    generateEntriesPerSec: Math.round(r.entries / genS),
    verifySeconds: Math.round(verS * 10) / 10,
    verifyEntriesPerSec: Math.round(r.entries / verS),
    checkpointsVerified: r.checkpointsVerified,
    layers: r.layers,
  };
  log(`verified ${r.entries} entries (${r.checkpointsVerified} signed checkpoints, layers: ${r.layers.join(', ')}) in ${verS.toFixed(1)} s = ${res.verifyEntriesPerSec} entries/s`);
  log(`evidence aggregation over the same log: ${evS.toFixed(1)} s = ${res.evidenceEntriesPerSec} entries/s`);
  return res;
}


// ---- main ------------------------------------------------------------------------------------
async function main() {
  const started = Date.now();
  const out = { date: new Date().toISOString(), secondsPerCell: SECONDS, threads: THREADS, cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version };
  out.fsyncPerSec = fsyncRate(tmp, 300);
  if (!SKIP.has('daemon')) {
    out.daemon = {};
    for (const level of ['all', 'none']) {
      try {
        await benchDaemon(level, out.daemon);
      } catch (e) {
        log(`log_level=${level}: ${e.message}`);
        out.daemonError = String(e.message).split('\n')[0];
      }
    }
  }
  if (!SKIP.has('writer')) out.writer = await benchWriter();
  if (!SKIP.has('verify')) out.verify = await benchVerify();
  out.durationSeconds = Math.round((Date.now() - started) / 1000);
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench', 'results', 'audit-latest.json'), JSON.stringify(out, null, 2) + '\n');

  console.log(`\nAudit log bench (${SECONDS}s per cell; fsync floor ${out.fsyncPerSec} append+fsync/s on ${TMPDIR}, 1 thread)`);
  if (out.daemon) {
    const rows = [['operation', 'clients', 'audit all ops/s', 'audit none ops/s', 'all÷none', 'p50 all µs', 'p99 all µs']];
    for (const op of OPS)
      for (const n of THREADS) {
        const c = out.daemon[op]?.[n] ?? {};
        const a = c.all;
        const z = c.none;
        rows.push([op, String(n), a?.error ?? String(a?.opsPerSec ?? '-'), z?.error ?? String(z?.opsPerSec ?? '-'), a?.opsPerSec && z?.opsPerSec ? `${(a.opsPerSec / z.opsPerSec).toFixed(2)}x` : '-', String(a?.p50Us ?? '-'), String(a?.p99Us ?? '-')]);
      }
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const [i, r] of rows.entries()) console.log(r.map((c, j) => (j < 1 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ') + (i === 0 ? `\n${w.map((x) => '-'.repeat(x)).join('  ')}` : ''));
    console.log('ecdsa-p256-sign = C_SignInit + C_Sign: two audited entries, two synced writes per op at 1 client.');
  }
  if (out.writer) console.log(`writer alone: ${THREADS.map((n) => `${out.writer[n]} entries/s with ${n} in flight`).join(', ')}`);
  if (out.verify)
    console.log(
      `verify: ${out.verify.entries} entries (${(out.verify.bytes / 1024 ** 2).toFixed(0)} MiB, all layers) in ${out.verify.verifySeconds} s = ${out.verify.verifyEntriesPerSec} entries/s (generated in ${out.verify.generateSeconds} s)`,
      `\nevidence aggregation of the same log: ${out.verify.evidenceSeconds} s = ${out.verify.evidenceEntriesPerSec} entries/s`,
    );
  console.log(`wrote bench/results/audit-latest.json (${out.durationSeconds} s)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`audit-bench: ${e.stack ?? e}`);
    process.exit(1);
  },
);
