// hsm-daemon/src/config/load.ts: the embedded default, overlays, overrides, validation
// messages, and agreement with config/schema.json.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'smol-toml';
import { ConfigError, configKeyPaths, defaultConfigPath, loadConfig, repoRoot } from '../../hsm-daemon/src/config/load.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'craton-config-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function tomlFile(text: string): string {
  const f = path.join(tmp, `c${n++}.toml`);
  writeFileSync(f, text);
  return f;
}
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
const loadWith = (text: string) => loadConfig({ configPath: tomlFile(text) });

let savedEnv: string | undefined;
beforeEach(() => {
  savedEnv = process.env.CRATON_HSM_CONFIG;
  delete process.env.CRATON_HSM_CONFIG;
});
afterEach(() => {
  if (savedEnv === undefined) delete process.env.CRATON_HSM_CONFIG;
  else process.env.CRATON_HSM_CONFIG = savedEnv;
});

describe('default configuration', () => {
  it('locates the repository and the embedded default', () => {
    expect(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')).toContain('"craton-hsm"');
    expect(defaultConfigPath()).toBe(path.join(repoRoot(), 'config', 'craton_hsm.toml'));
  });

  it('loads with every documented value and resolved paths', () => {
    const c = loadConfig({});
    const dataDir = path.resolve('data');
    expect(c.daemon).toEqual({
      socket_path: '/run/craton-hsm/craton-hsm.sock',
      admin_socket_path: path.join(dataDir, 'craton-hsm-admin.sock'),
      data_dir: dataDir,
      log_level: 'info',
    });
    expect(c.slots).toEqual({ count: 2, default_label_prefix: 'Craton HSM slot' });
    expect(c.security.pbkdf2_iterations).toBe(600000);
    expect(c.security.max_failed_logins).toBe(10);
    expect(c.limits.max_frame_bytes).toBe(16777280);
    expect(c.audit.log_path).toBe(path.join(dataDir, 'craton_hsm_audit.jsonl'));
    expect(c.audit.fail_closed).toBe(true);
    expect(c.algorithms.enforce).toBe('strict');
    expect(c.algorithms.allow).toEqual([]);
    expect(c.nonce.gcm_invocation_limit).toBe(4294967296);
    expect(c.nonce.alert_thresholds).toEqual([50, 75, 90, 95]);
    expect(c.nonce.caller_iv).toBe('accept');
    expect(c.lifecycle.processing_after_end_date).toBe('allow');
    expect(c.alerts.webhook).toBeUndefined();
    expect(c.metrics).toEqual({ enabled: false, listen: '127.0.0.1:9464', allow_non_loopback: false });
  });
});

describe('overrides', () => {
  it('a partial file overrides only the keys it names', () => {
    const c = loadWith('[security]\npbkdf2_iterations = 1000\n[slots]\ncount = 5\n');
    expect(c.security.pbkdf2_iterations).toBe(1000);
    expect(c.security.max_failed_logins).toBe(10);
    expect(c.slots).toEqual({ count: 5, default_label_prefix: 'Craton HSM slot' });
    expect(c.audit.log_level).toBe('all');
  });

  it('arrays replace rather than append', () => {
    const c = loadWith('[nonce]\nalert_thresholds = [80]\n[algorithms]\ndeny = ["CKM_RSA_PKCS"]\n');
    expect(c.nonce.alert_thresholds).toEqual([80]);
    expect(c.algorithms.deny).toEqual(['CKM_RSA_PKCS']);
  });

  it('[nonce] caller_iv accepts "generate" (token-generated GCM IVs)', () => {
    expect(loadWith('[nonce]\ncaller_iv = "generate"\n').nonce.caller_iv).toBe('generate');
  });

  it('CRATON_HSM_CONFIG is used when no --config is given, and --config wins over it', () => {
    process.env.CRATON_HSM_CONFIG = tomlFile('[slots]\ncount = 7\n');
    expect(loadConfig({}).slots.count).toBe(7);
    expect(loadConfig({ configPath: tomlFile('[slots]\ncount = 3\n') }).slots.count).toBe(3);
  });

  it('--data-dir and --socket override the file, relative paths resolve as documented', () => {
    const file = tomlFile('[daemon]\ndata_dir = "/var/lib/elsewhere"\nsocket_path = "/tmp/x.sock"\nadmin_socket_path = "adm/a.sock"\n[audit]\nlog_path = "/var/log/craton/audit.jsonl"\n');
    const c = loadConfig({ configPath: file, dataDir: 'rel/data', socketPath: 'rel/app.sock' });
    expect(c.daemon.data_dir).toBe(path.resolve('rel/data'));
    expect(c.daemon.socket_path).toBe(path.resolve('rel/app.sock'));
    expect(c.daemon.admin_socket_path).toBe(path.resolve('rel/data/adm/a.sock'));
    expect(c.audit.log_path).toBe('/var/log/craton/audit.jsonl');
  });

  it('accepts the optional alert sinks', () => {
    const c = loadWith(
      '[alerts.webhook]\nurl = "https://hooks.example/x"\n[alerts.pagerduty]\nurl = "https://events.pagerduty.com/v2/enqueue"\nrouting_key = "abc"\n[alerts.command]\nargv = ["/usr/local/bin/page", "--"]\n',
    );
    expect(c.alerts.webhook).toEqual({ url: 'https://hooks.example/x' });
    expect(c.alerts.pagerduty?.routing_key).toBe('abc');
    expect(c.alerts.command?.argv).toEqual(['/usr/local/bin/page', '--']);
    expect(c.alerts.queue_size).toBe(1000);
  });
});

describe('bad values give one clear line', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['[security]\nmax_failed_logins = 2', 'security.max_failed_logins = 2', /integer from 3 to 100/],
    ['[security]\nmax_failed_logins = 101', 'security.max_failed_logins = 101', /integer from 3 to 100/],
    ['[security]\npbkdf2_iterations = 999', 'security.pbkdf2_iterations = 999', /integer from 1000 to/],
    ['[slots]\ncount = 0', 'slots.count = 0', /integer from 1 to 64/],
    ['[slots]\ncount = 65', 'slots.count = 65', /integer from 1 to 64/],
    ['[slots]\ncount = 2.5', 'slots.count = 2.5', /integer from 1 to 64/],
    ['[slots]\ncount = "2"', 'slots.count = "2"', /integer from 1 to 64/],
    ['[daemon]\nlog_level = "verbose"', 'daemon.log_level = "verbose"', /one of error \| warn \| info \| debug/],
    ['[audit]\nfail_closed = "yes"', 'audit.fail_closed = "yes"', /true or false/],
    ['[algorithms]\nenforce = "lenient"', 'algorithms.enforce = "lenient"', /one of strict \| warn/],
    ['[algorithms]\nallow = ["CKM_NOT_A_MECHANISM"]', 'algorithms.allow = ["CKM_NOT_A_MECHANISM"]', /mechanism names/],
    ['[nonce]\nalert_thresholds = [90, 50]', 'nonce.alert_thresholds = [90,50]', /increasing/],
    ['[lifecycle]\nprocessing_after_end_date = "maybe"', 'lifecycle.processing_after_end_date = "maybe"', /one of allow \| refuse/],
    ['[nonce]\ncaller_iv = "random"', 'nonce.caller_iv = "random"', /one of accept \| reject_reuse \| generate/],
    ['[nonce]\ngcm_invocation_limit = 4294967297', 'nonce.gcm_invocation_limit = 4294967297', /integer from 1 to 4294967296/],
    ['[metrics]\nlisten = "localhost"', 'metrics.listen = "localhost"', /HOST:PORT/],
    ['[metrics]\nlisten = "127.0.0.1:70000"', 'metrics.listen = "127.0.0.1:70000"', /HOST:PORT/],
    ['[alerts.webhook]\nurl = "ftp://x"', 'alerts.webhook.url = "ftp://x"', /http/],
    ['[alerts.command]\nargv = ["page"]', 'alerts.command.argv = ["page"]', /absolute program path/],
    ['[daemon]\ndata_dir = ""', 'daemon.data_dir = ""', /non-empty path/],
  ];
  for (const [toml, named, allowed] of cases) {
    it(named, () => {
      const e = errorOf(() => loadWith(toml + '\n'));
      expect(e.message).toContain(named);
      expect(e.message).toMatch(allowed);
      expect(e.message).not.toContain('\n');
    });
  }

  it('unknown keys and tables are refused, naming the key', () => {
    expect(errorOf(() => loadWith('[security]\nmax_failed_login = 5\n')).message).toMatch(
      /unknown key security\.max_failed_login in .*allowed here: .*max_failed_logins/,
    );
    expect(errorOf(() => loadWith('[sercurity]\nx = 1\n')).message).toContain('unknown key sercurity');
    expect(errorOf(() => loadWith('[alerts.slack]\nurl = "https://x"\n')).message).toContain('unknown key alerts.slack');
    expect(errorOf(() => loadWith('security = 3\n')).message).toContain('security = 3');
  });

  it('an alert sink must be complete', () => {
    expect(errorOf(() => loadWith('[alerts.pagerduty]\nurl = "https://x"\n')).message).toContain(
      'missing key alerts.pagerduty.routing_key',
    );
  });

  it('pin_min_length may not exceed pin_max_length', () => {
    expect(errorOf(() => loadWith('[security]\npin_min_length = 10\npin_max_length = 8\n')).message).toContain(
      'security.pin_min_length = 10',
    );
  });

  it('names the file for invalid TOML and for a missing file', () => {
    const bad = tomlFile('[security\n');
    expect(errorOf(() => loadConfig({ configPath: bad })).message).toMatch(new RegExp(`${bad} is not valid TOML: line 1`));
    expect(errorOf(() => loadConfig({ configPath: path.join(tmp, 'nope.toml') })).message).toMatch(/cannot read .*nope\.toml: ENOENT/);
  });

  it('refuses socket paths longer than a Unix socket address allows', () => {
    const e = errorOf(() => loadConfig({ socketPath: '/tmp/' + 'x'.repeat(120) + '.sock' }));
    expect(e.message).toMatch(/daemon\.socket_path = .* at most 107 bytes/);
    expect(e.message).toContain('--socket');
  });
});

// ---------------------------------------------------------------------------------------
interface SchemaNode {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: boolean;
  $ref?: string;
}
const schema = JSON.parse(readFileSync(path.join(repoRoot(), 'config', 'schema.json'), 'utf8')) as SchemaNode & {
  $schema: string;
};

function schemaLeaves(node: SchemaNode, prefix = ''): Array<[string, SchemaNode, string[]]> {
  const out: Array<[string, SchemaNode, string[]]> = [];
  for (const [k, child] of Object.entries(node.properties ?? {})) {
    const p = prefix ? `${prefix}.${k}` : k;
    out.push([p, child, node.required ?? []]);
    if (child.type === 'object') out.push(...schemaLeaves(child, p));
  }
  return out;
}
const entries = schemaLeaves(schema);

describe('config/schema.json agrees with the loader', () => {
  it('is draft 2020-12 and closed at every level', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    for (const [, node] of entries.filter(([, n]) => n.type === 'object')) expect(node.additionalProperties).toBe(false);
  });

  it('describes exactly the keys the loader accepts', () => {
    expect(entries.map(([p]) => p).sort()).toEqual(configKeyPaths());
  });

  it('describes exactly the keys of the default TOML (plus the optional alert sinks)', () => {
    const keys: string[] = [];
    const walk = (t: Record<string, unknown>, prefix: string) => {
      for (const [k, v] of Object.entries(t)) {
        const p = prefix ? `${prefix}.${k}` : k;
        keys.push(p);
        if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, p);
      }
    };
    walk(parse(readFileSync(defaultConfigPath(), 'utf8')) as Record<string, unknown>, '');
    const optional = /^alerts\.(webhook|pagerduty|command)(\.|$)/;
    expect(keys.sort()).toEqual(entries.map(([p]) => p).filter((p) => !optional.test(p)).sort());
  });

  const tomlValue = (v: unknown) => JSON.stringify(v);
  function overlay(key: string, value: unknown): string {
    const [table, leaf] = [key.slice(0, key.lastIndexOf('.')), key.slice(key.lastIndexOf('.') + 1)];
    let extra = '';
    if (key === 'security.pin_min_length') extra = 'pin_max_length = 255\n';
    if (key === 'security.pin_max_length') extra = 'pin_min_length = 1\n';
    return `[${table}]\n${leaf} = ${tomlValue(value)}\n${extra}`;
  }

  const ints = entries.filter(([p, n]) => n.type === 'integer' && p.split('.').length === 2);
  it.each(ints.map(([p, n]) => [p, n.minimum!, n.maximum!] as const))('%s: range %d..%d matches', (key, min, max) => {
    const get = (c: unknown) => key.split('.').reduce((o: any, k) => o[k], c);
    expect(get(loadWith(overlay(key, min)))).toBe(min);
    expect(get(loadWith(overlay(key, max)))).toBe(max);
    expect(errorOf(() => loadWith(overlay(key, min - 1))).message).toContain(`${key} = ${min - 1}`);
    expect(errorOf(() => loadWith(overlay(key, max + 1))).message).toContain(`${key} = ${max + 1}`);
  });

  const enums = entries.filter(([, n]) => n.enum);
  it.each(enums.map(([p, n]) => [p, n.enum!] as const))('%s: enum matches', (key, values) => {
    for (const v of values) expect(() => loadWith(overlay(key, v))).not.toThrow();
    expect(errorOf(() => loadWith(overlay(key, 'bogus'))).message).toContain(`${key} = "bogus"`);
  });

  const bools = entries.filter(([, n]) => n.type === 'boolean');
  it.each(bools.map(([p]) => p))('%s: boolean', (key) => {
    expect(() => loadWith(overlay(key, false))).not.toThrow();
    expect(errorOf(() => loadWith(overlay(key, 1))).message).toContain(`${key} = 1`);
  });
});
