// AES: key generation, the block modes, GCM, CCM (aes-ccm.ts), RFC 3394/5649 key wrap and CMAC.
// A private key is wrapped and unwrapped as its PKCS#8 plaintext (pkcs8.ts).
import { createCipheriv, createDecipheriv, type Cipher, type CipherGCMTypes, type Decipher } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { randomBytes } from '../drbg/index.js';
import { keyTypeOf, optUlong, ulongAttr } from './attrs.js';
import { EMPTY, bufferedOperation, decryptWrapped, encryptWrapPlaintext, expectNoParam, paramInvalid, ulongsFromBytes, unwrapSecretValue, wrapSecretValue } from './common.js';
import { pkcs8FromPrivateKey, privateKeyFromPkcs8 } from './pkcs8.js';
import { macOperation } from './hmac.js';
import { ccmOp } from './aes-ccm.js';
import type { AttrMap, GeneratedKey, KeyRef, Mechanism, MechanismFamily, MechanismInfo, OpKind, Operation } from './types.js';

const BLOCK = 16;
const KEY_SIZES = [16, 24, 32];
const MIN_KEY = 16;
const MAX_KEY = 32;
const CRYPT = CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP;

/** RFC 3394 §2.2.3.1 and RFC 5649 §3 default initial values. */
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const KWP_IV = Buffer.from('a65959a6', 'hex');

const GCM_TAG_BITS = new Set([32, 64, 96, 104, 112, 120, 128]);

function aesKey(key: KeyRef | null): Buffer {
  if (!key) throw new CkError(CKR.KEY_HANDLE_INVALID);
  if (keyTypeOf(key) !== CKK.AES) throw new CkError(CKR.KEY_TYPE_INCONSISTENT);
  const v = key.attrs.get(CKA.VALUE);
  if (!v) throw new CkError(CKR.KEY_TYPE_INCONSISTENT, 'AES key without a value');
  if (!KEY_SIZES.includes(v.length)) throw new CkError(CKR.KEY_SIZE_RANGE);
  return v;
}

const cipherName = (mode: string, key: Buffer): string => `aes-${key.length * 8}-${mode}`;

function lenError(kind: OpKind): CkError {
  return new CkError(kind === 'encrypt' ? CKR.DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_LEN_RANGE);
}

function ivParam(mech: Mechanism, len: number): Buffer {
  const p = mech.param;
  if (p.kind !== 'bytes' || p.data.length !== len) throw paramInvalid(`expected a ${len}-byte IV`);
  return p.data;
}

/** ECB, CBC, CBC_PAD and CTR stream through one node cipher; what differs is the
 * length rule, checked against the running total so multi-part matches single-part. */
function blockModeOp(kind: OpKind, mech: Mechanism, key: Buffer): Operation {
  let mode: string;
  let iv: Buffer | null = null;
  let aligned = true;
  let pad = false;
  let ctrBlocksLeft: bigint | undefined;
  switch (mech.type) {
    case CKM.AES_ECB:
      expectNoParam(mech);
      mode = 'ecb';
      break;
    case CKM.AES_CBC:
      mode = 'cbc';
      iv = ivParam(mech, BLOCK);
      break;
    case CKM.AES_CBC_PAD:
      mode = 'cbc';
      iv = ivParam(mech, BLOCK);
      pad = true;
      aligned = kind === 'decrypt';
      break;
    case CKM.AES_CTR: {
      mode = 'ctr';
      aligned = false;
      const p = mech.param;
      let bits: number | undefined;
      let cb: Buffer | undefined;
      if (p.kind === 'ctr') {
        bits = p.counterBits;
        cb = p.cb;
      } else if (p.kind === 'bytes' && p.data.length === 8 + BLOCK) {
        bits = ulongsFromBytes(p.data.subarray(0, 8), 1)?.[0];
        cb = p.data.subarray(8);
      }
      if (bits === undefined || !cb || cb.length !== BLOCK || bits < 1 || bits > 128) throw paramInvalid('expected CK_AES_CTR_PARAMS');
      iv = cb;
      // PKCS#11 lets only the low counterBits bits count; node would carry into the
      // nonce, so refuse input that would wrap the counter instead.
      const counter = BigInt('0x' + cb.toString('hex')) & ((1n << BigInt(bits)) - 1n);
      ctrBlocksLeft = (1n << BigInt(bits)) - counter;
      break;
    }
    default:
      throw new CkError(CKR.MECHANISM_INVALID);
  }
  const name = cipherName(mode, key);
  const c: Cipher | Decipher = kind === 'encrypt' ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
  c.setAutoPadding(pad);
  let total = 0;
  const account = (n: number): void => {
    total += n;
    if (ctrBlocksLeft !== undefined && BigInt(Math.ceil(total / BLOCK)) > ctrBlocksLeft) throw lenError(kind);
  };
  const finish = (): Buffer => {
    if (aligned && (total % BLOCK !== 0 || (pad && total === 0))) throw lenError(kind);
    try {
      return c.final();
    } catch {
      throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
    }
  };
  return {
    async oneShot(data) {
      account(data.length);
      if (aligned && (total % BLOCK !== 0 || (pad && total === 0))) throw lenError(kind);
      const head = c.update(data);
      return Buffer.concat([head, finish()]);
    },
    async update(data) {
      account(data.length);
      return c.update(data);
    },
    async final() {
      return finish();
    },
  };
}

function gcmOp(kind: OpKind, mech: Mechanism, key: Buffer): Operation {
  const p = mech.param;
  if (p.kind !== 'gcm') throw paramInvalid('expected CK_GCM_PARAMS');
  if (p.iv.length === 0) throw paramInvalid('GCM needs an IV');
  if (!GCM_TAG_BITS.has(p.tagBits)) throw paramInvalid('unsupported GCM tag length');
  const tagLen = p.tagBits / 8;
  const name = cipherName('gcm', key) as CipherGCMTypes;
  if (kind === 'encrypt') {
    const c = createCipheriv(name, key, p.iv, { authTagLength: tagLen });
    if (p.aad.length) c.setAAD(p.aad);
    const finish = (): Buffer => Buffer.concat([c.final(), c.getAuthTag()]);
    return {
      async oneShot(data) {
        return Buffer.concat([c.update(data), finish()]);
      },
      async update(data) {
        return c.update(data);
      },
      async final() {
        return finish();
      },
    };
  }
  // Decryption releases nothing before the tag has verified: unauthenticated
  // plaintext must never reach the caller.
  return bufferedOperation(async (data) => {
    if (data.length < tagLen) throw new CkError(CKR.ENCRYPTED_DATA_LEN_RANGE);
    const d = createDecipheriv(name, key, p.iv, { authTagLength: tagLen });
    if (p.aad.length) d.setAAD(p.aad);
    d.setAuthTag(data.subarray(data.length - tagLen));
    const out = d.update(data.subarray(0, data.length - tagLen));
    try {
      return Buffer.concat([out, d.final()]);
    } catch {
      throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
    } finally {
      out.fill(0);
    }
  });
}

/** RFC 3394 (no padding) and RFC 5649 (with padding) via OpenSSL's wrap ciphers. */
function keyWrapOp(kind: OpKind, mech: Mechanism, key: Buffer): Operation {
  const padded = mech.type !== CKM.AES_KEY_WRAP;
  const defIv = padded ? KWP_IV : KW_IV;
  const p = mech.param;
  let iv: Buffer = defIv;
  if (p.kind === 'bytes' && p.data.length > 0) {
    if (p.data.length !== defIv.length) throw paramInvalid('key wrap IV has the wrong length');
    iv = p.data;
  } else if (p.kind !== 'none' && p.kind !== 'bytes') throw paramInvalid('key wrap takes an optional IV');
  const name = `id-aes${key.length * 8}-wrap${padded ? '-pad' : ''}`;
  return bufferedOperation(async (data) => {
    if (kind === 'encrypt') {
      if (padded ? data.length === 0 : data.length < 16 || data.length % 8 !== 0) throw new CkError(CKR.DATA_LEN_RANGE);
      const c = createCipheriv(name, key, iv);
      return Buffer.concat([c.update(data), c.final()]);
    }
    if (data.length < (padded ? 16 : 24) || data.length % 8 !== 0) throw new CkError(CKR.ENCRYPTED_DATA_LEN_RANGE);
    const d = createDecipheriv(name, key, iv);
    let out: Buffer = EMPTY;
    try {
      out = d.update(data);
      return Buffer.concat([out, d.final()]);
    } catch {
      throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
    } finally {
      out.fill(0);
    }
  });
}

/** NIST SP 800-38B CMAC: CBC-MAC over all but the last block, then the last block
 * masked with a subkey. The final block is held back because only Final knows it. */
class Cmac {
  private readonly cbc: Cipher;
  private readonly k1: Buffer;
  private readonly k2: Buffer;
  private pending: Buffer<ArrayBufferLike> = EMPTY;
  private out: Buffer<ArrayBufferLike> = EMPTY;

  constructor(key: Buffer) {
    const zero = Buffer.alloc(BLOCK);
    const ecb = createCipheriv(cipherName('ecb', key), key, null).setAutoPadding(false);
    const l = ecb.update(zero);
    this.k1 = Cmac.dbl(l);
    this.k2 = Cmac.dbl(this.k1);
    l.fill(0);
    this.cbc = createCipheriv(cipherName('cbc', key), key, zero).setAutoPadding(false);
  }

  private static dbl(b: Buffer): Buffer {
    const o = Buffer.alloc(BLOCK);
    for (let i = 0; i < BLOCK; i++) o[i] = ((b[i]! << 1) | (i + 1 < BLOCK ? b[i + 1]! >> 7 : 0)) & 0xff;
    // Branch-free reduction by x^128 + x^7 + x^2 + x + 1.
    o[BLOCK - 1]! ^= 0x87 & -(b[0]! >> 7);
    return o;
  }

  update(data: Buffer): void {
    const buf = Buffer.concat([this.pending, data]);
    const keep = buf.length === 0 ? 0 : buf.length % BLOCK || BLOCK;
    const n = buf.length - keep;
    if (n > 0) this.out = this.cbc.update(buf.subarray(0, n));
    this.pending = Buffer.from(buf.subarray(n));
    buf.fill(0);
  }

  digest(): Buffer {
    const last = Buffer.alloc(BLOCK);
    this.pending.copy(last);
    let sub = this.k1;
    if (this.pending.length < BLOCK) {
      last[this.pending.length] = 0x80;
      sub = this.k2;
    }
    for (let i = 0; i < BLOCK; i++) last[i]! ^= sub[i]!;
    const tag = this.cbc.update(last);
    this.cbc.final();
    for (const b of [last, this.pending, this.out, this.k1, this.k2]) b.fill(0);
    return tag;
  }
}

function cmacOp(kind: OpKind, mech: Mechanism, key: Buffer): Operation {
  if (kind !== 'sign' && kind !== 'verify') throw new CkError(CKR.MECHANISM_INVALID, 'CMAC only signs and verifies');
  let len = BLOCK;
  if (mech.type === CKM.AES_CMAC_GENERAL) {
    const p = mech.param;
    const l = p.kind === 'macGeneral' ? p.macLen : p.kind === 'bytes' ? ulongsFromBytes(p.data, 1)?.[0] : undefined;
    if (l === undefined || l < 1 || l > BLOCK) throw paramInvalid('expected CK_MAC_GENERAL_PARAMS of 1..16');
    len = l;
  } else expectNoParam(mech);
  return macOperation(kind, len, new Cmac(key));
}

const CIPHER_MECHS = [CKM.AES_ECB, CKM.AES_CBC, CKM.AES_CBC_PAD, CKM.AES_CTR, CKM.AES_GCM, CKM.AES_CCM, CKM.AES_KEY_WRAP, CKM.AES_KEY_WRAP_PAD, CKM.AES_KEY_WRAP_KWP];

export class AesFamily implements MechanismFamily {
  readonly name = 'aes';

  mechanisms(): MechanismInfo[] {
    const info = (type: number, flags: number): MechanismInfo => ({ type, minKeySize: MIN_KEY, maxKeySize: MAX_KEY, flags });
    return [
      info(CKM.AES_KEY_GEN, CKF.GENERATE),
      ...CIPHER_MECHS.map((m) => info(m, CRYPT)),
      info(CKM.AES_CMAC, CKF.SIGN | CKF.VERIFY),
      info(CKM.AES_CMAC_GENERAL, CKF.SIGN | CKF.VERIFY),
    ];
  }

  createOperation(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation {
    switch (mech.type) {
      case CKM.AES_CMAC:
      case CKM.AES_CMAC_GENERAL:
        return cmacOp(kind, mech, aesKey(key));
    }
    if (!CIPHER_MECHS.includes(mech.type as (typeof CIPHER_MECHS)[number])) throw new CkError(CKR.MECHANISM_INVALID);
    if (kind !== 'encrypt' && kind !== 'decrypt') throw new CkError(CKR.MECHANISM_INVALID, 'AES cipher modes only encrypt and decrypt');
    const k = aesKey(key);
    switch (mech.type) {
      case CKM.AES_GCM:
        return gcmOp(kind, mech, k);
      case CKM.AES_CCM:
        return ccmOp(kind, mech, k);
      case CKM.AES_KEY_WRAP:
      case CKM.AES_KEY_WRAP_PAD:
      case CKM.AES_KEY_WRAP_KWP:
        return keyWrapOp(kind, mech, k);
      default:
        return blockModeOp(kind, mech, k);
    }
  }

  async generateKey(mech: Mechanism, template: AttrMap): Promise<GeneratedKey> {
    if (mech.type !== CKM.AES_KEY_GEN) throw new CkError(CKR.MECHANISM_INVALID);
    expectNoParam(mech);
    const len = optUlong(template, CKA.VALUE_LEN);
    if (len === undefined) throw new CkError(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE_LEN is required');
    // An impossible AES length is a bad attribute value (C_GenerateKey has no KEY_SIZE_RANGE).
    if (!KEY_SIZES.includes(len)) throw new CkError(CKR.ATTRIBUTE_VALUE_INVALID, 'AES keys are 16, 24 or 32 bytes');
    return {
      attrs: new Map([
        [CKA.KEY_TYPE, ulongAttr(CKK.AES)],
        [CKA.VALUE, randomBytes(len)],
        [CKA.VALUE_LEN, ulongAttr(len)],
      ]),
    };
  }

  /** A secret key's CKA_VALUE, or a private key's PKCS#8 PrivateKeyInfo, is what gets wrapped. */
  async wrap(mech: Mechanism, wrappingKey: KeyRef, key: KeyRef): Promise<Buffer> {
    if (optUlong(key.attrs, CKA.CLASS) === CKO.PRIVATE_KEY) {
      // The wrapping key and parameters are checked before the key is encoded.
      const encrypt = this.wrapOp('encrypt', mech, wrappingKey);
      const plain = pkcs8FromPrivateKey(key);
      try {
        // No zero fill for the unpadded modes (RFC 3394 KW, CBC, ECB): the mechanism defines
        // none, and a blob of the wrong length is refused rather than silently changed.
        return await encryptWrapPlaintext(encrypt, plain, 'the PKCS#8 form of this private key is not a whole number of blocks for this mechanism; use CKM_AES_KEY_WRAP_PAD (RFC 5649) or CKM_AES_CBC_PAD');
      } finally {
        plain.fill(0);
      }
    }
    return wrapSecretValue(key, () => this.wrapOp('encrypt', mech, wrappingKey), 'key length does not suit this wrapping mechanism');
  }

  async unwrap(mech: Mechanism, unwrappingKey: KeyRef, wrapped: Buffer, template: AttrMap): Promise<AttrMap> {
    if (optUlong(template, CKA.CLASS) === CKO.PRIVATE_KEY) {
      const plain = await decryptWrapped(() => this.wrapOp('decrypt', mech, unwrappingKey), wrapped);
      try {
        return privateKeyFromPkcs8(plain, template);
      } finally {
        plain.fill(0);
      }
    }
    let value = await unwrapSecretValue(template, 'AES', () => this.wrapOp('decrypt', mech, unwrappingKey), wrapped);
    // Unpadded modes return whole blocks; CKA_VALUE_LEN says how much is key.
    const want = optUlong(template, CKA.VALUE_LEN);
    if (want !== undefined) {
      if (want > value.length) throw new CkError(CKR.TEMPLATE_INCONSISTENT);
      const v = Buffer.from(value.subarray(0, want));
      value.fill(0);
      value = v;
    }
    return new Map([[CKA.VALUE, value]]);
  }

  private wrapOp(kind: 'encrypt' | 'decrypt', mech: Mechanism, k: KeyRef): Operation {
    try {
      return this.createOperation(kind, mech, k);
    } catch (e) {
      if (e instanceof CkError && e.rv === CKR.KEY_TYPE_INCONSISTENT)
        throw new CkError(kind === 'encrypt' ? CKR.WRAPPING_KEY_TYPE_INCONSISTENT : CKR.UNWRAPPING_KEY_TYPE_INCONSISTENT);
      if (e instanceof CkError && e.rv === CKR.KEY_SIZE_RANGE)
        throw new CkError(kind === 'encrypt' ? CKR.WRAPPING_KEY_SIZE_RANGE : CKR.UNWRAPPING_KEY_SIZE_RANGE);
      throw e;
    }
  }
}
