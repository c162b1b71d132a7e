// The PKCS#11 client side of `craton-hsm-admin migrate`: loading a module, finding a
// slot, per-attribute reads and CK_RV names, over pkcs11js (synchronous calls: the
// migration is one sequential walk over the source token).
import { accessSync, constants, statSync } from 'node:fs';
import type pkcs11js from 'pkcs11js';
import { CKR } from '../../../hsm-daemon/src/pkcs11/index.js';
import { rvName } from '../../../hsm-daemon/src/pkcs11/names.js';
import { CliError, EXIT } from '../client.js';

export type P11 = InstanceType<typeof pkcs11js.PKCS11>;
export type Handle = Buffer;
export type TemplateAttr = pkcs11js.Attribute;

/** A PKCS#11 call that returned something other than CKR_OK. */
export class P11Error extends Error {
  constructor(
    readonly fn: string,
    readonly rv: number,
  ) {
    super(`${fn}: ${rvName(rv)}`);
  }
  get rvName(): string {
    return rvName(this.rv);
  }
}

/** The CK_RV of a pkcs11js exception, or undefined for non-PKCS#11 errors. pkcs11js gives
 * it as `code`, and in the message as "CKR_NAME:<decimal>" on some paths. */
export function rvOfError(e: unknown): number | undefined {
  if (e instanceof P11Error) return e.rv;
  const err = e as { code?: unknown; message?: unknown; name?: unknown };
  if (err?.name === 'Pkcs11Error' && typeof err.code === 'number') return err.code;
  const m = /CKR_\w+:(\d+)/.exec(String(err?.message ?? ''));
  return m ? Number(m[1]) : undefined;
}

/** Runs one PKCS#11 call, turning pkcs11js's exception into a P11Error naming `fn`. */
export function p11<T>(fn: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const rv = rvOfError(e);
    if (rv !== undefined) throw new P11Error(fn, rv);
    throw e;
  }
}

export interface LoadedModule {
  p11: P11;
  path: string;
  close(): void;
}

/** pkcs11js (a native addon) is loaded on first use, so the other commands of the CLI
 * never depend on it. */
async function binding(): Promise<typeof pkcs11js> {
  try {
    return (await import('pkcs11js')).default;
  } catch (e) {
    throw new CliError(`cannot load pkcs11js, which migrate needs (${String((e as Error).message).split('\n')[0]}); reinstall the package's dependencies`, EXIT.USAGE);
  }
}

/** dlopen + C_Initialize, with one-line errors that say which option to fix. */
export async function openModule(modulePath: string, option: string): Promise<LoadedModule> {
  try {
    const st = statSync(modulePath);
    if (!st.isFile()) throw new CliError(`${option} ${modulePath}: not a file (give the path of a PKCS#11 module .so)`, EXIT.USAGE);
    accessSync(modulePath, constants.R_OK);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const hint = code === 'ENOENT' ? 'no such file; give the path of the PKCS#11 module (.so)' : code;
    throw new CliError(`${option} ${modulePath}: ${hint}`, EXIT.USAGE);
  }
  const p = new (await binding()).PKCS11();
  try {
    p.load(modulePath);
  } catch (e) {
    const first = String((e as Error).message ?? e).split('\n')[0];
    throw new CliError(`${option} ${modulePath}: cannot load it as a PKCS#11 module (${first})`, EXIT.USAGE);
  }
  try {
    p11('C_Initialize', () => p.C_Initialize());
  } catch (e) {
    p.close();
    if (e instanceof P11Error) throw new CliError(`${option} ${modulePath}: C_Initialize failed with ${e.rvName}`, EXIT.FAILED, e.rvName);
    throw e;
  }
  let closed = false;
  return {
    p11: p,
    path: modulePath,
    close() {
      if (closed) return;
      closed = true;
      try {
        p.C_Finalize();
      } catch {
        // finalising a module that failed half-way is best effort
      }
      p.close();
    },
  };
}

export const slotIdOf = (slot: Handle): bigint => (slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0)));

/** The slot with this CK_SLOT_ID among those holding a token. */
export function findSlot(p: P11, id: bigint, what: string, option: string): { slot: Handle; label: string } {
  const slots = p11('C_GetSlotList', () => p.C_GetSlotList(true));
  const have: string[] = [];
  for (const s of slots) {
    const label = p11('C_GetTokenInfo', () => p.C_GetTokenInfo(s)).label.trim();
    if (slotIdOf(s) === id) return { slot: s, label };
    have.push(`${slotIdOf(s)} ("${label}")`);
  }
  throw new CliError(
    `${option} ${id}: ${what} has no slot ${id} with a token; slots with a token: ${have.length ? have.join(', ') : 'none'}`,
    EXIT.USAGE,
  );
}

export type AttrRead = { value: Buffer } | { absent: 'invalid' | 'sensitive' | 'unavailable'; rv: number };

/**
 * Reads one attribute. Asked one at a time because pkcs11js throws for the whole call
 * when any attribute is CKR_ATTRIBUTE_TYPE_INVALID / CKR_ATTRIBUTE_SENSITIVE, although
 * PKCS#11 (§5.7, C_GetAttributeValue) has the token fill in all the others.
 */
export function readAttribute(p: P11, session: Handle, obj: Handle, type: number): AttrRead {
  try {
    const [a] = p.C_GetAttributeValue(session, obj, [{ type }]);
    const v = a?.value;
    if (!Buffer.isBuffer(v)) return { absent: 'unavailable', rv: CKR.OK };
    return { value: v };
  } catch (e) {
    const rv = rvOfError(e);
    if (rv === CKR.ATTRIBUTE_TYPE_INVALID) return { absent: 'invalid', rv };
    if (rv === CKR.ATTRIBUTE_SENSITIVE) return { absent: 'sensitive', rv };
    if (rv !== undefined) throw new P11Error('C_GetAttributeValue', rv);
    // pkcs11js insists on 8 bytes for a CK_DATE, but PKCS#11 allows an empty date
    // (no start/end date), which is what most tokens hold.
    if (e instanceof TypeError && /has wrong length.*but is 0\b/.test(e.message)) return { value: Buffer.alloc(0) };
    throw e;
  }
}

/** A CK_ULONG attribute in the platform's layout (8 bytes on LP64, 4 on 32-bit). */
export function nativeUlong(b: Buffer | undefined): number | undefined {
  if (!b) return undefined;
  if (b.length === 8) return Number(b.readBigUInt64LE(0));
  if (b.length === 4) return b.readUInt32LE(0);
  return undefined;
}

export const nativeBool = (b: Buffer | undefined): boolean | undefined => (b && b.length === 1 ? b[0] !== 0 : undefined);

/** Every object matching the template (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal). */
export function findAll(p: P11, session: Handle, template: TemplateAttr[]): Handle[] {
  p11('C_FindObjectsInit', () => p.C_FindObjectsInit(session, template));
  const out: Handle[] = [];
  try {
    for (;;) {
      const batch = p11('C_FindObjects', () => p.C_FindObjects(session, 64));
      if (batch.length === 0) break;
      out.push(...batch);
    }
  } finally {
    p11('C_FindObjectsFinal', () => p.C_FindObjectsFinal(session));
  }
  return out;
}
