// One PKCS#11 object as the daemon holds it. Attribute values are canonical
// (pkcs11/values.ts); array-of-attribute values (CKA_WRAP_TEMPLATE …) live beside them.
import type { AttrMap, KeyRef } from '../mechanisms/types.js';
import type { Attr } from '../wire/contract.js';
import { CKA } from '../pkcs11/index.js';
import { readBool, readUlong } from '../pkcs11/values.js';

export interface ObjectOwner {
  /** Token objects: null. Session objects: the creating session and its application. */
  session: number | null;
  app: string | null;
}

export class HsmObject implements KeyRef {
  cache: unknown = undefined;

  constructor(
    readonly handle: number,
    readonly slotId: number,
    /** Stable identity across restarts (CKA_UNIQUE_ID, audit key references). */
    readonly uid: string,
    public attrs: AttrMap,
    public arrays: Map<number, Attr[]>,
    readonly owner: ObjectOwner,
  ) {}

  get isToken(): boolean {
    return readBool(this.attrs.get(CKA.TOKEN)) === true;
  }
  get isPrivate(): boolean {
    return readBool(this.attrs.get(CKA.PRIVATE)) === true;
  }
  get objectClass(): number {
    return readUlong(this.attrs.get(CKA.CLASS)) ?? -1;
  }
  get keyType(): number | undefined {
    return readUlong(this.attrs.get(CKA.KEY_TYPE));
  }
  flag(type: number): boolean {
    return readBool(this.attrs.get(type)) === true;
  }

  /** Replaces attributes and drops the family's parsed-key memo, which may be stale. */
  update(attrs: AttrMap, arrays?: Map<number, Attr[]>): void {
    this.attrs = attrs;
    if (arrays) this.arrays = arrays;
    this.cache = undefined;
  }

  /** Zeroes the key material this object held; called when it is destroyed. */
  wipe(secretTypes: Set<number>): void {
    for (const t of secretTypes) this.attrs.get(t)?.fill(0);
    this.cache = undefined;
  }
}
