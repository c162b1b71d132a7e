// Public token objects (CKA_PRIVATE false) holding secrets: sealed under the data
// directory's device key, so they open at load without a login; stores written before the
// device key keep such objects sealed under the token key until the first login, and the
// next write after it moves them to the device key.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CKA, CKK, CKO } from '../../../hsm-daemon/src/pkcs11/index.js';
import { ulongValue } from '../../../hsm-daemon/src/pkcs11/values.js';
import { HandleAllocator } from '../../../hsm-daemon/src/objects/handles.js';
import { Token } from '../../../hsm-daemon/src/token/token.js';
import { makePinRecord } from '../../../hsm-daemon/src/token/pin.js';
import { sealObjectBody } from '../../../hsm-daemon/src/store/object-seal.js';
import { readTokenStore, type StoredObject, type TokenRecord } from '../../../hsm-daemon/src/store/token-file.js';

const SO = Buffer.from('12345678');
const USER = Buffer.from('5678');
const VALUE = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const SETTINGS = { pbkdf2Iterations: 1000, pinMinLength: 4, pinMaxLength: 64, maxFailedLogins: 10, defaultLabel: 'unit', maxObjects: 100 };

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'craton-public-'));
  dirs.push(dir);
  return dir;
}

/** A token as a restarted daemon sees it: loaded from disk, nobody logged in. */
function open(dir: string): Token {
  const t = new Token(0, { dataDir: dir, ...SETTINGS }, new HandleAllocator());
  t.load();
  return t;
}

const aesKey = (uid: string, priv: boolean) => ({
  uid,
  attrs: new Map([
    [CKA.CLASS, ulongValue(CKO.SECRET_KEY)],
    [CKA.KEY_TYPE, ulongValue(CKK.AES)],
    [CKA.TOKEN, Buffer.from([1])],
    [CKA.PRIVATE, Buffer.from([priv ? 1 : 0])],
    [CKA.LABEL, Buffer.from(uid)],
    [CKA.VALUE, Buffer.from(VALUE)],
  ]),
  arrays: new Map(),
  owner: { session: null, app: null },
});

const tokenFile = (dir: string) => path.join(dir, 'tokens', 'slot-0.json');
const stored = (dir: string): StoredObject[] => readTokenStore(dir, 0)!.objects;
/** Everything the token store holds on disk: snapshot and journal. */
const storeText = (dir: string): string => readFileSync(tokenFile(dir), 'utf8') + readFileSync(path.join(dir, 'tokens', 'slot-0.journal'), 'utf8');
const visibleUids = (t: Token) => t.visibleTo('app').map((o) => o.uid).sort();
const valueOf = (t: Token, uid: string) => t.visibleTo('app').find((o) => o.uid === uid)?.attrs.get(CKA.VALUE);

describe('public objects under the device key', () => {
  it('are created without a login, sealed under a new 0600 device key, and open at load without one', async () => {
    const dir = newDir();
    const first = open(dir);
    await first.initToken(SO, 'unit');
    const t = open(dir); // restarted: no token key in memory
    await t.addObject('pub', aesKey('pub', false).attrs, new Map(), { session: null, app: null });
    const keyFile = path.join(dir, 'tokens', 'device.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile)).toHaveLength(32);
    const [so] = stored(dir);
    expect(so).toMatchObject({ uid: 'pub', private: false, sealKey: 'device' });
    expect(so!.clear[CKA.VALUE.toString(16)]).toBeUndefined();
    const raw = storeText(dir);
    expect(raw).toContain('"uid":"pub"');
    for (const enc of [VALUE.toString('hex'), VALUE.toString('base64')]) expect(raw).not.toContain(enc);

    const again = open(dir);
    expect(visibleUids(again)).toEqual(['pub']);
    expect(valueOf(again, 'pub')).toEqual(VALUE);
  });

  it('a private object still needs the token key: refused without a login', async () => {
    const dir = newDir();
    await open(dir).initToken(SO, 'unit');
    const t = open(dir);
    await expect(t.addObject('priv', aesKey('priv', true).attrs, new Map(), { session: null, app: null })).rejects.toThrow(/log in first/);
    expect(t.objectCount).toBe(0);
  });

  it('a blob moved to the token domain, or a private object claiming the device key, never opens', async () => {
    const dir = newDir();
    const t = open(dir);
    await t.initToken(SO, 'unit');
    await t.login('app', 'so', SO);
    await t.initUserPin(USER);
    await t.addObjects([aesKey('moved', false), aesKey('claimed', false), aesKey('kept', false)]);
    // rewritten as a snapshot without a generation: the journal's lines no longer apply
    const rec = readTokenStore(dir, 0)!;
    for (const o of rec.objects) {
      if (o.uid === 'moved') delete o.sealKey; // same blob, now said to be under the token key
      if (o.uid === 'claimed') o.private = true;
    }
    writeFileSync(tokenFile(dir), JSON.stringify(rec));
    const u = open(dir);
    expect(visibleUids(u)).toEqual(['kept']);
    expect(u.objectCount).toBe(3);
    await u.login('app', 'user', USER);
    expect(visibleUids(u)).toEqual(['kept']);
    // kept as they are, not dropped
    await u.addObject('new', aesKey('new', false).attrs, new Map(), { session: null, app: null });
    expect(stored(dir).map((o) => o.uid).sort()).toEqual(['claimed', 'kept', 'moved', 'new']);
  });

  it('a store whose device key file is gone refuses to load, naming the file', async () => {
    const dir = newDir();
    const t = open(dir);
    await t.initToken(SO, 'unit');
    await t.addObject('pub', aesKey('pub', false).attrs, new Map(), { session: null, app: null });
    unlinkSync(path.join(dir, 'tokens', 'device.key'));
    expect(() => open(dir)).toThrow(/sealed under the device key .*device\.key, which is missing/);
  });
});

describe('stores from before the device key', () => {
  /** Writes a token file as the previous code did: a public AES key sealed under the token key. */
  async function oldStore(dir: string): Promise<void> {
    const tokenKey = Buffer.alloc(32, 7);
    const body = Buffer.from(JSON.stringify({ attrs: { [CKA.VALUE.toString(16)]: VALUE.toString('base64') }, arrays: {} }));
    const clear: Record<string, string> = {};
    for (const [t, v] of aesKey('old', false).attrs) if (t !== CKA.VALUE) clear[t.toString(16)] = v.toString('base64');
    const rec: TokenRecord = {
      format: 1,
      slot: 0,
      initialized: true,
      label: 'old',
      serial: '00000000000000AA',
      so: await makePinRecord(SO, tokenKey, 1000),
      user: await makePinRecord(USER, tokenKey, 1000),
      failedLogins: { so: 0, user: 0 },
      objects: [{ uid: 'old', clear, private: false, sealed: sealObjectBody(tokenKey, 'token', 0, 'old', body) }],
    };
    mkdirSync(path.join(dir, 'tokens'), { recursive: true });
    writeFileSync(tokenFile(dir), JSON.stringify(rec), { mode: 0o600 });
  }

  it('keep such an object locked until a login; the next write re-seals it under the device key', async () => {
    const dir = newDir();
    await oldStore(dir);
    const t = open(dir);
    expect(t.objectCount).toBe(1);
    expect(visibleUids(t)).toEqual([]);
    await t.login('app', 'user', USER);
    expect(valueOf(t, 'old')).toEqual(VALUE);
    expect(stored(dir)[0]!.sealKey).toBeUndefined(); // a login alone writes nothing
    await t.addObject('other', aesKey('other', false).attrs, new Map(), { session: null, app: null });
    expect(stored(dir).find((o) => o.uid === 'old')).toMatchObject({ private: false, sealKey: 'device' });

    const after = open(dir);
    expect(visibleUids(after)).toEqual(['old', 'other']);
    expect(valueOf(after, 'old')).toEqual(VALUE);
  });
});
