// `craton-hsm-admin audit …`: reads the audit segments on disk (never writes them), so it
// works while the daemon is down and does not disturb a live one.
//
// Exit codes: 0 success; 1 verification failed; 2 usage or configuration error;
// 3 the log or a key file cannot be read; 4 (rotate) no running daemon found.
// rotate: 1 when the daemon answered but refused or failed the rotation.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { CHECKPOINT_PUB_FILE, readCheckpointKeyring, readCheckpointPublicKey, type SignedCheckpoint } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { isPkcs11CallEntry, seedHash } from '../../../hsm-daemon/src/audit/entry.js';
import { discoverSegments, headFile, parseEntryLine, type ParsedEntry } from '../../../hsm-daemon/src/audit/segments.js';
import { HMAC_INITIAL_FILE } from '../../../hsm-daemon/src/audit/writer.js';
import { completeLength, verifySegments, type VerifyOptions } from '../../../hsm-daemon/src/audit/verify.js';
import { adminCall, CliError as AdminCliError, EXIT } from '../client.js';

interface AuditGlobals {
  config?: string;
  dataDir?: string;
  socket?: string;
  adminSocket?: string;
  json?: boolean;
}

type ConfigFrom = (opts: AuditGlobals) => Config;

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

export function segmentsFor(c: Config, explicit: string[]): string[] {
  if (explicit.length > 0) {
    for (const f of explicit) if (!existsSync(f)) throw new CliError(`${f}: no such file`, 3);
    return explicit.map((f) => path.resolve(f));
  }
  const segs = discoverSegments(c.audit.log_path).map((s) => s.path);
  if (segs.length === 0) throw new CliError(`no audit log at ${c.audit.log_path}`, 3);
  return segs;
}

/** The last `n` complete lines of a file, reading backwards. */
function tailLines(file: string, n: number): string[] {
  const fd = openSync(file, 'r');
  try {
    const { complete } = completeLength(file);
    const chunks: Buffer[] = [];
    let pos = complete;
    let newlines = 0;
    const buf = Buffer.alloc(1 << 16);
    while (pos > 0 && newlines <= n) {
      const start = Math.max(0, pos - buf.length);
      const got = readSync(fd, buf, 0, pos - start, start);
      const chunk = Buffer.from(buf.subarray(0, got));
      for (const b of chunk) if (b === 0x0a) newlines++;
      chunks.unshift(chunk);
      pos = start;
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    lines.pop(); // after the final newline
    if (pos > 0) lines.shift(); // possibly partial first line
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

function lastEntries(files: string[], n: number): string[] {
  const acc: string[] = [];
  for (let i = files.length - 1; i >= 0 && acc.length < n; i--) acc.unshift(...tailLines(files[i]!, n - acc.length));
  return acc.slice(-n);
}

export async function* entriesOf(files: string[]): AsyncGenerator<{ file: string; line: number; text: string; entry: ParsedEntry | null }> {
  for (const file of files) {
    const { complete } = completeLength(file);
    if (complete === 0) continue;
    const rl = createInterface({ input: createReadStream(file, { start: 0, end: complete - 1 }), crlfDelay: Infinity });
    let line = 0;
    for await (const text of rl) {
      line++;
      yield { file, line, text, entry: parseEntryLine(text) };
    }
  }
}

const iso = (t: unknown) => (typeof t === 'number' ? new Date(t * 1000).toISOString().replace('.000Z', 'Z') : '-');
const resultText = (r: unknown): string => {
  if (r && typeof r === 'object') {
    if ('Success' in r) return 'OK';
    if ('Failure' in r) return String((r as { Failure: unknown }).Failure);
  }
  return '?';
};

function table(entries: ParsedEntry[]): string {
  const head = ['SEQ', 'TIME (UTC)', 'PID', 'UID', 'EXE', 'SESSION', 'OPERATION', 'KEY', 'MECHANISM', 'RESULT', 'DETAILS'];
  const rows = entries.map((e) => [
    String(e.seq),
    iso(e.timestamp),
    String(e.pid ?? '-'),
    String(e.uid ?? '-'),
    typeof e.exe === 'string' ? e.exe : '-',
    String(e.session_handle ?? '-'),
    e.operation,
    e.key_id === null || e.key_id === undefined ? '-' : String(e.key_id),
    typeof e.mechanism === 'string' ? e.mechanism : '-',
    resultText(e.result),
    e.details ? JSON.stringify(e.details).slice(0, 120) : '',
  ]);
  const widths = head.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : (c.length > widths[i]! ? '…' + c.slice(c.length - widths[i]! + 1) : c).padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

function readKeyFile(file: string): Buffer {
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new CliError(`${file}: not a 32-byte hex HMAC key`, 3);
  return Buffer.from(hex, 'hex');
}

function readPublicKey(file: string): KeyObject {
  const pem = readFileSync(file);
  try {
    return createPublicKey(pem);
  } catch {
    throw new CliError(`${file}: not a public key (PEM)`, 3);
  }
}

function syslogLine(e: ParsedEntry, raw: string, host: string): string {
  // RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
  // facility 13 (log audit); severity 6 (informational) or 4 (warning) for failures.
  const failed = resultText(e.result) !== 'OK';
  const pri = 13 * 8 + (failed ? 4 : 6);
  const sdv = (v: unknown) => String(v ?? '-').replace(/[\\"\]]/g, (m) => '\\' + m);
  const params: Array<[string, unknown]> = [
    ['seq', e.seq],
    ['session', e.session_handle],
    ['key', e.key_id ?? '-'],
    ['pid', e.pid],
    ['uid', e.uid],
    ['exe', e.exe ?? '-'],
    ['mechanism', e.mechanism ?? '-'],
    ['result', resultText(e.result)],
    ['chain', e.chain],
  ];
  const sd = `[craton-audit@32473 ${params.map(([k, v]) => `${k}="${sdv(v)}"`).join(' ')}]`;
  const msgid = e.operation.replace(/[^\x21-\x7e]/g, '').slice(0, 32) || '-';
  return `<${pri}>1 ${iso(e.timestamp)} ${host} craton-hsmd - ${msgid} ${sd} ${raw}`;
}

/** The daemon pid from the live log's last Startup entry, when that process is still a craton-hsmd. */
function findDaemonPid(files: string[]): number | null {
  const live = files[files.length - 1];
  if (!live) return null;
  for (const line of tailLines(live, 5000).reverse()) {
    const e = parseEntryLine(line);
    if (e?.operation === 'Startup' && typeof e.details?.daemon_pid === 'number') {
      const pid = e.details.daemon_pid;
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (/craton-hsmd|hsm-daemon[/\\]src[/\\]main/.test(cmd)) return pid;
      } catch {
        return null;
      }
      return null;
    }
  }
  return null;
}

export interface VerifyPlan {
  files: string[];
  keyFile?: string;
  pubFile?: string;
  headFile?: string;
  head?: SignedCheckpoint;
  options: VerifyOptions;
}

/** What `audit verify` checks, with its defaults from the data dir (also used by
 * `craton-hsm-admin evidence`). Throws CliError (exit 3) for unreadable inputs. */
export function verifyPlan(c: Config, segs: string[], opts: { key?: string; pubkey?: string; head?: string }): VerifyPlan {
  const files = segmentsFor(c, segs);
  const dd = c.daemon.data_dir;
  let keyFile = opts.key;
  if (!keyFile) {
    const d = path.join(dd, HMAC_INITIAL_FILE);
    try {
      readFileSync(d);
      keyFile = d;
    } catch {
      /* not readable: skip the keyed layer */
    }
  }
  const pubFile = opts.pubkey ?? (existsSync(path.join(dd, CHECKPOINT_PUB_FILE)) ? path.join(dd, CHECKPOINT_PUB_FILE) : undefined);
  const hf = opts.head ?? (segs.length === 0 && existsSync(headFile(c.audit.log_path)) ? headFile(c.audit.log_path) : undefined);
  let head: SignedCheckpoint | undefined;
  if (hf) {
    try {
      head = JSON.parse(readFileSync(hf, 'utf8')) as SignedCheckpoint;
    } catch (e) {
      throw new CliError(`${hf}: ${(e as Error).message}`, 3);
    }
  }
  const options: VerifyOptions = {
    initialKey: keyFile ? readKeyFile(keyFile) : undefined,
    publicKey: pubFile ? readPublicKey(pubFile) : undefined,
    // Without --pubkey: every key this data directory has signed with (a restore installs
    // another); the log's CheckpointKeyChange entries say which is in force when.
    publicKeys: opts.pubkey ? undefined : readCheckpointKeyring(dd),
    head,
  };
  return { files, keyFile, pubFile, headFile: hf, head, options };
}

export function registerAuditCommands(program: Command, configFrom: ConfigFrom): void {
  const audit = program
    .command('audit')
    .description('read, verify and export the tamper-evident audit log (works while the daemon is down)')
    .addOption(new Option('--json', 'machine-readable output'));

  const run =
    <A extends unknown[]>(fn: (c: Config, g: AuditGlobals, ...a: A) => Promise<void> | void) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<AuditGlobals>();
      try {
        await fn(configFrom(g), g, ...(args.slice(0, -1) as A));
      } catch (e) {
        if (e instanceof CliError) {
          process.stderr.write(`craton-hsm-admin audit: ${e.message}\n`);
          process.exitCode = e.code;
          return;
        }
        throw e;
      }
    };

  audit
    .command('dump')
    .description('print the last N entries (human table, or --json lines)')
    .option('--last <n>', 'number of entries', '20')
    .option('--json', 'one JSON entry per line, exactly as stored')
    .argument('[segments...]', 'segment files (default: all segments of the configured log)')
    .action(
      run(async (c, g, segs: string[], opts: { last: string }) => {
        const n = Number(opts.last);
        if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`--last: expected a non-negative integer, got ${opts.last}`, 2);
        const lines = lastEntries(segmentsFor(c, segs), n);
        if (g.json) {
          if (lines.length) out(lines.join('\n'));
          return;
        }
        const entries = lines.map((l) => parseEntryLine(l)).filter((e): e is ParsedEntry => e !== null);
        out(table(entries));
      }),
    );

  audit
    .command('verify')
    .description('verify every integrity layer; exit 0 with the count, 1 with file, line and both hashes on the first mismatch')
    .option('--key <file>', `initial HMAC key (default: <data_dir>/${HMAC_INITIAL_FILE} when readable)`)
    .option('--pubkey <file>', `the checkpoint public key the log starts with; later keys are taken from the log's recorded key changes (default: <data_dir>/${CHECKPOINT_PUB_FILE} and the keyring <data_dir>/audit-checkpoint-pubs/)`)
    .option('--head <file>', 'signed head (default: <log_path>.head.json when verifying the configured log)')
    .option('--json', 'print the result as JSON')
    .argument('[segments...]', 'segment files in order (default: all segments of the configured log)')
    .action(
      run(async (c, g, segs: string[], opts: { key?: string; pubkey?: string; head?: string }) => {
        const { files, keyFile, pubFile, headFile: hf, head, options } = verifyPlan(c, segs, opts);
        const r = await verifySegments(files, options);
        if (g.json) {
          out(JSON.stringify({ ...r, segments: files, key: keyFile ?? null, pubkey: pubFile ?? null, head: hf ?? null }));
        } else if (r.ok) {
          out(`verified ${r.entries} entries (seq ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}) in ${files.length} segment(s)`);
          out(`layers: ${r.layers.join(', ')}${head ? ', signed head' : ''}; ${r.checkpointsVerified} checkpoint signature(s) verified`);
          if (!keyFile) out('note: no HMAC key given (--key); the keyed layer was not checked');
          for (const w of r.warnings) out(`warning: ${w}`);
        } else {
          const f = r.failure!;
          process.stderr.write(`audit verify: FAILED at ${f.file}:${f.line}${f.seq !== null ? ` (seq ${f.seq})` : ''}: ${f.what}\n`);
          if (f.expected !== undefined) process.stderr.write(`  expected: ${f.expected}\n  recorded: ${f.recorded}\n`);
          process.stderr.write(`  (${r.entries} entries verified before it)\n`);
        }
        process.exitCode = r.ok ? 0 : 1;
      }),
    );

  audit
    .command('head')
    .description('the chain head (for external anchoring) and the last signed checkpoint')
    .option('--json', 'print as JSON')
    .action(
      run(async (c, g) => {
        const files = segmentsFor(c, []);
        const line = lastEntries(files, 1)[0];
        const e = line ? parseEntryLine(line) : null;
        const hf = headFile(c.audit.log_path);
        const signed = existsSync(hf) ? (JSON.parse(readFileSync(hf, 'utf8')) as Record<string, unknown>) : null;
        const info = e
          ? { seq: e.seq, timestamp: e.timestamp, chain: e.chain, hmac: e.hmac, next_previous_hash: seedHash(e), segment: files[files.length - 1], signed_checkpoint: signed }
          : { seq: 0, chain: null, segment: files[files.length - 1], signed_checkpoint: signed };
        if (g.json) return out(JSON.stringify(info));
        out(
          [
            `seq:          ${info.seq}`,
            `time:         ${iso(e?.timestamp)}`,
            `chain:        ${info.chain ?? '-'}`,
            `segment:      ${info.segment}`,
            signed
              ? `checkpoint:   seq ${String(signed.head_seq)} chain ${String(signed.head_chain)} at ${iso(signed.timestamp)} (key ${String(signed.key_id ?? 'unsigned').slice(0, 16)}…)`
              : 'checkpoint:   none yet',
          ].join('\n'),
        );
      }),
    );

  audit
    .command('stats')
    .description('metrics derived from the log: operations by result, failed logins per session, keygen by mechanism, CK_RV histogram')
    .option('--json', 'print as JSON')
    .argument('[segments...]', 'segment files (default: all)')
    .action(
      run(async (c, g, segs: string[]) => {
        const byOp: Record<string, Record<string, number>> = {};
        const rv: Record<string, number> = {};
        const failedLogins: Record<string, number> = {};
        const keygen: Record<string, number> = {};
        const byExe: Record<string, number> = {};
        let total = 0;
        let first: number | null = null;
        let last: number | null = null;
        for await (const { entry: e } of entriesOf(segmentsFor(c, segs))) {
          if (!e) continue;
          total++;
          if (typeof e.timestamp === 'number') {
            first ??= e.timestamp;
            last = e.timestamp;
          }
          const r = resultText(e.result);
          const sym = r === 'OK' ? 'CKR_OK' : r;
          (byOp[e.operation] ??= {})[sym] = (byOp[e.operation]![sym] ?? 0) + 1;
          const call = isPkcs11CallEntry(e);
          if (call) rv[sym] = (rv[sym] ?? 0) + 1;
          if (e.operation === 'Login' && r !== 'OK') {
            const k = `session ${String(e.session_handle)} (pid ${String(e.pid)})`;
            failedLogins[k] = (failedLogins[k] ?? 0) + 1;
          }
          if ((e.operation === 'GenerateKey' || e.operation === 'GenerateKeyPair') && r === 'OK') {
            const m = typeof e.mechanism === 'string' ? e.mechanism : '-';
            keygen[m] = (keygen[m] ?? 0) + 1;
          }
          if (call && typeof e.exe === 'string') byExe[e.exe] = (byExe[e.exe] ?? 0) + 1;
        }
        const span = first !== null && last !== null ? Math.max(1, last - first) : 0;
        const stats = { entries: total, first: first, last: last, per_second: span ? total / span : 0, operations: byOp, failed_logins: failedLogins, keygen_by_mechanism: keygen, ck_rv: rv, by_exe: byExe };
        if (g.json) return out(JSON.stringify(stats));
        const lines = [`entries: ${total} from ${iso(first)} to ${iso(last)} (${stats.per_second.toFixed(3)}/s)`, '', 'operation / result:'];
        for (const [op, m] of Object.entries(byOp).sort()) for (const [k, v] of Object.entries(m)) lines.push(`  ${op.padEnd(20)} ${k.padEnd(32)} ${v}`);
        lines.push('', 'failed logins per session:');
        for (const [k, v] of Object.entries(failedLogins)) lines.push(`  ${k.padEnd(40)} ${v}`);
        lines.push('', 'key generation by mechanism:');
        for (const [k, v] of Object.entries(keygen)) lines.push(`  ${k.padEnd(40)} ${v}`);
        lines.push('', 'CK_RV histogram (calls):');
        for (const [k, v] of Object.entries(rv).sort((a, b) => b[1] - a[1])) lines.push(`  ${k.padEnd(40)} ${v}`);
        out(lines.join('\n'));
      }),
    );

  audit
    .command('tail')
    .description('print the last entries; with -f, keep printing new ones (follows rotation)')
    .option('-n, --lines <n>', 'entries to print first', '10')
    .option('-f, --follow', 'wait for new entries')
    .option('--json', 'raw JSON lines')
    .action(
      run(async (c, g, opts: { lines: string; follow?: boolean }) => {
        const n = Number(opts.lines);
        const print = (lines: string[]) => {
          if (lines.length === 0) return;
          if (g.json) out(lines.join('\n'));
          else out(table(lines.map((l) => parseEntryLine(l)).filter((e): e is ParsedEntry => e !== null)).split('\n').slice(1).join('\n'));
        };
        const files = segmentsFor(c, []);
        const first = lastEntries(files, n);
        if (!g.json) out(table([]));
        print(first);
        if (!opts.follow) return;
        const live = c.audit.log_path;
        let fd = openSync(live, 'r');
        let pos = completeLength(live).complete;
        let partial = Buffer.alloc(0);
        const buf = Buffer.alloc(1 << 16);
        await new Promise<void>(() => {
          setInterval(() => {
            for (;;) {
              const got = readSync(fd, buf, 0, buf.length, pos);
              if (got === 0) break;
              pos += got;
              const data = Buffer.concat([partial, buf.subarray(0, got)]);
              const nl = data.lastIndexOf(0x0a);
              partial = Buffer.from(data.subarray(nl + 1));
              if (nl >= 0) print(data.subarray(0, nl).toString('utf8').split('\n'));
            }
            try {
              if (statSync(live).ino !== fstatSync(fd).ino) {
                closeSync(fd);
                fd = openSync(live, 'r');
                pos = 0;
                partial = Buffer.alloc(0);
              }
            } catch {
              /* between rename and re-create */
            }
          }, 200);
        });
      }),
    );

  audit
    .command('export')
    .description('write all entries as NDJSON (as stored) or RFC 5424 syslog lines')
    .addOption(new Option('--format <format>', 'output format').choices(['ndjson', 'syslog']).default('ndjson'))
    .option('--last <n>', 'only the last N entries')
    .argument('[segments...]', 'segment files (default: all)')
    .action(
      run(async (c, _g, segs: string[], opts: { format: string; last?: string }) => {
        const files = segmentsFor(c, segs);
        const host = os.hostname() || '-';
        const emit = (text: string) => {
          const e = parseEntryLine(text);
          if (!e) return;
          out(opts.format === 'syslog' ? syslogLine(e, text, host) : text);
        };
        if (opts.last !== undefined) {
          for (const l of lastEntries(files, Number(opts.last))) emit(l);
          return;
        }
        for await (const { text } of entriesOf(files)) emit(text);
      }),
    );

  audit
    .command('pubkey')
    .description('print the checkpoint-signing public key (PEM) for `audit verify --pubkey`')
    .action(
      run(async (c) => {
        // Only the public half exists outside the sealed record; the private key is never
        // readable here (docs/audit.md "Key files").
        const pem = readCheckpointPublicKey(c.daemon.data_dir);
        if (pem === null) throw new CliError(`no checkpoint key in ${c.daemon.data_dir} (the daemon creates it on first start)`, 3);
        out(pem);
      }),
    );

  audit
    .command('rotate')
    .description('ask the running daemon to rotate the log now: the admin socket\'s audit.rotate; SIGUSR1 to the pid in the last Startup entry when the admin socket does not answer')
    .action(
      run(async (c, g) => {
        const adminPath = g.adminSocket ? path.resolve(g.adminSocket) : c.daemon.admin_socket_path;
        try {
          const r = (await adminCall(adminPath, 'audit.rotate', {}, { timeoutMs: 30_000 })) as { rotated?: boolean; log_path?: string };
          if (g.json) out(JSON.stringify({ rotated: r?.rotated === true, via: 'admin-socket', log_path: r?.log_path ?? c.audit.log_path }));
          else out(`craton-hsmd rotated ${r?.log_path ?? c.audit.log_path} (admin socket ${adminPath})`);
          return;
        } catch (e) {
          if (!(e instanceof AdminCliError)) throw e;
          // The daemon answered and refused (log disabled or unwritable, peer refused): no fallback.
          if (e.exitCode !== EXIT.UNREACHABLE) throw new CliError(`rotation refused by craton-hsmd: ${e.message}`, 1);
          process.stderr.write(`craton-hsm-admin audit: ${e.message}; falling back to SIGUSR1\n`);
        }
        const pid = findDaemonPid(segmentsFor(c, []));
        if (pid === null) throw new CliError('no running craton-hsmd found for this log (admin socket unreachable, no live pid in the log)', 4);
        process.kill(pid, 'SIGUSR1');
        if (g.json) out(JSON.stringify({ rotated: null, via: 'SIGUSR1', pid, log_path: c.audit.log_path }));
        else out(`asked craton-hsmd (pid ${pid}) to rotate ${c.audit.log_path} (SIGUSR1; the rotation is asynchronous)`);
      }),
    );
}
