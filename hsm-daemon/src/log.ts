// The daemon's process log: one line per event on stderr, filtered by
// [daemon] log_level. Never given key material, PINs or plaintext.
export type Level = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** setLevel: a configuration reload (SIGHUP, reload/) changes the threshold in place. */
export function makeLogger(threshold: Level): ((level: Level, msg: string) => void) & { setLevel(level: Level): void } {
  const log = (level: Level, msg: string): void => {
    if (RANK[level] > RANK[threshold]) return;
    process.stderr.write(`${new Date().toISOString()} craton-hsmd ${level}: ${msg}\n`);
  };
  return Object.assign(log, { setLevel: (level: Level) => void (threshold = level) });
}
