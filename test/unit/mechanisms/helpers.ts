// Shared fixtures for the mechanism-family tests: build KeyRefs from attributes,
// mechanisms from parameters, and assert exact CK_RV codes.
import { expect } from 'vitest';
import { CkError } from '../../../hsm-daemon/src/errors.js';
import { CKA, CKK, CKO } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import { ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import type { AttrMap, KeyRef, Mechanism, MechanismParam, Operation } from '../../../hsm-daemon/src/mechanisms/types.js';

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

let handle = 1;
export function keyRef(attrs: AttrMap): KeyRef {
  return { handle: handle++, attrs, cache: undefined };
}

export function secretKey(value: Buffer, keyType: number = CKK.AES): KeyRef {
  return keyRef(
    new Map([
      [CKA.CLASS, ulongAttr(CKO.SECRET_KEY)],
      [CKA.KEY_TYPE, ulongAttr(keyType)],
      [CKA.VALUE, value],
    ]),
  );
}

/** A key object built from a family's generated attributes plus its class. */
export function objectFrom(attrs: AttrMap, cls: number): KeyRef {
  const m = new Map(attrs);
  m.set(CKA.CLASS, ulongAttr(cls));
  return keyRef(m);
}

export const NONE: MechanismParam = { kind: 'none' };
export function mech(type: number, param: MechanismParam = NONE): Mechanism {
  return { type, param };
}
export const bytes = (data: Buffer): MechanismParam => ({ kind: 'bytes', data });

/** Asserts that `f` (sync throw or rejected promise) fails with CkError(rv). */
export async function expectRv(f: () => unknown, rv: number): Promise<void> {
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected CkError rv=0x${rv.toString(16)}`).toBeInstanceOf(CkError);
  expect((err as CkError).rv.toString(16)).toBe(rv.toString(16));
}

/** Feeds `data` through update() in uneven chunks, then final(). */
export async function multiPart(op: Operation, data: Buffer, signature?: Buffer, chunks = [1, 15, 17, 31, 64]): Promise<Buffer> {
  const out: Buffer[] = [];
  let off = 0;
  for (const c of chunks) {
    if (off >= data.length) break;
    out.push(await op.update(data.subarray(off, off + c)));
    off += c;
  }
  if (off < data.length) out.push(await op.update(data.subarray(off)));
  out.push(await op.final(signature));
  return Buffer.concat(out);
}
