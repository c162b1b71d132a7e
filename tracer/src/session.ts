// Runs the C loader (build/craton-trace-loader), reads its JSON lines, and turns each
// into a normalised, classified event: binary and container from exec events or /proc,
// .pem files classified by their header, crypto_op verdicts from the daemon's table.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from '../../hsm-daemon/src/paths.js';
import { curveName, type PolicySettings } from '../../hsm-daemon/src/policy/table.js';
import { blockRules, classify, keyType, type EnforceMode, type NidInfo } from './classify.js';
import {
  decodeWaitStatus,
  fileType,
  isoMicros,
  libraryName,
  openFlags,
  type CryptoOpEvent,
  type RawEvent,
  type RawReady,
  type TraceEvent,
} from './events.js';

export function loaderPath(): string {
  return process.env.CRATON_TRACE_LOADER ?? path.join(repoRoot(), 'build', 'craton-trace-loader');
}

/** Why tracing cannot run here, or undefined when it can (root, BTF, tracefs, loader built). */
export function tracingUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return `not root (uid ${process.getuid()}); loading BPF programs needs root or CAP_BPF+CAP_PERFMON`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'the kernel has no BTF (/sys/kernel/btf/vmlinux missing; CONFIG_DEBUG_INFO_BTF)';
  if (!existsSync(loaderPath())) return `${loaderPath()} is not built (npm run build, or make -C tracer)`;
  return undefined;
}

/** Mounts tracefs at /sys/kernel/tracing if it is not mounted (idempotent). */
export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events')) return;
  const r = spawnSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing'], { encoding: 'utf8' });
  if (r.status !== 0 && !existsSync('/sys/kernel/tracing/events')) throw new Error(`tracefs is not mounted and mount failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** Every NID libcrypto knows, tagged digest/cipher/other (the loader asks libcrypto). */
export function listNids(libcrypto?: string): NidInfo[] {
  const args = ['--list-nids', ...(libcrypto ? ['--libcrypto', libcrypto] : [])];
  const r = spawnSync(loaderPath(), args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${loaderPath()} --list-nids failed: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as NidInfo);
}

export interface SessionOptions {
  settings: PolicySettings;
  enforce: EnforceMode;
  /** SIGKILL (default) or SIGSTOP for strict mode */
  signal?: 'KILL' | 'STOP';
  pid?: number;
  allowBinaries?: string[];
  /** strict/dry-run apply only to these executables (everything else is only observed) */
  enforceOnly?: string[];
  binaries?: string[];
  allPids?: boolean;
  libcrypto?: string;
  libssl?: string;
  files?: boolean;
  durationSec?: number;
  onEvent: (e: TraceEvent) => void;
  onDiagnostic?: (msg: string) => void;
}

interface ProcInfo {
  binary?: string;
  cmdline?: string;
  container?: string | null;
}

/** Reads /proc/PID/… lazily for processes that started before the tracer. */
export class ProcCache {
  private readonly procs = new Map<number, ProcInfo>();
  private readonly maxEntries = 65536;

  set(pid: number, info: ProcInfo): void {
    if (this.procs.size >= this.maxEntries) this.procs.delete(this.procs.keys().next().value as number);
    this.procs.set(pid, { ...this.procs.get(pid), ...info });
  }
  forget(pid: number): void {
    this.procs.delete(pid);
  }
  binary(pid: number): string | undefined {
    const p = this.procs.get(pid);
    if (p?.binary) return p.binary;
    try {
      const b = readlinkSync(`/proc/${pid}/exe`);
      this.set(pid, { binary: b });
      return b;
    } catch {
      return undefined;
    }
  }
  container(pid: number): string | undefined {
    const p = this.procs.get(pid);
    if (p && p.container !== undefined) return p.container ?? undefined;
    let id: string | null = null;
    try {
      id = containerIdFromCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8')) ?? null;
    } catch {
      /* gone */
    }
    this.set(pid, { container: id });
    return id ?? undefined;
  }
}

/** A 64-hex container id from /proc/PID/cgroup (docker, containerd, cri-o, podman). */
export function containerIdFromCgroup(text: string): string | undefined {
  const m = /(?:docker|cri-containerd|crio|libpod|containerd)[-/:]?([0-9a-f]{64})/.exec(text) ?? /\/([0-9a-f]{64})(?:\.scope)?\s*$/m.exec(text);
  return m?.[1];
}

function pemHead(file: string): string | undefined {
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(512);
      const n = readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** Raw loader record → normalised event (undefined for control records). */
export function normalise(raw: RawEvent, settings: PolicySettings, procs: ProcCache): TraceEvent | undefined {
  switch (raw.event_type) {
    case 'crypto_op': {
      const c = classify(raw, settings);
      const e: CryptoOpEvent = {
        event_type: 'crypto_op',
        timestamp: isoMicros(raw.ts_us),
        pid: raw.pid,
        ppid: raw.ppid,
        uid: raw.uid,
        process: raw.process,
        cgroup_id: raw.cgroup_id,
        operation: raw.operation,
        algorithm: c.algorithm,
        probe: raw.probe,
        caller: raw.internal ? 'library' : 'application',
        approved: c.approved,
        allowed: c.allowed,
        action: c.action,
        reason: c.reason,
      };
      const bin = procs.binary(raw.pid);
      if (bin) e.binary = bin;
      const cid = procs.container(raw.pid);
      if (cid) e.container_id = cid;
      if (c.openssl_name) e.openssl_name = c.openssl_name;
      if (raw.nid > 0) e.nid = raw.nid;
      if (raw.key_bits !== undefined) e.key_bits = raw.key_bits;
      const kt = keyType(raw);
      if (kt) e.key_type = kt;
      if (raw.key_curve) e.curve = curveName(raw.key_curve) ?? raw.key_curve;
      if (raw.would_block) e.would_block = true;
      if (raw.exempt) e.exempt = true;
      if (c.remediation) e.remediation = c.remediation;
      return e;
    }
    case 'process_exec':
      procs.set(raw.pid, { binary: raw.binary, cmdline: raw.cmdline });
      return {
        event_type: 'process_exec',
        timestamp: isoMicros(raw.ts_us),
        pid: raw.pid,
        ppid: raw.ppid,
        uid: raw.uid,
        process: raw.process,
        binary: raw.binary,
        cmdline: raw.cmdline + (raw.cmdline_truncated ? ' …' : ''),
      };
    case 'process_exit': {
      procs.forget(raw.pid);
      const w = decodeWaitStatus(raw.wait_status);
      return { event_type: 'process_exit', timestamp: isoMicros(raw.ts_us), pid: raw.pid, uid: raw.uid, process: raw.process, ...w };
    }
    case 'lib_load': {
      const name = libraryName(raw.path);
      if (!name) return undefined;
      return { event_type: 'lib_load', timestamp: isoMicros(raw.ts_us), pid: raw.pid, uid: raw.uid, process: raw.process, library: raw.path, library_name: name };
    }
    case 'file_open': {
      const abs = raw.path.startsWith('/') ? raw.path : resolveRelative(raw.pid, raw.path);
      return {
        event_type: 'file_open',
        timestamp: isoMicros(raw.ts_us),
        pid: raw.pid,
        uid: raw.uid,
        process: raw.process,
        file: abs,
        file_type: fileType(abs, abs.toLowerCase().endsWith('.pem') ? pemHead(abs) : undefined),
        flags: openFlags(raw.open_flags),
      };
    }
    default:
      return undefined;
  }
}

function resolveRelative(pid: number, p: string): string {
  try {
    return path.resolve(readlinkSync(`/proc/${pid}/cwd`), p);
  } catch {
    return p;
  }
}

/** Arguments for the loader from the session options (block rules computed from the table). */
export function loaderArgs(o: Omit<SessionOptions, 'onEvent'>, nids: () => NidInfo[], selfPid = process.pid): string[] {
  const args = ['--skip-pid', String(selfPid)];
  if (o.pid !== undefined) args.push('--pid', String(o.pid));
  if (o.allPids) args.push('--all-pids');
  if (o.libcrypto) args.push('--libcrypto', o.libcrypto);
  if (o.libssl) args.push('--libssl', o.libssl);
  for (const b of o.binaries ?? []) args.push('--binary', b);
  if (o.files === false) args.push('--no-files');
  if (o.durationSec) args.push('--duration', String(o.durationSec));
  if (o.enforce === 'strict' || o.enforce === 'dry-run') {
    args.push('--enforce', o.enforce);
    if (o.signal) args.push('--signal', o.signal);
    const rules = blockRules(nids(), o.settings);
    for (const n of rules.nids) args.push('--block-nid', n);
    for (const n of rules.names) args.push('--block-name', n);
    for (const b of o.allowBinaries ?? []) args.push('--exempt', b);
    for (const b of o.enforceOnly ?? []) args.push('--enforce-only', b);
  }
  return args;
}

export class TraceSession {
  private child?: ChildProcess;
  private readonly procs = new ProcCache();
  private ended?: Promise<void>;
  ready?: RawReady;
  dropped = 0;

  constructor(private readonly o: SessionOptions) {}

  /** Starts the loader; resolves once every probe is attached. */
  start(): Promise<RawReady> {
    const why = tracingUnavailable();
    if (why) return Promise.reject(new Error(`craton-trace cannot trace here: ${why}`));
    ensureTracefs();
    const args = loaderArgs(this.o, () => listNids(this.o.libcrypto));
    const child = spawn(loaderPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const diag = this.o.onDiagnostic ?? ((m: string) => void process.stderr.write(m + '\n'));
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > 65536) stderr = stderr.slice(-65536);
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const rl = readline.createInterface({ input: child.stdout! });
      // the loader closes stdout after its last record, before it detaches (~0.2 s with
      // uprobe-multi links, ~2 s on the per-probe fallback)
      this.ended = new Promise((r) =>
        rl.once('close', () => {
          // let this process exit while the loader finishes detaching
          child.stderr!.destroy();
          child.unref();
          r();
        }),
      );
      rl.on('line', (line) => {
        let raw: RawEvent;
        try {
          raw = JSON.parse(line) as RawEvent;
        } catch {
          diag(`craton-trace: unreadable loader line: ${line.slice(0, 200)}`);
          return;
        }
        if (raw.event_type === 'ready') {
          this.ready = raw;
          settled = true;
          resolve(raw);
          return;
        }
        if (raw.event_type === 'attach_error') {
          diag(`craton-trace: could not attach ${raw.function} in ${raw.target}: ${raw.error}`);
          return;
        }
        if (raw.event_type === 'stats') {
          this.dropped = raw.dropped;
          return;
        }
        const e = normalise(raw, this.o.settings, this.procs);
        if (e) this.o.onEvent(e);
      });
      child.on('exit', (code, sig) => {
        if (!settled) reject(new Error(`craton-trace-loader exited (${sig ?? code}) before attaching: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      });
      child.on('error', (err) => {
        if (!settled) reject(err);
      });
    });
  }

  /**
   * Resolves when the loader's event stream has ended (after --duration, or stop()).
   * The loader then still detaches (one RCU grace period per link: ~0.2 s in all with
   * uprobe-multi, ~2 s with per-probe links); it does that on its own and exits, nothing
   * here waits for it.
   */
  wait(): Promise<void> {
    return this.ended ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    await this.wait();
  }
}
