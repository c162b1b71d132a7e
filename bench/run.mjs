#!/usr/bin/env node
// `npm run bench`: Craton HSM against SoftHSM2, measured side by side in one run.
//
// Targets (each gets its own token holding an EC P-256, an RSA-2048 and an AES-256 key,
// created through the module under test):
//   craton-audit-all   build/libcraton_hsm.so → craton-hsmd, audit log_level = "all" (default)
//   craton-audit-none  the same with audit log_level = "none"
//   softhsm            /usr/lib/softhsm/libsofthsm2.so loaded in the client process
//   softhsm-p11kit     p11-kit-client.so → `p11-kit server` → libsofthsm2.so (same C module →
//                      Unix socket → server architecture as ours)
// Operations, each at 1 and 2 client processes (one session and one login per process; pkcs11js
// is synchronous, so concurrency = processes): see OPS below.
// Floors: `openssl speed` for the same primitives (1 thread).
//
// Environment: BENCH_SECONDS (per cell, default 1.2), BENCH_THREADS (default "1,2"),
// BENCH_TARGETS (comma list, default all), BENCH_OPS (comma list, default all),
// BENCH_NO_OPENSSL=1 to skip the floors.
// Prints a table and writes bench/results/latest.json.
import { execFileSync, fork, spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUR_MODULE = path.join(ROOT, 'build', 'libcraton_hsm.so');
const DAEMON = path.join(ROOT, 'bin', 'craton-hsmd');
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const WORKER = path.join(ROOT, 'bench', 'worker.mjs');
const SO_PIN = '12345678';
const USER_PIN = '123456';
const LABEL = 'bench';

const OPS = [
  { id: 'ecdsa-p256-sign', title: 'C_Sign ECDSA P-256 (CKM_ECDSA, 32-byte hash)' },
  { id: 'rsa2048-sign', title: 'C_Sign CKM_SHA256_RSA_PKCS, RSA-2048, 32-byte message' },
  { id: 'aes-gcm-1k', title: 'C_EncryptInit+C_Encrypt AES-256-GCM, 1 KiB, 96-bit IV' },
  { id: 'sha256-1k', title: 'C_DigestInit+C_Digest SHA-256, 1 KiB' },
  { id: 'random32', title: 'C_GenerateRandom 32 bytes' },
  { id: 'ec-keygen', title: 'C_GenerateKeyPair EC P-256 (session objects)' },
];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.2);
const THREADS = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number);
const WANT_TARGETS = process.env.BENCH_TARGETS?.split(',');
const WANT_OPS = process.env.BENCH_OPS?.split(',');
const WARMUP_MS = 150;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-bench-'));
const cleanups = [];
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      /* best effort */
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const log = (s) => process.stderr.write(`bench: ${s}\n`);

function waitForLine(proc, re, what, ms = 30_000) {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no ready line within ${ms} ms\n${out}\n${err}`)), ms);
    proc.stderr?.setEncoding('utf8').on('data', (d) => (err += d));
    proc.stdout.setEncoding('utf8');
    const onData = (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.off('data', onData);
        proc.stdout.resume();
        resolve(m);
      }
    };
    proc.stdout.on('data', onData);
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${code}, signal ${sig})\n${out}\n${err}`));
    });
  });
}

function killLater(proc) {
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
}

async function startCraton(name, auditLevel) {
  const dir = path.join(tmp, name);
  mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
  const sock = path.join(dir, 'data', 'hsm.sock');
  const cfg = path.join(dir, 'craton_hsm.toml');
  writeFileSync(cfg, `[audit]\nlog_level = "${auditLevel}"\n`);
  const proc = spawn(process.execPath, [DAEMON, '--config', cfg, '--data-dir', path.join(dir, 'data'), '--socket', sock], {
    cwd: ROOT,
    env: { ...process.env, CRATON_HSM_CONFIG: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killLater(proc);
  await waitForLine(proc, /^craton-hsmd ready: /m, 'craton-hsmd');
  const env = { ...process.env, CRATON_HSM_SOCKET: sock };
  const tool = (args) => execFileSync('pkcs11-tool', ['--module', OUR_MODULE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  tool(['--init-token', '--slot', '0', '--label', LABEL, '--so-pin', SO_PIN]);
  tool(['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
  return { name, module: OUR_MODULE, env, setupKeys: true, proc };
}

function softhsmEnv() {
  const dir = path.join(tmp, 'softhsm');
  mkdirSync(path.join(dir, 'tokens'), { recursive: true });
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--so-pin', SO_PIN, '--pin', USER_PIN], { env, stdio: 'pipe' });
  return env;
}

async function startP11kitServer(shEnv) {
  const sock = path.join(tmp, 'p11kit.sock');
  const proc = spawn('p11-kit', ['server', '--provider', SOFTHSM, '-f', '-n', sock, `pkcs11:token=${LABEL}`], {
    env: shEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killLater(proc);
  const m = await waitForLine(proc, /^P11_KIT_SERVER_ADDRESS=([^;]+);/m, 'p11-kit server');
  return { name: 'softhsm-p11kit', module: P11KIT_CLIENT, env: { ...shEnv, P11_KIT_SERVER_ADDRESS: m[1] }, setupKeys: false, proc };
}

// --- workers ---------------------------------------------------------------------------
function spawnWorker(t) {
  const child = fork(WORKER, [t.module, LABEL, USER_PIN], { env: t.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  killLater(child);
  const queue = [];
  child.on('message', (m) => queue.shift()?.resolve(m));
  child.on('exit', (code, sig) => {
    for (const q of queue.splice(0)) q.reject(new Error(`${t.name} worker exited (code ${code}, signal ${sig})`));
  });
  const next = () => new Promise((resolve, reject) => queue.push({ resolve, reject }));
  const ready = next();
  return {
    ready,
    ask(msg) {
      const p = next();
      child.send(msg);
      return p;
    },
    quit() {
      child.send({ cmd: 'quit' });
      return new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

async function benchTarget(t, ops, results) {
  const maxThreads = Math.max(...THREADS);
  const workers = [];
  for (let i = 0; i < maxThreads; i++) {
    const w = spawnWorker(t);
    const r = await w.ready; // one at a time: the logins of one application are serialised anyway
    if (!r.ready) throw new Error(`${t.name} worker: ${JSON.stringify(r)}`);
    workers.push(w);
  }
  if (t.setupKeys) {
    const r = await workers[0].ask({ cmd: 'setup' });
    if (r.error) throw new Error(`${t.name}: key setup failed: ${r.error}`);
  }
  for (const op of ops) {
    for (const n of THREADS) {
      const rs = await Promise.all(workers.slice(0, n).map((w) => w.ask({ cmd: 'run', op: op.id, warmupMs: WARMUP_MS, ms: SECONDS * 1000 })));
      const err = rs.find((r) => r.error);
      let cell;
      if (err) cell = { error: err.error };
      else {
        const opsPerSec = rs.reduce((a, r) => a + (r.ops * 1000) / r.elapsedMs, 0);
        cell = {
          opsPerSec: Math.round(opsPerSec),
          p50Us: Math.round(rs.reduce((a, r) => a + r.p50Us, 0) / rs.length),
          p99Us: Math.max(...rs.map((r) => r.p99Us)),
        };
      }
      results[op.id] ??= {};
      results[op.id][n] ??= {};
      results[op.id][n][t.name] = cell;
      log(`${t.name.padEnd(17)} ${op.id.padEnd(16)} x${n}: ${cell.error ?? `${cell.opsPerSec} ops/s (p50 ${cell.p50Us} µs, p99 ${cell.p99Us} µs)`}`);
    }
  }
  await Promise.all(workers.map((w) => w.quit()));
}

// --- openssl speed floors (1 thread, in-process software crypto, no PKCS#11) -------------
function opensslFloors() {
  const out = {};
  const speed = (args) => execFileSync('openssl', ['speed', '-mr', '-seconds', '1', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  try {
    // OpenSSL 3.0 -mr lines: +F4:<n>:256:<signs/s>:<verifies/s> (ECDSA), +F2:<n>:2048:<signs/s>:…
    // (RSA), +F:<n>:<name>:<bytes/s at the -bytes size> (ciphers, digests).
    const ec = /^\+F4:\d+:256:([\d.]+):/m.exec(speed(['ecdsap256']));
    if (ec) out['ecdsa-p256-sign'] = Math.round(Number(ec[1]));
    const rsa = /^\+F2:\d+:2048:([\d.]+):/m.exec(speed(['rsa2048']));
    if (rsa) out['rsa2048-sign'] = Math.round(Number(rsa[1]));
    const gcm = /^\+F:\d+:aes-256-gcm:([\d.]+)/im.exec(speed(['-evp', 'aes-256-gcm', '-bytes', '1024']));
    if (gcm) out['aes-gcm-1k'] = Math.round(Number(gcm[1]) / 1024);
    const sha = /^\+F:\d+:sha256:([\d.]+)/im.exec(speed(['-evp', 'sha256', '-bytes', '1024']));
    if (sha) out['sha256-1k'] = Math.round(Number(sha[1]) / 1024);
  } catch (e) {
    log(`openssl speed failed: ${e.message}`);
  }
  return out;
}

/** Floor for audited operations: 64-byte append + fsync per op, 1 s, on the bench temp dir's filesystem. */
function fsyncRate() {
  const fd = openSync(path.join(tmp, 'fsync-probe'), 'a');
  const line = Buffer.alloc(64, 0x61);
  let n = 0;
  const end = performance.now() + 1000;
  while (performance.now() < end) {
    writeSync(fd, line);
    fsyncSync(fd);
    n++;
  }
  closeSync(fd);
  return n;
}

function versions() {
  const pkg = (p) => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return null;
    }
  };
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model;
  return {
    cpu,
    cores: os.availableParallelism(),
    kernel: os.release(),
    node: process.version,
    softhsm2: pkg('softhsm2'),
    p11kit: pkg('p11-kit'),
    openssl: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
    craton: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
  };
}

// --- table -------------------------------------------------------------------------------
const TARGET_COLS = [
  ['craton-audit-all', 'ours(audit all)'],
  ['craton-audit-none', 'ours(audit none)'],
  ['softhsm', 'softhsm2'],
  ['softhsm-p11kit', 'softhsm2+p11kit'],
];
function fmtCell(c) {
  if (!c) return '-';
  if (c.error) return c.error.replace(/^CKR_/, '');
  return String(c.opsPerSec);
}
function ratio(a, b) {
  if (!a || !b || a.error || b.error) return '-';
  return `${(a.opsPerSec / b.opsPerSec).toFixed(2)}x`;
}
function table(results, floors, ops) {
  const head = ['operation', 'thr', ...TARGET_COLS.map((c) => c[1]), 'all÷sh', 'all÷p11k', 'none÷sh', 'none÷p11k', 'openssl'];
  const rows = [head];
  for (const op of ops) {
    for (const n of THREADS) {
      const r = results[op.id]?.[n] ?? {};
      rows.push([
        op.id,
        String(n),
        ...TARGET_COLS.map(([k]) => fmtCell(r[k])),
        ratio(r['craton-audit-all'], r.softhsm),
        ratio(r['craton-audit-all'], r['softhsm-p11kit']),
        ratio(r['craton-audit-none'], r.softhsm),
        ratio(r['craton-audit-none'], r['softhsm-p11kit']),
        n === 1 && floors[op.id] ? String(floors[op.id]) : '',
      ]);
    }
  }
  const w = head.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, ri) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (ri === 0 ? `\n${w.map((x) => '-'.repeat(x)).join('  ')}` : '')).join('\n');
}

// --- main --------------------------------------------------------------------------------
async function main() {
  const started = Date.now();
  for (const f of [OUR_MODULE, DAEMON, SOFTHSM, P11KIT_CLIENT]) if (!existsSync(f)) throw new Error(`${f} is missing (npm run build; scripts/setup.sh installs softhsm2 and p11-kit)`);
  const ops = OPS.filter((o) => !WANT_OPS || WANT_OPS.includes(o.id));
  const want = (n) => !WANT_TARGETS || WANT_TARGETS.includes(n);
  const results = {};
  const targetErrors = {};

  const shEnv = softhsmEnv();
  const plan = [
    ['craton-audit-all', () => startCraton('craton-audit-all', 'all')],
    ['craton-audit-none', () => startCraton('craton-audit-none', 'none')],
    ['softhsm', async () => ({ name: 'softhsm', module: SOFTHSM, env: shEnv, setupKeys: true })],
    // After "softhsm": the server serves the token (and keys) that target created.
    ['softhsm-p11kit', () => startP11kitServer(shEnv)],
  ];
  for (const [name, start] of plan) {
    if (!want(name)) continue;
    try {
      const t = await start();
      if (name === 'softhsm-p11kit' && !want('softhsm')) {
        throw new Error('softhsm-p11kit needs the softhsm target (it creates the keys)');
      }
      await benchTarget(t, ops, results);
      if (t.proc) t.proc.kill('SIGTERM');
    } catch (e) {
      targetErrors[name] = String(e.message ?? e).split('\n')[0];
      log(`${name}: ${e.message}`);
    }
  }
  const floors = process.env.BENCH_NO_OPENSSL ? {} : opensslFloors();
  const fsyncPerSec = fsyncRate();

  const out = {
    date: new Date().toISOString(),
    secondsPerCell: SECONDS,
    threads: THREADS,
    machine: { ...versions(), loadavgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    operations: Object.fromEntries(ops.map((o) => [o.id, o.title])),
    targets: Object.fromEntries(TARGET_COLS),
    results,
    opensslSpeed1Thread: floors,
    fsyncPerSec,
    targetErrors,
    durationSeconds: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`Craton HSM bench — ops/s summed over client processes; ratios are ours ÷ peer (${SECONDS}s per cell)`);
  console.log(`${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, softhsm2 ${out.machine.softhsm2}, p11-kit ${out.machine.p11kit}`);
  console.log(table(results, floors, ops));
  console.log(`floor: ${fsyncPerSec} append+fsync/s on ${os.tmpdir()} (1 thread); openssl column: \`openssl speed\`, 1 thread`);
  for (const [k, v] of Object.entries(targetErrors)) console.log(`target ${k} failed: ${v}`);
  console.log(`wrote bench/results/latest.json (${out.durationSeconds} s)`);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (e) => {
    console.error(`bench: ${e.stack ?? e}`);
    cleanup();
    process.exit(1);
  },
);
