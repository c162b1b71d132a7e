// AES-CCM through the AES family: NIST SP 800-38C Appendix C examples 1–4, single- and
// multi-part, the tag gate on decryption, and the CK_CCM_PARAMS checks.
import { describe, expect, it } from 'vitest';
import { AesFamily } from '../../../hsm-daemon/src/mechanisms/aes.js';
import { CKF, CKM, CKR } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { Mechanism } from '../../../hsm-daemon/src/mechanisms/types.js';
import { expectRv, hex, mech, multiPart, secretKey } from './helpers.js';

const fam = new AesFamily();
const K = secretKey(hex('404142434445464748494a4b4c4d4e4f'));
const ccm = (nonce: Buffer, aad: Buffer, macLen: number, dataLen: number): Mechanism =>
  mech(CKM.AES_CCM, { kind: 'ccm', dataLen, nonce, aad, macLen });

// SP 800-38C Appendix C (K = 40..4f for all four examples). Example 4's associated data
// is the 65536 bytes 00 01 … ff repeated 256 times.
const EX4_AAD = Buffer.alloc(65536).map((_, i) => i & 0xff);
const EXAMPLES: Array<{ name: string; nonce: string; aad: Buffer; pt: string; tlen: number; ct: string }> = [
  { name: 'Example 1', nonce: '10111213141516', aad: hex('0001020304050607'), pt: '20212223', tlen: 4, ct: '7162015b4dac255d' },
  {
    name: 'Example 2',
    nonce: '1011121314151617',
    aad: hex('000102030405060708090a0b0c0d0e0f'),
    pt: '202122232425262728292a2b2c2d2e2f',
    tlen: 6,
    ct: 'd2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd',
  },
  {
    name: 'Example 3',
    nonce: '101112131415161718191a1b',
    aad: hex('000102030405060708090a0b0c0d0e0f10111213'),
    pt: '202122232425262728292a2b2c2d2e2f3031323334353637',
    tlen: 8,
    ct: 'e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951',
  },
  {
    name: 'Example 4',
    nonce: '101112131415161718191a1b1c',
    aad: EX4_AAD,
    pt: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    tlen: 14,
    ct: '69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72b4ac6bec93e8598e7f0dadbcea5b',
  },
];

describe.each(EXAMPLES)('AES-CCM SP 800-38C $name', ({ nonce, aad, pt, tlen, ct }) => {
  const m = () => ccm(hex(nonce), aad, tlen, pt.length / 2);
  it('encrypts and decrypts single-part', async () => {
    expect((await fam.createOperation('encrypt', m(), K).oneShot(hex(pt))).toString('hex')).toBe(ct);
    expect((await fam.createOperation('decrypt', m(), K).oneShot(hex(ct))).toString('hex')).toBe(pt);
  });
  it('multi-part gives the same; updates release nothing', async () => {
    const enc = fam.createOperation('encrypt', m(), K);
    expect(await enc.update(hex(pt).subarray(0, 3))).toHaveLength(0);
    expect(Buffer.concat([await enc.update(hex(pt).subarray(3)), await enc.final()]).toString('hex')).toBe(ct);
    expect((await multiPart(fam.createOperation('decrypt', m(), K), hex(ct), undefined, [1, 2, 3])).toString('hex')).toBe(pt);
  });
  it('a flipped tag or ciphertext bit is CKR_ENCRYPTED_DATA_INVALID, with no plaintext', async () => {
    for (const pos of [0, ct.length / 2 - 1]) {
      const bad = hex(ct);
      bad[pos]! ^= 0x01;
      await expectRv(() => fam.createOperation('decrypt', m(), K).oneShot(bad), CKR.ENCRYPTED_DATA_INVALID);
      const op = fam.createOperation('decrypt', m(), K);
      expect(await op.update(bad)).toHaveLength(0);
      await expectRv(() => op.final(), CKR.ENCRYPTED_DATA_INVALID);
    }
  });
});

describe('AES-CCM parameters and lengths', () => {
  const N = hex('10111213141516');
  it('is offered for encrypt/decrypt/wrap', () => {
    expect(fam.mechanisms().find((i) => i.type === CKM.AES_CCM)!.flags & (CKF.ENCRYPT | CKF.DECRYPT)).toBe(CKF.ENCRYPT | CKF.DECRYPT);
  });
  it('checks nonce, MAC length and the B0 length field', async () => {
    for (const [nonce, macLen, dataLen] of [
      [Buffer.alloc(6), 8, 4],
      [Buffer.alloc(14), 8, 4],
      [N, 5, 4],
      [N, 2, 4],
      [N, 18, 4],
      [Buffer.alloc(13), 8, 65536], // L = 2: at most 65535 bytes
    ] as const) {
      await expectRv(() => fam.createOperation('encrypt', ccm(nonce, Buffer.alloc(0), macLen, dataLen), K), CKR.MECHANISM_PARAM_INVALID);
    }
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.AES_CCM, { kind: 'bytes', data: Buffer.alloc(16) }), K), CKR.MECHANISM_PARAM_INVALID);
  });
  it('the input must match ulDataLen', async () => {
    await expectRv(() => fam.createOperation('encrypt', ccm(N, Buffer.alloc(0), 8, 4), K).oneShot(Buffer.alloc(5)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('decrypt', ccm(N, Buffer.alloc(0), 8, 4), K).oneShot(Buffer.alloc(11)), CKR.ENCRYPTED_DATA_LEN_RANGE);
    // ulDataLen counted with the tag is accepted on decryption.
    const ct = await fam.createOperation('encrypt', ccm(N, Buffer.from('aad'), 8, 4), K).oneShot(Buffer.from('abcd'));
    expect((await fam.createOperation('decrypt', ccm(N, Buffer.from('aad'), 8, 12), K).oneShot(ct)).toString()).toBe('abcd');
    // Empty payload: the output is the tag alone.
    const tagOnly = await fam.createOperation('encrypt', ccm(N, Buffer.from('aad'), 16, 0), K).oneShot(Buffer.alloc(0));
    expect(tagOnly).toHaveLength(16);
    expect(await fam.createOperation('decrypt', ccm(N, Buffer.from('aad'), 16, 0), K).oneShot(tagOnly)).toHaveLength(0);
  });
});
