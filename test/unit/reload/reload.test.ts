// reloadConfig (hsm-daemon/src/reload): what a SIGHUP may change, in place, and what it refuses.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../hsm-daemon/src/config/load.js';
import { isReloadable, reloadConfig } from '../../../hsm-daemon/src/reload/index.js';
import { PolicyEnforcer } from '../../../hsm-daemon/src/policy/enforcer.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(initial: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-reload-'));
  dirs.push(dir);
  const file = path.join(dir, 'craton_hsm.toml');
  writeFileSync(file, initial);
  const overrides = { configPath: file, dataDir: path.join(dir, 'data') };
  const config = loadConfig(overrides);
  const policy = new PolicyEnforcer(config.algorithms);
  const lockouts: Array<{ baseMs: number; capMs: number }> = [];
  const lines: string[] = [];
  const levels: string[] = [];
  const log = Object.assign((level: string, msg: string) => void lines.push(`${level}: ${msg}`), { setLevel: (l: string) => void levels.push(l) });
  const core = { policy, tokens: [{ configureLockout: (d: { baseMs: number; capMs: number }) => void lockouts.push(d) }] };
  const reload = (text: string) => {
    writeFileSync(file, text);
    return reloadConfig({ overrides, config, core, log });
  };
  return { config, policy, lockouts, lines, levels, reload };
}

describe('reloadConfig', () => {
  it('applies [algorithms], log_level and lockout delays in place', () => {
    const t = setup('[algorithms]\nenforce = "strict"\n');
    expect(t.policy.strict).toBe(true);
    const r = t.reload('[algorithms]\nenforce = "warn"\nallow = ["CKM_AES_ECB"]\n[daemon]\nlog_level = "debug"\n[security]\nfailed_login_delay_base_ms = 7\n');
    expect(r).toMatchObject({ ok: true, refused: [] });
    expect(r.applied).toEqual(['algorithms.allow', 'algorithms.enforce', 'daemon.log_level', 'security.failed_login_delay_base_ms']);
    expect(t.policy.strict).toBe(false);
    expect(t.config.algorithms.allow).toEqual(['CKM_AES_ECB']);
    expect(t.config.daemon.log_level).toBe('debug');
    expect(t.levels).toEqual(['debug']);
    expect(t.lockouts).toEqual([{ baseMs: 7, capMs: t.config.security.failed_login_delay_cap_ms }]);
    expect(t.lines.at(-1)).toMatch(/^info: reload: applied algorithms\.allow, algorithms\.enforce, daemon\.log_level, security\.failed_login_delay_base_ms$/);
  });

  it('refuses non-reloadable keys in one warn line and keeps their running values', () => {
    const t = setup('');
    const before = structuredClone(t.config);
    const r = t.reload('[slots]\ncount = 5\n[audit]\nlog_level = "none"\n[alerts.webhook]\nurl = "https://example.invalid/hook"\n[algorithms]\nrsa_min_bits = 3072\n');
    expect(r.refused).toEqual(['alerts.webhook.url', 'audit.log_level', 'slots.count']);
    expect(r.applied).toEqual(['algorithms.rsa_min_bits']);
    expect(t.config.slots.count).toBe(before.slots.count);
    expect(t.config.audit.log_level).toBe(before.audit.log_level);
    expect(t.config.alerts.webhook).toBeUndefined();
    expect(t.config.algorithms.rsa_min_bits).toBe(3072);
    expect(t.lines.filter((l) => l.startsWith('warn:'))).toEqual([
      'warn: reload: not reloadable, kept the running values (restart to apply): alerts.webhook.url, audit.log_level, slots.count',
    ]);
  });

  it('an invalid file changes nothing and logs one error line', () => {
    const t = setup('[algorithms]\nenforce = "warn"\n');
    const before = structuredClone(t.config);
    for (const bad of ['[algorithms]\nenforce = "maybe"\n', '[algorithms\n', '[nope]\nx = 1\n']) {
      t.lines.length = 0;
      const r = t.reload(bad);
      expect(r.ok).toBe(false);
      expect(t.lines).toHaveLength(1);
      expect(t.lines[0]).toMatch(/^error: reload: config: .*; the running configuration is unchanged$/);
      expect(t.config).toEqual(before);
    }
  });

  it('no changes: one info line', () => {
    const t = setup('');
    expect(t.reload('')).toMatchObject({ ok: true, applied: [], refused: [] });
    expect(t.lines).toEqual(['info: reload: no reloadable changes']);
  });

  it('isReloadable', () => {
    expect(isReloadable('algorithms.deny')).toBe(true);
    expect(isReloadable('daemon.log_level')).toBe(true);
    expect(isReloadable('daemon.socket_path')).toBe(false);
    expect(isReloadable('security.pbkdf2_iterations')).toBe(false);
    expect(isReloadable('metrics.listen')).toBe(false);
  });
});
