// C_WrapKey of private keys through the AES family: the plaintext is the key's PKCS#8
// PrivateKeyInfo. Each wrap is opened here with OpenSSL's own RFC 5649 cipher (independently
// of the family) and parsed, then unwrapped back through the family: the unwrapped key must
// sign for the ORIGINAL public key. Also: same key → same bytes, the plaintext is zeroed,
// RFC 3394 takes only whole 8-byte blocks, incomplete keys are not wrappable.
import { createDecipheriv, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesFamily } from '../../../hsm-daemon/src/mechanisms/aes.js';
import { EcFamily } from '../../../hsm-daemon/src/mechanisms/ec.js';
import { RsaFamily } from '../../../hsm-daemon/src/mechanisms/rsa.js';
import { ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { DER, derRead } from '../../../hsm-daemon/src/mechanisms/common.js';
import { pkcs8FromPrivateKey } from '../../../hsm-daemon/src/mechanisms/pkcs8.js';
import { CKA, CKK, CKM, CKO, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { AttrMap, KeyRef, Mechanism, MechanismFamily, OpKind, Operation } from '../../../hsm-daemon/src/mechanisms/types.js';
import { bytes, expectRv, hex, mech, objectFrom, secretKey } from './helpers.js';

const aes = new AesFamily();
const rsa = new RsaFamily();
const ec = new EcFamily();
const KEK = Buffer.alloc(32, 0x3c);
const kek = secretKey(KEK);
const MSG = Buffer.from('a key that left the token still signs');

interface Case {
  name: string;
  keyType: number;
  family: MechanismFamily;
  gen: Mechanism;
  pubTemplate: AttrMap;
  sign: number;
  nodeType: string;
}

const CASES: Case[] = [
  { name: 'RSA-2048', keyType: CKK.RSA, family: rsa, gen: mech(CKM.RSA_PKCS_KEY_PAIR_GEN), pubTemplate: new Map([[CKA.MODULUS_BITS, ulongAttr(2048)]]), sign: CKM.SHA256_RSA_PKCS, nodeType: 'rsa' },
  { name: 'P-256', keyType: CKK.EC, family: ec, gen: mech(CKM.EC_KEY_PAIR_GEN), pubTemplate: new Map([[CKA.EC_PARAMS, hex('06082a8648ce3d030107')]]), sign: CKM.ECDSA_SHA256, nodeType: 'ec' },
  { name: 'P-384', keyType: CKK.EC, family: ec, gen: mech(CKM.EC_KEY_PAIR_GEN), pubTemplate: new Map([[CKA.EC_PARAMS, hex('06052b81040022')]]), sign: CKM.ECDSA_SHA384, nodeType: 'ec' },
  { name: 'Ed25519', keyType: CKK.EC_EDWARDS, family: ec, gen: mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), pubTemplate: new Map([[CKA.EC_PARAMS, hex('06032b6570')]]), sign: CKM.EDDSA, nodeType: 'ed25519' },
];

async function pair(c: Case): Promise<{ priv: KeyRef; pub: KeyRef }> {
  const withType = (m: AttrMap): AttrMap => new Map([[CKA.KEY_TYPE, ulongAttr(c.keyType)], ...m]);
  const { publicKey, privateKey } = await c.family.generateKeyPair!(c.gen, c.pubTemplate, new Map());
  return { priv: objectFrom(withType(privateKey), CKO.PRIVATE_KEY), pub: objectFrom(withType(publicKey), CKO.PUBLIC_KEY) };
}

/** RFC 5649 unwrap by OpenSSL directly, not through the family. */
function openKwp(wrapped: Buffer): Buffer {
  const d = createDecipheriv('id-aes256-wrap-pad', KEK, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([d.update(wrapped), d.final()]);
}

const privTemplate = (keyType: number): AttrMap => new Map([[CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.KEY_TYPE, ulongAttr(keyType)]]);

describe('AES wrap of private keys (PKCS#8 plaintext)', () => {
  for (const c of CASES) {
    it(`${c.name}: wrap → unwrap; the unwrapped key signs and the original public key verifies`, async () => {
      const { priv, pub } = await pair(c);
      const wrapped = await aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, priv);

      const plain = openKwp(wrapped);
      const node = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
      expect(node.asymmetricKeyType).toBe(c.nodeType);
      expect(plain.length).toBe(wrapped.length - 8 - ((8 - (plain.length % 8)) % 8));

      const values = await aes.unwrap(mech(CKM.AES_KEY_WRAP_PAD), kek, wrapped, privTemplate(c.keyType));
      const back = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(c.keyType)], ...values]), CKO.PRIVATE_KEY);
      for (const [type, value] of values) expect(value, `attribute 0x${type.toString(16)}`).toEqual(priv.attrs.get(type) ?? value);
      const sig = await c.family.createOperation!('sign', mech(c.sign), back).oneShot(MSG);
      await expect(c.family.createOperation!('verify', mech(c.sign), pub).oneShot(MSG, sig)).resolves.toHaveLength(0);
    });
  }

  it('the same key wraps to the same bytes (a length query and the wrap agree)', async () => {
    for (const c of CASES) {
      const { priv } = await pair(c);
      const a = await aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, priv);
      // A fresh KeyRef (no cached node key) of the same attributes: same DER.
      const b = await aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, objectFrom(priv.attrs, CKO.PRIVATE_KEY));
      expect(b.equals(a), c.name).toBe(true);
    }
  });

  it('RSA: RSAPrivateKey carries all nine integers; EC: curve OID in the AlgorithmIdentifier, no [0] in ECPrivateKey', async () => {
    const r = await pair(CASES[0]!);
    const der = pkcs8FromPrivateKey(r.priv);
    const info = derRead(der, DER.SEQUENCE)!;
    expect(info.rest).toHaveLength(0);
    const version = derRead(info.body, DER.INTEGER)!;
    const alg = derRead(version.rest, DER.SEQUENCE)!;
    expect(alg.body.toString('hex')).toBe('06092a864886f70d0101010500'); // rsaEncryption, NULL
    const inner = derRead(derRead(alg.rest, DER.OCTET_STRING)!.body, DER.SEQUENCE)!;
    let rest = inner.body;
    let ints = 0;
    while (rest.length) {
      const i = derRead(rest, DER.INTEGER)!;
      rest = i.rest;
      ints++;
    }
    expect(ints).toBe(9); // version, n, e, d, p, q, dp, dq, qi

    const e = await pair(CASES[1]!);
    const ecDer = pkcs8FromPrivateKey(e.priv);
    const ecInfo = derRead(ecDer, DER.SEQUENCE)!;
    const ecAlg = derRead(derRead(ecInfo.body, DER.INTEGER)!.rest, DER.SEQUENCE)!;
    expect(ecAlg.body.toString('hex')).toBe('06072a8648ce3d0201' + '06082a8648ce3d030107'); // id-ecPublicKey, prime256v1
    const ecPriv = derRead(derRead(ecAlg.rest, DER.OCTET_STRING)!.body, DER.SEQUENCE)!;
    const afterScalar = derRead(derRead(ecPriv.body, DER.INTEGER)!.rest, DER.OCTET_STRING)!;
    expect(afterScalar.body).toEqual(e.priv.attrs.get(CKA.VALUE));
    expect(afterScalar.rest[0]).not.toBe(0xa0);
  });

  it('the PKCS#8 plaintext handed to the cipher is zeroed once the wrap is done', async () => {
    const seen: Buffer[] = [];
    class Spy extends AesFamily {
      override createOperation(kind: OpKind, m: Mechanism, key: KeyRef | null): Operation {
        const real = super.createOperation(kind, m, key);
        return { ...real, oneShot: (data, s) => (seen.push(data), real.oneShot(data, s)) };
      }
    }
    const { priv } = await pair(CASES[1]!);
    const wrapped = await new Spy().wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, priv);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.length).toBe(openKwp(wrapped).length);
    expect(seen[0]!.every((b) => b === 0)).toBe(true);
    // …also when the cipher refuses the length.
    seen.length = 0;
    await expectRv(() => new Spy().wrap(mech(CKM.AES_KEY_WRAP), kek, priv), CKR.KEY_SIZE_RANGE);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.every((b) => b === 0)).toBe(true);
  });

  it('CKM_AES_KEY_WRAP (RFC 3394): no zero fill — a PKCS#8 length off the 8-byte grid is KEY_SIZE_RANGE, an aligned one round-trips', async () => {
    const p256 = await pair(CASES[1]!);
    expect(pkcs8FromPrivateKey(p256.priv).length % 8).not.toBe(0); // 138 bytes
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP), kek, p256.priv), CKR.KEY_SIZE_RANGE);

    const ed = await pair(CASES[3]!);
    const edDer = pkcs8FromPrivateKey(ed.priv);
    expect(edDer.length).toBe(48);
    const wrapped = await aes.wrap(mech(CKM.AES_KEY_WRAP), kek, ed.priv);
    expect(wrapped.length).toBe(56);
    const d = createDecipheriv('id-aes256-wrap', KEK, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
    expect(Buffer.concat([d.update(wrapped), d.final()])).toEqual(edDer);
    const values = await aes.unwrap(mech(CKM.AES_KEY_WRAP), kek, wrapped, privTemplate(CKK.EC_EDWARDS));
    expect(values.get(CKA.VALUE)).toEqual(ed.priv.attrs.get(CKA.VALUE));
  });

  it('CKM_AES_CBC_PAD wraps a private key too (PKCS#7 padding), and unwraps', async () => {
    const { priv, pub } = await pair(CASES[2]!);
    const m = mech(CKM.AES_CBC_PAD, bytes(Buffer.alloc(16, 1)));
    const wrapped = await aes.wrap(m, kek, priv);
    expect(wrapped.length % 16).toBe(0);
    const values = await aes.unwrap(m, kek, wrapped, privTemplate(CKK.EC));
    const back = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.EC)], ...values]), CKO.PRIVATE_KEY);
    const sig = await ec.createOperation('sign', mech(CKM.ECDSA_SHA384), back).oneShot(MSG);
    await expect(ec.createOperation('verify', mech(CKM.ECDSA_SHA384), pub).oneShot(MSG, sig)).resolves.toHaveLength(0);
  });

  it('X25519 wraps in the RFC 8410 form', async () => {
    const { privateKey } = await ec.generateKeyPair(mech(CKM.EC_MONTGOMERY_KEY_PAIR_GEN), new Map([[CKA.EC_PARAMS, hex('06032b656e')]]), new Map());
    const priv = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.EC_MONTGOMERY)], ...privateKey]), CKO.PRIVATE_KEY);
    const plain = openKwp(await aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, priv));
    expect(plain.subarray(0, 16).toString('hex')).toBe('302e020100300506032b656e04220420');
    expect(plain.subarray(16)).toEqual(priv.attrs.get(CKA.VALUE));
  });

  it('an RSA private key object without its CRT components is KEY_NOT_WRAPPABLE; a wrong wrapping key is refused before encoding', async () => {
    const { priv } = await pair(CASES[0]!);
    const partial = new Map(priv.attrs);
    partial.delete(CKA.PRIME_1);
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, objectFrom(partial, CKO.PRIVATE_KEY)), CKR.KEY_NOT_WRAPPABLE);
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), secretKey(Buffer.alloc(32), CKK.GENERIC_SECRET), priv), CKR.WRAPPING_KEY_TYPE_INCONSISTENT);
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), secretKey(Buffer.alloc(20)), priv), CKR.WRAPPING_KEY_SIZE_RANGE);
  });

  it('a key type without a PKCS#8 form here is KEY_NOT_WRAPPABLE', async () => {
    const dsa = objectFrom(new Map([[CKA.KEY_TYPE, ulongAttr(CKK.DSA)], [CKA.VALUE, Buffer.alloc(20, 1)]]), CKO.PRIVATE_KEY);
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP_PAD), kek, dsa), CKR.KEY_NOT_WRAPPABLE);
  });

  it('secret-key wrap is unchanged', async () => {
    const w = await aes.wrap(mech(CKM.AES_KEY_WRAP), kek, secretKey(Buffer.alloc(16, 4)));
    const d = createDecipheriv('id-aes256-wrap', KEK, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
    expect(Buffer.concat([d.update(w), d.final()])).toEqual(Buffer.alloc(16, 4));
    await expectRv(() => aes.wrap(mech(CKM.AES_KEY_WRAP), kek, secretKey(Buffer.alloc(20, 4), CKK.GENERIC_SECRET)), CKR.KEY_SIZE_RANGE);
  });
});
