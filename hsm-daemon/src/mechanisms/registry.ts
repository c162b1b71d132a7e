// The table of contents of what the token can do: each family says which mechanisms
// it offers, and the registry answers "who handles mechanism X" without the
// dispatcher ever naming an algorithm.
import { mechanismName } from '../pkcs11/names.js';
import { AesFamily } from './aes.js';
import { DigestFamily } from './digest.js';
import { EcFamily } from './ec.js';
import { HkdfFamily } from './hkdf.js';
import { HmacFamily } from './hmac.js';
import { RsaFamily } from './rsa.js';
import type { MechanismFamily, MechanismInfo } from './types.js';

export class MechanismRegistry {
  private readonly byType = new Map<number, { info: MechanismInfo; family: MechanismFamily }>();

  constructor(families: MechanismFamily[]) {
    for (const family of families) {
      for (const info of family.mechanisms()) {
        const prev = this.byType.get(info.type);
        // Two owners for one mechanism would make dispatch order-dependent.
        if (prev) throw new Error(`${mechanismName(info.type)} offered by both ${prev.family.name} and ${family.name}`);
        this.byType.set(info.type, { info: { ...info }, family });
      }
    }
  }

  /** Every mechanism, in ascending CKM order (stable for C_GetMechanismList). */
  list(): MechanismInfo[] {
    return [...this.byType.values()].map((e) => ({ ...e.info })).sort((a, b) => a.type - b.type);
  }

  info(type: number): MechanismInfo | undefined {
    const e = this.byType.get(type);
    return e ? { ...e.info } : undefined;
  }

  family(type: number): MechanismFamily | undefined {
    return this.byType.get(type)?.family;
  }
}

export function defaultFamilies(): MechanismFamily[] {
  return [new DigestFamily(), new HmacFamily(), new AesFamily(), new EcFamily(), new RsaFamily(), new HkdfFamily()];
}
