// Secret files (daemon keys): created once, 0600, never through a symlink, and refused when
// anyone else could read them. Shared by the audit key custody and the object device key.
import { constants, closeSync, fstatSync, lstatSync, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';

/** Creates a 0600 file that must not exist yet (O_EXCL, O_NOFOLLOW) and fsyncs it. */
export function writeNewSecretFile(file: string, content: string | Buffer, mode = 0o600): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a secret file, refusing symlinks, non-regular files and group/other access. */
export function readSecretFile(file: string): Buffer {
  const st = lstatSync(file);
  if (st.isSymbolicLink()) throw new Error(`${file} is a symlink; refused`);
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new Error(`${file} is not a regular file`);
    if ((fst.mode & 0o077) !== 0) throw new Error(`${file} is accessible by group/other (mode ${(fst.mode & 0o777).toString(8)}); chmod 600 it`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
