#!/usr/bin/env node
// `npm run bench`: Craton HSM against SoftHSM2, measured side by side in one run (~3 minutes).
//
// The clients are build/craton-loadgen (bench/loadgen/loadgen.c, built here with make): it
// dlopens the module under test, logs in, creates its keys through the module (an EC P-256, an
// RSA-2048 and an AES-256 token key) and runs each operation for a fixed time at 1, 2, 4 and 8
// client threads, one session per thread (login-cycle: one process per client, because the
// login state belongs to the application), reporting ops/s and p50/p99 latency.
//
// Targets:
//   craton-audit-all   build/libcraton_hsm.so → craton-hsmd, audit log_level = "all" (default)
//   craton-audit-none  the same with audit log_level = "none"
//   softhsm            /usr/lib/softhsm/libsofthsm2.so loaded in the client process
//   softhsm-p11kit     p11-kit-client.so → `p11-kit server` → libsofthsm2.so (same C module →
//                      Unix socket → server architecture as ours)
// Floors: an AF_UNIX 64-byte request/response ping-pong (craton-loadgen, forked echo process
// per client) and `openssl speed` for the same primitives (1 thread); append+fsync rate.
//
// Environment: BENCH_SECONDS (per cell, default 0.6), BENCH_CLIENTS (default "1,2,4,8"),
// BENCH_TARGETS (comma list, default all), BENCH_OPS (comma list, default all),
// BENCH_LOGIN_CLIENTS (default "1,2"), BENCH_LOGIN_SECONDS (default 2), BENCH_NO_OPENSSL=1 to
// skip the openssl floors.
// Prints a table and writes bench/results/latest.json.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncRate } from './lib/fsync-rate.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUR_MODULE = path.join(ROOT, 'build', 'libcraton_hsm.so');
const DAEMON = path.join(ROOT, 'bin', 'craton-hsmd');
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const LOADGEN = path.join(ROOT, 'build', 'craton-loadgen');
const SO_PIN = '12345678';
const USER_PIN = '123456';
const LABEL = 'bench';

const OPS = [
  { id: 'random32', title: 'C_GenerateRandom 32 bytes' },
  { id: 'sha256-64', title: 'C_DigestInit+C_Digest SHA-256, 64 B' },
  { id: 'sha256-1m', title: 'C_DigestInit+C_Digest SHA-256, 1 MiB' },
  { id: 'aes-gcm-4k', title: 'C_EncryptInit+C_Encrypt AES-256-GCM, 4 KiB, fresh 96-bit IV' },
  { id: 'ecdsa-p256-sign', title: 'C_SignInit+C_Sign CKM_ECDSA P-256, 32-byte hash' },
  { id: 'ecdsa-p256-verify', title: 'C_VerifyInit+C_Verify CKM_ECDSA P-256, 32-byte hash' },
  { id: 'rsa2048-sign', title: 'C_SignInit+C_Sign CKM_SHA256_RSA_PKCS, RSA-2048, 32-byte message' },
  { id: 'login-cycle', title: 'C_OpenSession+C_Login+C_Logout+C_CloseSession (one process per client)' },
];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.6);
const CLIENTS = (process.env.BENCH_CLIENTS ?? process.env.BENCH_THREADS ?? '1,2,4,8').split(',').map(Number);
const THREADS = CLIENTS;
const LOGIN_CLIENTS = (process.env.BENCH_LOGIN_CLIENTS ?? '1,2').split(',').map(Number);
const LOGIN_SECONDS = Number(process.env.BENCH_LOGIN_SECONDS ?? Math.max(SECONDS, 2));
const WANT_TARGETS = process.env.BENCH_TARGETS?.split(',');
const WANT_OPS = process.env.BENCH_OPS?.split(',');
const WARMUP_MS = 100;

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

// --- the C load generator ----------------------------------------------------------------
function buildLoadgen() {
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench', 'loadgen')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (!existsSync(LOADGEN)) throw new Error(`${LOADGEN} was not built`);
}

/** Runs craton-loadgen once (all ops × all client counts); resolves to its JSON cells. */
function loadgen(args, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(LOADGEN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    killLater(proc);
    const cells = [];
    let buf = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const c = JSON.parse(line);
        cells.push(c);
        onCell(args.name ?? '', c);
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    proc.once('exit', (code) => (code === 0 ? resolve(cells) : reject(new Error(`craton-loadgen exited ${code}: ${err.trim()}`))));
  });
}
let currentTarget = '';
function onCell(_n, c) {
  log(`${currentTarget.padEnd(17)} ${c.op.padEnd(17)} x${c.clients}: ${c.error ?? `${c.opsPerSec} ops/s (p50 ${c.p50Us} µs, p99 ${c.p99Us} µs)`}`);
}

async function benchTarget(t, ops, results) {
  currentTarget = t.name;
  const common = ['--module', t.module, '--token', LABEL, '--pin', USER_PIN, '--warmup-ms', String(WARMUP_MS)];
  const threadOps = ops.filter((o) => o.id !== 'login-cycle');
  const cells = [];
  if (threadOps.length > 0) {
    const args = [...common, '--ops', threadOps.map((o) => o.id).join(','), '--clients', CLIENTS.join(','), '--seconds', String(SECONDS)];
    if (t.setupKeys) args.push('--setup');
    cells.push(...(await loadgen(args, t.env)));
  }
  if (ops.some((o) => o.id === 'login-cycle')) {
    // One process per client, each paying a first login before the window; with the production
    // PBKDF2 count a login takes ~0.5 s, hence the longer window and fewer client counts.
    cells.push(...(await loadgen([...common, '--ops', 'login-cycle', '--clients', LOGIN_CLIENTS.join(','), '--seconds', String(LOGIN_SECONDS)], t.env)));
  }
  for (const c of cells) {
    results[c.op] ??= {};
    results[c.op][c.clients] ??= {};
    results[c.op][c.clients][t.name] = c.error ? { error: c.error } : { opsPerSec: c.opsPerSec, p50Us: c.p50Us, p99Us: c.p99Us, mode: c.mode };
  }
}

// --- openssl speed floors (1 thread, in-process software crypto, no PKCS#11) -------------
function opensslFloors() {
  const out = {};
  const speed = (args) => execFileSync('openssl', ['speed', '-mr', '-seconds', '1', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  try {
    // OpenSSL 3.0 -mr lines: +F4:<n>:256:<signs/s>:<verifies/s> (ECDSA), +F2:<n>:2048:<signs/s>:…
    // (RSA), +F:<n>:<name>:<bytes/s at the -bytes size> (ciphers, digests).
    const ec = /^\+F4:\d+:256:([\d.]+):([\d.]+)/m.exec(speed(['ecdsap256']));
    if (ec) {
      out['ecdsa-p256-sign'] = Math.round(Number(ec[1]));
      out['ecdsa-p256-verify'] = Math.round(Number(ec[2]));
    }
    const rsa = /^\+F2:\d+:2048:([\d.]+):/m.exec(speed(['rsa2048']));
    if (rsa) out['rsa2048-sign'] = Math.round(Number(rsa[1]));
    const gcm = /^\+F:\d+:aes-256-gcm:([\d.]+)/im.exec(speed(['-evp', 'aes-256-gcm', '-bytes', '4096']));
    if (gcm) out['aes-gcm-4k'] = Math.round(Number(gcm[1]) / 4096);
    const sha = /^\+F:\d+:sha256:([\d.]+)/im.exec(speed(['-evp', 'sha256', '-bytes', '64']));
    if (sha) out['sha256-64'] = Math.round(Number(sha[1]) / 64);
    const shaM = /^\+F:\d+:sha256:([\d.]+)/im.exec(speed(['-evp', 'sha256', '-bytes', '1048576']));
    if (shaM) out['sha256-1m'] = Math.round(Number(shaM[1]) / 1048576);
  } catch (e) {
    log(`openssl speed failed: ${e.message}`);
  }
  return out;
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
  if (c.error) return c.error.replace(/^CKR_/, '').replace(/ in .*/, '');
  return c.opsPerSec >= 100 ? String(Math.round(c.opsPerSec)) : c.opsPerSec.toFixed(1);
}
function ratio(a, b) {
  if (!a || !b || a.error || b.error) return '-';
  if (!b.opsPerSec) return '-';
  return `${(a.opsPerSec / b.opsPerSec).toFixed(a.opsPerSec / b.opsPerSec < 0.01 ? 3 : 2)}x`;
}
function table(results, floors, ops) {
  const head = ['operation', 'clients', ...TARGET_COLS.map((c) => c[1]), 'all÷sh', 'all÷p11k', 'none÷sh', 'none÷p11k', 'openssl'];
  const rows = [head];
  for (const op of ops) {
    for (const n of op.id === 'login-cycle' ? LOGIN_CLIENTS : THREADS) {
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

function latencyTable(results, ops) {
  const n = CLIENTS.includes(2) ? 2 : CLIENTS[0];
  const head = ['p50/p99 µs', 'clients', ...TARGET_COLS.map((c) => c[1])];
  const rows = [head];
  for (const op of ops) {
    const r = results[op.id]?.[n] ?? {};
    rows.push([op.id, String(n), ...TARGET_COLS.map(([k]) => (r[k] && !r[k].error && r[k].p50Us != null ? `${Math.round(r[k].p50Us)}/${Math.round(r[k].p99Us)}` : '-'))]);
  }
  const w = head.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, ri) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (ri === 0 ? `\n${w.map((x) => '-'.repeat(x)).join('  ')}` : '')).join('\n');
}

// --- main --------------------------------------------------------------------------------
async function main() {
  const started = Date.now();
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  for (const f of [OUR_MODULE, DAEMON, SOFTHSM, P11KIT_CLIENT]) if (!existsSync(f)) throw new Error(`${f} is missing (npm run build; scripts/setup.sh installs softhsm2 and p11-kit)`);
  const ops = OPS.filter((o) => !WANT_OPS || WANT_OPS.includes(o.id));
  const want = (n) => !WANT_TARGETS || WANT_TARGETS.includes(n);
  const results = {};
  const targetErrors = {};

  buildLoadgen();
  const shEnv = softhsmEnv();
  let pingpong = [];
  const plan = [
    [
      'unix-pingpong',
      async () => {
        currentTarget = 'floor';
        pingpong = await loadgen(['--ops', 'unix-pingpong', '--clients', CLIENTS.join(','), '--seconds', String(SECONDS), '--warmup-ms', String(WARMUP_MS)], process.env);
        return null;
      },
    ],
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
      if (!t) continue;
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
  const fsyncPerSec = fsyncRate(tmp, 64);

  const out = {
    date: new Date().toISOString(),
    secondsPerCell: SECONDS,
    threads: THREADS,
    machine: { ...versions(), loadavgAtStart: loadAtStart, loadavgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    operations: Object.fromEntries(ops.map((o) => [o.id, o.title])),
    targets: Object.fromEntries(TARGET_COLS),
    results,
    unixPingPong: Object.fromEntries(pingpong.map((c) => [c.clients, c.error ? { error: c.error } : { opsPerSec: c.opsPerSec, p50Us: c.p50Us, p99Us: c.p99Us }])),
    opensslSpeed1Thread: floors,
    fsyncPerSec,
    targetErrors,
    durationSeconds: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`Craton HSM bench (build/craton-loadgen) — ops/s summed over clients; ratios are ours ÷ peer; ${SECONDS}s per cell`);
  console.log(`${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, softhsm2 ${out.machine.softhsm2}, p11-kit ${out.machine.p11kit}; load average ${loadAtStart[0]} at start, ${out.machine.loadavgAtEnd[0]} at end`);
  console.log(table(results, floors, ops));
  console.log(latencyTable(results, ops));
  console.log(`floor: AF_UNIX 64 B ping-pong (C client thread ↔ forked C echo process): ${pingpong.map((c) => `x${c.clients} ${c.opsPerSec ?? c.error}/s p50 ${c.p50Us} µs`).join(', ')}`);
  console.log(`floor: ${fsyncPerSec} append+fsync/s on ${os.tmpdir()} (1 thread); openssl column: \`openssl speed\`, 1 thread`);
  for (const [k, v] of Object.entries(targetErrors)) console.log(`target ${k} failed: ${v}`);
  console.log(`wrote bench/results/latest.json (${out.durationSeconds} s)`);
  await (await import('./tracer-bench.mjs')).runTracerBench(); // eBPF tracer section (bench/tracer-bench.mjs)
  if (!process.env.BENCH_NO_AUDIT) execFileSync(process.execPath, [path.join(ROOT, 'bench', 'audit-bench.mjs')], { stdio: 'inherit' }); // audit section (bench/audit-bench.mjs; BENCH_NO_AUDIT=1 skips)
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
