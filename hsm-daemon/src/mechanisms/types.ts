// The contract between the dispatcher/object layer and the mechanism families.
// A family (aes.ts, rsa.ts, ec.ts, digest.ts, hmac.ts, …) declares what it offers
// and creates operations; the dispatcher never names an algorithm. Families never
// see sessions, handles or the wire: only decoded parameters and key attributes.

/**
 * Attribute values in canonical form: CK_ULONG as 8-byte little-endian, CK_BBOOL as
 * one byte (0/1), CK_DATE as 8 ASCII bytes, byte arrays as given. The wire layer
 * converts a client's native layout to and from this form.
 */
export type AttrMap = Map<number, Buffer>;

/** Decoded mechanism parameters. `raw` is a form-1 native buffer already converted
 * to canonical layout where it is a known flat structure (see params.ts). */
export type MechanismParam =
  | { kind: 'none' }
  | { kind: 'bytes'; data: Buffer } // IVs, KW IVs, derivation strings
  | { kind: 'gcm'; iv: Buffer; ivBits: number; aad: Buffer; tagBits: number }
  | { kind: 'ccm'; dataLen: number; nonce: Buffer; aad: Buffer; macLen: number }
  | { kind: 'ctr'; counterBits: number; cb: Buffer }
  | { kind: 'oaep'; hashAlg: number; mgf: number; source: number; sourceData: Buffer }
  | { kind: 'pss'; hashAlg: number; mgf: number; saltLen: number }
  | { kind: 'macGeneral'; macLen: number }
  | { kind: 'ecdh'; kdf: number; sharedData: Buffer; publicData: Buffer }
  | {
      kind: 'hkdf';
      extract: boolean;
      expand: boolean;
      prf: number;
      saltType: number;
      salt: Buffer;
      /** hSaltKey as the caller sent it; families never look it up. */
      saltKey: number;
      /** CKF_HKDF_SALT_KEY: the salt key object, resolved by the dispatcher (C_DeriveKey)
       * from saltKey after the handle, visibility and CKA_DERIVE checks. */
      saltKeyRef?: KeyRef;
      info: Buffer;
    }
  | { kind: 'eddsa'; phFlag: boolean; context: Buffer }
  | { kind: 'encryptData'; iv: Buffer; data: Buffer }
  | { kind: 'pbkdf2'; saltSource: number; salt: Buffer; iterations: number; prf: number; prfData: Buffer; password: Buffer };

export interface Mechanism {
  type: number;
  param: MechanismParam;
}

export interface MechanismInfo {
  type: number;
  /** In the unit PKCS#11 prescribes for this mechanism (bits or bytes). */
  minKeySize: number;
  maxKeySize: number;
  /** CKF_ENCRYPT | CKF_SIGN | … | CKF_HW=0 | CKF_EC_* as applicable. */
  flags: number;
}

/** What a family is told about a key: its attributes, plus a per-object cache slot
 * where the family may keep a parsed node:crypto KeyObject. */
export interface KeyRef {
  readonly handle: number;
  readonly attrs: AttrMap;
  /** Family-private memo (e.g. a crypto.KeyObject); cleared when attributes change. */
  cache: unknown;
}

export type OpKind = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'digest';

/** A multi-part operation. Any rejected promise terminates the operation
 * (the dispatcher drops it), as PKCS#11 prescribes for errors other than
 * CKR_BUFFER_TOO_SMALL (which the proxy module handles without reaching us). */
export interface Operation {
  /** Single-part: the whole input at once. For verify, `signature` is given. */
  oneShot(data: Buffer, signature?: Buffer): Promise<Buffer>;
  update(data: Buffer): Promise<Buffer>;
  /** For verify, `signature` is given; resolve with an empty buffer on success,
   * reject with CkError(CKR_SIGNATURE_INVALID | CKR_SIGNATURE_LEN_RANGE) otherwise. */
  final(signature?: Buffer): Promise<Buffer>;
  /** Digest only: C_DigestKey feeds a secret key's value. */
  updateKey?(key: KeyRef): Promise<void>;
}

export interface GeneratedKey {
  /** Attributes the family sets (CKA_VALUE, CKA_VALUE_LEN, CKA_KEY_TYPE, …). */
  attrs: AttrMap;
}

export interface MechanismFamily {
  readonly name: string;
  mechanisms(): MechanismInfo[];
  /** Throws CkError(CKR_MECHANISM_INVALID | CKR_MECHANISM_PARAM_INVALID |
   * CKR_KEY_TYPE_INCONSISTENT | CKR_KEY_FUNCTION_NOT_PERMITTED | CKR_KEY_SIZE_RANGE). */
  createOperation?(kind: OpKind, mech: Mechanism, key: KeyRef | null): Operation;
  /** C_GenerateKey: template is the caller's validated template. */
  generateKey?(mech: Mechanism, template: AttrMap): Promise<GeneratedKey>;
  /** C_GenerateKeyPair; the family runs its pairwise consistency test before resolving. */
  generateKeyPair?(mech: Mechanism, publicTemplate: AttrMap, privateTemplate: AttrMap): Promise<{ publicKey: AttrMap; privateKey: AttrMap }>;
  wrap?(mech: Mechanism, wrappingKey: KeyRef, key: KeyRef): Promise<Buffer>;
  /** Returns the value attributes of the unwrapped key (CKA_VALUE for secrets, RSA/EC
   * components for private keys), given the target class and key type from the template. */
  unwrap?(mech: Mechanism, unwrappingKey: KeyRef, wrapped: Buffer, template: AttrMap): Promise<AttrMap>;
  derive?(mech: Mechanism, baseKey: KeyRef, template: AttrMap): Promise<AttrMap>;
}
