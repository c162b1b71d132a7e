// C_UnwrapKey of private keys through the AES family: the wrapped plaintext is PKCS#8
// (wrapped here with OpenSSL's RFC 5649 / RFC 3394 ciphers, independently of the family),
// and the unwrapped components must be the original key's and sign for its public key.
import { createCipheriv, createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesFamily } from '../../../hsm-daemon/src/mechanisms/aes.js';
import { EcFamily } from '../../../hsm-daemon/src/mechanisms/ec.js';
import { RsaFamily } from '../../../hsm-daemon/src/mechanisms/rsa.js';
import { ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { CKA, CKK, CKM, CKO, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { AttrMap } from '../../../hsm-daemon/src/mechanisms/types.js';
import { expectRv, mech, objectFrom, secretKey } from './helpers.js';

const aes = new AesFamily();
const KEK = Buffer.alloc(32, 0x5a);
const kek = secretKey(KEK);
const MSG = Buffer.from('migrated key signs');

function wrapPkcs8(key: KeyObject, padded = true, extra: Buffer = Buffer.alloc(0)): Buffer {
  const der = Buffer.concat([key.export({ format: 'der', type: 'pkcs8' }), extra]);
  const c = createCipheriv(padded ? 'id-aes256-wrap-pad' : 'id-aes256-wrap', KEK, padded ? Buffer.from('a65959a6', 'hex') : Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
  return Buffer.concat([c.update(der), c.final()]);
}

const tpl = (keyType: number, more: Array<[number, Buffer]> = []): AttrMap =>
  new Map([[CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.KEY_TYPE, ulongAttr(keyType)], ...more]);

describe('AES unwrap of PKCS#8 private keys', () => {
  it('RSA: components equal the original, and the key signs for its public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const got = await aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, wrapPkcs8(privateKey), tpl(CKK.RSA));
    const j = privateKey.export({ format: 'jwk' });
    expect(got.get(CKA.MODULUS)!.toString('base64url')).toBe(j.n);
    expect(got.get(CKA.PRIVATE_EXPONENT)!.toString('base64url')).toBe(j.d);
    expect(got.get(CKA.COEFFICIENT)!.toString('base64url')).toBe(j.qi);
    const obj = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.RSA)], ...got]), CKO.PRIVATE_KEY);
    const sig = await new RsaFamily().createOperation('sign', mech(CKM.SHA256_RSA_PKCS), obj).oneShot(MSG);
    expect(verify('sha256', MSG, publicKey, sig)).toBe(true);
  });

  it('EC P-256 (and P-384 through the unpadded KW with zero fill): the key signs for its public key', async () => {
    for (const [curve, oid] of [
      ['prime256v1', '06082a8648ce3d030107'],
      ['secp384r1', '06052b81040022'],
    ] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const der = privateKey.export({ format: 'der', type: 'pkcs8' });
      const fill = Buffer.alloc((8 - (der.length % 8)) % 8);
      const kw = curve === 'secp384r1';
      const got = await aes.unwrap(mech(kw ? CKM.AES_KEY_WRAP : CKM.AES_KEY_WRAP_PAD), kek, wrapPkcs8(privateKey, !kw, kw ? fill : undefined), tpl(CKK.EC));
      expect(got.get(CKA.EC_PARAMS)!.toString('hex')).toBe(oid);
      const obj = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.EC)], ...got]), CKO.PRIVATE_KEY);
      const sig = await new EcFamily().createOperation('sign', mech(CKM.ECDSA_SHA256), obj).oneShot(MSG);
      expect(verify('sha256', MSG, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    }
  });

  it('Ed25519: the value is the RFC 8032 seed and CKA_EC_PARAMS keeps the caller’s curve name', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const name = Buffer.from('130c656477617264733235353139', 'hex'); // PrintableString "edwards25519"
    const got = await aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, wrapPkcs8(privateKey), tpl(CKK.EC_EDWARDS, [[CKA.EC_PARAMS, name]]));
    expect(got.get(CKA.EC_PARAMS)).toEqual(name);
    expect(got.get(CKA.VALUE)!.toString('base64url')).toBe(privateKey.export({ format: 'jwk' }).d);
    expect(createPublicKey(privateKey).export({ format: 'jwk' }).x).toBe(publicKey.export({ format: 'jwk' }).x);
  });

  it('a key type that contradicts the wrapped key is TEMPLATE_INCONSISTENT', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await expectRv(() => aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, wrapPkcs8(privateKey), tpl(CKK.RSA)), CKR.TEMPLATE_INCONSISTENT);
  });

  it('a secret value unwrapped as a private key is WRAPPED_KEY_INVALID; a corrupted blob too', async () => {
    const c = createCipheriv('id-aes256-wrap-pad', KEK, Buffer.from('a65959a6', 'hex'));
    const notPkcs8 = Buffer.concat([c.update(Buffer.alloc(32, 7)), c.final()]);
    await expectRv(() => aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, notPkcs8, tpl(CKK.EC)), CKR.WRAPPED_KEY_INVALID);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const w = wrapPkcs8(privateKey);
    w[3]! ^= 1;
    await expectRv(() => aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, w, tpl(CKK.EC)), CKR.WRAPPED_KEY_INVALID);
    // Non-zero bytes after the PrivateKeyInfo are not block fill.
    await expectRv(() => aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, wrapPkcs8(privateKey, true, Buffer.from([1])), tpl(CKK.EC)), CKR.WRAPPED_KEY_INVALID);
  });

  it('secret-key unwrap is unchanged', async () => {
    const c = createCipheriv('id-aes256-wrap-pad', KEK, Buffer.from('a65959a6', 'hex'));
    const w = Buffer.concat([c.update(Buffer.alloc(32, 9)), c.final()]);
    const got = await aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, w, new Map([[CKA.CLASS, ulongAttr(CKO.SECRET_KEY)]]));
    expect(got.get(CKA.VALUE)).toEqual(Buffer.alloc(32, 9));
  });
});
