// The power-on self-tests: software integrity, the known-answer tests (vectors.ts) through
// the serving mechanism families, and the DRBG's instantiation with its SP 800-90B
// start-up health tests. Any failure latches the error state (state.ts).
import { resetDrbg, drbgStatus, type EntropySource } from '../drbg/index.js';
import { KATS, katContext } from './vectors.js';
import { verifyIntegrity, type IntegrityResult } from './integrity.js';
import { latchErrorState, type ErrorStateKind } from './state.js';

/** Parsed CRATON_HSM_FAULT (only honoured with --test-faults). */
export interface Faults {
  /** post:<test>: that KAT's computed value is corrupted. */
  post?: string;
  /** drbg-health: the entropy source is stuck, so the start-up health test fails. */
  drbgHealth?: boolean;
  /** integrity: a shipped file is treated as modified. */
  integrity?: boolean;
}

export function parseFaults(spec: string | undefined): Faults {
  const f: Faults = {};
  for (const item of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (item === 'drbg-health') f.drbgHealth = true;
    else if (item === 'integrity') f.integrity = true;
    else if (item.startsWith('post:') && KATS.some((k) => k.name === item.slice(5))) f.post = item.slice(5);
    else throw new Error(`CRATON_HSM_FAULT: unknown fault "${item}" (post:<${KATS.map((k) => k.name).join('|')}> | drbg-health | integrity)`);
  }
  return f;
}

export interface SelfTestResult {
  name: string;
  source: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface SelfTestReport {
  passed: boolean;
  startedAt: string;
  durationMs: number;
  integrity: IntegrityResult;
  kats: SelfTestResult[];
  drbg: { ok: boolean; error?: string };
  /** The error-state kind latched by this run, if it failed. */
  failure?: { kind: ErrorStateKind; reason: string };
}

export interface PostOptions {
  faults?: Faults;
  /** dist/ to check; default the running build. null skips the integrity test (unit tests
   * running from TypeScript sources, where there is no build to check). */
  distDir?: string | null;
}

/** A stuck source: the same byte forever (fault injection). */
const stuckSource: EntropySource = (n) => Buffer.alloc(n, 0x5a);

export async function runPowerOnSelfTests(opts: PostOptions = {}): Promise<SelfTestReport> {
  const faults = opts.faults ?? {};
  const t0 = Date.now();
  const report: SelfTestReport = {
    passed: false,
    startedAt: new Date(t0).toISOString(),
    durationMs: 0,
    integrity: { ok: true, files: 0 },
    kats: [],
    drbg: { ok: false },
  };

  report.integrity =
    opts.distDir === null ? { ok: true, files: 0, error: 'skipped' } : verifyIntegrity(opts.distDir ?? undefined, faults.integrity === true);

  const ctx = katContext(faults.post);
  for (const kat of KATS) {
    const s = Date.now();
    try {
      await kat.run(ctx);
      report.kats.push({ name: kat.name, source: kat.source, ok: true, ms: Date.now() - s });
    } catch (e) {
      report.kats.push({ name: kat.name, source: kat.source, ok: false, ms: Date.now() - s, error: (e as Error)?.message ?? String(e) });
    }
  }

  try {
    resetDrbg(faults.drbgHealth ? { source: stuckSource } : {});
    report.drbg = { ok: true };
  } catch {
    report.drbg = { ok: false, error: drbgStatus().reason ?? 'DRBG instantiation failed' };
  }

  const failedKat = report.kats.find((k) => !k.ok);
  if (!report.integrity.ok) report.failure = { kind: 'integrity_failure', reason: `software integrity test failed: ${report.integrity.error}` };
  else if (failedKat) report.failure = { kind: 'post_failure', reason: `known-answer test ${failedKat.name} failed: ${failedKat.error}` };
  else if (!report.drbg.ok) report.failure = { kind: 'drbg_failure', reason: `DRBG health test failed: ${report.drbg.error}` };
  report.passed = !report.failure;
  report.durationMs = Date.now() - t0;
  if (report.failure) latchErrorState(report.failure.kind, report.failure.reason);
  return report;
}
