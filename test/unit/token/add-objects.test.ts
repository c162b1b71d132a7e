// Token.addObjects: several objects (a key pair, an imported bundle) are one durable change:
// on disk all of them or none, and none stays visible when the write fails.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CKA, CKO } from '../../../hsm-daemon/src/pkcs11/index.js';
import { ulongValue } from '../../../hsm-daemon/src/pkcs11/values.js';
import { HandleAllocator } from '../../../hsm-daemon/src/objects/handles.js';
import { Token } from '../../../hsm-daemon/src/token/token.js';
import { readTokenStore } from '../../../hsm-daemon/src/store/token-file.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

async function freshToken(): Promise<{ t: Token; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'craton-token-'));
  dirs.push(dir);
  const t = new Token(0, { dataDir: dir, pbkdf2Iterations: 1000, pinMinLength: 4, pinMaxLength: 64, maxFailedLogins: 10, defaultLabel: 'unit', maxObjects: 100 }, new HandleAllocator());
  t.load();
  await t.initToken(Buffer.from('12345678'), 'unit');
  return { t, dir };
}

const dataObject = (label: string) => ({
  uid: `uid-${label}`,
  attrs: new Map([
    [CKA.CLASS, ulongValue(CKO.DATA)],
    [CKA.TOKEN, Buffer.from([1])],
    [CKA.PRIVATE, Buffer.from([0])],
    [CKA.LABEL, Buffer.from(label)],
  ]),
  arrays: new Map(),
  owner: { session: null, app: null },
});

const storedUids = (dir: string): string[] => readTokenStore(dir, 0)!.objects.map((o) => o.uid).sort();

describe('Token.addObjects', () => {
  it('stores every object of the batch in one durable write', async () => {
    const { t, dir } = await freshToken();
    const objs = await t.addObjects([dataObject('a'), dataObject('b'), dataObject('c')]);
    expect(objs.map((o) => o.uid)).toEqual(['uid-a', 'uid-b', 'uid-c']);
    expect(storedUids(dir)).toEqual(['uid-a', 'uid-b', 'uid-c']);
    expect(t.objectCount).toBe(3);
  });

  it('a failed write leaves none of the batch in memory', async () => {
    const { t, dir } = await freshToken();
    await t.addObjects([dataObject('kept')]);
    // The durable writer creates its temporary file beside the token file: a directory in
    // its place makes the write fail (root ignores permission bits, not this).
    const tokens = path.join(dir, 'tokens');
    rmSync(tokens, { recursive: true });
    writeFileSync(tokens, 'not a directory');
    await expect(t.addObjects([dataObject('x'), dataObject('y')])).rejects.toThrow();
    expect(t.objectCount).toBe(1);
    expect(t.visibleTo('any-app').map((o) => o.uid)).toEqual(['uid-kept']);
  });

  it('refuses a batch that would pass the object limit, adding nothing', async () => {
    const { t } = await freshToken();
    const many = Array.from({ length: 101 }, (_, i) => dataObject(`o${i}`));
    await expect(t.addObjects(many)).rejects.toThrow(/object limit/);
    expect(t.objectCount).toBe(0);
  });
});
