// The records craton-trace prints. Raw* are what the C loader writes (one JSON object
// per line, see tracer/loader/craton_trace.c); the rest are the normalised events of
// seed 001 (field names kept) with the FIPS verdict added to crypto_op.

export type Operation = 'DIGEST' | 'ENCRYPT' | 'DECRYPT' | 'SIGN' | 'VERIFY' | 'TLS_CIPHER' | 'KEY_EXCHANGE' | 'CIPHER';
export type Action = 'ALLOWED' | 'WARNED' | 'BLOCKED';
export type FileType = 'certificate' | 'private_key' | 'keystore' | 'unknown';

interface RawBase {
  ts_us: number;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  cgroup_id: number;
  process: string;
}

export interface RawCrypto extends RawBase {
  event_type: 'crypto_op';
  probe: string;
  operation: Operation;
  nid: number;
  sn?: string;
  ln?: string;
  name?: string;
  key_bits?: number;
  /** the EVP_PKEY of a sign/verify/derive init: key manager name, legacy NID and SN, EC curve SN */
  key_type?: string;
  key_nid?: number;
  key_sn?: string;
  key_curve?: string;
  internal: boolean;
  blocked: boolean;
  would_block: boolean;
  exempt: boolean;
  signal_error: boolean;
}
export interface RawExec extends RawBase {
  event_type: 'process_exec';
  binary: string;
  cmdline: string;
  cmdline_truncated: boolean;
}
export interface RawExit extends RawBase {
  event_type: 'process_exit';
  wait_status: number;
}
export interface RawOpen extends RawBase {
  event_type: 'file_open' | 'lib_load';
  path: string;
  open_flags: number;
}
export interface RawReady {
  event_type: 'ready';
  loader_pid: number;
  probes: number;
  /** uprobe links: 2–4 with uprobe-multi (one per target and direction), one per probe otherwise */
  links?: number;
  /** true: kernel uprobe_multi links (6.6+); false: per-probe perf-event uprobes */
  uprobe_multi?: boolean;
  attach_ms: number;
  /** the loader could measure OpenSSL's key struct offsets (key types / EC curves reported) */
  key_types?: boolean;
  ec_curves?: boolean;
  enforce: string;
  libcrypto: string;
}
export interface RawAttachError {
  event_type: 'attach_error';
  target: string;
  function: string;
  error: string;
}
export interface RawStats {
  event_type: 'stats';
  dropped: number;
}
export type RawEvent = RawCrypto | RawExec | RawExit | RawOpen | RawReady | RawAttachError | RawStats;

interface Common {
  timestamp: string;
  pid: number;
  uid?: number;
  process: string;
}

export interface CryptoOpEvent extends Common {
  event_type: 'crypto_op';
  ppid: number;
  binary?: string;
  cgroup_id: number;
  container_id?: string;
  operation: Operation;
  algorithm: string;
  /** OpenSSL's own identifier (short name, or the digest / TLS suite name as called) */
  openssl_name?: string;
  nid?: number;
  probe: string;
  /** library: called by libcrypto itself (BIO, DRBG, X.509 …), not by the application */
  caller: 'application' | 'library';
  key_bits?: number;
  /** SIGN / VERIFY / KEY_EXCHANGE: the key's type (EC, X25519, RSA, RSA-PSS, ED25519, DH …) */
  key_type?: string;
  /** EC keys: the canonical curve (P-256 …) or OpenSSL's name when the table does not know it */
  curve?: string;
  approved: boolean;
  allowed: boolean;
  action: Action;
  /** dry-run: strict mode would have stopped this call */
  would_block?: boolean;
  /** matched a block rule but the binary is on the allowlist */
  exempt?: boolean;
  reason: string;
  remediation?: string;
}
export interface FileOpenEvent extends Common {
  event_type: 'file_open';
  file: string;
  file_type: FileType;
  flags: string;
}
export interface LibLoadEvent extends Common {
  event_type: 'lib_load';
  library: string;
  library_name: string;
}
export interface ProcessExecEvent extends Common {
  event_type: 'process_exec';
  ppid: number;
  binary: string;
  cmdline: string;
}
export interface ProcessExitEvent extends Common {
  event_type: 'process_exit';
  exit_code: number;
  /** set when the process was killed by a signal (exit_code is then 128 + signal) */
  signal?: number;
}
export type TraceEvent = CryptoOpEvent | FileOpenEvent | LibLoadEvent | ProcessExecEvent | ProcessExitEvent;

/** ISO 8601, UTC, microsecond precision: 2024-12-08T10:30:45.123456Z. */
export function isoMicros(tsUs: number): string {
  const us = Math.trunc(tsUs);
  const secs = Math.floor(us / 1_000_000);
  const frac = us - secs * 1_000_000;
  return new Date(secs * 1000).toISOString().slice(0, 19) + '.' + String(frac).padStart(6, '0') + 'Z';
}

/** Microseconds since the epoch from an isoMicros() string (or any ISO date). */
export function parseIsoMicros(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(iso);
  if (!m) return Date.parse(iso) * 1000;
  const base = Date.parse(m[1]! + 'Z') * 1000;
  const frac = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return base + Number(frac);
}

const ACCMODE = ['O_RDONLY', 'O_WRONLY', 'O_RDWR'];
const FLAG_BITS: Array<[number, string]> = [
  [0o100, 'O_CREAT'],
  [0o200, 'O_EXCL'],
  [0o1000, 'O_TRUNC'],
  [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'],
  [0o200000, 'O_DIRECTORY'],
  [0o400000, 'O_NOFOLLOW'],
  [0o2000000, 'O_CLOEXEC'],
];

/** open(2) flags as text: O_RDONLY|O_CLOEXEC. */
export function openFlags(flags: number): string {
  const parts = [ACCMODE[flags & 3] ?? 'O_ACCMODE'];
  for (const [bit, name] of FLAG_BITS) if (flags & bit) parts.push(name);
  return parts.join('|');
}

const LIB_NAMES = ['libssl', 'libcrypto', 'libgnutls', 'libsodium', 'libnss3', 'libmbedtls', 'libmbedcrypto', 'libmbedx509', 'libwolfssl', 'libgcrypt'];

/** "libssl" from /usr/lib/x86_64-linux-gnu/libssl.so.3; undefined if not a crypto library. */
export function libraryName(path: string): string | undefined {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const stem = base.split('.so')[0] ?? base;
  const hit = LIB_NAMES.find((n) => stem === n || stem.startsWith(n + '-') || (n === 'libnss3' && stem === 'libnss3'));
  return hit ?? (LIB_NAMES.find((n) => stem.startsWith(n)) ? stem : undefined);
}

/** Seed 001's classification: by extension, and .pem by its first header line. */
export function fileType(path: string, head?: string): FileType {
  const p = path.toLowerCase();
  if (p.endsWith('.crt') || p.endsWith('.cer')) return 'certificate';
  if (p.endsWith('.key') || p.endsWith('.p8')) return 'private_key';
  if (p.endsWith('.p12') || p.endsWith('.pfx') || p.endsWith('.jks') || p.endsWith('.keystore')) return 'keystore';
  if (p.endsWith('.pem') && head !== undefined) {
    if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(head)) return 'private_key';
    if (/-----BEGIN (TRUSTED |X509 )?CERTIFICATE-----/.test(head)) return 'certificate';
  }
  return 'unknown';
}

/** wait(2) status → exit code and signal (a killed process reports 128 + signal, like a shell). */
export function decodeWaitStatus(status: number): { exit_code: number; signal?: number } {
  const sig = status & 0x7f;
  if (sig) return { exit_code: 128 + sig, signal: sig };
  return { exit_code: (status >> 8) & 0xff };
}
