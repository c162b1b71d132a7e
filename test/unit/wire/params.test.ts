import { describe, expect, it } from 'vitest';
import { CKD, CKF, CKG, CKM, CKZ } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import { ProtocolError, Reader, Writer } from '../../../hsm-daemon/src/wire/codec.js';
import type { ClientLayout } from '../../../hsm-daemon/src/wire/contract.js';

const L64: ClientLayout = { ulongSize: 8, littleEndian: true };
const L32: ClientLayout = { ulongSize: 4, littleEndian: true };
const L64BE: ClientLayout = { ulongSize: 8, littleEndian: false };

/** `mechanism` encoding: ulong type, u8 form, then bytes for forms 1 and 2. */
function mech(type: number, form: number, body?: Buffer): Buffer {
  const w = new Writer(L64).ulong(type).u8(form);
  if (body) w.bytes(body);
  return w.finish();
}
function decode(buf: Buffer, l: ClientLayout = L64) {
  const r = new Reader(buf, l);
  const m = r.mechanism();
  r.end();
  return m;
}
const w = () => new Writer(L64);
const b = (s: string) => Buffer.from(s);

function native(l: ClientLayout, ...v: number[]): Buffer {
  const out = Buffer.alloc(v.length * l.ulongSize);
  v.forEach((x, i) => {
    const off = i * l.ulongSize;
    if (l.ulongSize === 8) l.littleEndian ? out.writeBigUInt64LE(BigInt(x), off) : out.writeBigUInt64BE(BigInt(x), off);
    else l.littleEndian ? out.writeUInt32LE(x, off) : out.writeUInt32BE(x, off);
  });
  return out;
}

describe('form 0 and unknown forms', () => {
  it('form 0 is no parameter', () => {
    expect(decode(mech(CKM.SHA256, 0))).toEqual({ type: CKM.SHA256, param: { kind: 'none' } });
  });
  it('an unknown form is a protocol error', () => {
    expect(() => decode(mech(CKM.SHA256, 3))).toThrow(ProtocolError);
  });
});

describe('form 2 structures', () => {
  it('CK_GCM_PARAMS', () => {
    const body = w().bytes(b('iv-of-12byte')).ulong(96).bytes(b('aad')).ulong(128).finish();
    expect(decode(mech(CKM.AES_GCM, 2, body)).param).toEqual({ kind: 'gcm', iv: b('iv-of-12byte'), ivBits: 96, aad: b('aad'), tagBits: 128 });
  });
  it('CK_CCM_PARAMS', () => {
    const body = w().ulong(100).bytes(b('nonce13bytes!')).bytes(b('')).ulong(16).finish();
    expect(decode(mech(CKM.AES_CCM, 2, body)).param).toEqual({ kind: 'ccm', dataLen: 100, nonce: b('nonce13bytes!'), aad: Buffer.alloc(0), macLen: 16 });
  });
  it('CK_RSA_PKCS_OAEP_PARAMS', () => {
    const body = w().ulong(CKM.SHA256).ulong(CKG.MGF1_SHA256).ulong(CKZ.DATA_SPECIFIED).bytes(b('label')).finish();
    expect(decode(mech(CKM.RSA_PKCS_OAEP, 2, body)).param).toEqual({
      kind: 'oaep',
      hashAlg: CKM.SHA256,
      mgf: CKG.MGF1_SHA256,
      source: CKZ.DATA_SPECIFIED,
      sourceData: b('label'),
    });
  });
  it('CK_ECDH1_DERIVE_PARAMS (both mechanisms)', () => {
    const body = w().ulong(CKD.NULL).bytes(Buffer.alloc(0)).bytes(Buffer.alloc(65, 4)).finish();
    for (const t of [CKM.ECDH1_DERIVE, CKM.ECDH1_COFACTOR_DERIVE]) {
      expect(decode(mech(t, 2, body)).param).toEqual({ kind: 'ecdh', kdf: CKD.NULL, sharedData: Buffer.alloc(0), publicData: Buffer.alloc(65, 4) });
    }
  });
  it('CK_HKDF_PARAMS (both mechanisms)', () => {
    const body = w().u8(1).u8(0).ulong(CKM.SHA256).ulong(CKF.HKDF_SALT_DATA).bytes(b('salt')).ulong(0).bytes(b('info')).finish();
    for (const t of [CKM.HKDF_DERIVE, CKM.HKDF_DATA]) {
      expect(decode(mech(t, 2, body)).param).toEqual({
        kind: 'hkdf',
        extract: true,
        expand: false,
        prf: CKM.SHA256,
        saltType: CKF.HKDF_SALT_DATA,
        salt: b('salt'),
        saltKey: 0,
        info: b('info'),
      });
    }
  });
  it('CK_EDDSA_PARAMS', () => {
    const body = w().u8(1).bytes(b('ctx')).finish();
    expect(decode(mech(CKM.EDDSA, 2, body)).param).toEqual({ kind: 'eddsa', phFlag: true, context: b('ctx') });
  });
  it('CK_AES_CBC_ENCRYPT_DATA_PARAMS and CK_KEY_DERIVATION_STRING_DATA', () => {
    const cbc = w().bytes(Buffer.alloc(16, 7)).bytes(b('0123456789abcdef')).finish();
    expect(decode(mech(CKM.AES_CBC_ENCRYPT_DATA, 2, cbc)).param).toEqual({ kind: 'encryptData', iv: Buffer.alloc(16, 7), data: b('0123456789abcdef') });
    const ecb = w().bytes(Buffer.alloc(0)).bytes(b('0123456789abcdef')).finish();
    expect(decode(mech(CKM.AES_ECB_ENCRYPT_DATA, 2, ecb)).param).toEqual({ kind: 'encryptData', iv: Buffer.alloc(0), data: b('0123456789abcdef') });
  });
  it('CK_PKCS5_PBKD2_PARAMS2', () => {
    const body = w().ulong(1).bytes(b('salt')).ulong(10000).ulong(2).bytes(Buffer.alloc(0)).bytes(b('pw')).finish();
    expect(decode(mech(CKM.PKCS5_PBKD2, 2, body)).param).toEqual({
      kind: 'pbkdf2',
      saltSource: 1,
      salt: b('salt'),
      iterations: 10000,
      prf: 2,
      prfData: Buffer.alloc(0),
      password: b('pw'),
    });
  });
  it('huge ulongs saturate instead of breaking the stream', () => {
    const body = w().bytes(b('iv')).ulong(0xffffffffffffffffn).bytes(b('')).ulong(128).finish();
    expect(decode(mech(CKM.AES_GCM, 2, body)).param).toMatchObject({ ivBits: Number.MAX_SAFE_INTEGER });
  });
  it('short, trailing or unexpected form-2 payloads are protocol errors', () => {
    const good = w().u8(0).bytes(b('ctx')).finish();
    expect(() => decode(mech(CKM.EDDSA, 2, good.subarray(0, good.length - 1)))).toThrow(ProtocolError);
    expect(() => decode(mech(CKM.EDDSA, 2, Buffer.concat([good, Buffer.of(0)])))).toThrow(ProtocolError);
    expect(() => decode(mech(CKM.AES_CBC_PAD, 2, good))).toThrow(ProtocolError);
  });
});

describe('form 1 flat parameters', () => {
  for (const l of [L64, L32, L64BE]) {
    const tag = `${l.ulongSize * 8}-bit ${l.littleEndian ? 'LE' : 'BE'}`;
    it(`CK_RSA_PKCS_PSS_PARAMS, ${tag}`, () => {
      for (const t of [CKM.RSA_PKCS_PSS, CKM.SHA256_RSA_PKCS_PSS, CKM.SHA3_512_RSA_PKCS_PSS]) {
        expect(decode(mech(t, 1, native(l, CKM.SHA256, CKG.MGF1_SHA256, 32)), l).param).toEqual({ kind: 'pss', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLen: 32 });
      }
    });
    it(`CK_AES_CTR_PARAMS, ${tag}`, () => {
      const p = Buffer.concat([native(l, 128), Buffer.alloc(16, 0xab)]);
      expect(decode(mech(CKM.AES_CTR, 1, p), l).param).toEqual({ kind: 'ctr', counterBits: 128, cb: Buffer.alloc(16, 0xab) });
    });
    it(`CK_MAC_GENERAL_PARAMS, ${tag}`, () => {
      for (const t of [CKM.SHA256_HMAC_GENERAL, CKM.AES_CMAC_GENERAL, CKM.SHA3_256_HMAC_GENERAL]) {
        expect(decode(mech(t, 1, native(l, 16)), l).param).toEqual({ kind: 'macGeneral', macLen: 16 });
      }
    });
  }
  it('IVs and unknown mechanisms stay bytes', () => {
    expect(decode(mech(CKM.AES_CBC_PAD, 1, Buffer.alloc(16, 1))).param).toEqual({ kind: 'bytes', data: Buffer.alloc(16, 1) });
    expect(decode(mech(CKM.VENDOR_DEFINED + 9, 1, b('x'))).param).toEqual({ kind: 'bytes', data: b('x') });
  });
  it('a flat structure of the wrong size is handed over as bytes', () => {
    expect(decode(mech(CKM.SHA256_RSA_PKCS_PSS, 1, Buffer.alloc(12))).param).toEqual({ kind: 'bytes', data: Buffer.alloc(12) });
    expect(decode(mech(CKM.AES_CTR, 1, Buffer.alloc(16))).param).toEqual({ kind: 'bytes', data: Buffer.alloc(16) });
    expect(decode(mech(CKM.SHA256_HMAC_GENERAL, 1, Buffer.alloc(4))).param).toEqual({ kind: 'bytes', data: Buffer.alloc(4) });
  });
});
