// craton-hsmd: loads the configuration, opens the tokens, and serves the PKCS#11 module
// on its Unix socket until SIGTERM/SIGINT.
import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { makeLogger } from './log.js';
import { HandleAllocator } from './objects/handles.js';
import { Token } from './token/token.js';
import { Sessions } from './session/sessions.js';
import { MechanismRegistry, defaultFamilies } from './mechanisms/registry.js';
import { HsmCore } from './dispatch/core.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { startWireServer } from './wire/server.js';
import { repoRoot } from './paths.js';
import { startSafety } from './selftest/index.js';
import { attachAudit } from './audit/index.js';
import { connectAnomaly, connectEvents } from './events.js';
import { startAnomaly } from './anomaly/index.js';
import { startAdminServer } from './admin/server.js';
import { startMetrics } from './metrics/index.js';
import { installService } from './reload/index.js';

function openTokens(config: Config, handles: HandleAllocator): Token[] {
  const tokens: Token[] = [];
  for (let slot = 0; slot < config.slots.count; slot++) {
    const t = new Token(
      slot,
      {
        dataDir: config.daemon.data_dir,
        pbkdf2Iterations: config.security.pbkdf2_iterations,
        pinMinLength: config.security.pin_min_length,
        pinMaxLength: config.security.pin_max_length,
        maxFailedLogins: config.security.max_failed_logins,
        defaultLabel: `${config.slots.default_label_prefix} ${slot}`,
        maxObjects: config.limits.max_objects_per_token,
      },
      handles,
    );
    t.load();
    tokens.push(t);
  }
  return tokens;
}

async function main(): Promise<void> {
  const program = new Command('craton-hsmd')
    .description('Craton HSM daemon: serves the PKCS#11 module libcraton_hsm.so over a Unix socket')
    .option('--config <path>', 'TOML configuration (default: embedded config/craton_hsm.toml; env CRATON_HSM_CONFIG)')
    .option('--data-dir <dir>', 'token store, audit log and counters (overrides [daemon] data_dir)')
    .option('--socket <path>', 'Unix socket for the PKCS#11 module (overrides [daemon] socket_path)')
    .option('--test-faults', 'tests only: honour CRATON_HSM_FAULT=post:<test>|drbg-health|integrity')
    .parse();
  const opts = program.opts<{ config?: string; dataDir?: string; socket?: string; testFaults?: boolean }>();
  const config = loadConfig({ configPath: opts.config, dataDir: opts.dataDir, socketPath: opts.socket });
  const log = makeLogger(config.daemon.log_level);

  mkdirSync(config.daemon.data_dir, { recursive: true, mode: 0o700 });
  const handles = new HandleAllocator();
  const tokens = openTokens(config, handles);
  const core = new HsmCore(
    config,
    tokens,
    new Sessions(handles, config.limits.max_sessions_per_app),
    new MechanismRegistry(defaultFamilies()),
    log,
  );
  const dispatcher = new Dispatcher(core);
  const audit = await attachAudit(dispatcher, config, log);
  const safety = await startSafety({ config, log, dispatcher, testFaults: opts.testFaults === true });
  connectEvents({ audit, safety, gcm: core.gcm, tokens, policy: core.policy });
  const anomaly = startAnomaly({ config, dispatcher, tokens, log });
  connectAnomaly(audit, anomaly);
  const server = await startWireServer({
    socketPath: config.daemon.socket_path,
    limits: config.limits,
    handler: dispatcher,
    instanceId: randomBytes(8).readBigUInt64BE(),
    log,
  });
  const adminServer = await startAdminServer({ config, core, audit, safety, log, connections: () => server.connectionCount() });
  const metrics = await startMetrics({ config, log, core, dispatcher, audit, safety, anomaly });

  const modulePath = path.join(repoRoot(), 'build', 'libcraton_hsm.so');
  if (!existsSync(modulePath)) log('warn', `${modulePath} is missing; run npm run build so applications can load the module`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('info', `${signal} received; closing the socket`);
    await metrics.close();
    await server.close();
    await adminServer.close();
    // No call can change a token any more: leave each as one self-contained snapshot.
    for (const t of core.tokens) await t.compactStore().catch((e: unknown) => log('warn', `slot ${t.slotId}: token store not compacted at shutdown (${e instanceof Error ? e.message : String(e)}); its journal is kept and read at the next start`));
    await anomaly.close();
    await audit.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  installService({ overrides: { configPath: opts.config, dataDir: opts.dataDir, socketPath: opts.socket }, config, core, log }); // SIGHUP reload, sd_notify READY=1
  // Announce readiness only once the signal handlers are in place: a supervisor (or a test)
  // that sends SIGTERM right after the ready line must get a clean shutdown, not the default
  // action that would skip the audit log's shutdown entry and checkpoint.
  process.stdout.write(`craton-hsmd ready: module=${modulePath} socket=${config.daemon.socket_path} pid=${process.pid}\n`);
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`craton-hsmd: ${msg}\n`);
  process.exit(1);
});
