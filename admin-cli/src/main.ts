// craton-hsm-admin: operator CLI. Takes the daemon's --config / --data-dir / --socket so it
// resolves the same paths the daemon does. Subcommands are added by the features that need
// them (audit, lockout, …); `status` is the first.
import net from 'node:net';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, defaultConfigPath, loadConfig } from '../../hsm-daemon/src/config/load.js';
import type { Config, ConfigOverrides } from '../../hsm-daemon/src/config/types.js';
import { registerAuditCommands } from './audit/commands.js';

interface GlobalOptions {
  config?: string;
  dataDir?: string;
  socket?: string;
}

export function configFrom(opts: GlobalOptions): Config {
  const overrides: ConfigOverrides = { configPath: opts.config, dataDir: opts.dataDir, socketPath: opts.socket };
  return loadConfig(overrides);
}

/** Resolves true when something accepts a connection on the Unix socket within timeoutMs. */
export function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: socketPath });
    const done = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok, detail });
    };
    const timer = setTimeout(() => done(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done(true, 'accepts connections'));
    s.once('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

export function buildProgram(): Command {
  const program = new Command('craton-hsm-admin')
    .description('Craton HSM administration')
    .addOption(new Option('--config <path>', 'TOML configuration laid over the embedded default (env CRATON_HSM_CONFIG)'))
    .addOption(new Option('--data-dir <dir>', 'data directory (overrides [daemon] data_dir)'))
    .addOption(new Option('--socket <path>', 'application socket (overrides [daemon] socket_path)'))
    .showHelpAfterError();

  program
    .command('status')
    .description('print the resolved paths and whether the daemon socket answers')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const c = configFrom(opts);
      const app = await socketAnswers(c.daemon.socket_path);
      const file = opts.config ?? (process.env.CRATON_HSM_CONFIG || undefined);
      const lines = [
        `config:            ${defaultConfigPath()}${file ? ` + ${path.resolve(file)}` : ''}`,
        `data_dir:          ${c.daemon.data_dir}`,
        `socket:            ${c.daemon.socket_path} (${app.ok ? 'up' : 'down'}: ${app.detail})`,
        `admin_socket:      ${c.daemon.admin_socket_path}`,
        `audit_log:         ${c.audit.log_path}`,
        `slots:             ${c.slots.count}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
      process.exitCode = app.ok ? 0 : 3;
    });

  registerAuditCommands(program, configFrom);

  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`craton-hsm-admin: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}

await main();
