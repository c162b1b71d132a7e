// How `migrate` picks the wrap mechanism for a key from the two tokens' mechanism lists
// (the SoftHSM2 integration test only exercises the RFC 5649 path, which it offers).
import { describe, expect, it } from 'vitest';
import { chooseMechanism } from '../../../admin-cli/src/migrate/migrate.js';
import { CKM, CKO } from '../../../hsm-daemon/src/pkcs11/index.js';

const ours = new Set<number>([CKM.AES_KEY_WRAP, CKM.AES_KEY_WRAP_PAD, CKM.AES_KEY_WRAP_KWP]);

describe('migrate: wrap mechanism choice', () => {
  it('prefers CKM_AES_KEY_WRAP_PAD, then the 3.0 name CKM_AES_KEY_WRAP_KWP', () => {
    expect(chooseMechanism(new Set([CKM.AES_KEY_WRAP, CKM.AES_KEY_WRAP_PAD]), ours, CKO.PRIVATE_KEY, undefined)).toEqual({ mech: CKM.AES_KEY_WRAP_PAD });
    expect(chooseMechanism(new Set([CKM.AES_KEY_WRAP_KWP]), ours, CKO.PRIVATE_KEY, undefined)).toEqual({ mech: CKM.AES_KEY_WRAP_KWP });
  });

  it('without padding: RFC 3394 for secret keys of whole 8-byte blocks, with a note; private keys are skipped', () => {
    const kwOnly = new Set<number>([CKM.AES_KEY_WRAP]);
    const aes = chooseMechanism(kwOnly, ours, CKO.SECRET_KEY, 32);
    expect(aes).toMatchObject({ mech: CKM.AES_KEY_WRAP });
    expect((aes as { note: string }).note).toContain('CKM_AES_KEY_WRAP (RFC 3394)');
    expect(chooseMechanism(kwOnly, ours, CKO.SECRET_KEY, 20)).toEqual({
      skip: 'the source does not offer CKM_AES_KEY_WRAP_PAD or CKM_AES_KEY_WRAP_KWP: its length is not a multiple of 8 bytes, which CKM_AES_KEY_WRAP (RFC 3394) needs',
    });
    expect(chooseMechanism(kwOnly, ours, CKO.PRIVATE_KEY, undefined)).toEqual({
      skip: 'the source does not offer CKM_AES_KEY_WRAP_PAD or CKM_AES_KEY_WRAP_KWP: private keys need AES key wrap with padding (RFC 5649)',
    });
    expect(chooseMechanism(new Set(), ours, CKO.SECRET_KEY, 32)).toMatchObject({ skip: expect.stringContaining('does not offer CKM_AES_KEY_WRAP either') });
  });

  it('a mechanism counts only when both tokens have it', () => {
    expect(chooseMechanism(new Set([CKM.AES_KEY_WRAP_PAD, CKM.AES_KEY_WRAP]), new Set([CKM.AES_KEY_WRAP]), CKO.SECRET_KEY, 16)).toMatchObject({ mech: CKM.AES_KEY_WRAP });
  });
});
