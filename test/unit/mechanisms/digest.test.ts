import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestFamily } from '../../../hsm-daemon/src/mechanisms/digest.js';
import { CKA, CKK, CKM, CKO, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import { ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { bytes, expectRv, hex, keyRef, mech, multiPart, secretKey } from './helpers.js';

const fam = new DigestFamily();

// FIPS 180-4 / FIPS 202 example values for the message "abc"; MD5 from RFC 1321.
const KAT: Array<[string, number, string, string]> = [
  ['MD5', CKM.MD5, 'md5', '900150983cd24fb0d6963f7d28e17f72'],
  ['SHA-1', CKM.SHA_1, 'sha1', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
  ['SHA-224', CKM.SHA224, 'sha224', '23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7'],
  ['SHA-256', CKM.SHA256, 'sha256', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['SHA-384', CKM.SHA384, 'sha384', 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7'],
  ['SHA-512', CKM.SHA512, 'sha512', 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'],
  ['SHA3-224', CKM.SHA3_224, 'sha3-224', 'e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf'],
  ['SHA3-256', CKM.SHA3_256, 'sha3-256', '3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532'],
  ['SHA3-384', CKM.SHA3_384, 'sha3-384', 'ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25'],
  ['SHA3-512', CKM.SHA3_512, 'sha3-512', 'b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0'],
];

describe.each(KAT)('digest %s', (_name, type, node, abc) => {
  it('matches the published value for "abc"', async () => {
    expect((await fam.createOperation('digest', mech(type), null).oneShot(Buffer.from('abc'))).toString('hex')).toBe(abc);
  });

  it('multi-part equals single-part and node:crypto', async () => {
    const data = Buffer.alloc(1000, 0x61);
    const single = await fam.createOperation('digest', mech(type), null).oneShot(data);
    expect(await multiPart(fam.createOperation('digest', mech(type), null), data)).toEqual(single);
    expect(single).toEqual(createHash(node).update(data).digest());
  });

  it('C_DigestKey feeds a secret key value', async () => {
    const value = hex('00112233445566778899aabbccddeeff');
    const op = fam.createOperation('digest', mech(type), null);
    await op.update(Buffer.from('pre'));
    await op.updateKey!(secretKey(value, CKK.GENERIC_SECRET));
    expect(await op.final()).toEqual(createHash(node).update('pre').update(value).digest());
  });

  it('is listed with CKF_DIGEST only', () => {
    expect(fam.mechanisms().find((m) => m.type === type)).toEqual({ type, minKeySize: 0, maxKeySize: 0, flags: 0x400 });
  });
});

describe('digest errors', () => {
  it('refuses parameters', async () => {
    await expectRv(() => fam.createOperation('digest', mech(CKM.SHA256, bytes(Buffer.alloc(4))), null), CKR.MECHANISM_PARAM_INVALID);
  });
  it('refuses non-digest operations and unknown mechanisms', async () => {
    await expectRv(() => fam.createOperation('sign', mech(CKM.SHA256), null), CKR.MECHANISM_INVALID);
    await expectRv(() => fam.createOperation('digest', mech(CKM.AES_GCM), null), CKR.MECHANISM_INVALID);
  });
  it('C_DigestKey on a private key is CKR_KEY_INDIGESTIBLE', async () => {
    const op = fam.createOperation('digest', mech(CKM.SHA256), null);
    const priv = keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PRIVATE_KEY)], [CKA.VALUE, Buffer.alloc(32, 1)]]));
    await expectRv(() => op.updateKey!(priv), CKR.KEY_INDIGESTIBLE);
  });
});
