// Canonical serialization of audit entries: byte-identical to Python's
//   json.dumps(value, sort_keys=True, separators=(",", ":"))
// with the default ensure_ascii=True, so seed 003's reference verifier and ours hash the
// same bytes. Rules: keys sorted by Unicode code point; strings escape `"` `\` and
// \b \f \n \r \t by name, every other code unit outside 0x20..0x7e as \uXXXX (lowercase
// hex; characters above U+FFFF become their UTF-16 surrogate pair); `/` is not escaped;
// integers as plain decimal digits. Floats never appear in entries and are refused.

export type Json = null | boolean | number | bigint | string | Json[] | { [k: string]: Json | undefined };

const NAMED: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

export function canonicalString(s: string): string {
  let out = '"';
  let run = 0; // start of the pending unescaped run
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(run, i);
    out += NAMED[c] ?? '\\u' + c.toString(16).padStart(4, '0');
    run = i + 1;
  }
  return out + s.slice(run) + '"';
}

/** Python orders str keys by code point; JS's default sort orders by UTF-16 code unit,
 * which differs when astral characters meet U+E000..U+FFFF. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

function sortKeys(keys: string[]): string[] {
  // Fast path: for ASCII (indeed for any BMP-only) keys code-unit order is code-point order.
  for (const k of keys) if (/[\ud800-\udfff]/.test(k)) return keys.sort(compareCodePoints);
  return keys.sort();
}

export function canonicalJson(v: Json | undefined): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      if (!Number.isInteger(v)) throw new TypeError(`canonical JSON: non-integer number ${v}`);
      // Integers up to 1e21 print as plain digits in JS, as Python prints ints.
      if (Math.abs(v) >= 1e21) throw new TypeError(`canonical JSON: integer out of range ${v}`);
      return Object.is(v, -0) ? '0' : String(v);
    case 'string':
      return canonicalString(v);
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map((x) => canonicalJson(x)).join(',') + ']';
      const keys = sortKeys(Object.keys(v).filter((k) => v[k] !== undefined));
      return '{' + keys.map((k) => canonicalString(k) + ':' + canonicalJson(v[k])).join(',') + '}';
    }
    default:
      throw new TypeError(`canonical JSON: unsupported ${typeof v}`);
  }
}

/** The members of an object as canonical `"key":value` fragments in canonical key order,
 * so variants of one object (with or without some keys) can be joined without serializing
 * the values again: `'{' + members.filter(...).map(m => m[1]).join(',') + '}'` equals
 * canonicalJson of the object restricted to those keys. */
export function canonicalMembers(v: { [k: string]: Json | undefined }): Array<[string, string]> {
  const keys = sortKeys(Object.keys(v).filter((k) => v[k] !== undefined));
  return keys.map((k) => [k, canonicalString(k) + ':' + canonicalJson(v[k])]);
}
