// canonicalJson must be byte-identical to python3's
// json.dumps(v, sort_keys=True, separators=(",", ":")) — checked against python3 itself.
import { describe, expect, it } from 'vitest';
import { canonicalJson, compareCodePoints, type Json } from '../../../hsm-daemon/src/audit/canonical.js';
import { python } from './helpers.js';

const PY = `import json, sys
for line in sys.stdin:
    v = json.loads(line)
    sys.stdout.write(json.dumps(v, sort_keys=True, separators=(",", ":")) + "\\n")`;

/** Python's output for each value; values travel as JSON (which Python parses exactly). */
function pythonCanonical(values: Json[]): string[] {
  const input = values.map((v) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `__BIG__${x}` : x)).replace(/"__BIG__(-?\d+)"/g, '$1')).join('\n') + '\n';
  return python(PY, input).split('\n').slice(0, values.length);
}

const TRICKY: Json[] = [
  null, true, false, 0, -1, 42, 9007199254740991, -9007199254740991, 12345678901234567890n, -(2n ** 70n),
  '', 'plain', 'quote " and backslash \\ and slash /', 'tab\tnl\ncr\rbs\bff\f', '\u0000\u0001\u001f\u007f\u0080',
  'héllo wörld', 'Ключ', '鍵ラベル', 'emoji 😀🔑 end', '\ud83d', 'lone \udc00 low', '\u2028\u2029', '\ufeffBOM', '\uffff\ue000',
  '</script>', "it's", '\\u0041 not an escape',
  [], [1, 'a', null, [true, {}]],
  { b: 1, a: 2, B: 3, _: 4, '': 5 },
  { 'é': 1, 'e': 2, 'z': 3, '😀': 4, '\uffff': 5, '\ue000': 6, 'ab': 7, 'a': 8 },
  { label: 'Schlüssel «prod» 🗝', exe: '/opt/app/bin/ünïcode tool', nested: { x: [1, 2, { y: 'ß' }] } },
  { timestamp: 1700000000, session_handle: 1, operation: 'Sign', key_id: null, result: { Success: null }, previous_hash: '0'.repeat(64) },
  { result: { Failure: 'CKR_PIN_INCORRECT' } },
];

function randomString(rnd: () => number): string {
  const pools = [
    () => String.fromCharCode(Math.floor(rnd() * 0x80)),
    () => String.fromCharCode(0x80 + Math.floor(rnd() * 0x780)),
    () => String.fromCharCode(0x800 + Math.floor(rnd() * 0xd000)),
    () => String.fromCodePoint(0x10000 + Math.floor(rnd() * 0xfffff)),
    () => '"\\/\n\t'[Math.floor(rnd() * 5)]!,
  ];
  let s = '';
  const len = Math.floor(rnd() * 12);
  for (let i = 0; i < len; i++) s += pools[Math.floor(rnd() * pools.length)]!();
  return s;
}

function randomValue(rnd: () => number, depth = 0): Json {
  const r = rnd();
  if (depth > 3 || r < 0.3) return randomString(rnd);
  if (r < 0.45) return Math.floor((rnd() - 0.5) * 2 ** 53);
  if (r < 0.5) return [null, true, false][Math.floor(rnd() * 3)]!;
  if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1));
  const o: Record<string, Json> = {};
  for (let i = 0; i < Math.floor(rnd() * 5); i++) o[randomString(rnd)] = randomValue(rnd, depth + 1);
  return o;
}

describe('canonical JSON vs python3 json.dumps(sort_keys=True, separators=(",", ":"))', () => {
  it('matches on a table of tricky values', () => {
    const py = pythonCanonical(TRICKY);
    TRICKY.forEach((v, i) => expect(canonicalJson(v), `value #${i}`).toBe(py[i]));
  });

  it('matches on 2,000 random values (property test)', () => {
    let seed = 0x12345678;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const values = Array.from({ length: 2000 }, () => randomValue(rnd));
    const py = pythonCanonical(values);
    values.forEach((v, i) => expect(canonicalJson(v), JSON.stringify(v)).toBe(py[i]));
  });

  it('output is pure ASCII', () => {
    expect(/^[\x20-\x7e]*$/.test(canonicalJson({ k: 'é😀\n\u0000' }))).toBe(true);
  });

  it('sorts keys by code point, not UTF-16 unit', () => {
    expect(['\uffff', '😀'].sort(compareCodePoints)).toEqual(['\uffff', '😀']);
    expect(canonicalJson({ '😀': 1, '\uffff': 2 })).toBe('{"\\uffff":2,"\\ud83d\\ude00":1}');
  });

  it('refuses floats', () => {
    expect(() => canonicalJson(1.5)).toThrow();
  });
});
