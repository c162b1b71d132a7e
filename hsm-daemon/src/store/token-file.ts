// The on-disk form of one slot's token (data_dir/tokens/slot-<n>.json) and its durable
// writer. Public attributes of public objects are stored in the clear so the token works
// before anyone logs in; private objects are sealed under the token key, which is itself
// stored only wrapped under keys derived from the SO and user PINs; secret attributes of
// public objects are sealed under the data directory's device key (store/device-key.ts),
// so those objects work without a login too.
import path from 'node:path';
import { replaceFileDurably, readIfExists, CoalescingWriter } from './atomic-file.js';

export interface PinRecord {
  /** base64 PBKDF2 salt */
  salt: string;
  iterations: number;
  /** base64 PBKDF2 output used only to check the PIN */
  verifier: string;
  /** the token key sealed under the PIN-derived key */
  wrappedTokenKey: string;
}

export interface StoredObject {
  uid: string;
  /** Clear attributes: hex type → base64 canonical value. Empty for private objects. */
  clear: Record<string, string>;
  /** Sealed JSON of the remaining attributes (all of them for private objects). */
  sealed?: string;
  /** Array attributes (CKA_WRAP_TEMPLATE …) as JSON, sealed with the rest when present. */
  private: boolean;
  /** Which key sealed `sealed`: absent = the token key (private objects, and public ones
   * written before the device key existed); 'device' = the device key (public objects only). */
  sealKey?: 'device';
}

export interface TokenRecord {
  format: 1;
  slot: number;
  initialized: boolean;
  label: string;
  serial: string;
  so: PinRecord | null;
  user: PinRecord | null;
  failedLogins: { so: number; user: number };
  objects: StoredObject[];
  /** The slot number sealed objects are bound to (their AAD) when it is not `slot`: a token
   * restored from a backup of another slot keeps its sealed blobs as they are. */
  sealSlot?: number;
}

export class TokenFile {
  readonly path: string;
  private readonly writer: CoalescingWriter;

  constructor(dataDir: string, slot: number, private readonly snapshot: () => TokenRecord) {
    this.path = path.join(dataDir, 'tokens', `slot-${slot}.json`);
    this.writer = new CoalescingWriter(async () => {
      const body = JSON.stringify(this.snapshot());
      await replaceFileDurably(this.path, body);
    });
  }

  /** Throws with a clear message when the file exists but is not a token record. */
  load(): TokenRecord | null {
    const raw = readIfExists(this.path);
    if (!raw) return null;
    let rec: TokenRecord;
    try {
      rec = JSON.parse(raw.toString('utf8')) as TokenRecord;
    } catch {
      throw new Error(`token store ${this.path} is not valid JSON; restore it from backup or move it away to start with an empty token`);
    }
    if (rec.format !== 1 || !Array.isArray(rec.objects)) {
      throw new Error(`token store ${this.path} has an unknown format; this daemon reads format 1`);
    }
    return rec;
  }

  /** Resolves once a snapshot taken after this call is durable on disk. */
  persist(): Promise<void> {
    return this.writer.request();
  }
}
