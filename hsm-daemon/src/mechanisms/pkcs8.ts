// The PKCS#8 form of private keys that travel wrapped: PKCS#11 defines the plaintext of a
// wrapped private key as its PKCS#8 PrivateKeyInfo (2.40 §2.1.x "wrapping/unwrapping private
// keys"). C_WrapKey encodes a private key object here; C_UnwrapKey hands the decrypted DER
// here and gets the PKCS#11 components back.
import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CKA, CKK, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { keyTypeOf, optUlong } from './attrs.js';
import { DER, derRead } from './common.js';
import { CURVES, bytesToInt, intToBytes } from './ecmath.js';
import { ED25519_OID, X25519_OID, curvePrivateKeyObject, isEd25519Params, isX25519Params } from './ec.js';
import { failed, fromB64u } from './keys.js';
import { rsaPrivateKeyObject } from './rsa.js';
import type { AttrMap, KeyRef } from './types.js';

const invalid = (why: string): CkError => new CkError(CKR.WRAPPED_KEY_INVALID, why);

/** The PrivateKeyInfo SEQUENCE alone. Block-cipher wraps (CBC, unpadded KW) fill the
 * last block with zero bytes after it; anything else after it is not a PKCS#8 blob. */
function privateKeyInfo(plain: Buffer): Buffer {
  const seq = derRead(plain, DER.SEQUENCE);
  if (!seq) throw invalid('unwrapped private key is not a PKCS#8 PrivateKeyInfo');
  if (seq.rest.length > 16 || seq.rest.some((b) => b !== 0)) throw invalid('unexpected bytes after the PKCS#8 PrivateKeyInfo');
  return plain.subarray(0, plain.length - seq.rest.length);
}

function parse(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    // OpenSSL's message could quote the blob; say only what kind of failure it was.
    throw invalid('unwrapped bytes do not decode as a PKCS#8 private key');
  }
}

function wantType(template: AttrMap, got: number, what: string): void {
  const keyType = optUlong(template, CKA.KEY_TYPE);
  if (keyType !== got) throw new CkError(CKR.TEMPLATE_INCONSISTENT, `the wrapped key is ${what}; CKA_KEY_TYPE in the template says otherwise`);
}

/** CKA_EC_PARAMS for an Edwards/Montgomery key: the caller's form if it names the right
 * curve (both the OID and the PKCS#11 3.0 name are accepted), else the OID. */
function curve25519Params(template: AttrMap, ok: (p: Buffer | undefined) => boolean, oid: Buffer): Buffer {
  const given = template.get(CKA.EC_PARAMS);
  if (given === undefined) return Buffer.from(oid);
  if (!ok(given)) throw new CkError(CKR.TEMPLATE_INCONSISTENT, 'CKA_EC_PARAMS names another curve than the wrapped key');
  return Buffer.from(given);
}

/**
 * Decodes the PKCS#8 plaintext of an unwrapped private key into the value attributes of
 * a CKO_PRIVATE_KEY of the template's key type. The caller zeroes `plain`.
 */
export function privateKeyFromPkcs8(plain: Buffer, template: AttrMap): AttrMap {
  const key = parse(privateKeyInfo(plain));
  const jwk = key.export({ format: 'jwk' }) as JsonWebKey;
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      wantType(template, CKK.RSA, 'an RSA key');
      return new Map([
        [CKA.MODULUS, fromB64u(jwk.n)],
        [CKA.PUBLIC_EXPONENT, fromB64u(jwk.e)],
        [CKA.PRIVATE_EXPONENT, fromB64u(jwk.d)],
        [CKA.PRIME_1, fromB64u(jwk.p)],
        [CKA.PRIME_2, fromB64u(jwk.q)],
        [CKA.EXPONENT_1, fromB64u(jwk.dp)],
        [CKA.EXPONENT_2, fromB64u(jwk.dq)],
        [CKA.COEFFICIENT, fromB64u(jwk.qi)],
      ]);
    }
    case 'ec': {
      wantType(template, CKK.EC, 'an EC key');
      const c = CURVES.find((x) => x.jwk === jwk.crv);
      if (!c) throw new CkError(CKR.CURVE_NOT_SUPPORTED, 'the wrapped EC key is on a curve this token does not support');
      const d = fromB64u(jwk.d);
      const value = intToBytes(bytesToInt(d), c.size);
      d.fill(0);
      return new Map([
        [CKA.EC_PARAMS, Buffer.from(c.oid)],
        [CKA.VALUE, value],
      ]);
    }
    case 'ed25519':
      wantType(template, CKK.EC_EDWARDS, 'an Ed25519 key');
      return new Map([
        [CKA.EC_PARAMS, curve25519Params(template, isEd25519Params, ED25519_OID)],
        [CKA.VALUE, fromB64u(jwk.d)],
      ]);
    case 'x25519':
      wantType(template, CKK.EC_MONTGOMERY, 'an X25519 key');
      return new Map([
        [CKA.EC_PARAMS, curve25519Params(template, isX25519Params, X25519_OID)],
        [CKA.VALUE, fromB64u(jwk.d)],
      ]);
    default:
      throw new CkError(CKR.TEMPLATE_INCONSISTENT, `the wrapped key's algorithm (${key.asymmetricKeyType ?? 'unknown'}) is not supported here`);
  }
}

/**
 * The PKCS#8 PrivateKeyInfo (DER) of a private key object, the plaintext C_WrapKey encrypts:
 * RSA as RSAPrivateKey with every CRT component, EC with the named curve in the
 * AlgorithmIdentifier and an ECPrivateKey without [0] parameters (OpenSSL's encoding, as
 * PKCS#11 asks), Ed25519/X25519 in the RFC 8410 form. OpenSSL's DER is a function of the
 * key alone, so a length query and the wrap that follows agree. The caller zeroes the result.
 */
export function pkcs8FromPrivateKey(key: KeyRef): Buffer {
  let node: KeyObject;
  try {
    switch (keyTypeOf(key)) {
      case CKK.RSA:
        node = rsaPrivateKeyObject(key);
        break;
      case CKK.EC:
      case CKK.EC_EDWARDS:
      case CKK.EC_MONTGOMERY:
        node = curvePrivateKeyObject(key);
        break;
      default:
        throw new CkError(CKR.KEY_NOT_WRAPPABLE, 'this token has no PKCS#8 encoding for the key type of this private key');
    }
  } catch (e) {
    // Missing or contradictory components: PKCS#11 says such a key must not be prepared
    // for wrapping (an RSA key without its CRT values, for one).
    if (e instanceof CkError && e.rv === CKR.KEY_TYPE_INCONSISTENT) throw new CkError(CKR.KEY_NOT_WRAPPABLE, 'the private key object does not hold a complete key');
    throw e;
  }
  try {
    return node.export({ type: 'pkcs8', format: 'der' });
  } catch {
    throw failed();
  }
}
