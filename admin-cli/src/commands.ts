// craton-hsm-admin commands that talk to the running daemon over the admin socket:
// status, selftest, token init|info, key list|delete, pin change|reset (docs/admin.md).
//
// Exit codes: 0 ok; 1 the operation failed or was refused; 2 usage, configuration or PIN
// source error; 3 the daemon (its admin or application socket) does not answer.
import path from 'node:path';
import { Command, Option } from 'commander';
import { defaultConfigPath } from '../../hsm-daemon/src/config/load.js';
import type { Config } from '../../hsm-daemon/src/config/types.js';
import type { AdminCommand } from '../../hsm-daemon/src/admin/protocol.js';
import { CliError, EXIT, adminCall } from './client.js';
import { PIN_SOURCE_HELP, PinReader, type PinSourceOptions } from './pins.js';
import { registerKeyImport } from './keys/commands.js';

export interface AdminGlobals {
  config?: string;
  dataDir?: string;
  socket?: string;
  adminSocket?: string;
  json?: boolean;
}

type ConfigFrom = (opts: AdminGlobals) => Config;
type SocketProbe = (socketPath: string, timeoutMs?: number) => Promise<{ ok: boolean; detail: string }>;

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

export function adminSocketOf(c: Config, g: AdminGlobals): string {
  return g.adminSocket ? path.resolve(g.adminSocket) : c.daemon.admin_socket_path;
}

function slotOpt(v: string | undefined, fallback?: number): number | undefined {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new CliError(`--slot: expected a slot number, got ${JSON.stringify(v)}`, EXIT.USAGE);
  return n;
}

const pinOptions = (cmd: Command): Command =>
  cmd
    .addOption(new Option('--pin-file <file>', 'read the PIN(s) from FILE, one per line (mode 0600 advised)'))
    .addOption(new Option('--pin-stdin', 'read the PIN(s) from standard input, one per line'));

// ---- human formatting ------------------------------------------------------------------

interface SlotInfo {
  slot: number;
  label: string;
  serial: string;
  initialized: boolean;
  user_pin_initialized: boolean;
  sessions: number;
  rw_sessions: number;
  applications: number;
  logged_in: { user: number; so: number; total: number };
  objects: number;
  failed_logins: { user: number; so: number; max: number };
  user_pin_locked: boolean;
  so_pin_locked: boolean;
  flags: string[];
}

interface GcmKey {
  key: string;
  used: number;
  limit: number;
  percent: number;
  persistent: boolean;
}

interface DaemonStatus {
  daemon: { version: string; pid: number; uid: number | null; uptime_s: number; connections: number | null };
  /** The /readyz verdict; absent from daemons older than the field. */
  readiness?: { ready: boolean; checks: Record<string, string | null> } | null;
  self_test: {
    passed: boolean;
    started_at: string;
    known_answer_tests: number;
    known_answer_tests_passed: number;
    failed: Array<{ name: string }>;
    integrity: { ok: boolean; files?: number };
    drbg: { ok: boolean };
  };
  error_state: { kind: string; reason: string; at: string } | null;
  drbg: { state: string; reason?: string; samples: number };
  audit: { level: string; healthy: boolean };
  sessions: number;
  logged_in_apps: number;
  slots: SlotInfo[];
  gcm: { limit: number; keys: GcmKey[] };
}

interface KeyRow {
  slot: number;
  handle: number;
  uid: string;
  class: string;
  key_type: string | null;
  label: string;
  id: string;
  token: boolean;
  private: boolean;
  gcm: { used: number; limit: number; percent: number } | null;
}

const pad = (k: string) => `${k}:`.padEnd(19);
const pct = (p: number) => `${p.toFixed(p > 0 && p < 0.01 ? 4 : 2)}%`;

function slotLine(s: SlotInfo): string {
  if (!s.initialized) return `${pad(`slot ${s.slot}`)}not initialised (label "${s.label}")`;
  const lock = s.user_pin_locked ? ', USER PIN LOCKED' : '';
  const solock = s.so_pin_locked ? ', SO PIN LOCKED' : '';
  return (
    `${pad(`slot ${s.slot}`)}"${s.label}" serial ${s.serial}; ${s.sessions} session(s) (${s.rw_sessions} R/W); ` +
    `logged in: ${s.logged_in.user} user, ${s.logged_in.so} SO; ${s.objects} object(s); ` +
    `PIN failures user ${s.failed_logins.user}/${s.failed_logins.max}, SO ${s.failed_logins.so}/${s.failed_logins.max}${lock}${solock}` +
    (s.user_pin_initialized ? '' : '; user PIN not set')
  );
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

function keyTable(rows: KeyRow[]): string {
  return table(
    ['SLOT', 'HANDLE', 'UID', 'CLASS', 'KEY TYPE', 'LABEL', 'ID', 'TOKEN', 'PRIVATE', 'GCM USAGE'],
    rows.map((k) => [
      String(k.slot),
      String(k.handle),
      k.uid,
      k.class.replace(/^CKO_/, ''),
      (k.key_type ?? '-').replace(/^CKK_/, ''),
      k.label || '-',
      k.id || '-',
      k.token ? 'yes' : 'no',
      k.private ? 'yes' : 'no',
      k.gcm ? `${k.gcm.used}/${k.gcm.limit} (${pct(k.gcm.percent)})` : '-',
    ]),
  );
}

// ---- commands --------------------------------------------------------------------------

export function registerAdminCommands(program: Command, configFrom: ConfigFrom, probe: SocketProbe): void {
  /** Wraps an action: globals, config, CliError → message and exit code (JSON on stdout with --json). */
  const run =
    <A extends unknown[]>(fn: (c: Config, g: AdminGlobals, ...a: A) => Promise<void>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = cmd.optsWithGlobals<AdminGlobals>();
      const c = configFrom(g); // ConfigError → exit 2 in main()
      try {
        await fn(c, g, ...(args.slice(0, -1) as A));
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        if (g.json) out(JSON.stringify({ ok: false, error: { code: e.code ?? null, message: e.message }, exit_code: e.exitCode }));
        const names: string[] = [];
        for (let x: Command | null = cmd; x?.parent; x = x.parent) names.unshift(x.name());
        process.stderr.write(`craton-hsm-admin ${names.join(' ')}: ${e.message}\n`);
        process.exitCode = e.exitCode;
      }
    };

  const call = (c: Config, g: AdminGlobals, cmd: AdminCommand, args: Record<string, unknown> = {}) => adminCall(adminSocketOf(c, g), cmd, args);

  // status -------------------------------------------------------------------------------
  program
    .command('status')
    .description('daemon state: sockets, version, self-test result, error state, DRBG, sessions and logins per slot, GCM counter usage')
    .option('--json', 'print as one JSON object')
    .action(
      run(async (c, g) => {
        const app = await probe(c.daemon.socket_path);
        const adminPath = adminSocketOf(c, g);
        let st: DaemonStatus | null = null;
        let adminDetail = 'answers';
        let adminErr: CliError | null = null;
        try {
          st = (await adminCall(adminPath, 'status', {}, { timeoutMs: 10_000 })) as DaemonStatus;
        } catch (e) {
          if (!(e instanceof CliError)) throw e;
          adminErr = e;
          adminDetail = e.code ?? e.message;
        }
        let code: number = EXIT.OK;
        // EACCES on the application socket: it is there, just not for this user.
        if (!app.ok && app.detail !== 'EACCES') code = EXIT.UNREACHABLE;
        else if (adminErr) code = adminErr.exitCode;
        else if (st && (st.error_state || !st.self_test.passed)) code = EXIT.FAILED;
        const file = g.config ?? (process.env.CRATON_HSM_CONFIG || undefined);
        if (g.json) {
          out(
            JSON.stringify({
              config: { embedded: defaultConfigPath(), file: file ? path.resolve(file) : null },
              data_dir: c.daemon.data_dir,
              socket: { path: c.daemon.socket_path, up: app.ok, detail: app.detail },
              admin_socket: { path: adminPath, up: st !== null, detail: adminErr ? adminErr.message : adminDetail },
              audit_log: c.audit.log_path,
              slots_configured: c.slots.count,
              ...(st ?? { daemon: { up: false } }),
              exit_code: code,
            }),
          );
        } else {
          const lines = [
            `config:            ${defaultConfigPath()}${file ? ` + ${path.resolve(file)}` : ''}`,
            `data_dir:          ${c.daemon.data_dir}`,
            `socket:            ${c.daemon.socket_path} (${app.ok ? 'up' : 'down'}: ${app.detail})`,
            `admin_socket:      ${adminPath} (${st ? 'up' : 'down'}: ${st ? 'answers' : adminDetail})`,
            `audit_log:         ${c.audit.log_path}`,
            `slots:             ${c.slots.count}`,
          ];
          if (st) {
            const t = st.self_test;
            const d = st.daemon;
            lines.push(
              `${pad('daemon')}up (craton-hsmd ${d.version}, pid ${d.pid}, uid ${d.uid ?? '-'}, up ${d.uptime_s} s${d.connections !== null ? `, ${d.connections} connection(s)` : ''})`,
              `${pad('self_test')}${t.passed ? 'passed' : 'FAILED'} at ${t.started_at} (${t.known_answer_tests_passed}/${t.known_answer_tests} known-answer tests, integrity ${t.integrity.ok ? 'ok' : 'FAILED'}, DRBG ${t.drbg.ok ? 'ok' : 'FAILED'})`,
              ...(st.readiness ? [`${pad('ready')}${st.readiness.ready ? 'yes' : 'NO'} (${Object.entries(st.readiness.checks).map(([k, v]) => `${k} ${v ?? 'none'}`).join(', ')})`] : []),
              `${pad('error_state')}${st.error_state ? `${st.error_state.kind} since ${st.error_state.at}: ${st.error_state.reason}` : 'none'}`,
              `${pad('drbg')}${st.drbg.state}${st.drbg.reason ? `: ${st.drbg.reason}` : ''}`,
              `${pad('audit')}${st.audit.healthy ? 'writing' : 'NOT WRITING'} (level ${st.audit.level})`,
              `${pad('sessions')}${st.sessions} (${st.logged_in_apps} logged-in application(s))`,
              ...st.slots.map(slotLine),
              `${pad('gcm keys')}${st.gcm.keys.length === 0 ? 'none used yet' : `${st.gcm.keys.length} (limit ${st.gcm.limit} invocations per key)`}`,
              ...st.gcm.keys.map((k) => `  ${k.key}  ${k.used}/${k.limit} (${pct(k.percent)})${k.persistent ? '' : ' session key'}`),
            );
          } else if (adminErr) {
            process.stderr.write(`craton-hsm-admin status: ${adminErr.message}\n`);
          }
          out(lines.join('\n'));
        }
        process.exitCode = code;
      }),
    );

  // selftest -----------------------------------------------------------------------------
  program
    .command('selftest')
    .description('re-run the power-on self-tests in the daemon; a passing run clears the error state (exit 1 if they fail)')
    .option('--json', 'print the report as JSON')
    .action(
      run(async (c, g) => {
        const r = (await call(c, g, 'selftest')) as DaemonStatus['self_test'] & {
          duration_ms: number;
          error_state_before: { kind: string } | null;
          error_state: { kind: string } | null;
        };
        if (g.json) out(JSON.stringify(r));
        else {
          out(
            `self-tests ${r.passed ? 'passed' : 'FAILED'}: ${r.known_answer_tests_passed}/${r.known_answer_tests} known-answer tests, ` +
              `integrity ${r.integrity.ok ? 'ok' : 'FAILED'}, DRBG ${r.drbg.ok ? 'ok' : 'FAILED'} (${r.duration_ms} ms)`,
          );
          for (const f of r.failed) out(`  failed: ${f.name}`);
          if (r.error_state_before && !r.error_state) out(`error state (${r.error_state_before.kind}) cleared`);
          if (r.error_state) out(`the daemon is in the error state (${r.error_state.kind})`);
        }
        process.exitCode = r.passed ? EXIT.OK : EXIT.FAILED;
      }),
    );

  // token --------------------------------------------------------------------------------
  const token = program
    .command('token')
    .description('token information and initialisation')
    .addOption(new Option('--json', 'machine-readable output'));

  token
    .command('info')
    .description('label, serial, flags, sessions, logins, PIN failure counters of every token (or --slot N)')
    .option('--slot <n>', 'only this slot')
    .option('--json', 'print as JSON')
    .action(
      run(async (c, g, opts: { slot?: string }) => {
        const r = (await call(c, g, 'token.info', { slot: slotOpt(opts.slot) })) as { tokens: Array<SlotInfo & { pin_min_length: number; pin_max_length: number }> };
        if (g.json) return out(JSON.stringify(r));
        for (const t of r.tokens) {
          out(slotLine(t));
          out(`${' '.repeat(19)}flags: ${t.flags.join(' ') || '-'}; PIN length ${t.pin_min_length}–${t.pin_max_length}`);
        }
      }),
    );

  pinOptions(
    token
      .command('init')
      .description(`initialise (or re-initialise, destroying every object) a token; asks for the SO PIN — the current one when the token is already initialised. Refused while sessions are open. ${PIN_SOURCE_HELP}`)
      .requiredOption('--label <label>', 'token label (at most 32 bytes UTF-8)')
      .option('--slot <n>', 'slot', '0')
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, opts: { label: string; slot: string } & PinSourceOptions) => {
      const slot = slotOpt(opts.slot, 0)!;
      const pins = new PinReader(opts);
      let confirm = false;
      if (!pins.scripted) {
        const info = (await call(c, g, 'token.info', { slot })) as { tokens: SlotInfo[] };
        confirm = !info.tokens[0]?.initialized;
        if (!confirm) process.stderr.write(`slot ${slot} is initialised ("${info.tokens[0]?.label}"): re-initialising destroys all its objects.\n`);
      }
      const soPin = await pins.next(confirm ? 'new SO PIN' : 'SO PIN', confirm);
      const r = (await call(c, g, 'token.init', { slot, label: opts.label, so_pin: soPin })) as { slot: number; label: string; serial: string; reinitialized: boolean };
      if (g.json) return out(JSON.stringify(r));
      out(`token in slot ${r.slot} ${r.reinitialized ? 're-' : ''}initialised: label "${r.label}", serial ${r.serial}; set the user PIN with \`craton-hsm-admin pin reset --set-user-pin --slot ${r.slot}\``);
    }),
  );

  // key ----------------------------------------------------------------------------------
  const key = program
    .command('key')
    .description('list, import and delete token objects')
    .addOption(new Option('--json', 'machine-readable output'));

  pinOptions(
    key
      .command('list')
      .description(`list token objects with their GCM counter usage: public ones only, or all with --login (the user PIN). ${PIN_SOURCE_HELP}`)
      .option('--slot <n>', 'only this slot (default: every slot; slot 0 with --login)')
      .option('--login', 'give the user PIN to list private objects too')
      .option('--json', 'print as JSON'),
  ).action(
    run(async (c, g, opts: { slot?: string; login?: boolean } & PinSourceOptions) => {
      const login = opts.login === true || opts.pinFile !== undefined || opts.pinStdin === true;
      const slot = slotOpt(opts.slot, login ? 0 : undefined);
      const args: Record<string, unknown> = { slot };
      if (login) args.user_pin = await new PinReader(opts).next('user PIN');
      const r = (await call(c, g, 'key.list', args)) as { slots: Array<{ slot: number; label: string; scope: string; objects: KeyRow[]; not_listed: number }> };
      if (g.json) return out(JSON.stringify(r));
      const rows = r.slots.flatMap((s) => s.objects);
      out(keyTable(rows));
      for (const s of r.slots) {
        if (s.not_listed > 0)
          out(`slot ${s.slot}: ${s.not_listed} more object(s) not listed (${s.scope === 'public' ? 'private objects need --login; ' : ''}applications' session objects are never listed)`);
      }
    }),
  );

  pinOptions(
    key
      .command('delete')
      .description(`destroy a token object by its uid (see key list); needs the user PIN. ${PIN_SOURCE_HELP}`)
      .argument('<uid>', 'the object uid')
      .option('--slot <n>', 'slot', '0')
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, uid: string, opts: { slot: string } & PinSourceOptions) => {
      const slot = slotOpt(opts.slot, 0)!;
      const userPin = await new PinReader(opts).next('user PIN');
      const r = (await call(c, g, 'key.delete', { slot, uid, user_pin: userPin })) as { deleted: KeyRow };
      if (g.json) return out(JSON.stringify(r));
      const d = r.deleted;
      out(`deleted ${d.class.replace(/^CKO_/, '')} ${d.uid} (label "${d.label}", id ${d.id || '-'}) from slot ${d.slot}`);
    }),
  );

  registerKeyImport(key, run, call);

  // pin ----------------------------------------------------------------------------------
  const pin = program
    .command('pin')
    .description('change PINs and clear the user PIN lockout')
    .addOption(new Option('--json', 'machine-readable output'));

  pinOptions(
    pin
      .command('change')
      .description(`change the user PIN (or the SO PIN with --so): old PIN, then new PIN. ${PIN_SOURCE_HELP}`)
      .option('--so', 'change the SO PIN instead of the user PIN')
      .option('--slot <n>', 'slot', '0')
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, opts: { so?: boolean; slot: string } & PinSourceOptions) => {
      const slot = slotOpt(opts.slot, 0)!;
      const role = opts.so ? 'so' : 'user';
      const who = role === 'so' ? 'SO' : 'user';
      const pins = new PinReader(opts);
      const oldPin = await pins.next(`current ${who} PIN`);
      const newPin = await pins.next(`new ${who} PIN`, true);
      const r = await call(c, g, 'pin.change', { slot, role, old_pin: oldPin, new_pin: newPin });
      if (g.json) return out(JSON.stringify(r));
      out(`${who} PIN of slot ${slot} changed`);
    }),
  );

  pinOptions(
    pin
      .command('reset')
      .description(`clear the user PIN's failure counter and lockout with the SO PIN; with --set-user-pin also set a new user PIN (C_InitPIN): SO PIN, then new user PIN. ${PIN_SOURCE_HELP}`)
      .option('--set-user-pin', 'also set a new user PIN')
      .option('--slot <n>', 'slot', '0')
      .option('--json', 'print the result as JSON'),
  ).action(
    run(async (c, g, opts: { setUserPin?: boolean; slot: string } & PinSourceOptions) => {
      const slot = slotOpt(opts.slot, 0)!;
      const pins = new PinReader(opts);
      const args: Record<string, unknown> = { slot, so_pin: await pins.next('SO PIN') };
      if (opts.setUserPin) args.new_user_pin = await pins.next('new user PIN', true);
      const r = (await call(c, g, 'pin.reset', args)) as { failed_before: number; was_locked: boolean; user_pin_set: boolean };
      if (g.json) return out(JSON.stringify(r));
      const what = r.was_locked ? 'user PIN unlocked' : r.failed_before > 0 ? `user PIN failure counter cleared (was ${r.failed_before})` : 'user PIN was not locked';
      out(`slot ${slot}: ${what}${r.user_pin_set ? '; new user PIN set' : ''}`);
    }),
  );
}
