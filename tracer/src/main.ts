// craton-trace: which algorithms do processes that call OpenSSL directly actually use,
// with the daemon's FIPS verdict; optionally stop non-approved calls (strict mode).
// docs/tracer.md describes the commands, the events and what enforcement can and cannot do.
import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, readdirSync, readFileSync, readlinkSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import { loadConfig } from '../../hsm-daemon/src/config/load.js';
import type { Config } from '../../hsm-daemon/src/config/types.js';
import { Alerts } from '../../hsm-daemon/src/alerts/index.js';
import { blockRules, type EnforceMode } from './classify.js';
import { libraryName, type CryptoOpEvent, type TraceEvent } from './events.js';
import { makeFilter, type FilterOptions } from './filter.js';
import { redactEvent, redactPath } from './redact.js';
import { buildReport, reportText } from './report.js';
import { listNids, TraceSession, type SessionOptions } from './session.js';

interface CommonOpts {
  config?: string;
  pid?: string;
  name?: string;
  library?: string;
  file?: string;
  filter?: string;
  exclude?: string[];
  sampleRate?: string;
  redact: boolean;
  duration?: string;
  output?: string;
  syslog?: boolean;
  format: 'json' | 'text';
  enforce?: EnforceMode;
  signal: 'KILL' | 'STOP';
  allow?: string[];
  enforceOnly?: string[];
  binary?: string[];
  allPids?: boolean;
  libcrypto?: string;
  libssl?: string;
  alertWebhook?: string;
  alerts: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function addCommon(c: Command, withEnforce: boolean): Command {
  c.option('--config <path>', 'daemon TOML configuration: [algorithms] decides verdicts, [alerts] the sinks')
    .option('-p, --pid <pid>', 'only this process')
    .option('-n, --name <substr>', 'only processes whose name contains this')
    .option('-l, --library <substr>', 'only lib_load events whose path contains this')
    .option('-f, --file <glob>', 'only file_open events whose path matches this glob')
    .option('--filter <expr>', 'FIPS-Traces expression, e.g. "operation:ENCRYPT AND algorithm:AES*" or "binary:/usr/bin/*"')
    .option('--exclude <glob>', 'drop events whose binary/file/library path matches (repeatable)', collect)
    .option('--sample-rate <r>', 'keep this fraction (0..1] of ALLOWED crypto_op events; warnings and blocks are always kept')
    .option('--no-redact', 'show home directories unredacted')
    .option('-d, --duration <seconds>', 'stop after this many seconds')
    .option('-o, --output <file>', 'append events to this file instead of stdout')
    .option('--syslog', 'send events to syslog (logger -t craton-trace) instead of stdout')
    .addOption(new Option('--format <fmt>', 'output format').choices(['json', 'text']).default('json'))
    .option('--binary <path>', 'also probe a binary that links OpenSSL statically (needs --pid unless --all-pids)', collect)
    .option('--all-pids', 'with --binary: probe it in every process')
    .option('--libcrypto <path>', 'libcrypto to probe', '/usr/lib/x86_64-linux-gnu/libcrypto.so.3')
    .option('--libssl <path>', 'libssl to probe (TLS cipher)', '/usr/lib/x86_64-linux-gnu/libssl.so.3');
  if (withEnforce) {
    c.addOption(new Option('--enforce <mode>', 'warn: alert on non-approved use; strict: stop the process before the call runs; dry-run: report what strict would stop').choices(['warn', 'strict', 'dry-run']))
      .addOption(new Option('--signal <sig>', 'strict mode signal: KILL ends the process, STOP freezes it for inspection').choices(['KILL', 'STOP']).default('KILL'))
      .option('--allow <path>', 'strict mode: exempt this executable (repeatable)', collect)
      .option('--enforce-only <path>', 'strict mode applies only to this executable (repeatable); others are observed', collect)
      .option('--alert-webhook <url>', 'send alerts to this webhook (in addition to [alerts] in the config)')
      .option('--no-alerts', 'do not raise alerts');
  }
  return c;
}

function loadSettings(o: { config?: string }): Config {
  return loadConfig(o.config ? { configPath: o.config } : {});
}

function filterOptions(o: CommonOpts, types?: FilterOptions['types']): FilterOptions {
  const f: FilterOptions = {};
  if (o.pid !== undefined) f.pid = intArg(o.pid, '--pid');
  if (o.name !== undefined) f.name = o.name;
  if (o.library !== undefined) f.library = o.library;
  if (o.file !== undefined) f.file = o.file;
  if (o.exclude) f.exclude = o.exclude;
  if (o.filter) f.expression = o.filter;
  if (o.sampleRate !== undefined) {
    const r = Number(o.sampleRate);
    if (!(r > 0 && r <= 1)) throw new Error('--sample-rate must be in (0, 1]');
    f.sampleRate = r;
  }
  if (types) f.types = types;
  return f;
}

function intArg(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${v}`);
  return n;
}

/** Event sink: stdout, a file, or syslog; JSON lines or one-line text. */
function makeWriter(o: CommonOpts): { write: (e: TraceEvent) => void; close: () => Promise<void> } {
  const fmt = (e: TraceEvent) => (o.format === 'text' ? textLine(e) : JSON.stringify(e));
  if (o.syslog) {
    const logger = spawn('logger', ['-t', 'craton-trace'], { stdio: ['pipe', 'inherit', 'inherit'] });
    return {
      write: (e) => void logger.stdin.write(fmt(e).replace(/\n/g, ' ') + '\n'),
      close: () => new Promise((r) => logger.stdin.end(() => r())),
    };
  }
  let out: NodeJS.WritableStream = process.stdout;
  let file: WriteStream | undefined;
  if (o.output) out = file = createWriteStream(o.output, { flags: 'a', mode: 0o600 });
  return {
    write: (e) => void out.write(fmt(e) + '\n'),
    close: () => (file ? new Promise((r) => file!.end(() => r())) : Promise.resolve()),
  };
}

export function textLine(e: TraceEvent): string {
  const who = `${e.process}[${e.pid}]`;
  switch (e.event_type) {
    case 'crypto_op':
      return `${e.timestamp} ${who} ${e.operation} ${e.algorithm} ${e.approved ? 'approved' : 'NOT-APPROVED'} ${e.action}${e.caller === 'library' ? ' (inside libcrypto)' : ''}${e.remediation && !e.approved ? ` -> ${e.remediation}` : ''}`;
    case 'file_open':
      return `${e.timestamp} ${who} open ${e.file_type} ${e.file} ${e.flags}`;
    case 'lib_load':
      return `${e.timestamp} ${who} load ${e.library_name} ${e.library}`;
    case 'process_exec':
      return `${e.timestamp} ${who} exec ${e.binary} ${e.cmdline}`;
    case 'process_exit':
      return `${e.timestamp} ${who} exit ${e.exit_code}${e.signal ? ` (signal ${e.signal})` : ''}`;
  }
}

function alertFor(e: CryptoOpEvent, enforce: EnforceMode): Parameters<Alerts['raise']>[0] {
  const binary = e.binary ?? e.process;
  const verb = e.action === 'BLOCKED' ? 'BLOCKED' : e.would_block ? 'would be blocked (dry run)' : 'WARNED';
  return {
    kind: 'policy_violation',
    severity: e.action === 'BLOCKED' ? 'error' : 'warning',
    summary: `craton-trace: ${e.algorithm} (${e.operation}) ${verb} in ${binary} pid ${e.pid}; remediation: ${e.remediation ?? 'use an approved algorithm'}`,
    details: {
      source: 'craton-trace',
      enforce,
      process: e.process,
      binary,
      pid: e.pid,
      uid: e.uid,
      algorithm: e.algorithm,
      operation: e.operation,
      action: e.action,
      approved: e.approved,
      reason: e.reason,
      remediation: e.remediation,
      container_id: e.container_id,
      timestamp: e.timestamp,
    },
    dedupKey: `policy_violation:craton-trace:${binary}:${e.algorithm}:${e.operation}:${e.action}`,
  };
}

function sessionOptions(o: CommonOpts, config: Config, onEvent: (e: TraceEvent) => void, files = true): SessionOptions {
  const s: SessionOptions = {
    settings: config.algorithms,
    enforce: o.enforce ?? 'off',
    signal: o.signal,
    onEvent,
    files,
  };
  if (o.pid !== undefined) s.pid = intArg(o.pid, '--pid');
  if (o.allow) s.allowBinaries = o.allow;
  if (o.enforceOnly) s.enforceOnly = o.enforceOnly;
  if (o.binary) s.binaries = o.binary;
  if (o.allPids) s.allPids = true;
  if (o.libcrypto) s.libcrypto = o.libcrypto;
  if (o.libssl) s.libssl = o.libssl;
  if (o.duration !== undefined) s.durationSec = intArg(o.duration, '--duration');
  return s;
}

/** monitor / libs / files: stream events until --duration or SIGINT/SIGTERM. */
async function stream(o: CommonOpts, types?: FilterOptions['types']): Promise<void> {
  const config = loadSettings(o);
  const keep = makeFilter(filterOptions(o, types));
  const writer = makeWriter(o);
  const enforce = o.enforce ?? 'off';
  let alerts: Alerts | undefined;
  if (o.alerts !== false && enforce !== 'off') {
    const ac = { ...config.alerts };
    if (o.alertWebhook) ac.webhook = { url: o.alertWebhook };
    alerts = new Alerts(ac, { source: `craton-trace@${os.hostname()}`, timeoutMs: 5000 });
  }
  const onEvent = (e: TraceEvent) => {
    if (!keep(e)) return;
    const out = o.redact ? redactEvent(e) : e;
    writer.write(out);
    if (alerts && out.event_type === 'crypto_op' && out.action !== 'ALLOWED') alerts.raise(alertFor(out, enforce));
  };
  const wantFiles = !types || types.includes('file_open') || types.includes('lib_load');
  const session = new TraceSession(sessionOptions(o, config, onEvent, wantFiles));
  const ready = await session.start();
  process.stderr.write(`craton-trace: ready (${ready.probes} probes${ready.uprobe_multi ? ` in ${ready.links} uprobe-multi links` : ''}, attached in ${ready.attach_ms} ms, enforce ${enforce})\n`);
  const stop = () => void session.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await session.wait();
  if (session.dropped) process.stderr.write(`craton-trace: ${session.dropped} events dropped (ring buffer full)\n`);
  await writer.close();
  if (alerts) {
    // deliver what is queued, but do not hang on an unreachable sink
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([alerts.flush(), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    alerts.close();
  }
}

/** Processes that have a crypto library mapped right now (from /proc/PID/maps). */
export function snapshot(redact: boolean): Record<string, unknown> {
  const processes: Array<{ pid: number; process: string; binary?: string; libraries: Array<{ library: string; library_name: string }> }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue;
    }
    const libs = new Map<string, string>();
    for (const line of maps.split('\n')) {
      const p = line.slice(line.indexOf('/'));
      if (!line.includes('/') || !p.includes('.so')) continue;
      const n = libraryName(p);
      if (n) libs.set(p, n);
    }
    if (!libs.size) continue;
    let comm = '';
    let binary: string | undefined;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      binary = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      /* kernel thread or gone */
    }
    const r = (s: string) => (redact ? redactPath(s) : s);
    processes.push({
      pid,
      process: comm,
      ...(binary ? { binary: r(binary) } : {}),
      libraries: [...libs].map(([library, library_name]) => ({ library: r(library), library_name })),
    });
  }
  const byLib: Record<string, number> = {};
  for (const p of processes) for (const l of p.libraries) byLib[l.library_name] = (byLib[l.library_name] ?? 0) + 1;
  return { snapshot_version: '1.0', generated_at: new Date().toISOString(), processes, summary: { processes: processes.length, by_library: byLib } };
}

/** profile: one PID, or a command run under the tracer, as one JSON document. */
async function profile(o: CommonOpts, argv: string[]): Promise<void> {
  const config = loadSettings(o);
  const tracked = new Set<number>();
  let rootPid: number | undefined = o.pid !== undefined ? intArg(o.pid, '--pid') : undefined;
  if (rootPid !== undefined) tracked.add(rootPid);
  const events: TraceEvent[] = [];
  const onEvent = (e: TraceEvent) => {
    if (e.event_type === 'process_exec' && tracked.has(e.ppid)) tracked.add(e.pid);
    if (tracked.has(e.pid)) events.push(o.redact ? redactEvent(e) : e);
  };
  const so = sessionOptions({ ...o, pid: undefined }, config, onEvent);
  const session = new TraceSession(so);
  await session.start();
  let exitCode: number | null = null;
  if (argv.length) {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    rootPid = child.pid!;
    tracked.add(rootPid);
    exitCode = await new Promise<number | null>((r) => child.on('exit', (c, s) => r(c ?? (s ? 128 + (os.constants.signals[s] ?? 0) : null))));
    await new Promise((r) => setTimeout(r, 300)); // let the ring buffer drain
    await session.stop();
  } else {
    if (rootPid === undefined) throw new Error('profile: give --pid N or a command after --');
    const stop = () => void session.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await session.wait();
  }
  const libs = new Map<string, { library: string; library_name: string }>();
  const files = new Map<string, { file: string; file_type: string; count: number }>();
  const algos = new Map<string, { algorithm: string; operation: string; approved: boolean; action: string; count: number }>();
  let first: TraceEvent | undefined;
  for (const e of events) {
    if (e.event_type === 'process_exec' && e.pid === rootPid) first = e;
    if (e.event_type === 'lib_load') libs.set(e.library, { library: e.library, library_name: e.library_name });
    if (e.event_type === 'file_open') (files.get(e.file) ?? files.set(e.file, { file: e.file, file_type: e.file_type, count: 0 }).get(e.file)!).count++;
    if (e.event_type === 'crypto_op') {
      const k = `${e.algorithm}\0${e.operation}\0${e.action}`;
      (algos.get(k) ?? algos.set(k, { algorithm: e.algorithm, operation: e.operation, approved: e.approved, action: e.action, count: 0 }).get(k)!).count++;
    }
  }
  const ops = events.filter((e): e is CryptoOpEvent => e.event_type === 'crypto_op');
  const doc = {
    profile_version: '1.0',
    generated_at: new Date().toISOString(),
    process: { pid: rootPid, ...(first && first.event_type === 'process_exec' ? { binary: first.binary, cmdline: first.cmdline } : {}), ...(exitCode !== null ? { exit_code: exitCode } : {}), pids: [...tracked] },
    libraries: [...libs.values()],
    files_accessed: [...files.values()],
    algorithms: [...algos.values()].sort((a, b) => b.count - a.count),
    statistics: {
      crypto_operations: ops.length,
      approved: ops.filter((e) => e.approved).length,
      non_approved: ops.filter((e) => !e.approved).length,
      blocked: ops.filter((e) => e.action === 'BLOCKED').length,
      libraries: libs.size,
      files: files.size,
      events: events.length,
    },
  };
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

async function readEvents(file: string | undefined): Promise<TraceEvent[]> {
  const input = file && file !== '-' ? createReadStream(file) : process.stdin;
  const out: TraceEvent[] = [];
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t) as TraceEvent);
    } catch {
      /* not an event line */
    }
  }
  return out;
}

export async function main(argv = process.argv): Promise<void> {
  const program = new Command('craton-trace').description('eBPF visibility and FIPS enforcement for processes that call OpenSSL directly (see docs/tracer.md)');
  addCommon(program.command('monitor').description('stream classified events (JSON lines)'), true).action((o: CommonOpts) => stream(o));
  addCommon(program.command('libs').description('stream crypto library loads'), false).action((o: CommonOpts) => stream(o, ['lib_load']));
  addCommon(program.command('files').description('stream opens of certificates, keys and keystores'), false).action((o: CommonOpts) => stream(o, ['file_open']));
  addCommon(program.command('profile').description('profile one PID (--pid) or a command (after --) as one JSON document').argument('[command...]'), false).action((cmd: string[], o: CommonOpts) => profile(o, cmd));
  program
    .command('snapshot')
    .description('processes using crypto libraries now (from /proc), as one JSON document')
    .option('--no-redact', 'show home directories unredacted')
    .action((o: { redact: boolean }) => void process.stdout.write(JSON.stringify(snapshot(o.redact), null, 2) + '\n'));
  program
    .command('report')
    .description('compliance report from a trace log (monitor output)')
    .option('-i, --input <file>', 'trace log (JSON lines); default stdin')
    .addOption(new Option('--format <fmt>', 'output format').choices(['json', 'text']).default('json'))
    .addOption(new Option('--period <p>', 'bucket size').choices(['hourly', 'daily', 'none']).default('hourly'))
    .option('--since <iso>', 'only operations at or after this time')
    .option('--until <iso>', 'only operations at or before this time')
    .option('-o, --output <file>', 'write the report here instead of stdout')
    .action(async (o: { input?: string; format: 'json' | 'text'; period: 'hourly' | 'daily' | 'none'; since?: string; until?: string; output?: string }) => {
      const r = buildReport(await readEvents(o.input), { period: o.period, ...(o.since ? { since: o.since } : {}), ...(o.until ? { until: o.until } : {}) });
      const text = o.format === 'text' ? reportText(r) : JSON.stringify(r, null, 2) + '\n';
      if (o.output) createWriteStream(o.output).end(text);
      else process.stdout.write(text);
    });
  program
    .command('rules')
    .description('what strict mode stops under the configured [algorithms] (from the daemon policy table)')
    .option('--config <path>', 'daemon TOML configuration')
    .option('--libcrypto <path>', 'libcrypto whose NIDs to list')
    .action((o: { config?: string; libcrypto?: string }) => {
      const r = blockRules(listNids(o.libcrypto), loadSettings(o).algorithms);
      process.stdout.write(JSON.stringify({ blocked: r.summary, nid_rules: r.nids.length, name_rules: r.names.length }, null, 2) + '\n');
    });
  await program.parseAsync(argv);
}

main().catch((e: unknown) => {
  process.stderr.write(`craton-trace: ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(1);
});
