#!/usr/bin/env node
// craton-trace benchmark (eBPF tracer): start-up and detach time, per-call overhead of a
// probed EVP call traced vs untraced, events per second sustained with 0 drops (loader
// alone and through the TypeScript front), RSS of loader and front.
//
// Runs standalone (`node bench/tracer-bench.mjs`) or from bench/run.mjs (runTracerBench).
// Needs root, kernel BTF, build/craton-trace-loader (npm run build) and libssl-dev for
// tracer/bench/overhead.c; without them it prints why and returns. Bounded (< 60 s).
// Writes bench/results/tracer.json.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOADER = path.join(ROOT, 'build', 'craton-trace-loader');
const FRONT = path.join(ROOT, 'bin', 'craton-trace');
const OVERHEAD = path.join(ROOT, 'build', 'tracer', 'overhead');
const CALLS = Number(process.env.TRACER_BENCH_CALLS ?? 200_000);
const DEADLINE_MS = 55_000;

function unavailable() {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return `not root (uid ${process.getuid?.()}): loading BPF programs needs root`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel without BTF (/sys/kernel/btf/vmlinux missing)';
  if (!existsSync(LOADER)) return `${LOADER} not built (npm run build)`;
  if (!existsSync(path.join(ROOT, 'dist', 'tracer', 'src', 'main.js'))) return 'dist/tracer not built (npm run build)';
  if (!existsSync('/usr/include/openssl/evp.h')) return 'libssl-dev missing (OpenSSL headers for tracer/bench/overhead.c; scripts/setup.sh installs it)';
  const r = spawnSync('make', ['-s', '-C', path.join(ROOT, 'tracer'), 'overhead'], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot build tracer/bench/overhead.c: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
  return undefined;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a process, resolves with it once `re` matches its stdout or stderr. */
function startUntil(cmd, args, re, stream = 'stdout', ms = 20_000) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(cmd)} not ready in ${ms} ms: ${out.stderr.slice(-300)}`));
    }, ms);
    for (const s of ['stdout', 'stderr'])
      child[s].setEncoding('utf8').on('data', (d) => {
        out[s] += d;
        if (s === stream && re.test(out[s]) && !child.readyMs) {
          child.readyMs = performance.now() - t0;
          clearTimeout(timer);
          resolve({ child, out });
        }
      });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!child.readyMs) reject(new Error(`${path.basename(cmd)} exited ${code}: ${out.stderr.slice(-300)}`));
    });
  });
}

const exited = (child) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));

/** SIGTERM → exit, in ms. */
async function stopMs(child) {
  const t = performance.now();
  child.kill('SIGTERM');
  await exited(child);
  return performance.now() - t;
}

/** Loader start → "ready", SIGTERM → exit; `runs` times. */
async function attachDetach(extra, runs = 3) {
  const att = [];
  const det = [];
  let ready;
  for (let i = 0; i < runs; i++) {
    const { child, out } = await startUntil(LOADER, extra, /"event_type":"ready"/);
    att.push(child.readyMs);
    ready = JSON.parse(out.stdout.split('\n').find((l) => l.includes('"ready"')));
    det.push(await stopMs(child));
  }
  return { attach_ms: round(median(att)), detach_ms: round(median(det)), runs, probes: ready.probes, links: ready.links, uprobe_multi: ready.uprobe_multi };
}

/** The generator waits on stdin; returns { child, result() }. */
async function generator(calls, rate = 0) {
  const { child, out } = await startUntil(OVERHEAD, [String(calls), 'wait', String(rate)], /waiting/);
  return {
    child,
    go: async () => {
      child.stdin.end('x');
      await exited(child);
      return JSON.parse(out.stdout.trim().split('\n').pop());
    },
  };
}

async function untraced(calls) {
  const g = await generator(calls);
  return g.go();
}

/** The loader alone, kernel-filtered to the generator: per-call cost, events, drops, RSS. */
async function tracedByLoader(calls, extra = []) {
  const g = await generator(calls);
  const { child, out } = await startUntil(LOADER, ['--pid', String(g.child.pid), '--no-files', ...extra], /"event_type":"ready"/);
  let lines = 0;
  let peak = 0;
  child.stdout.removeAllListeners('data');
  let tail = '';
  child.stdout.on('data', (d) => {
    const s = tail + d;
    const i = s.lastIndexOf('\n');
    if (i < 0) return void (tail = s);
    for (let j = s.indexOf('"crypto_op"'); j >= 0 && j < i; j = s.indexOf('"crypto_op"', j + 1)) lines++;
    out.stdout = s; // keep the last chunk for the stats line
    tail = s.slice(i + 1);
  });
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(child.pid) ?? 0)), 50);
  const r = await g.go();
  await new Promise((res) => setTimeout(res, 300)); // the loader drains every 100 ms
  clearInterval(sampler);
  peak = Math.max(peak, rssKiB(child.pid) ?? 0);
  const detach = await stopMs(child);
  const stats = /"dropped":(\d+)/.exec(out.stdout);
  return { ...r, events: lines, dropped: stats ? Number(stats[1]) : null, events_per_s: Math.round(lines / r.seconds), loader_rss_kib: peak, detach_ms: round(detach) };
}

/** The loader with a pid filter that never matches: probe trap + BPF pid test only. */
async function filteredOut(calls) {
  const { child } = await startUntil(LOADER, ['--pid', '1', '--no-files'], /"event_type":"ready"/);
  const r = await untraced(calls);
  await stopMs(child);
  return r;
}

/** `craton-trace monitor --pid N` end to end: front start-up, events written, drops, RSS. */
async function tracedByFront(calls, dir, rate = 0) {
  const g = await generator(calls, rate);
  const outFile = path.join(dir, 'front.jsonl');
  const t0 = performance.now();
  const { child, out } = await startUntil(process.execPath, [FRONT, 'monitor', '--pid', String(g.child.pid), '--output', outFile], /craton-trace: ready/, 'stderr');
  const startMs = performance.now() - t0;
  const loaderPid = Number(execFileSync('pgrep', ['-P', String(child.pid), '-f', 'craton-trace-loader'], { encoding: 'utf8' }).trim().split('\n')[0]);
  let frontPeak = 0;
  let loaderPeak = 0;
  const sample = () => {
    frontPeak = Math.max(frontPeak, rssKiB(child.pid) ?? 0);
    loaderPeak = Math.max(loaderPeak, rssKiB(loaderPid) ?? 0);
  };
  const sampler = setInterval(sample, 50);
  const tGo = performance.now();
  const r = await g.go();
  // wait until the front has written every event (or 15 s)
  const lineCount = () => {
    try {
      let n = 0;
      const s = readFileSync(outFile, 'utf8');
      for (let i = s.indexOf('"crypto_op"'); i >= 0; i = s.indexOf('"crypto_op"', i + 1)) n++;
      return n;
    } catch {
      return 0;
    }
  };
  let n = 0;
  let size = -1;
  let lastChange = performance.now();
  for (let i = 0; i < 300 && performance.now() - lastChange < 300; i++) {
    await new Promise((res) => setTimeout(res, 50));
    const s = existsSync(outFile) ? statSync(outFile).size : 0;
    if (s !== size) lastChange = performance.now();
    size = s;
  }
  const drained = lastChange - tGo; // go → last event written
  clearInterval(sampler);
  sample();
  child.kill('SIGTERM');
  await exited(child);
  n = lineCount();
  const dm = /(\d+) events dropped/.exec(out.stderr);
  rmSync(outFile, { force: true });
  return {
    rate_limit: rate || 'none',
    front_start_ms: round(startMs),
    calls: r.calls,
    events: n,
    dropped: dm ? Number(dm[1]) : 0,
    generator_seconds: r.seconds,
    generator_calls_per_s: Math.round(r.calls / r.seconds),
    end_to_end_events_per_s: Math.round(n / (drained / 1000)),
    front_rss_kib: frontPeak,
    loader_rss_kib: loaderPeak,
  };
}

export async function runTracerBench({ write = true } = {}) {
  console.log('\n--- craton-trace (eBPF tracer) ---');
  const why = unavailable();
  if (why) {
    console.log(`tracer bench skipped: ${why}`);
    return undefined;
  }
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-tracer-bench-'));
  const res = { date: new Date().toISOString(), kernel: os.release(), calls: CALLS };
  const step = async (name, fn) => {
    if (Date.now() - started > DEADLINE_MS) return void (res[name] = { skipped: 'time budget (60 s) spent' });
    try {
      res[name] = await fn();
    } catch (e) {
      res[name] = { error: String(e.message ?? e).split('\n')[0] };
    }
  };
  try {
    await step('attach_detach_uprobe_multi', () => attachDetach([]));
    await step('attach_detach_per_probe', () => attachDetach(['--no-multi'], 1));
    await step('untraced', () => untraced(CALLS));
    await step('probe_attached_event_filtered', () => filteredOut(CALLS));
    await step('traced_loader', () => tracedByLoader(CALLS));
    await step('traced_front', () => tracedByFront(CALLS, dir));
    // 0 drops through the front: if the full-speed run lost events, pace the generator
    // at 70 % of what the front wrote per second, at most twice
    let rate = res.traced_front?.dropped ? res.traced_front.end_to_end_events_per_s : 0;
    for (let i = 0; rate && i < 2 && Date.now() - started < DEADLINE_MS - 12_000; i++) {
      rate = Math.round(rate * 0.7);
      await step('traced_front_paced', () => tracedByFront(Math.min(CALLS, rate * 3), dir, rate));
      if (res.traced_front_paced?.dropped === 0) break;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  res.durationSeconds = Math.round((Date.now() - started) / 100) / 10;
  const u = res.untraced?.ns_per_call;
  const f = res.probe_attached_event_filtered?.ns_per_call;
  const t = res.traced_loader?.ns_per_call;
  const ad = res.attach_detach_uprobe_multi;
  const ap = res.attach_detach_per_probe;
  const tl = res.traced_loader;
  const tf = res.traced_front;
  console.log(`attach (start → ready) / detach (SIGTERM → exit), uprobe-multi: ${ad?.attach_ms} / ${ad?.detach_ms} ms (${ad?.probes} probes, ${ad?.links} links); per-probe fallback: ${ap?.attach_ms} / ${ap?.detach_ms} ms`);
  console.log(`per call (EVP_DigestInit_ex+Final SHA-256, ${CALLS} calls): untraced ${u} ns, probe attached + event filtered ${f} ns, traced ${t} ns → +${t && u ? round((t - u) / 1000, 2) : '?'} µs per traced call`);
  console.log(`events/s through the loader: ${tl?.events_per_s} (${tl?.events}/${tl?.calls} delivered, ${tl?.dropped} dropped), loader RSS ${tl?.loader_rss_kib} KiB`);
  console.log(`craton-trace monitor: start-up ${tf?.front_start_ms} ms, ${tf?.events}/${tf?.calls} events written, ${tf?.dropped} dropped, ${tf?.end_to_end_events_per_s} events/s end to end, RSS front ${tf?.front_rss_kib} KiB, loader ${tf?.loader_rss_kib} KiB`);
  const tp = res.traced_front_paced;
  if (tp) console.log(`craton-trace monitor paced at ${tp.rate_limit} calls/s: ${tp.events}/${tp.calls} events, ${tp.dropped} dropped`);
  const zero = [tf, tp].filter((x) => x && x.dropped === 0).map((x) => x.end_to_end_events_per_s);
  res.sustained_zero_drop_events_per_s = { loader: tl?.dropped === 0 ? tl.events_per_s : null, front: zero.length ? Math.max(...zero) : null };
  console.log(`sustained with 0 drops: loader ${res.sustained_zero_drop_events_per_s.loader ?? 'n/a'} events/s, craton-trace monitor ${res.sustained_zero_drop_events_per_s.front ?? 'n/a'} events/s`);
  for (const [k, v] of Object.entries(res)) if (v && typeof v === 'object' && (v.error || v.skipped)) console.log(`tracer bench ${k}: ${v.error ?? v.skipped}`);
  if (write) {
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench', 'results', 'tracer.json'), JSON.stringify(res, null, 2) + '\n');
    console.log(`wrote bench/results/tracer.json (${res.durationSeconds} s)`);
  }
  return res;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runTracerBench().then(
    () => process.exit(0),
    (e) => {
      console.error(`tracer bench: ${e.stack ?? e}`);
      process.exit(1);
    },
  );
}
