// `craton-hsm-admin key import` (docs/admin.md "key import"): reads a key, certificate,
// PKCS#12 or raw secret file (import.ts), and sends the resulting templates to the daemon's
// `key.import`, which creates them as C_CreateObject would, all or nothing. The import
// passphrase and the user PIN come from a no-echo prompt, a file or standard input, never
// from the command line.
import { readFileSync, statSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Config } from '../../../hsm-daemon/src/config/types.js';
import { MAX_LINE_BYTES, type AdminCommand } from '../../../hsm-daemon/src/admin/protocol.js';
import { CliError, EXIT } from '../client.js';
import { PIN_SOURCE_HELP, PinReader, promptHidden, type PinSourceOptions } from '../pins.js';
import type { AdminGlobals } from '../commands.js';
import { FILE_FORMATS, ImportError, KEY_KINDS, planImport, toWire, wipePlan, type FileFormat, type KeyKind, type PlannedObject } from './import.js';

export type RunWrapper = <A extends unknown[]>(fn: (c: Config, g: AdminGlobals, ...a: A) => Promise<void>) => (...args: unknown[]) => Promise<void>;
export type AdminCaller = (c: Config, g: AdminGlobals, cmd: AdminCommand, args?: Record<string, unknown>) => Promise<unknown>;

interface ImportOptions extends PinSourceOptions {
  file: string;
  label: string;
  id?: string;
  type?: KeyKind;
  format?: FileFormat;
  slot: string;
  extractable?: boolean;
  passphraseFile?: string;
  passphraseStdin?: boolean;
}

interface Imported {
  uid: string;
  class: string;
  key_type: string | null;
  label: string;
  id: string;
  bits: number | null;
  curve: string | null;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

/** The passphrase of an encrypted file, read once and only when the file turns out to be encrypted. */
function passphraseSource(opts: ImportOptions): () => Promise<string> {
  let got: string | undefined;
  const firstLine = (text: string) => text.split(/\r?\n/)[0] ?? '';
  return async () => {
    if (got !== undefined) return got;
    if (opts.passphraseFile) {
      const f = opts.passphraseFile;
      try {
        if ((statSync(f).mode & 0o077) !== 0) process.stderr.write(`craton-hsm-admin: warning: ${f} is readable by others; chmod 600 it\n`);
        got = firstLine(readFileSync(f, 'utf8'));
      } catch (e) {
        throw new CliError(`--passphrase-file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
      }
    } else if (opts.passphraseStdin) {
      try {
        got = firstLine(readFileSync(0, 'utf8'));
      } catch (e) {
        throw new CliError(`--passphrase-stdin: cannot read standard input (${(e as Error).message})`, EXIT.USAGE);
      }
    } else if (process.stdin.isTTY && !opts.pinStdin) {
      got = await promptHidden(`passphrase of ${opts.file}: `);
    } else {
      throw new CliError(`${opts.file} is encrypted: give its passphrase with --passphrase-file FILE or --passphrase-stdin (passphrases are never accepted as arguments)`, EXIT.USAGE);
    }
    return got;
  };
}

function idOpt(v: string | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  const hex = v.replace(/^0x/i, '');
  if (!/^([0-9a-f]{2})+$/i.test(hex) || hex.length > 128) throw new CliError(`--id: expected 1 to 64 bytes of hex, got ${JSON.stringify(v)}`, EXIT.USAGE);
  return Buffer.from(hex, 'hex');
}

export function registerKeyImport(key: Command, run: RunWrapper, call: AdminCaller): void {
  key
    .command('import')
    .description(
      'import a key pair, public key, certificate(s), PKCS#12 bundle or raw AES/generic secret as token objects (all or nothing). ' +
        'Reads PEM or DER: PKCS#1, SEC1, PKCS#8 (also encrypted), SubjectPublicKeyInfo, X.509, PKCS#12. A private key gets its public key object ' +
        'and its certificate the same CKA_ID (default: SHA-1 of the modulus or EC point). Keys the FIPS policy refuses (RSA below rsa_min_bits, ' +
        `curves below ec_min_bits or outside SP 800-186) are refused. Needs the user PIN; the passphrase of an encrypted file is asked for when needed. ${PIN_SOURCE_HELP}`,
    )
    .requiredOption('--file <file>', 'the file to import')
    .requiredOption('--label <label>', 'CKA_LABEL of the objects (chain certificates get <label>-ca1, -ca2 …)')
    .option('--id <hex>', 'CKA_ID (default: SHA-1 of the public key value; none for secrets)')
    .addOption(new Option('--type <type>', 'what the file must hold; required for raw secrets (aes: 16/24/32 bytes, generic: any length)').choices([...KEY_KINDS]))
    .addOption(new Option('--format <format>', 'the file format (default: detected)').choices([...FILE_FORMATS]))
    .option('--slot <n>', 'slot', '0')
    .option('--extractable', 'private and secret keys may be wrapped out again (CKA_EXTRACTABLE true)')
    .option('--passphrase-file <file>', 'read the passphrase of an encrypted file from the first line of FILE')
    .option('--passphrase-stdin', 'read the passphrase of an encrypted file from standard input')
    .addOption(new Option('--pin-file <file>', 'read the user PIN from FILE (mode 0600 advised)'))
    .addOption(new Option('--pin-stdin', 'read the user PIN from standard input'))
    .option('--json', 'print the result as JSON')
    .action(
      run(async (c, g, opts: ImportOptions) => {
        if (!/^\d+$/.test(opts.slot)) throw new CliError(`--slot: expected a slot number, got ${JSON.stringify(opts.slot)}`, EXIT.USAGE);
        const slot = Number(opts.slot);
        if (opts.pinStdin && opts.passphraseStdin) {
          throw new CliError('--pin-stdin and --passphrase-stdin would both read standard input; give one of them as a file (--pin-file or --passphrase-file)', EXIT.USAGE);
        }
        if (opts.passphraseFile && opts.passphraseStdin) throw new CliError('--passphrase-file and --passphrase-stdin exclude each other', EXIT.USAGE);
        const id = idOpt(opts.id);
        const pins = new PinReader(opts); // fails now, before any prompt, when there is no PIN source
        let data: Buffer;
        try {
          data = readFileSync(opts.file);
        } catch (e) {
          throw new CliError(`--file ${opts.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
        }
        let plan: PlannedObject[] = [];
        try {
          try {
            plan = await planImport({
              data,
              name: opts.file,
              label: opts.label,
              ...(id ? { id } : {}),
              ...(opts.type ? { type: opts.type } : {}),
              ...(opts.format ? { format: opts.format } : {}),
              extractable: opts.extractable === true,
              passphrase: passphraseSource(opts),
            });
          } catch (e) {
            if (e instanceof ImportError) throw new CliError(e.message, e.wrongPassphrase ? EXIT.FAILED : EXIT.USAGE);
            throw e;
          }
          const objects = toWire(plan);
          const size = Buffer.byteLength(JSON.stringify({ id: 1, cmd: 'key.import', args: { slot, user_pin: '', objects } }));
          if (size > MAX_LINE_BYTES - 1024) {
            throw new CliError(`this import is ${size} bytes on the admin socket, more than its ${MAX_LINE_BYTES}-byte request limit; import the key and the certificates from separate files`, EXIT.USAGE);
          }
          const userPin = await pins.next('user PIN');
          const r = (await call(c, g, 'key.import', { slot, user_pin: userPin, objects })) as {
            slot: number;
            imported: Imported[];
            warnings: Array<{ object: number; reason: string }>;
          };
          for (const w of r.warnings) {
            process.stderr.write(`craton-hsm-admin key import: policy warning (warn mode, imported anyway): ${plan[w.object]?.what ?? `object ${w.object + 1}`}: ${w.reason}\n`);
          }
          if (g.json) return out(JSON.stringify(r));
          out(`imported ${r.imported.length} object(s) into slot ${r.slot}:`);
          for (const o of r.imported) {
            const kind = [o.class.replace(/^CKO_/, ''), (o.key_type ?? '').replace(/^CKK_/, ''), o.curve ?? (o.bits ? `${o.bits} bits` : '')].filter(Boolean).join(' ');
            out(`  ${o.uid}  ${kind}  label "${o.label}"  id ${o.id || '-'}`);
          }
        } finally {
          wipePlan(plan);
          data.fill(0);
        }
      }),
    );
}
