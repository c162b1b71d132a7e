// Mechanism parameters as they arrive on the wire (protocol.md "mechanism" and
// "Mechanism parameters (form 2)") → MechanismParam. Form 2 is marshalled by our own
// module, so a payload that does not decode is a protocol error; form 1 is whatever
// the application put in memory, so a flat structure of the wrong size is handed to the
// mechanism family as plain bytes, for it to answer CKR_MECHANISM_PARAM_INVALID.
import type { MechanismParam } from '../mechanisms/types.js';
import { CKM } from '../pkcs11/constants.generated.js';
import { mechanismName } from '../pkcs11/names.js';
import type { ClientLayout, RequestReader } from './contract.js';
import { ProtocolError } from './errors.js';
import { readNativeUlong } from './layout.js';

export const FORM_NONE = 0;
export const FORM_FLAT = 1;
export const FORM_STRUCT = 2;

const AES_BLOCK = 16;

function mechanismsNamed(pred: (name: string) => boolean): Set<number> {
  return new Set(Object.entries(CKM).filter(([name]) => pred(name)).map(([, v]) => v));
}

// Derived from the generated table so that every hash variant (SHA-3 included) is covered.
const PSS = mechanismsNamed((n) => n.endsWith('RSA_PKCS_PSS'));
// CK_MAC_GENERAL_PARAMS is shared by HMAC_GENERAL, CMAC_GENERAL and the block-cipher MAC_GENERAL.
const MAC_GENERAL = mechanismsNamed((n) => n.endsWith('MAC_GENERAL'));
// CK_CAMELLIA_CTR_PARAMS has CK_AES_CTR_PARAMS's layout.
const CTR = new Set<number>([CKM.AES_CTR, CKM.CAMELLIA_CTR]);

/** Form 1: a flat parameter in the client's native layout. */
export function decodeFlat(type: number, data: Buffer, layout: ClientLayout): MechanismParam {
  const u = layout.ulongSize;
  if (PSS.has(type) && data.length === 3 * u) {
    return {
      kind: 'pss',
      hashAlg: readNativeUlong(data, 0, layout),
      mgf: readNativeUlong(data, u, layout),
      saltLen: readNativeUlong(data, 2 * u, layout),
    };
  }
  if (CTR.has(type) && data.length === u + AES_BLOCK) {
    return { kind: 'ctr', counterBits: readNativeUlong(data, 0, layout), cb: Buffer.from(data.subarray(u)) };
  }
  if (MAC_GENERAL.has(type) && data.length === u) {
    return { kind: 'macGeneral', macLen: readNativeUlong(data, 0, layout) };
  }
  return { kind: 'bytes', data: Buffer.from(data) };
}

const bool = (b: number): boolean => b !== 0;

/** Form 2: a structure our module marshalled field by field. `r` reads only the
 * structure's bytes; the caller checks that all of them were consumed. */
export function decodeStruct(type: number, r: RequestReader): MechanismParam {
  // Parameter values are the application's, faithfully copied: an absurd ulong is the
  // family's to reject (allowHuge), not a broken stream.
  const ul = () => r.ulong(true);
  const by = () => Buffer.from(r.bytes());
  switch (type) {
    case CKM.AES_GCM: {
      const iv = by();
      const ivBits = ul();
      const aad = by();
      return { kind: 'gcm', iv, ivBits, aad, tagBits: ul() };
    }
    case CKM.AES_CCM: {
      const dataLen = ul();
      const nonce = by();
      const aad = by();
      return { kind: 'ccm', dataLen, nonce, aad, macLen: ul() };
    }
    case CKM.RSA_PKCS_OAEP: {
      const hashAlg = ul();
      const mgf = ul();
      const source = ul();
      return { kind: 'oaep', hashAlg, mgf, source, sourceData: by() };
    }
    case CKM.ECDH1_DERIVE:
    case CKM.ECDH1_COFACTOR_DERIVE: {
      const kdf = ul();
      const sharedData = by();
      return { kind: 'ecdh', kdf, sharedData, publicData: by() };
    }
    case CKM.HKDF_DERIVE:
    case CKM.HKDF_DATA: {
      const extract = bool(r.u8());
      const expand = bool(r.u8());
      const prf = ul();
      const saltType = ul();
      const salt = by();
      const saltKey = ul();
      return { kind: 'hkdf', extract, expand, prf, saltType, salt, saltKey, info: by() };
    }
    case CKM.EDDSA: {
      const phFlag = bool(r.u8());
      return { kind: 'eddsa', phFlag, context: by() };
    }
    case CKM.AES_CBC_ENCRYPT_DATA:
    case CKM.AES_ECB_ENCRYPT_DATA: {
      const iv = by();
      return { kind: 'encryptData', iv, data: by() };
    }
    case CKM.PKCS5_PBKD2: {
      const saltSource = ul();
      const salt = by();
      const iterations = ul();
      const prf = ul();
      const prfData = by();
      return { kind: 'pbkdf2', saltSource, salt, iterations, prf, prfData, password: by() };
    }
    default:
      throw new ProtocolError(`form-2 parameter for ${mechanismName(type)}, which has no marshalled structure`);
  }
}
