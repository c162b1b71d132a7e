// The object device key (data_dir/tokens/device.key, 0600, 32 raw bytes): seals the secret
// attributes of PUBLIC token objects (CKA_PRIVATE false). PKCS#11 makes those objects
// usable in public sessions without a login, so their secrets cannot wait for the
// PIN-wrapped token key; at rest they are protected by this file's permissions instead
// (docs/compat.md). One key per data directory, shared by every slot; created at the first
// public object that needs it and never rotated (C_InitToken of one slot must not strand
// another slot's objects).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from '../drbg/index.js';
import { syncDirSync } from './atomic-file.js';
import { readSecretFile, writeNewSecretFile } from './secret-file.js';

export const DEVICE_KEY_BYTES = 32;

export function deviceKeyPath(dataDir: string): string {
  return path.join(dataDir, 'tokens', 'device.key');
}

export class DeviceKey {
  readonly path: string;
  /** Held for the life of the process, like an open token key. */
  private key: Buffer | null = null;

  constructor(dataDir: string) {
    this.path = deviceKeyPath(dataDir);
  }

  /** The key when its file exists, else null (nothing is created). */
  existing(): Buffer | null {
    if (this.key) return this.key;
    if (!existsSync(this.path)) return null;
    const k = readSecretFile(this.path);
    if (k.length !== DEVICE_KEY_BYTES) {
      k.fill(0);
      throw new Error(`${this.path} is not a ${DEVICE_KEY_BYTES * 8}-bit key (${k.length} bytes)`);
    }
    this.key = k;
    return k;
  }

  /** The key, created durably (file and directory entry fsynced) at the first need. */
  obtain(): Buffer {
    const have = this.existing();
    if (have) return have;
    const dir = path.dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const k = randomBytes(DEVICE_KEY_BYTES);
    try {
      writeNewSecretFile(this.path, k);
    } catch (err) {
      k.fill(0);
      // Created meanwhile by another process on this data directory: use that one.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return this.existing()!;
      throw err;
    }
    syncDirSync(dir);
    this.key = k;
    return k;
  }
}
