// Known-answer test of the HMAC_DRBG mechanism (instantiate → reseed → generate ×2),
// NIST CAVP DRBG test vectors, drbgvectors_pr_false/HMAC_DRBG.rsp (CAVS 14.3),
// [SHA-256] [PredictionResistance = False] [EntropyInputLen = 256] [NonceLen = 128]
// [PersonalizationStringLen = 0] [AdditionalInputLen = 0] [ReturnedBitsLen = 1024], COUNT = 0.
// Per the CAVP procedure the first generate's output is discarded.
import { timingSafeEqual } from 'node:crypto';
import { HmacDrbg } from './hmac-drbg.js';

export const CAVP_HMAC_DRBG_SHA256 = {
  entropyInput: '06032cd5eed33f39265f49ecb142c511da9aff2af71203bffaf34a9ca5bd9c0d',
  nonce: '0e66f71edc43e42a45ad3c6fc6cdc4df',
  entropyInputReseed: '01920a4e669ed3a85ae8a33b35a74ad7fb2a6bb4cf395ce00334a9c9a5a5d552',
  // Intermediate state after INSTANTIATE, as listed in the .rsp file.
  instantiateV: '81e0d8830ed2d16f9b288a1cb289c5fab3f3c5c28131be7cafedcc7734604d34',
  instantiateKey: '17dc11c2389f5eeb9d0f6a5148a1ea83ee8a828f4f140ac78272a0da435fa121',
  returnedBits:
    '76fc79fe9b50beccc991a11b5635783a83536add03c157fb30645e611c2898bb2b1bc215000209208cd506cb28da2a51bdb03826aaf2bd2335d576d519160842' +
    'e7158ad0949d1a9ec3e66ea1b1a064b005de914eac2e9d4f2d72a8616a80225422918250ff66a41bd2f864a6a38cc5b6499dc43f7f2bd09e1e0f8f5885935124',
};

/** Runs the vector; `corrupt` (fault injection only) flips one bit of the output. */
export function hmacDrbgKat(corrupt = false): boolean {
  const v = CAVP_HMAC_DRBG_SHA256;
  const d = new HmacDrbg(Buffer.from(v.entropyInput, 'hex'), Buffer.from(v.nonce, 'hex'));
  d.reseed(Buffer.from(v.entropyInputReseed, 'hex'));
  const expected = Buffer.from(v.returnedBits, 'hex');
  d.generate(expected.length);
  const got = d.generate(expected.length);
  d.destroy();
  if (corrupt) got[0]! ^= 1;
  return timingSafeEqual(got, expected);
}
