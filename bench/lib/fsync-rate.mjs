// The floor for audited operations: appends of `lineBytes` each followed by fsync, for one
// second, on the filesystem holding `dir`. Shared by the main bench and the audit bench.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';

export function fsyncRate(dir, lineBytes) {
  const fd = openSync(path.join(dir, 'fsync-probe'), 'a');
  const line = Buffer.alloc(lineBytes, 0x61);
  let n = 0;
  const end = performance.now() + 1000;
  while (performance.now() < end) {
    writeSync(fd, line);
    fsyncSync(fd);
    n++;
  }
  closeSync(fd);
  return n;
}
