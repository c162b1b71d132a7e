// Power-on self-tests: each published vector through the serving families, the
// integrity manifest, the error-state latch and gate, and startSafety's wiring.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KATS, KatFailure, katContext } from '../../../hsm-daemon/src/selftest/vectors.js';
import { buildManifest, verifyIntegrity, writeManifest } from '../../../hsm-daemon/src/selftest/integrity.js';
import { parseFaults, runPowerOnSelfTests } from '../../../hsm-daemon/src/selftest/post.js';
import { clearErrorState, errorState, errorStateGate, latchErrorState, onErrorState } from '../../../hsm-daemon/src/selftest/state.js';
import { startSafety } from '../../../hsm-daemon/src/selftest/index.js';
import { randomBytes, resetDrbg } from '../../../hsm-daemon/src/drbg/index.js';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import type { AppContext } from '../../../hsm-daemon/src/wire/contract.js';

const APP = { id: 'a1' } as AppContext;

afterEach(() => {
  clearErrorState();
  resetDrbg();
});

describe('known-answer tests', () => {
  it('covers the approved families', () => {
    expect(KATS.map((k) => k.name)).toEqual(
      expect.arrayContaining(['sha256', 'sha3-256', 'hmac-sha256', 'aes-gcm', 'aes-cbc', 'aes-ctr', 'aes-kw', 'aes-cmac', 'rsa-pkcs1-sha256', 'rsa-oaep-sha256', 'ecdsa-p256', 'eddsa-ed25519', 'ecdh-p256', 'x25519', 'aes-ccm', 'hkdf-sha256', 'pbkdf2-sha256', 'drbg']),
    );
    for (const k of KATS) expect(k.source.length).toBeGreaterThan(5);
  });

  it.each(KATS.map((k) => [k.name, k] as const))('%s passes with its published vector', async (_n, kat) => {
    await kat.run(katContext());
  });

  it.each(KATS.map((k) => [k.name, k] as const))('%s fails when its result is corrupted', async (name, kat) => {
    await expect(kat.run(katContext(name))).rejects.toBeInstanceOf(KatFailure);
  });
});

describe('integrity manifest', () => {
  function fakeDist(): string {
    const d = mkdtempSync(path.join(os.tmpdir(), 'craton-integrity-'));
    mkdirSync(path.join(d, 'hsm-daemon', 'src', 'x'), { recursive: true });
    writeFileSync(path.join(d, 'hsm-daemon', 'src', 'main.js'), 'console.log(1)\n');
    writeFileSync(path.join(d, 'hsm-daemon', 'src', 'x', 'y.js'), 'export const y = 2;\n');
    writeFileSync(path.join(d, 'hsm-daemon', 'src', 'x', 'y.js.map'), '{}');
    return d;
  }

  it('verifies an untouched build and catches modified, missing, added files and a forged manifest', () => {
    const d = fakeDist();
    try {
      expect(verifyIntegrity(d).ok).toBe(false); // no manifest yet
      const m = writeManifest(d);
      expect(Object.keys(m.files)).toEqual(['src/main.js', 'src/x/y.js']);
      expect(verifyIntegrity(d)).toEqual({ ok: true, files: 2 });
      expect(verifyIntegrity(d, true).ok).toBe(false);
      writeFileSync(path.join(d, 'hsm-daemon', 'src', 'x', 'y.js'), 'export const y = 3;\n');
      expect(verifyIntegrity(d).error).toMatch(/HMAC mismatch for hsm-daemon\/src\/x\/y.js/);
      writeManifest(d);
      writeFileSync(path.join(d, 'hsm-daemon', 'src', 'extra.js'), '');
      expect(verifyIntegrity(d).error).toMatch(/unlisted file/);
      rmSync(path.join(d, 'hsm-daemon', 'src', 'extra.js'));
      rmSync(path.join(d, 'hsm-daemon', 'src', 'main.js'));
      expect(verifyIntegrity(d).error).toMatch(/missing file/);
      writeManifest(d);
      const forged = { ...buildManifest(d), files: { 'src/x/y.js': '00'.repeat(32) } };
      writeFileSync(path.join(d, 'integrity.json'), JSON.stringify(forged));
      expect(verifyIntegrity(d).error).toMatch(/manifest MAC mismatch/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('runPowerOnSelfTests and the error state', () => {
  it('passes with no faults and leaves the module usable', async () => {
    const r = await runPowerOnSelfTests({ distDir: null });
    expect(r.passed).toBe(true);
    expect(r.kats.every((k) => k.ok)).toBe(true);
    expect(errorState()).toBeNull();
    expect(() => errorStateGate(APP, 'C_GenerateRandom')).not.toThrow();
  });

  it.each([
    ['post:aes-gcm', 'post_failure'],
    ['post:drbg', 'post_failure'],
    ['drbg-health', 'drbg_failure'],
  ])('%s latches %s; the gate refuses every call but C_Finalize', async (spec, kind) => {
    const seen: string[] = [];
    const off = onErrorState((e) => seen.push(e.kind));
    try {
      const r = await runPowerOnSelfTests({ distDir: null, faults: parseFaults(spec) });
      expect(r.passed).toBe(false);
      expect(r.failure?.kind).toBe(kind);
      expect(errorState()?.kind).toBe(kind);
      expect(seen).toEqual([kind]);
      for (const fn of ['C_GetSlotList', 'C_OpenSession', 'C_GenerateRandom', 'C_Sign']) {
        try {
          errorStateGate(APP, fn);
          expect.unreachable();
        } catch (e) {
          expect((e as CkError).rv).toBe(CKR.GENERAL_ERROR);
        }
      }
      expect(() => errorStateGate(APP, 'C_Finalize')).not.toThrow();
    } finally {
      off();
    }
  });

  it('the integrity fault latches integrity_failure', async () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'craton-integrity-'));
    try {
      mkdirSync(path.join(d, 'hsm-daemon'));
      writeFileSync(path.join(d, 'hsm-daemon', 'a.js'), 'x');
      writeManifest(d);
      expect((await runPowerOnSelfTests({ distDir: d })).passed).toBe(true);
      const r = await runPowerOnSelfTests({ distDir: d, faults: { integrity: true } });
      expect(r.failure?.kind).toBe('integrity_failure');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('parseFaults refuses unknown faults', () => {
    expect(parseFaults('post:sha256,integrity')).toEqual({ post: 'sha256', integrity: true });
    expect(() => parseFaults('post:nope')).toThrow(/unknown fault/);
  });

  it('latches once: the first reason is kept', () => {
    latchErrorState('post_failure', 'first');
    latchErrorState('drbg_failure', 'second');
    expect(errorState()).toMatchObject({ kind: 'post_failure', reason: 'first' });
  });
});

describe('startSafety', () => {
  const config = { alerts: { queue_size: 10, max_retries: 0 } } as unknown as Config;

  function harness(env: Record<string, string>, testFaults: boolean) {
    const gates: Array<(app: AppContext, fn: string) => void> = [];
    const logs: string[] = [];
    const lines: string[] = [];
    const dispatcher = { gate: (g: never) => void gates.push(g), observe: () => undefined };
    const run = () =>
      startSafety({
        config,
        log: (l, m) => void logs.push(`${l}: ${m}`),
        dispatcher: dispatcher as never,
        testFaults,
        env,
        post: { distDir: null },
        alerts: { writeLine: (l) => void lines.push(l) },
      });
    return { gates, logs, lines, run };
  }

  it('ignores CRATON_HSM_FAULT without --test-faults', async () => {
    const h = harness({ CRATON_HSM_FAULT: 'post:sha256' }, false);
    const s = await h.run();
    expect(s.report.passed).toBe(true);
    expect(h.logs.join('\n')).toMatch(/ignored: fault injection needs --test-faults/);
    expect(h.gates).toHaveLength(1);
  });

  it('a POST fault logs at error level, pages, gates; a runtime DRBG failure does the same', async () => {
    const h = harness({ CRATON_HSM_FAULT: 'post:hmac-sha256' }, true);
    const s = await h.run();
    expect(s.report.passed).toBe(false);
    expect(h.logs.some((l) => /^error: entering the error state \(post_failure\)/.test(l))).toBe(true);
    const alert = JSON.parse(h.lines[0]!);
    expect(alert).toMatchObject({ level: 'error', event: 'alert', kind: 'post_failure', severity: 'critical', action: 'page' });
    expect(() => h.gates[0]!(APP, 'C_GetInfo')).toThrow(CkError);
    // the rerun still has the fault, so the latch stays
    expect((await s.rerunSelfTests()).passed).toBe(false);
    expect(errorState()?.kind).toBe('post_failure');
  });

  it('rerunSelfTests clears the latch after a DRBG failure once the tests pass', async () => {
    const h = harness({}, true);
    const s = await h.run();
    expect(s.report.passed).toBe(true);
    expect(() => resetDrbg({ source: (n) => Buffer.alloc(n, 1) })).toThrow();
    expect(errorState()?.kind).toBe('drbg_failure');
    expect(h.lines.map((l) => JSON.parse(l).kind)).toContain('drbg_failure');
    expect(() => randomBytes(1)).toThrow(CkError);
    const r = await s.rerunSelfTests();
    expect(r.passed).toBe(true);
    expect(errorState()).toBeNull();
    expect(randomBytes(4)).toHaveLength(4);
    expect(h.lines.some((l) => JSON.parse(l).event === 'alert_resolved')).toBe(true);
  });
});
