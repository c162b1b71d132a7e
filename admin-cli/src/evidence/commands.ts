// `craton-hsm-admin evidence`: one signed JSON document of what the HSM did in a period,
// built from the audit log on disk (verified in full first), optionally merged with
// craton-trace logs and rendered as an offline HTML page; `evidence verify` checks one.
// docs/evidence.md.
//
// Exit codes: 0 success; 1 the audit chain did not verify (the document is still written
// and says so) or `verify` failed; 2 usage or configuration error; 3 a log, trace or key
// file cannot be read; 4 the daemon could not sign (admin socket unreachable or refused).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { verifySegments } from '../../../hsm-daemon/src/audit/verify.js';
import { policyFingerprint } from '../../../hsm-daemon/src/policy/fingerprint.js';
import { repoRoot } from '../../../hsm-daemon/src/paths.js';
import { CliError as AuditCliError, verifyPlan } from '../audit/commands.js';
import { CliError as AdminCliError } from '../client.js';
import { collectAudit } from './collect.js';
import { EVIDENCE_FORMAT, isoOf, rate, type EvidenceDocument, type PolicyRecord } from './document.js';
import { renderHtml } from './html.js';
import { signDocument, trustedKeys, verifyDocument } from './sign.js';
import { collectTrace } from './trace.js';

interface Globals {
  config?: string;
  dataDir?: string;
  socket?: string;
  adminSocket?: string;
  json?: boolean;
  /** `evidence --pubkey` and `evidence verify --pubkey` share the name; commander gives it to whichever parses first. */
  pubkey?: string;
}
type ConfigFrom = (opts: Globals) => Config;

class EvidenceError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

/** ISO 8601 with a zone (or a plain date, taken as UTC midnight) or unix seconds → unix seconds. */
export function parseTime(flag: string, v: string): number {
  const t = v.trim();
  if (/^\d{1,12}$/.test(t)) return Number(t);
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return Date.parse(t + 'T00:00:00Z') / 1000;
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(t)) {
    const why = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t) ? ' (add a time zone: Z or +hh:mm)' : '';
    throw new EvidenceError(`${flag}: ${JSON.stringify(v)} is not a time${why}; give ISO 8601 (2026-01-31T00:00:00Z) or unix seconds`, 2);
  }
  const ms = Date.parse(t.replace(' ', 'T'));
  if (Number.isNaN(ms)) throw new EvidenceError(`${flag}: ${JSON.stringify(v)} is not a valid date`, 2);
  return Math.floor(ms / 1000);
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Written beside the target and renamed over it: a reader never sees half a document. */
function writeAtomically(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, file);
}

export interface BuildOptions {
  since: number;
  until: number;
  segments?: string[];
  trace?: string[];
  key?: string;
  pubkey?: string;
  head?: string;
  now?: Date;
}

/** The unsigned document for the period (the audit log verified in full, then aggregated). */
export async function buildEvidence(c: Config, o: BuildOptions): Promise<EvidenceDocument> {
  const plan = verifyPlan(c, o.segments ?? [], { key: o.key, pubkey: o.pubkey, head: o.head });
  const agg = await collectAudit(plan.files, { since: o.since, until: o.until });
  // Verified after reading: the daemon may append meanwhile, and the figures are trusted
  // only if every entry they came from lies inside the verified range.
  const v = await verifySegments(plan.files, plan.options);
  const cfg = policyFingerprint(c.algorithms);
  const configuredNow: PolicyRecord = { source: 'configuration', seq: null, timestamp: null, reason: 'configuration file now', ...cfg, hash_ok: true };
  const newest = agg.policyInForce[agg.policyInForce.length - 1];
  const trace = o.trace?.length ? await collectTrace(o.trace, o.since, o.until) : null;
  const coversPeriod = v.ok && agg.unparseable === 0 && (agg.lastSeqRead === null || (v.lastSeq !== null && v.lastSeq >= agg.lastSeqRead));
  const ops = agg.operations;
  return {
    format: EVIDENCE_FORMAT,
    generated_at: (o.now ?? new Date()).toISOString(),
    generator: { tool: 'craton-hsm-admin evidence', version: version(), host: os.hostname() },
    period: { since: isoOf(o.since), until: isoOf(o.until), since_unix: o.since, until_unix: o.until },
    sources: { log_path: c.audit.log_path, data_dir: c.daemon.data_dir },
    summary: {
      operations: ops.total,
      approved: ops.approved,
      non_approved: ops.non_approved,
      approval_rate: rate(ops.approved, ops.approved + ops.non_approved),
      refusals: agg.refusals.total,
      failed_logins: agg.authentication.failed_logins,
      keys_created: agg.keys.created,
      keys_destroyed: agg.keys.destroyed,
      keys_rotated: agg.keys.rotated,
      alerts: agg.alerts.total,
      self_tests: agg.self_tests.runs.length,
      self_tests_failed: agg.self_tests.runs.filter((r) => !r.passed).length,
      chain_ok: coversPeriod,
    },
    policy: { in_force: agg.policyInForce, configured_now: configuredNow, matches_configuration: !!newest && newest.policy_hash === cfg.policy_hash },
    self_tests: agg.self_tests,
    audit_chain: {
      ok: v.ok,
      segments: plan.files,
      entries_total: v.entries,
      first_seq: v.firstSeq,
      last_seq: v.lastSeq,
      last_chain: v.lastChain,
      entries_in_period: agg.entriesInPeriod,
      first_seq_in_period: agg.firstSeqInPeriod,
      last_seq_in_period: agg.lastSeqInPeriod,
      checkpoints_verified: v.checkpointsVerified,
      checkpoints_in_period: agg.checkpointsInPeriod,
      layers: v.layers,
      hmac_key: plan.keyFile ?? null,
      public_key: plan.pubFile ?? null,
      head_file: plan.headFile ?? null,
      covers_period: coversPeriod,
      warnings: [...v.warnings, ...(agg.unparseable ? [`${agg.unparseable} unparseable line(s) skipped while aggregating`] : [])],
      failure: v.failure ? { file: v.failure.file, line: v.failure.line, seq: v.failure.seq, what: v.failure.what } : null,
    },
    operations: ops,
    refusals: agg.refusals,
    authentication: agg.authentication,
    policy_violations: agg.policy_violations,
    keys: agg.keys,
    gcm: agg.gcm,
    alerts: agg.alerts,
    timeline: agg.timeline,
    trace,
    signature: null,
  };
}

function summaryText(doc: EvidenceDocument, files: string[]): string {
  const s = doc.summary;
  const ch = doc.audit_chain;
  return [
    `evidence for ${doc.period.since} .. ${doc.period.until} written to ${files.join(', ')}`,
    `audit chain: ${ch.ok ? 'verified' : 'FAILED'} (${ch.entries_total} entries in ${ch.segments.length} segment(s), ${ch.entries_in_period} in the period, seq ${ch.first_seq_in_period ?? '-'}..${ch.last_seq_in_period ?? '-'}, ${ch.checkpoints_verified} checkpoint signature(s))`,
    `operations: ${s.operations} (approved ${s.approved}, non-approved ${s.non_approved}, approval ${s.approval_rate ?? 'n/a'}%); refused ${s.refusals}; failed logins ${s.failed_logins}`,
    `keys: created ${s.keys_created}, destroyed ${s.keys_destroyed}, rotated ${s.keys_rotated}; alerts ${s.alerts}; self-tests ${s.self_tests} (${s.self_tests_failed} failed)`,
    doc.trace ? `trace: ${doc.trace.total_operations} OpenSSL operations in ${doc.trace.processes.length} process(es), approval ${doc.trace.approval_rate ?? 'n/a'}%, blocked ${doc.trace.blocked_operations}` : '',
    doc.signature ? `signed by the HSM's audit key ${doc.signature.key_id.slice(0, 16)}… at ${doc.signature.signed_at}` : 'UNSIGNED (--unsigned)',
  ]
    .filter(Boolean)
    .join('\n');
}

export function registerEvidenceCommands(program: Command, configFrom: ConfigFrom): void {
  const run =
    <A extends unknown[]>(fn: (c: Config, g: Globals, ...a: A) => Promise<void>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<Globals>();
      try {
        await fn(configFrom(g), g, ...(args.slice(0, -1) as A));
      } catch (e) {
        const code = e instanceof EvidenceError ? e.code : e instanceof AuditCliError ? e.code : e instanceof AdminCliError ? 4 : null;
        if (code === null) throw e;
        process.stderr.write(`craton-hsm-admin evidence: ${(e as Error).message}\n`);
        process.exitCode = code;
      }
    };
  const collect = (v: string, prev: string[] = []) => [...prev, v];

  const evidence = program
    .command('evidence')
    .description('signed compliance evidence for a period, from the audit log (and craton-trace logs): JSON, optionally HTML; `evidence verify FILE` checks one')
    .option('--since <time>', 'start of the period: ISO 8601 with zone, or unix seconds')
    .option('--until <time>', 'end of the period, inclusive (default: now)')
    .option('--output <file>', 'the JSON evidence document')
    .option('--html <file>', 'also render it as a self-contained HTML page (charts, no external resources)')
    .option('--trace <file>', 'craton-trace monitor log to merge (repeatable)', collect)
    .option('--key <file>', 'initial HMAC key for the keyed layer (default: the data dir\'s, when readable)')
    .option('--pubkey <file>', 'checkpoint public key (default: the data dir\'s)')
    .option('--head <file>', 'signed head (default: <log_path>.head.json)')
    .option('--unsigned', 'do not ask the daemon to sign (when it is not running); `evidence verify` will refuse the document')
    .option('--json', 'print the summary as JSON')
    .addOption(new Option('--segment <file>', 'audit segment files instead of the configured log (repeatable, in order)').argParser(collect))
    .action(
      run(async (c, g, opts: { since?: string; until?: string; output?: string; html?: string; trace?: string[]; key?: string; pubkey?: string; head?: string; unsigned?: boolean; segment?: string[] }) => {
        if (!opts.since) throw new EvidenceError('--since is required (ISO 8601 or unix seconds)', 2);
        if (!opts.output) throw new EvidenceError('--output FILE is required (the JSON document)', 2);
        const since = parseTime('--since', opts.since);
        const until = opts.until === undefined ? Math.floor(Date.now() / 1000) : parseTime('--until', opts.until);
        if (since > until) throw new EvidenceError(`--since (${isoOf(since)}) is after --until (${isoOf(until)})`, 2);
        for (const f of opts.trace ?? []) {
          try {
            readFileSync(f);
          } catch (e) {
            throw new EvidenceError(`--trace ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 3);
          }
        }
        let doc = await buildEvidence(c, { since, until, segments: opts.segment, trace: opts.trace, key: opts.key, pubkey: opts.pubkey, head: opts.head });
        if (!opts.unsigned) {
          const adminPath = g.adminSocket ? path.resolve(g.adminSocket) : c.daemon.admin_socket_path;
          try {
            doc = await signDocument(adminPath, doc);
          } catch (e) {
            const msg = (e as Error).message;
            throw new EvidenceError(`the daemon did not sign the document (${msg}); nothing written. Start craton-hsmd, or pass --unsigned`, 4);
          }
        }
        writeAtomically(opts.output, JSON.stringify(doc, null, 2) + '\n');
        const files = [opts.output];
        if (opts.html) {
          writeAtomically(opts.html, renderHtml(doc));
          files.push(opts.html);
        }
        if (g.json) out(JSON.stringify({ output: opts.output, html: opts.html ?? null, summary: doc.summary, signed: !!doc.signature, digest: doc.signature?.digest ?? null }));
        else out(summaryText(doc, files));
        if (!doc.audit_chain.ok) {
          const f = doc.audit_chain.failure;
          process.stderr.write(`craton-hsm-admin evidence: the audit chain did NOT verify${f ? ` (${f.what} at ${f.file}:${f.line})` : ''}; the document says so\n`);
          process.exitCode = 1;
        }
      }),
    );

  evidence
    .command('verify')
    .description('check an evidence document: its digest, the signature, and that the signing key is this HSM\'s audit signing key')
    .argument('<file>', 'the JSON evidence document')
    .option('--pubkey <file>', 'the HSM\'s audit-checkpoint-pub.pem (default: the data dir\'s, plus any key ring of earlier keys)')
    .option('--json', 'print the result as JSON')
    .action(
      run(async (c, g, file: string, opts: { pubkey?: string }) => {
        let doc: Record<string, unknown>;
        try {
          doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          throw new EvidenceError(`${file}: ${err.code ? err.code : `not JSON (${err.message})`}`, err.code ? 3 : 1);
        }
        let trusted;
        try {
          trusted = trustedKeys(c.daemon.data_dir, opts.pubkey ?? g.pubkey);
        } catch (e) {
          throw new EvidenceError(`--pubkey ${opts.pubkey ?? g.pubkey}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 3);
        }
        const r = verifyDocument(doc, trusted);
        if (g.json) out(JSON.stringify(r));
        else if (r.ok) out(`evidence verified: signed by the HSM's audit key ${r.key_id} at ${r.signed_at}; digest ${r.digest}\n${r.checks.map((x) => `  ok  ${x.check}: ${x.detail}`).join('\n')}`);
        else {
          const bad = r.checks.find((x) => !x.ok)!;
          process.stderr.write(`evidence verify: FAILED (${bad.check}): ${bad.detail}\n`);
          for (const x of r.checks) process.stderr.write(`  ${x.ok ? 'ok  ' : 'FAIL'} ${x.check}: ${x.detail}\n`);
        }
        process.exitCode = r.ok ? 0 : 1;
      }),
    );
}
