// Who is on the other end of a connection, from the kernel (SO_PEERCRED) through the
// native addon build/peercred.node. The daemon never trusts a pid the client claims:
// without the addon it cannot tell applications apart, so it refuses to start.
import { existsSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientIdentity } from './contract.js';

interface PeerCredAddon {
  peerCred(fd: number): { pid: number; uid: number; gid: number };
}

/** The repository root: the nearest ancestor holding package.json. The same walk works
 * from the sources (hsm-daemon/src/wire) and from dist/hsm-daemon/src/wire. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the Craton HSM installation (no package.json above ${dirname(fileURLToPath(import.meta.url))})`);
    dir = up;
  }
}

let addon: PeerCredAddon | null = null;

/** Loads the addon once; throws one clear line when it is missing or broken. */
export function loadPeerCred(): PeerCredAddon {
  if (addon) return addon;
  let path = '<unknown>';
  try {
    path = join(repoRoot(), 'build', 'peercred.node');
    const loaded = createRequire(import.meta.url)(path) as Partial<PeerCredAddon>;
    if (typeof loaded.peerCred !== 'function') throw new Error('it does not export peerCred');
    addon = loaded as PeerCredAddon;
    return addon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`cannot load the SO_PEERCRED addon ${path} (${why}); build it with \`make -C hsm-daemon/native\``);
  }
}

/** The kernel's view of the peer of a connected Unix socket, plus /proc/<pid>/exe. */
export async function peerIdentity(socket: Socket): Promise<ClientIdentity> {
  // Node keeps the descriptor on its internal handle; there is no public accessor.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor (already closed?)');
  const { pid, uid, gid } = loadPeerCred().peerCred(fd);
  let exe: string | null = null;
  try {
    exe = await readlink(`/proc/${pid}/exe`);
  } catch {
    // Another user's process, or one that has already exited: the identity stays valid.
  }
  return { pid, uid, gid, exe };
}
