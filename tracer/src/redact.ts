// Path redaction (seed 001): user home directories are hidden by default,
// system paths are kept. /home/alice/key.pem → /home/USER/key.pem,
// /root/secret.key → /home/ROOT/secret.key. --no-redact turns it off.
import type { TraceEvent } from './events.js';

/** Redacts one path (or any text containing absolute paths, such as a command line). */
export function redactPath(text: string): string {
  return text
    .replace(/(^|[\s="':])\/home\/[^/\s"']+(?=\/|$|[\s"'])/g, '$1/home/USER')
    .replace(/(^|[\s="':])\/root(?=\/|$|[\s"'])/g, '$1/home/ROOT');
}

/** A copy of the event with every path-bearing field redacted. */
export function redactEvent<T extends TraceEvent>(e: T): T {
  const out = { ...e } as T & Record<string, unknown>;
  for (const key of ['file', 'library', 'binary', 'cmdline'] as const) {
    const v = out[key];
    if (typeof v === 'string') (out as Record<string, unknown>)[key] = redactPath(v);
  }
  return out;
}
