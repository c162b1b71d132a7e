// AES-CCM (NIST SP 800-38C; PKCS#11 3.0 CKM_AES_CCM with CK_CCM_PARAMS). CCM is not
// online: the formatted first block B0 carries the message length and the tag covers
// the whole message before any counter block is used for it, so both directions
// collect the input and run at the end. ulDataLen is the payload (plaintext) length;
// on decryption the input is the ciphertext followed by the ulMACLen-byte tag (an input
// of exactly ulDataLen bytes, tag included, is accepted too). Decryption releases no
// plaintext until the tag has verified.
import { createCipheriv, createDecipheriv, type CipherCCMTypes } from 'node:crypto';
import { CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { EMPTY, bufferedOperation, paramInvalid } from './common.js';
import type { Mechanism, OpKind, Operation } from './types.js';

/** SP 800-38C §A.1: Tlen ∈ {4, 6, …, 16} bytes; nonce 7..13 bytes (L = 15 − n). */
const CCM_TAG_BYTES = new Set([4, 6, 8, 10, 12, 14, 16]);

export interface CcmParams {
  nonce: Buffer;
  aad: Buffer;
  tagLen: number;
  dataLen: number;
}

export function ccmParams(mech: Mechanism): CcmParams {
  const p = mech.param;
  if (p.kind !== 'ccm') throw paramInvalid('expected CK_CCM_PARAMS');
  if (p.nonce.length < 7 || p.nonce.length > 13) throw paramInvalid('CCM nonce must be 7 to 13 bytes');
  if (!CCM_TAG_BYTES.has(p.macLen)) throw paramInvalid('CCM MAC length must be 4, 6, 8, 10, 12, 14 or 16');
  // The length field of B0 has L = 15 − n bytes.
  const lBits = 8 * (15 - p.nonce.length);
  if (lBits < 53 && p.dataLen >= 2 ** lBits) throw paramInvalid('ulDataLen does not fit the CCM length field for this nonce');
  return { nonce: p.nonce, aad: p.aad, tagLen: p.macLen, dataLen: p.dataLen };
}

export function ccmEncrypt(key: Buffer, p: CcmParams, data: Buffer): Buffer {
  const c = createCipheriv(`aes-${key.length * 8}-ccm` as CipherCCMTypes, key, p.nonce, { authTagLength: p.tagLen });
  c.setAAD(p.aad, { plaintextLength: data.length });
  return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
}

/** undefined when the tag does not verify. */
export function ccmDecrypt(key: Buffer, p: CcmParams, ct: Buffer, tag: Buffer): Buffer | undefined {
  const d = createDecipheriv(`aes-${key.length * 8}-ccm` as CipherCCMTypes, key, p.nonce, { authTagLength: p.tagLen });
  d.setAuthTag(tag);
  d.setAAD(p.aad, { plaintextLength: ct.length });
  let out: Buffer = EMPTY;
  try {
    out = d.update(ct);
    d.final();
    return out;
  } catch {
    out.fill(0);
    return undefined;
  }
}

export function ccmOp(kind: OpKind, mech: Mechanism, key: Buffer): Operation {
  const p = ccmParams(mech);
  if (kind === 'encrypt') {
    return bufferedOperation(async (data) => {
      if (data.length !== p.dataLen) throw new CkError(CKR.DATA_LEN_RANGE, 'CCM input length differs from ulDataLen');
      return ccmEncrypt(key, p, data);
    });
  }
  return bufferedOperation(async (data) => {
    let payload: number;
    if (data.length === p.dataLen + p.tagLen) payload = p.dataLen;
    else if (data.length === p.dataLen && p.dataLen >= p.tagLen) payload = p.dataLen - p.tagLen;
    else throw new CkError(CKR.ENCRYPTED_DATA_LEN_RANGE, 'CCM input must be ulDataLen bytes of ciphertext plus the MAC');
    const out = ccmDecrypt(key, p, data.subarray(0, payload), data.subarray(payload));
    if (!out) throw new CkError(CKR.ENCRYPTED_DATA_INVALID);
    return out;
  });
}
