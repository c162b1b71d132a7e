// Where craton-hsm-admin gets PINs: a prompt without echo on a terminal, or `--pin-file
// FILE` / `--pin-stdin` for scripts (one PIN per line, in the order the command documents).
// Never from the command line, where every user could read them in /proc/<pid>/cmdline.
import { readFileSync, statSync } from 'node:fs';
import { CliError, EXIT } from './client.js';

export interface PinSourceOptions {
  pinFile?: string;
  pinStdin?: boolean;
}

export const PIN_SOURCE_HELP = 'PINs are prompted without echo on a terminal; for scripts use --pin-file FILE or --pin-stdin (one PIN per line)';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    throw new CliError(`--pin-stdin: cannot read standard input (${(e as Error).message})`, EXIT.USAGE);
  }
}

/** Prompts on the terminal (standard input) with echo off. */
export function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    let s = '';
    const done = (err: CliError | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    const onData = (d: string) => {
      for (const ch of d) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new CliError('interrupted', 130));
        if (ch === '\u0004') return done(s === '' ? new CliError('no PIN entered', EXIT.USAGE) : null);
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else if (ch >= ' ') s += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

export class PinReader {
  private lines: string[] | null = null;
  private used = 0;
  private readonly where: string;

  constructor(private readonly opts: PinSourceOptions) {
    if (opts.pinFile && opts.pinStdin) throw new CliError('--pin-file and --pin-stdin exclude each other', EXIT.USAGE);
    this.where = opts.pinFile ? `--pin-file ${opts.pinFile}` : opts.pinStdin ? '--pin-stdin' : 'terminal';
    if (!opts.pinFile && !opts.pinStdin && !process.stdin.isTTY) {
      throw new CliError(`no PIN source: standard input is not a terminal; use --pin-file FILE or --pin-stdin (PINs are never accepted as arguments)`, EXIT.USAGE);
    }
  }

  /** True when PINs come from a file or stdin (scripts), false when prompted. */
  get scripted(): boolean {
    return this.opts.pinFile !== undefined || this.opts.pinStdin === true;
  }

  private load(): string[] {
    if (this.lines) return this.lines;
    let text: string;
    if (this.opts.pinFile) {
      const f = this.opts.pinFile;
      try {
        const st = statSync(f);
        if ((st.mode & 0o077) !== 0) process.stderr.write(`craton-hsm-admin: warning: ${f} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it\n`);
        text = readFileSync(f, 'utf8');
      } catch (e) {
        throw new CliError(`--pin-file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
      }
    } else {
      text = readStdin();
    }
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    this.lines = lines;
    return lines;
  }

  /** The next PIN. `what` names it in prompts and errors; `confirm` asks twice on a terminal. */
  async next(what: string, confirm = false): Promise<string> {
    if (this.scripted) {
      const lines = this.load();
      const i = this.used++;
      const pin = lines[i];
      if (pin === undefined) throw new CliError(`${this.where}: line ${i + 1} (${what}) is missing; give one PIN per line`, EXIT.USAGE);
      if (pin === '') throw new CliError(`${this.where}: line ${i + 1} (${what}) is empty`, EXIT.USAGE);
      return pin;
    }
    const pin = await promptHidden(`${what}: `);
    if (pin === '') throw new CliError(`no ${what} entered`, EXIT.USAGE);
    if (confirm) {
      const again = await promptHidden(`${what} (again): `);
      if (again !== pin) throw new CliError(`the two ${what} entries differ`, EXIT.USAGE);
    }
    return pin;
  }
}
