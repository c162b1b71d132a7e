// craton-hsm-admin backup / restore (docs/backup.md): the daemon encrypts and decrypts the
// token backup; this side only reads the passphrase and PINs (prompt without echo, a file,
// or stdin — never argv), carries the opaque file, and writes it 0600 without clobbering.
//
// Exit codes as the other admin commands: 0 ok; 1 refused or failed (wrong passphrase,
// altered or truncated file, wrong SO PIN, sessions open, audit key not installed);
// 2 usage, PIN/passphrase source or output file problem; 3 the daemon does not answer.
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { Config } from '../../hsm-daemon/src/config/types.js';
import { MAX_LINE_BYTES } from '../../hsm-daemon/src/admin/protocol.js';
import { syncDirSync as syncDir } from '../../hsm-daemon/src/store/atomic-file.js';
import { CliError, EXIT, adminCall } from './client.js';
import { adminSocketOf, type AdminGlobals } from './commands.js';
import { PinReader, type PinSourceOptions } from './pins.js';

type ConfigFrom = (opts: AdminGlobals) => Config;

interface SecretOptions extends PinSourceOptions {
  passphraseFile?: string;
  passphraseStdin?: boolean;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

/** A backup or restore asks the daemon to run PBKDF2 (and a PIN check): allow for it. */
const CALL_TIMEOUT_MS = 300_000;
const MIN_PASSPHRASE = 12;

function slotOf(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new CliError(`--slot: expected a slot number, got ${JSON.stringify(v)}`, EXIT.USAGE);
  return Number(v);
}

/**
 * Where the passphrase and the SO PIN come from. When both come from standard input they
 * share it: the passphrase on the first line, the SO PIN on the next.
 */
class Secrets {
  private readonly pins: PinReader | null;
  private readonly pass: PinReader | null;
  private readonly shared: boolean;

  constructor(private readonly o: SecretOptions) {
    if (o.passphraseFile && o.passphraseStdin) throw new CliError('--passphrase-file and --passphrase-stdin exclude each other', EXIT.USAGE);
    const passScripted = o.passphraseFile !== undefined || o.passphraseStdin === true;
    if (!passScripted && !process.stdin.isTTY) {
      throw new CliError('no passphrase source: standard input is not a terminal; use --passphrase-file FILE or --passphrase-stdin (never an argument)', EXIT.USAGE);
    }
    this.shared = o.passphraseStdin === true && o.pinStdin === true;
    this.pass = new PinReader({ pinFile: o.passphraseFile, pinStdin: o.passphraseStdin });
    this.pins = this.shared ? this.pass : null;
  }

  async passphrase(confirm: boolean): Promise<string> {
    const p = await this.pass!.next('backup passphrase', confirm);
    if (Buffer.byteLength(p, 'utf8') < MIN_PASSPHRASE) throw new CliError(`the backup passphrase must be at least ${MIN_PASSPHRASE} bytes`, EXIT.USAGE);
    return p;
  }

  async soPin(what: string): Promise<string> {
    const reader = this.pins ?? new PinReader({ pinFile: this.o.pinFile, pinStdin: this.o.pinStdin });
    return reader.next(what);
  }
}

const secretOptions = (cmd: Command): Command =>
  cmd
    .addOption(new Option('--passphrase-file <file>', 'read the backup passphrase from the first line of FILE (mode 0600 advised)'))
    .addOption(new Option('--passphrase-stdin', 'read the backup passphrase from standard input (first line)'))
    .addOption(new Option('--pin-file <file>', 'read the SO PIN from FILE (first line)'))
    .addOption(new Option('--pin-stdin', 'read the SO PIN from standard input (after the passphrase when both use it)'));

const SOURCES_HELP =
  'The passphrase and the SO PIN are prompted without echo on a terminal; for scripts use --passphrase-file/--passphrase-stdin and --pin-file/--pin-stdin (both on stdin: passphrase line first, then the SO PIN)';

/** Writes `data` to `file` 0600 and durably: a temporary file beside it, then link(2)
 * (fails if `file` appeared meanwhile) or, with force, rename(2) over it. */
function writeBackupFile(file: string, data: Buffer, force: boolean): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new CliError(`cannot create ${tmp}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
  }
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw new CliError(`cannot write ${tmp}: ${(e as Error).message}`, EXIT.USAGE);
  }
  closeSync(fd);
  try {
    if (force) {
      renameSync(tmp, file); // replaces a symlink itself, never its target
    } else {
      linkSync(tmp, file);
      unlinkSync(tmp);
    }
  } catch (e) {
    if (existsSync(tmp)) unlinkSync(tmp);
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST' ? `${file} exists; refusing to overwrite it (--force replaces it)` : `cannot create ${file}: ${code ?? (e as Error).message}`, EXIT.USAGE);
  }
  syncDir(dir);
}

function readBackupFile(file: string): Buffer {
  let st;
  try {
    st = lstatSync(file);
  } catch (e) {
    throw new CliError(`--input ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
  }
  if (!st.isFile()) throw new CliError(`--input ${file}: not a regular file`, EXIT.USAGE);
  if (st.size > Math.floor((MAX_LINE_BYTES - 4096) / 4) * 3) throw new CliError(`--input ${file}: ${st.size} bytes is larger than any backup this daemon can take`, EXIT.USAGE);
  return readFileSync(file);
}

export function registerBackupCommands(program: Command, configFrom: ConfigFrom): void {
  const run =
    <A extends unknown[]>(fn: (c: Config, g: AdminGlobals, ...a: A) => Promise<void>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<AdminGlobals>();
      const c = configFrom(g);
      try {
        await fn(c, g, ...(args.slice(0, -1) as A));
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        if (g.json) out(JSON.stringify({ ok: false, error: { code: e.code ?? null, message: e.message }, exit_code: e.exitCode }));
        process.stderr.write(`craton-hsm-admin ${cmd.name()}: ${e.message}\n`);
        process.exitCode = e.exitCode;
      }
    };

  secretOptions(
    program
      .command('backup')
      .description(`write the whole token of a slot (objects, PIN verifiers, lockout and GCM counters, audit signing key) to one file, encrypted and authenticated by the daemon under a passphrase (AES-256-GCM, PBKDF2); needs the token's SO PIN. ${SOURCES_HELP}`)
      .requiredOption('--output <file>', 'the backup file to create (mode 0600; never overwritten without --force)')
      .option('--slot <n>', 'slot', '0')
      .option('--force', 'replace --output if it exists')
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, opts: { output: string; slot: string; force?: boolean } & SecretOptions) => {
      const slot = slotOf(opts.slot);
      const file = path.resolve(opts.output);
      if (!opts.force && existsSync(file)) throw new CliError(`${file} exists; refusing to overwrite it (--force replaces it)`, EXIT.USAGE);
      const secrets = new Secrets(opts);
      const passphrase = await secrets.passphrase(true);
      const soPin = await secrets.soPin('SO PIN');
      const r = (await adminCall(adminSocketOf(c, g), 'token.backup', { slot, so_pin: soPin, passphrase }, { timeoutMs: CALL_TIMEOUT_MS })) as {
        slot: number; serial: string; label: string; objects: number; gcm_counters: number; audit_key: boolean; created_at: string; bytes: number; sha256: string; backup: string;
      };
      const data = Buffer.from(r.backup, 'base64');
      const digest = createHash('sha256').update(data).digest('hex');
      if (data.length !== r.bytes || digest !== r.sha256) throw new CliError('the backup received does not match the digest the daemon sent; nothing was written', EXIT.FAILED);
      writeBackupFile(file, data, opts.force === true);
      const { backup: _blob, ...summary } = r;
      if (g.json) return out(JSON.stringify({ ...summary, file }));
      out(
        `backup of slot ${r.slot} ("${r.label}", serial ${r.serial}) written to ${file}: ${r.objects} object(s), ${r.gcm_counters} GCM counter(s), ` +
          `${r.audit_key ? 'audit signing key included' : 'no audit signing key'}; ${r.bytes} bytes, sha256 ${r.sha256}`,
      );
    }),
  );

  secretOptions(
    program
      .command('restore')
      .description(`replace the token of a slot with a backup: the daemon checks the whole file first (a wrong passphrase, an altered or truncated file changes nothing); the target must have no open session and be uninitialised, or you give its current SO PIN. GCM counters resume past the backup plus [nonce] restore_gap. ${SOURCES_HELP}`)
      .requiredOption('--input <file>', 'the backup file')
      .option('--slot <n>', 'target slot', '0')
      .option('--keep-audit-key', "keep this daemon's audit signing key instead of installing the backed-up one")
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, opts: { input: string; slot: string; keepAuditKey?: boolean } & SecretOptions) => {
      const slot = slotOf(opts.slot);
      const data = readBackupFile(opts.input);
      const secrets = new Secrets(opts);
      const sock = adminSocketOf(c, g);
      const passphrase = await secrets.passphrase(false);
      const info = (await adminCall(sock, 'token.info', { slot })) as { tokens: Array<{ initialized: boolean; label: string }> };
      const args: Record<string, unknown> = { slot, backup: data.toString('base64'), passphrase, keep_audit_key: opts.keepAuditKey === true };
      if (info.tokens[0]?.initialized) {
        if (opts.pinFile === undefined && !opts.pinStdin) process.stderr.write(`slot ${slot} holds an initialised token ("${info.tokens[0].label}"): restoring replaces all of it.\n`);
        args.so_pin = await secrets.soPin(`current SO PIN of the token in slot ${slot}`);
      }
      const r = (await adminCall(sock, 'token.restore', args, { timeoutMs: CALL_TIMEOUT_MS })) as {
        slot: number; serial: string; label: string; source: { slot: number; serial: string }; created_at: string; objects: number;
        gcm: { restore_gap: number; counters_raised: number }; audit_key: { installed: boolean; new_key_id?: string; reason?: string };
      };
      if (g.json) out(JSON.stringify(r));
      else {
        out(
          `slot ${r.slot} restored from the backup of slot ${r.source.slot} (serial ${r.source.serial}) taken ${r.created_at}: "${r.label}", ${r.objects} object(s); ` +
            `${r.gcm.counters_raised} GCM counter(s) raised by ${r.gcm.restore_gap} past their backed-up marks, new IV epoch; ` +
            (r.audit_key.installed ? `audit signing key ${String(r.audit_key.new_key_id).slice(0, 16)}… installed` : `audit signing key unchanged (${r.audit_key.reason})`),
        );
      }
      if (!r.audit_key.installed && /^not installed/.test(r.audit_key.reason ?? '')) {
        process.stderr.write(`craton-hsm-admin restore: the token was restored, but the audit signing key ${r.audit_key.reason}\n`);
        process.exitCode = EXIT.FAILED;
      }
    }),
  );
}
