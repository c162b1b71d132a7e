// Loads and validates the daemon configuration.
//
// Order: the embedded default (config/craton_hsm.toml) → the file named by
// overrides.configPath or CRATON_HSM_CONFIG, laid over it (a partial file overrides only the
// keys it names) → --data-dir / --socket. Then relative paths are resolved (data_dir and
// socket_path against the working directory; admin_socket_path and audit.log_path against
// data_dir) and every key is checked. Any problem throws ConfigError with one line that names
// the key, the bad value and what is allowed. config/schema.json describes the same keys; a
// unit test keeps the two in step.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { CKM } from '../pkcs11/constants.generated.js';
import { repoRoot } from '../paths.js';
import type { Config, ConfigOverrides } from './types.js';

export type { Config, ConfigOverrides } from './types.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

// ---------------------------------------------------------------------------------------
// The key table. Each leaf says what it accepts; `check` returns null when the value is
// good, else the "allowed" text for the error line.

type Check = (v: unknown) => string | null;

interface Leaf {
  kind: 'leaf';
  check: Check;
}
interface Table {
  kind: 'table';
  keys: Record<string, Node>;
  /** Optional tables (alert sinks) may be absent; all their keys are then required. */
  optional?: boolean;
}
type Node = Leaf | Table;

const leaf = (check: Check): Leaf => ({ kind: 'leaf', check });
const table = (keys: Record<string, Node>, optional = false): Table => ({ kind: 'table', keys, optional });

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

export const SOCKET_PATH_MAX_BYTES = 107; // sizeof(sun_path) - 1 on Linux

function int(min: number, max: number): Leaf {
  return leaf((v) => (isInt(v) && v >= min && v <= max ? null : `an integer from ${min} to ${max}`));
}
function num(min: number, max: number): Leaf {
  return leaf((v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? null : `a number from ${min} to ${max}`));
}
function bool(): Leaf {
  return leaf((v) => (typeof v === 'boolean' ? null : 'true or false'));
}
function oneOf(...values: string[]): Leaf {
  return leaf((v) => (typeof v === 'string' && values.includes(v) ? null : `one of ${values.join(' | ')}`));
}
function str(minLen: number, maxLen: number): Leaf {
  return leaf((v) =>
    typeof v === 'string' && v.length >= minLen && v.length <= maxLen ? null : `a string of ${minLen} to ${maxLen} characters`,
  );
}
function pathString(): Leaf {
  return leaf((v) => (typeof v === 'string' && v.length > 0 && !v.includes('\0') ? null : 'a non-empty path'));
}
function url(): Leaf {
  return leaf((v) => {
    if (typeof v !== 'string') return 'an http:// or https:// URL';
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:' ? null : 'an http:// or https:// URL';
    } catch {
      return 'an http:// or https:// URL';
    }
  });
}
function mechanismList(): Leaf {
  return leaf((v) => {
    const allowed = 'an array of mechanism names such as "CKM_AES_GCM"';
    if (!Array.isArray(v)) return allowed;
    for (const m of v) {
      if (typeof m !== 'string' || !m.startsWith('CKM_') || !Object.hasOwn(CKM, m.slice(4))) {
        return `${allowed} (unknown: ${JSON.stringify(m)})`;
      }
    }
    return null;
  });
}

export const PBKDF2_MIN_ITERATIONS = 1000;
export const GCM_INVOCATION_LIMIT_MAX = 2 ** 32;

const SPEC: Table = table({
  daemon: table({
    socket_path: pathString(),
    admin_socket_path: pathString(),
    data_dir: pathString(),
    log_level: oneOf('error', 'warn', 'info', 'debug'),
  }),
  slots: table({
    count: int(1, 64),
    // The slot number is appended; the token label field is 32 bytes.
    default_label_prefix: str(1, 28),
  }),
  limits: table({
    max_frame_bytes: int(65536, 1073741824),
    max_connections_per_app: int(1, 1024),
    max_sessions_per_app: int(1, 1000000),
    max_objects_per_token: int(1, 10000000),
    max_session_objects_per_app: int(1, 10000000),
    frame_timeout_ms: int(100, 3600000),
  }),
  security: table({
    // Production default is 600000; tests use 1000 to stay fast.
    pbkdf2_iterations: int(PBKDF2_MIN_ITERATIONS, 100000000),
    pin_min_length: int(1, 255),
    pin_max_length: int(1, 255),
    max_failed_logins: int(3, 100),
    // Delay before answering a wrong PIN: min(cap, base * 2^(failures - 1)); async, per caller.
    failed_login_delay_base_ms: int(0, 60000),
    failed_login_delay_cap_ms: int(0, 600000),
  }),
  audit: table({
    log_level: oneOf('all', 'crypto', 'auth', 'admin', 'none'),
    log_path: pathString(),
    max_segment_bytes: int(4096, 68719476736),
    fail_closed: bool(),
    checkpoint_interval_entries: int(1, 100000000),
  }),
  algorithms: table({
    fips_approved_only: bool(),
    enforce: oneOf('strict', 'warn'),
    allow: mechanismList(),
    deny: mechanismList(),
    rsa_min_bits: int(1024, 16384),
    ec_min_bits: int(160, 521),
    hmac_min_key_bits: int(8, 4096),
    allow_sha1_verify: bool(),
    allow_aes_ecb: bool(),
    allow_raw_rsa: bool(),
  }),
  nonce: table({
    gcm_invocation_limit: int(1, GCM_INVOCATION_LIMIT_MAX),
    alert_thresholds: leaf((v) =>
      Array.isArray(v) &&
      v.every((x, i) => isInt(x) && x >= 1 && x <= 100 && (i === 0 || x > (v[i - 1] as number)))
        ? null
        : 'an array of increasing integer percentages from 1 to 100',
    ),
    caller_iv: oneOf('accept', 'reject_reuse', 'generate'),
    restore_gap: int(1, GCM_INVOCATION_LIMIT_MAX),
  }),
  backup: table({
    // PBKDF2-HMAC-SHA256 iterations for the backup passphrase (store/backup-file.ts bounds).
    pbkdf2_iterations: int(1000, 10000000),
  }),
  lifecycle: table({
    processing_after_end_date: oneOf('allow', 'refuse'),
  }),
  alerts: table({
    queue_size: int(1, 1000000),
    max_retries: int(0, 100),
    webhook: table({ url: url() }, true),
    pagerduty: table({ url: url(), routing_key: str(1, 256) }, true),
    command: table(
      {
        argv: leaf((v) =>
          Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string') && path.isAbsolute(v[0] as string)
            ? null
            : 'a non-empty array of strings whose first element is an absolute program path',
        ),
      },
      true,
    ),
  }),
  metrics: table({
    enabled: bool(),
    listen: leaf((v) => {
      const allowed = 'HOST:PORT with a port from 1 to 65535 (IPv6 as [ADDR]:PORT)';
      if (typeof v !== 'string') return allowed;
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
      if (!m) return allowed;
      const port = Number(m[2]);
      return port >= 1 && port <= 65535 ? null : allowed;
    }),
    allow_non_loopback: bool(),
  }),
  anomaly: table({
    enabled: bool(),
    bucket_seconds: int(1, 3600),
    warmup_buckets: int(1, 1000000),
    half_life_buckets: int(1, 10000000),
    rate_sigma: num(1, 100),
    rate_floor: int(0, 1000000000),
    rate_low: bool(),
    rate_low_min_calls: int(1, 1000000000),
    failure_ratio: num(0.01, 1),
    min_failures: int(1, 1000000),
    new_mechanism: bool(),
    new_key: bool(),
    unusual_hour: bool(),
    max_clients: int(1, 100000),
    max_keys_per_client: int(1, 100000),
    save_interval_seconds: int(1, 86400),
  }),
});

/** Every key the loader accepts, as dotted paths (leaves and tables), sorted. */
export function configKeyPaths(): string[] {
  const out: string[] = [];
  const walk = (t: Table, prefix: string) => {
    for (const [k, n] of Object.entries(t.keys)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.push(p);
      if (n.kind === 'table') walk(n, p);
    }
  };
  walk(SPEC, '');
  return out.sort();
}

// ---------------------------------------------------------------------------------------

export { repoRoot };

export function defaultConfigPath(): string {
  return path.join(repoRoot(), 'config', 'craton_hsm.toml');
}

type Raw = Record<string, unknown>;

const isPlainTable = (v: unknown): v is Raw =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}`;
  if (v instanceof Date) return v.toISOString();
  if (isPlainTable(v)) return '(a table)';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function readToml(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`config: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parse(text) as Raw;
  } catch (e) {
    const msg = e instanceof TomlError ? `line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}` : (e as Error).message;
    throw new ConfigError(`config: ${file} is not valid TOML: ${msg}`);
  }
}

/** Checks the shape of one file against SPEC (unknown keys, tables vs values); no ranges yet. */
function checkKeys(raw: Raw, spec: Table, prefix: string, source: string): void {
  for (const [k, v] of Object.entries(raw)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const node = spec.keys[k];
    if (!node) {
      const known = Object.keys(spec.keys).join(', ');
      throw new ConfigError(`config: unknown key ${key} in ${source}; allowed here: ${known}`);
    }
    if (node.kind === 'table') {
      if (!isPlainTable(v)) throw new ConfigError(`config: ${key} = ${show(v)} in ${source}; allowed: a table [${key}]`);
      checkKeys(v, node, key, source);
    } else if (isPlainTable(v)) {
      throw new ConfigError(`config: ${key} is a table in ${source}; allowed: ${node.check(undefined) ?? 'a value'}`);
    }
  }
}

/** Lays `over` onto `base`: tables merge key by key, values (arrays included) replace. */
function merge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainTable(b) && isPlainTable(v) ? merge(b, v) : v;
  }
  return out;
}

function validate(raw: Raw, spec: Table, prefix: string, sources: string): void {
  for (const [k, node] of Object.entries(spec.keys)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const v = raw[k];
    if (node.kind === 'table') {
      if (v === undefined) {
        if (node.optional) continue;
        throw new ConfigError(`config: missing table [${key}] (${sources})`);
      }
      validate(v as Raw, node, key, sources);
      continue;
    }
    if (v === undefined) throw new ConfigError(`config: missing key ${key} (${sources})`);
    const allowed = node.check(v);
    if (allowed !== null) throw new ConfigError(`config: ${key} = ${show(v)} is not allowed; allowed: ${allowed} (${sources})`);
  }
}

/**
 * Reads the configuration. Throws ConfigError (one line: key, bad value, what is allowed)
 * on any problem.
 */
export function loadConfig(overrides: ConfigOverrides = {}): Config {
  const defaultPath = defaultConfigPath();
  let raw = readToml(defaultPath);
  checkKeys(raw, SPEC, '', defaultPath);
  const sources = [defaultPath];

  const envPath = process.env.CRATON_HSM_CONFIG;
  const userPath = overrides.configPath ?? (envPath ? envPath : undefined);
  if (userPath !== undefined) {
    const file = path.resolve(userPath);
    const user = readToml(file);
    checkKeys(user, SPEC, '', file);
    raw = merge(raw, user);
    sources.push(file);
  }

  const daemon = raw.daemon as Raw;
  if (overrides.dataDir !== undefined) {
    if (overrides.dataDir === '') throw new ConfigError('config: --data-dir "" is not allowed; allowed: a non-empty path');
    daemon.data_dir = overrides.dataDir;
    sources.push('--data-dir');
  }
  if (overrides.socketPath !== undefined) {
    if (overrides.socketPath === '') throw new ConfigError('config: --socket "" is not allowed; allowed: a non-empty path');
    daemon.socket_path = overrides.socketPath;
    sources.push('--socket');
  }

  const from = `from ${sources.join(' + ')}`;
  validate(raw, SPEC, '', from);

  // Cross-key rules.
  const security = raw.security as Raw;
  if ((security.pin_min_length as number) > (security.pin_max_length as number)) {
    throw new ConfigError(
      `config: security.pin_min_length = ${security.pin_min_length} is not allowed; allowed: at most security.pin_max_length (${security.pin_max_length}) (${from})`,
    );
  }

  // Paths.
  const dataDir = path.resolve(daemon.data_dir as string);
  daemon.data_dir = dataDir;
  daemon.socket_path = path.resolve(daemon.socket_path as string);
  daemon.admin_socket_path = path.resolve(dataDir, daemon.admin_socket_path as string);
  const audit = raw.audit as Raw;
  audit.log_path = path.resolve(dataDir, audit.log_path as string);
  for (const key of ['socket_path', 'admin_socket_path'] as const) {
    const p = daemon[key] as string;
    const bytes = Buffer.byteLength(p);
    if (bytes > SOCKET_PATH_MAX_BYTES) {
      throw new ConfigError(
        `config: daemon.${key} = ${JSON.stringify(p)} is not allowed; allowed: a Unix socket path of at most ${SOCKET_PATH_MAX_BYTES} bytes once resolved (it has ${bytes}) (${from})`,
      );
    }
  }

  // Plain objects all the way down (the TOML parser's tables have no prototype).
  return structuredClone(raw) as unknown as Config;
}
