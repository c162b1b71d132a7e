// Durable whole-file replacement: write a temporary file (0600), fsync it, rename it over
// the target, fsync the directory. A kill -9 at any instant leaves either the old or the
// new content, never a mix, and a resolved promise means the new content survives power loss.
import { open, rename, mkdir, unlink } from 'node:fs/promises';
import { openSync, readFileSync, existsSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';

export async function replaceFileDurably(target: string, content: Buffer | string): Promise<void> {
  const dir = path.dirname(target);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${target}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await rename(tmp, target);
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Reads a file written by replaceFileDurably; null when it does not exist yet. */
export function readIfExists(target: string): Buffer | null {
  return existsSync(target) ? readFileSync(target) : null;
}

/** fsync a directory synchronously (start-up paths). */
export function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Serialises writes of one file and merges requests that arrive while a write is in
 * flight into the next write (group commit): N concurrent changes cost two fsyncs, not N.
 * `write` must snapshot the current state synchronously when it is called.
 */
export class CoalescingWriter {
  private running = false;
  private waiting: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(private readonly write: () => Promise<void>) {}

  request(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.write();
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.running = false;
  }
}
