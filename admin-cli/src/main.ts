// craton-hsm-admin: operator CLI. Takes the daemon's --config / --data-dir / --socket so it
// resolves the same paths the daemon does. The live-state commands (status, selftest,
// token, key, pin: commands.ts) talk to the daemon's admin socket; the audit commands
// (audit/commands.ts) read the log files. Exit codes: docs/admin.md.
import net from 'node:net';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig } from '../../hsm-daemon/src/config/load.js';
import type { Config, ConfigOverrides } from '../../hsm-daemon/src/config/types.js';
import { registerAuditCommands } from './audit/commands.js';
import { registerAdminCommands } from './commands.js';
import { registerBackupCommands } from './backup.js';
import { registerEvidenceCommands } from './evidence/commands.js';
import { registerMigrateCommand } from './migrate/command.js';

interface GlobalOptions {
  config?: string;
  dataDir?: string;
  socket?: string;
  adminSocket?: string;
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
    .addOption(new Option('--admin-socket <path>', 'admin socket (overrides [daemon] admin_socket_path)'))
    .showHelpAfterError()
    // Usage errors exit 2 (main() below); subcommands inherit this.
    .exitOverride();

  registerAdminCommands(program, configFrom, socketAnswers);
  registerAuditCommands(program, configFrom);
  registerBackupCommands(program, configFrom);
  registerEvidenceCommands(program, configFrom);
  registerMigrateCommand(program, configFrom, socketAnswers);

  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version exit 0; anything else commander rejects is a usage error.
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`craton-hsm-admin: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}

await main();
