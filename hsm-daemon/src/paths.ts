// Where the installed tree is: the compiled daemon runs from dist/hsm-daemon/src, the
// sources from hsm-daemon/src under vitest; both find the repository root by package.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function repoRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the Craton HSM installation root (package.json)');
    dir = up;
  }
  cached = dir;
  return dir;
}
