// A private SoftHSM2 token for tests that compare with, or move keys to and from, the
// reference module: its own token directory under `work`, SOFTHSM2_CONF set in this
// process (so pkcs11-tool and the CLI started from here inherit it), loaded with pkcs11js.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pkcs11js, type PKCS11 } from './module.js';

export const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftToken {
  p11: PKCS11;
  slot: Buffer;
  /** Finalizes and unloads; safe to call twice and after a failed set-up. */
  close(): void;
}

/** Initialises a SoftHSM2 token labelled `label` in `work`/tokens (SOFTHSM2_CONF set here). */
export function softhsmInit(work: string, opts: { label: string; soPin: string; pin: string }): void {
  const tokens = path.join(work, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = path.join(work, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', opts.label, '--so-pin', opts.soPin, '--pin', opts.pin], { stdio: 'pipe' });
}

/** Loads SoftHSM2 in this process and finds the token labelled `label`. */
export function softhsmLoad(label: string): SoftToken {
  const p11 = new pkcs11js.PKCS11();
  p11.load(SOFTHSM);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === label);
  if (!slot) throw new Error(`SoftHSM2 lists no token labelled ${label} (SOFTHSM2_CONF=${process.env.SOFTHSM2_CONF})`);
  let open = true;
  return {
    p11,
    slot,
    close() {
      if (!open) return;
      open = false;
      try {
        p11.C_Finalize();
        p11.close();
      } catch {
        /* best effort at teardown */
      }
    },
  };
}

/** softhsmInit, then softhsmLoad. */
export function softhsmToken(work: string, opts: { label: string; soPin: string; pin: string }): SoftToken {
  softhsmInit(work, opts);
  return softhsmLoad(opts.label);
}
