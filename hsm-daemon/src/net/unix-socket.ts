// Claiming a Unix socket path safely, for the application socket and the admin socket:
// create the parent directory, refuse a path that is not a socket, refuse one another
// daemon is serving, and remove a stale one left by a killed daemon.
import { createConnection } from 'node:net';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

const PROBE_TIMEOUT_MS = 2000;

/** The first line of an error's message, for one-line log entries. */
export const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

/** `configKey` names the setting to change in the messages (e.g. daemon.socket_path). */
export async function prepareSocketPath(path: string, dirMode: number, configKey: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: dirMode });
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; remove it or set another ${configKey}`);
  const probe = await new Promise<'live' | 'stale' | string>((resolve) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('live');
    }, PROBE_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'stale' : `${e.code ?? e.message}`);
    });
  });
  if (probe === 'live') throw new Error(`another craton-hsmd is already serving ${path}; stop it or set another ${configKey}`);
  if (probe !== 'stale') throw new Error(`cannot tell whether ${path} is in use (${probe}); check its permissions`);
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}
