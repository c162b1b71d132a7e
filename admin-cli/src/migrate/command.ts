// `craton-hsm-admin migrate`: copies a foreign PKCS#11 token's objects into one of ours,
// as a PKCS#11 client of both (the source's module and build/libcraton_hsm.so), so the
// daemon applies and audits exactly what it would for any application (docs/admin.md
// "migrate"). Exit codes: 0 nothing failed (skips are not failures); 1 a login was
// refused or an object failed to copy; 2 usage, configuration, PIN source or module path;
// 3 the daemon does not answer.
import path from 'node:path';
import { Command, Option } from 'commander';
import { CKF, CKU } from '../../../hsm-daemon/src/pkcs11/index.js';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { repoRoot } from '../../../hsm-daemon/src/paths.js';
import { CliError, EXIT } from '../client.js';
import { PinReader } from '../pins.js';
import { migrate, type TokenSide } from './migrate.js';
import { P11Error, findSlot, openModule, p11, type Handle, type LoadedModule } from './p11.js';
import { renderTable, summarize, summaryLine } from './report.js';

interface Globals {
  config?: string;
  dataDir?: string;
  socket?: string;
  adminSocket?: string;
}

interface MigrateOptions {
  fromModule: string;
  fromSlot?: string;
  fromToken?: string;
  fromPinFile?: string;
  fromPinStdin?: boolean;
  toModule?: string;
  toSlot: string;
  toPinFile?: string;
  toPinStdin?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

type ConfigFrom = (g: Globals) => Config;
type SocketProbe = (socketPath: string, timeoutMs?: number) => Promise<{ ok: boolean; detail: string }>;

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

export const defaultTargetModule = (): string => path.join(repoRoot(), 'build', 'libcraton_hsm.so');

function slotId(v: string, option: string): bigint {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) throw new CliError(`${option}: expected a slot ID (decimal or 0x hex), got ${JSON.stringify(v)}`, EXIT.USAGE);
  return BigInt(v);
}

/** One PIN source per token; the two may share standard input (source PIN first). */
function pinSources(o: MigrateOptions): { source: () => Promise<string>; target: () => Promise<string> } {
  const reader = (file: string | undefined, stdin: boolean | undefined, prefix: string, which: string): PinReader => {
    if (file && stdin) throw new CliError(`--${prefix}-pin-file and --${prefix}-pin-stdin exclude each other`, EXIT.USAGE);
    if (!file && !stdin && !process.stdin.isTTY) {
      throw new CliError(`no PIN source for the ${which} token: standard input is not a terminal; use --${prefix}-pin-file FILE or --${prefix}-pin-stdin (PINs are never accepted as arguments)`, EXIT.USAGE);
    }
    return new PinReader({ pinFile: file, pinStdin: stdin });
  };
  // pins.ts names its own options in messages; say which of ours was meant.
  const named = (r: PinReader, prefix: string, what: string) => async () => {
    try {
      return await r.next(what);
    } catch (e) {
      if (e instanceof CliError) throw new CliError(e.message.replace(/^--pin-(file|stdin)/, `--${prefix}-pin-$1`), e.exitCode, e.code);
      throw e;
    }
  };
  if (o.fromPinStdin && o.toPinStdin) {
    const shared = new PinReader({ pinStdin: true });
    return { source: named(shared, 'from', 'source token user PIN (line 1)'), target: named(shared, 'to', 'target token user PIN (line 2)') };
  }
  const src = reader(o.fromPinFile, o.fromPinStdin, 'from', 'source');
  const dst = reader(o.toPinFile, o.toPinStdin, 'to', 'target');
  return { source: named(src, 'from', 'source token user PIN'), target: named(dst, 'to', 'target token user PIN') };
}

function login(m: LoadedModule, slot: Handle, rw: boolean, pin: string, who: string, pinOption: string): Handle {
  const flags = CKF.SERIAL_SESSION | (rw ? CKF.RW_SESSION : 0);
  const session = p11('C_OpenSession', () => m.p11.C_OpenSession(slot, flags));
  try {
    p11('C_Login', () => m.p11.C_Login(session, CKU.USER, pin));
  } catch (e) {
    try {
      m.p11.C_CloseSession(session);
    } catch {
      // the login error is the one to report
    }
    if (e instanceof P11Error) {
      const hint =
        e.rvName === 'CKR_PIN_INCORRECT'
          ? `: the user PIN from ${pinOption} is wrong`
          : e.rvName === 'CKR_PIN_LOCKED'
            ? ': the user PIN is locked'
            : e.rvName === 'CKR_USER_PIN_NOT_INITIALIZED'
              ? ': the token has no user PIN yet'
              : '';
      throw new CliError(`${who}: C_Login returned ${e.rvName}${hint}`, EXIT.FAILED, e.rvName);
    }
    throw e;
  }
  return session;
}

function closeSession(m: LoadedModule, s: Handle | undefined): void {
  if (!s) return;
  try {
    m.p11.C_Logout(s);
  } catch {
    // closing the session logs out anyway
  }
  try {
    m.p11.C_CloseSession(s);
  } catch {
    // the module is finalised next
  }
}

async function runMigrate(c: Config, o: MigrateOptions, probe: SocketProbe): Promise<number> {
  if ((o.fromSlot === undefined) === (o.fromToken === undefined)) throw new CliError('give the source token with exactly one of --from-slot ID or --from-token LABEL', EXIT.USAGE);
  const fromSlot = o.fromSlot !== undefined ? slotId(o.fromSlot, '--from-slot') : undefined;
  const toSlot = slotId(o.toSlot, '--to-slot');
  const pins = pinSources(o);
  const socketPath = c.daemon.socket_path;
  const toModulePath = path.resolve(o.toModule ?? defaultTargetModule());

  let src: LoadedModule | undefined;
  let dst: LoadedModule | undefined;
  let srcSession: Handle | undefined;
  let dstSession: Handle | undefined;
  try {
    src = await openModule(path.resolve(o.fromModule), '--from-module');
    let srcSlot: { slot: Handle; label: string };
    if (fromSlot !== undefined) srcSlot = findSlot(src.p11, fromSlot, 'the source module', '--from-slot');
    else {
      const want = o.fromToken!;
      const hit = p11('C_GetSlotList', () => src!.p11.C_GetSlotList(true)).find((s) => src!.p11.C_GetTokenInfo(s).label.trim() === want);
      if (!hit) throw new CliError(`--from-token ${JSON.stringify(want)}: no token with that label in the source module`, EXIT.USAGE);
      srcSlot = { slot: hit, label: want };
    }

    const up = await probe(socketPath);
    if (!up.ok) throw new CliError(`craton-hsmd does not answer on ${socketPath} (${up.detail}); start it or pass --socket`, EXIT.UNREACHABLE);
    // Our module finds the daemon through CRATON_HSM_SOCKET; this process is its only user.
    process.env.CRATON_HSM_SOCKET = socketPath;
    dst = await openModule(toModulePath, '--to-module');
    const dstSlot = findSlot(dst.p11, toSlot, `Craton HSM (${socketPath})`, '--to-slot');

    const srcPin = await pins.source();
    const dstPin = await pins.target();
    const srcWho = fromSlot !== undefined ? `source token (slot ${fromSlot} "${srcSlot.label}")` : `source token "${srcSlot.label}"`;
    // Read-only on the source: the migration never changes it (its transport key is a session object).
    srcSession = login(src, srcSlot.slot, false, srcPin, srcWho, o.fromPinStdin ? '--from-pin-stdin' : o.fromPinFile ? `--from-pin-file ${o.fromPinFile}` : 'the prompt');
    dstSession = login(dst, dstSlot.slot, true, dstPin, `target token (slot ${toSlot} "${dstSlot.label}")`, o.toPinStdin ? '--to-pin-stdin' : o.toPinFile ? `--to-pin-file ${o.toPinFile}` : 'the prompt');

    const side = (m: LoadedModule, slot: Handle, session: Handle): TokenSide => ({
      p11: m.p11,
      slot,
      session,
      mechanisms: new Set(p11('C_GetMechanismList', () => m.p11.C_GetMechanismList(slot))),
    });
    const report = migrate(side(src, srcSlot.slot, srcSession), side(dst, dstSlot.slot, dstSession), { dryRun: o.dryRun === true });
    const summary = summarize(report.rows);
    const code = summary.failed > 0 ? EXIT.FAILED : EXIT.OK;
    if (o.json) {
      out(
        JSON.stringify({
          dry_run: o.dryRun === true,
          source: { module: src.path, slot: fromSlot?.toString() ?? null, token: srcSlot.label },
          target: { module: dst.path, socket: socketPath, slot: toSlot.toString(), token: dstSlot.label },
          objects: report.rows,
          summary,
          cleanup: report.cleanup,
          exit_code: code,
        }),
      );
    } else {
      out(renderTable(report.rows));
      for (const p of report.cleanup) out(`warning: ${p}`);
      out(summaryLine(summary, o.dryRun === true));
    }
    return code;
  } catch (e) {
    if (e instanceof P11Error) throw new CliError(`${e.message}`, EXIT.FAILED, e.rvName);
    throw e;
  } finally {
    if (src) closeSession(src, srcSession);
    if (dst) closeSession(dst, dstSession);
    src?.close();
    dst?.close();
  }
}

export function registerMigrateCommand(program: Command, configFrom: ConfigFrom, probe: SocketProbe): void {
  program
    .command('migrate')
    .description(
      'copy the objects of another PKCS#11 token (public keys, certificates, data objects, and extractable private/secret keys, ' +
        'wrapped with AES key wrap) into a Craton HSM token, through both modules; reports what cannot be copied and why. ' +
        'PINs: prompted without echo, or --from-pin-file/--from-pin-stdin and --to-pin-file/--to-pin-stdin (both on stdin: source PIN first)',
    )
    .requiredOption('--from-module <path>', 'the source PKCS#11 module (.so), e.g. /usr/lib/softhsm/libsofthsm2.so')
    .option('--from-slot <id>', 'source slot ID, as C_GetSlotList / pkcs11-tool -L report it')
    .option('--from-token <label>', 'the source token by label (instead of --from-slot)')
    .addOption(new Option('--from-pin-file <file>', "read the source token's user PIN from FILE (mode 0600 advised)"))
    .addOption(new Option('--from-pin-stdin', "read the source token's user PIN from standard input"))
    .option('--to-slot <id>', 'target Craton HSM slot', '0')
    .addOption(new Option('--to-pin-file <file>', "read the target token's user PIN from FILE (mode 0600 advised)"))
    .addOption(new Option('--to-pin-stdin', "read the target token's user PIN from standard input"))
    .option('--to-module <path>', 'our PKCS#11 module (default: build/libcraton_hsm.so of this installation)')
    .option('--dry-run', 'only report what would be copied; change nothing on either token')
    .option('--json', 'print the report as one JSON object')
    .action(async (opts: MigrateOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const c = configFrom(g); // ConfigError → exit 2 in main()
      try {
        process.exitCode = await runMigrate(c, opts, probe);
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        if (opts.json) out(JSON.stringify({ ok: false, error: { code: e.code ?? null, message: e.message }, exit_code: e.exitCode }));
        process.stderr.write(`craton-hsm-admin migrate: ${e.message}\n`);
        process.exitCode = e.exitCode;
      }
    });
}
