// Applies the policy table to the daemon's calls. Handlers ask it at C_*Init,
// C_GenerateKey*, C_WrapKey/C_UnwrapKey/C_DeriveKey and C_GetMechanism*; it records
// the verdict on the call's note (the audit log writes fips_approved from it), tells
// its listeners about violations (the alerts module subscribes with onViolation), and
// in strict mode refuses: CKR_KEY_SIZE_RANGE for a size, CKR_MECHANISM_INVALID otherwise.
import { CKA, CKD, CKF, CKR } from '../pkcs11/constants.generated.js';
import { readUlong } from '../pkcs11/values.js';
import { CkError } from '../errors.js';
import type { AttrMap, Mechanism, MechanismInfo } from '../mechanisms/types.js';
import type { CallNote } from '../dispatch/call.js';
import { digestInfoHash } from '../mechanisms/common.js';
import { classifyMechanism, curveName, mechName, rowForMechanism, type PolicyContext, type PolicyOp, type PolicySettings, type Verdict } from './table.js';

export interface PolicyViolation {
  mechanism: number;
  /** CKM_ name of the mechanism. */
  mechanismName: string;
  op?: PolicyOp;
  verdict: Verdict;
  mode: 'strict' | 'warn';
  /** true when the call was refused (strict), false when it ran (warn). */
  refused: boolean;
}

/** A policy decision that needs the operation's data (CKM_RSA_PKCS sign/verify: is the
 * input a DigestInfo of an approved hash?). The crypto handlers feed it and ask it
 * before the data reaches the mechanism. */
export interface InputGate {
  /** C_SignUpdate / C_VerifyUpdate: the next part of the input. */
  update(data: Buffer): void;
  /** C_Sign / C_Verify (with the whole input) or C_SignFinal / C_VerifyFinal (with what
   * update() saw): records the verdict on the note; strict mode refuses a disallowed
   * input with CKR_DATA_INVALID, warn mode lets it run as a violation. */
  check(note: CallNote, data?: Buffer): void;
}

/** A DigestInfo is at most 19 + 64 bytes; anything longer is kept only as "too long". */
const INPUT_GATE_KEEP = 128;

export type ViolationListener = (v: PolicyViolation) => void;
type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

/** CKF flags of C_GetMechanismInfo and the operation each one stands for. */
const FLAG_OPS: ReadonlyArray<[number, PolicyOp]> = [
  [CKF.ENCRYPT, 'encrypt'],
  [CKF.DECRYPT, 'decrypt'],
  [CKF.DIGEST, 'digest'],
  [CKF.SIGN, 'sign'],
  [CKF.SIGN_RECOVER, 'sign'],
  [CKF.VERIFY, 'verify'],
  [CKF.VERIFY_RECOVER, 'verify'],
  [CKF.GENERATE, 'generate'],
  [CKF.GENERATE_KEY_PAIR, 'generate'],
  [CKF.WRAP, 'wrap'],
  [CKF.UNWRAP, 'unwrap'],
  [CKF.DERIVE, 'derive'],
];

const KDF_HASH: ReadonlyMap<number, string> = new Map([
  [CKD.SHA1_KDF, 'SHA-1'],
  [CKD.SHA224_KDF, 'SHA-224'],
  [CKD.SHA256_KDF, 'SHA-256'],
  [CKD.SHA384_KDF, 'SHA-384'],
  [CKD.SHA512_KDF, 'SHA-512'],
]);

/** Bit length of a big-endian unsigned integer. */
function bitLength(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

/** Size and curve from key attributes or a generation template. */
export function keyContext(...maps: AttrMap[]): Pick<PolicyContext, 'keyBits' | 'curve'> {
  const get = (t: number) => maps.map((m) => m.get(t)).find((v) => v !== undefined && v.length > 0);
  const modulusBits = readUlong(get(CKA.MODULUS_BITS));
  if (modulusBits !== undefined && modulusBits >= 0) return { keyBits: modulusBits };
  const modulus = get(CKA.MODULUS);
  if (modulus) return { keyBits: bitLength(modulus) };
  const params = get(CKA.EC_PARAMS);
  if (params) {
    const curve = curveName(params);
    return curve ? { curve } : {};
  }
  const valueLen = readUlong(get(CKA.VALUE_LEN));
  if (valueLen !== undefined && valueLen >= 0) return { keyBits: valueLen * 8 };
  const value = get(CKA.VALUE);
  if (value) return { keyBits: value.length * 8 };
  return {};
}

/** The hash a mechanism parameter chooses, by canonical name. */
export function paramHash(mech: Mechanism): string | undefined {
  const p = mech.param;
  switch (p.kind) {
    case 'pss':
    case 'oaep':
      return rowForMechanism(p.hashAlg)?.algorithm;
    case 'hkdf':
      return rowForMechanism(p.prf)?.algorithm;
    case 'ecdh':
      return KDF_HASH.get(p.kdf);
    default:
      return undefined;
  }
}

export class PolicyEnforcer {
  private readonly listeners = new Set<ViolationListener>();

  constructor(
    readonly settings: PolicySettings,
    private readonly log?: LogFn,
  ) {}

  get strict(): boolean {
    return this.settings.enforce === 'strict';
  }

  /** Called for every call the policy does not allow (refused in strict mode, run in
   * warn mode). Returns a function that unsubscribes. Listeners must not throw; if one
   * does, the error is logged and the call goes on. */
  onViolation(cb: ViolationListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  classify(mech: number, ctx: PolicyContext): Verdict {
    return classifyMechanism(mech, ctx, this.settings);
  }

  /** C_*Init, C_WrapKey, C_UnwrapKey, C_DeriveKey: size and curve come from the key. */
  checkKeyUse(mech: Mechanism, op: PolicyOp, key: { attrs: AttrMap } | null, note: CallNote): Verdict {
    const ctx: PolicyContext = { op, ...(key ? keyContext(key.attrs) : {}) };
    const hash = paramHash(mech);
    if (hash) ctx.hash = hash;
    return this.enforce(mech.type, ctx, note);
  }

  /** After checkKeyUse succeeded at C_*Init: the gate the operation's data must pass, for
   * rows whose verdict depends on the data (digestInfoSign); undefined for all others. */
  inputGate(mech: Mechanism, op: PolicyOp, key: { attrs: AttrMap } | null): InputGate | undefined {
    if (!rowForMechanism(mech.type)?.digestInfoSign || (op !== 'sign' && op !== 'verify')) return undefined;
    const ctx: PolicyContext = { op, ...(key ? keyContext(key.attrs) : {}) };
    let parts: Buffer[] = [];
    let seen = 0;
    return {
      update: (data) => {
        if (seen <= INPUT_GATE_KEEP) parts.push(Buffer.from(data));
        seen += data.length;
      },
      check: (note, data) => {
        const input = data ?? (seen <= INPUT_GATE_KEEP ? Buffer.concat(parts) : undefined);
        parts = [];
        const h = input ? digestInfoHash(input) : undefined;
        const digestInfo = h ? (rowForMechanism(h.ckm)?.algorithm ?? '') : '';
        this.enforce(mech.type, { ...ctx, digestInfo }, note, CKR.DATA_INVALID);
      },
    };
  }

  /** C_GenerateKey / C_GenerateKeyPair: size and curve come from the templates
   * (CKA_MODULUS_BITS, CKA_EC_PARAMS, CKA_VALUE_LEN). */
  checkGenerate(mech: Mechanism, templates: AttrMap[], note: CallNote): Verdict {
    return this.enforce(mech.type, { op: 'generate', ...keyContext(...templates) }, note);
  }

  /** C_GetMechanismList: strict mode lists only what some operation may use. */
  listed(type: number): boolean {
    if (!this.strict) return true;
    return FLAG_OPS.some(([, op]) => this.classify(type, { op }).allowed);
  }

  /** C_GetMechanismInfo: undefined (→ CKR_MECHANISM_INVALID) for a refused mechanism in
   * strict mode; otherwise the info with the flags of refused operations cleared (a
   * SHA-1 signature mechanism under allow_sha1_verify only verifies) and, for RSA, the
   * minimum key size raised to rsa_min_bits. */
  mechanismInfo(info: MechanismInfo): MechanismInfo | undefined {
    if (!this.strict) return info;
    let flags = info.flags;
    for (const [flag, op] of FLAG_OPS) if (flags & flag && !this.classify(info.type, { op }).allowed) flags &= ~flag;
    const opFlags = FLAG_OPS.reduce((a, [f]) => a | f, 0);
    if (info.flags & opFlags && !(flags & opFlags)) return undefined;
    let minKeySize = info.minKeySize;
    if (rowForMechanism(info.type)?.size === 'rsa') minKeySize = Math.max(minKeySize, this.settings.rsa_min_bits);
    if (minKeySize > info.maxKeySize && info.maxKeySize !== 0) return undefined;
    return { ...info, flags, minKeySize };
  }

  /** `refuseWith` replaces CKR_MECHANISM_INVALID for refusals decided on the data. */
  private enforce(mech: number, ctx: PolicyContext, note: CallNote, refuseWith: number = CKR.MECHANISM_INVALID): Verdict {
    const v = this.classify(mech, ctx);
    note.approved = v.approved;
    if (v.allowed) return v;
    if (this.report(mech, ctx, v, note)) throw new CkError(v.refusal === 'size' ? CKR.KEY_SIZE_RANGE : refuseWith, `${v.algorithm}: ${v.reason}`, 'policy');
    return v;
  }

  /** A verdict that does not allow the call: noted on the call (audit), told to the
   * listeners (alerts), logged in warn mode. Returns true when strict mode refuses it;
   * the caller throws its own CK_RV (policy/key-admission.ts needs other codes). */
  report(mech: number, ctx: PolicyContext, v: Verdict, note: CallNote): boolean {
    const refused = this.strict;
    note.policyViolation = `${v.algorithm}: ${v.reason}`;
    // The decision to refuse is made here; the callers only choose the CK_RV.
    if (refused) note.refusal = 'policy';
    const event: PolicyViolation = { mechanism: mech, mechanismName: mechName(mech), verdict: v, mode: this.settings.enforce, refused };
    if (ctx.op) event.op = ctx.op;
    for (const cb of this.listeners) {
      try {
        cb(event);
      } catch (err) {
        this.log?.('error', `policy violation listener failed: ${(err as Error).message}`);
      }
    }
    if (!refused) this.log?.('debug', `policy (warn): ${mechName(mech)} ${v.algorithm} not allowed: ${v.reason}`);
    return refused;
  }
}
