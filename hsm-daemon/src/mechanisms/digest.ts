// Message digests. MD5 and SHA-1 are offered so that the policy layer has something
// concrete to refuse; nothing here decides whether they are acceptable.
import { createHash } from 'node:crypto';
import { CKA, CKF, CKO, CKR } from '../pkcs11/constants.generated.js';
import { CkError } from '../errors.js';
import { readUlong } from './attrs.js';
import { EMPTY, HASHES, expectNoParam, hashByCkm } from './common.js';
import type { KeyRef, Mechanism, MechanismFamily, MechanismInfo, OpKind, Operation } from './types.js';

export class DigestFamily implements MechanismFamily {
  readonly name = 'digest';

  mechanisms(): MechanismInfo[] {
    return HASHES.map((h) => ({ type: h.ckm, minKeySize: 0, maxKeySize: 0, flags: CKF.DIGEST }));
  }

  createOperation(kind: OpKind, mech: Mechanism, _key: KeyRef | null): Operation {
    const h = hashByCkm(mech.type);
    if (!h) throw new CkError(CKR.MECHANISM_INVALID);
    if (kind !== 'digest') throw new CkError(CKR.MECHANISM_INVALID, 'digest mechanisms only digest');
    expectNoParam(mech);
    const hash = createHash(h.node);
    return {
      async oneShot(data) {
        return hash.update(data).digest();
      },
      async update(data) {
        hash.update(data);
        return EMPTY;
      },
      async final() {
        return hash.digest();
      },
      async updateKey(key) {
        // Only secret keys have a value the spec lets us digest.
        const cls = key.attrs.get(CKA.CLASS);
        const value = key.attrs.get(CKA.VALUE);
        if ((cls && readUlong(cls) !== CKO.SECRET_KEY) || !value) throw new CkError(CKR.KEY_INDIGESTIBLE);
        hash.update(value);
      },
    };
  }
}
