// What every handler needs: the tokens, the open sessions, the mechanism registry, and
// the lookups that turn a client's handles into objects with the right CK_RV when they
// are wrong. Handlers stay thin by going through these.
import { CKA, CKO, CKR, CKS } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { MechanismRegistry } from '../mechanisms/registry.js';
import type { HsmObject } from '../objects/object.js';
import type { Session } from '../session/session.js';
import type { Sessions } from '../session/sessions.js';
import type { Token } from '../token/token.js';
import type { GcmNonceGuard } from '../nonce/index.js';
import { installSecurity } from '../lifecycle/index.js';
import { PolicyEnforcer } from '../policy/enforcer.js';

export type LogFn = (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;

export class HsmCore {
  /** AES-GCM invocation counters and the caller-IV rule (nonce/); lockout delays are set on the tokens. */
  readonly gcm: GcmNonceGuard;
  /** The FIPS policy ([algorithms]); alerts subscribe with policy.onViolation. */
  readonly policy: PolicyEnforcer;

  constructor(
    readonly config: Config,
    readonly tokens: Token[],
    readonly sessions: Sessions,
    readonly mechanisms: MechanismRegistry,
    readonly log: LogFn,
  ) {
    this.gcm = installSecurity(config, tokens, log);
    this.policy = new PolicyEnforcer(config.algorithms, log);
  }

  token(slotId: number): Token {
    const t = Number.isInteger(slotId) ? this.tokens[slotId] : undefined;
    if (!t) throw new CkError(CKR.SLOT_ID_INVALID);
    return t;
  }

  session(app: string, handle: number): Session {
    return this.sessions.get(handle, app);
  }

  tokenOf(s: Session): Token {
    return this.token(s.slotId);
  }

  state(s: Session): number {
    const role = this.tokenOf(s).roleOf(s.app);
    if (role === 'so') return CKS.RW_SO_FUNCTIONS;
    if (role === 'user') return s.readWrite ? CKS.RW_USER_FUNCTIONS : CKS.RO_USER_FUNCTIONS;
    return s.readWrite ? CKS.RW_PUBLIC_SESSION : CKS.RO_PUBLIC_SESSION;
  }

  /** An object the session's application can see, else CKR_OBJECT_HANDLE_INVALID. */
  object(s: Session, handle: number, invalid: number = CKR.OBJECT_HANDLE_INVALID): HsmObject {
    const t = this.tokenOf(s);
    const o = t.find(handle);
    if (!o || (o.owner.app !== null && o.owner.app !== s.app) || (o.isPrivate && t.roleOf(s.app) !== 'user')) {
      throw new CkError(invalid);
    }
    return o;
  }

  /** A key usable for `usage` (CKA_SIGN, CKA_ENCRYPT …) with `mechanism`. */
  key(s: Session, handle: number, usage: number, mechanism: number, invalid: number = CKR.KEY_HANDLE_INVALID): HsmObject {
    const o = this.object(s, handle, invalid);
    const cls = o.objectClass;
    if (cls !== CKO.SECRET_KEY && cls !== CKO.PRIVATE_KEY && cls !== CKO.PUBLIC_KEY) throw new CkError(invalid);
    if (!o.flag(usage)) throw new CkError(CKR.KEY_FUNCTION_NOT_PERMITTED, `the key does not allow this use`);
    const allowed = o.attrs.get(CKA.ALLOWED_MECHANISMS);
    if (allowed && allowed.length > 0) {
      let ok = false;
      for (let i = 0; i + 8 <= allowed.length; i += 8) if (Number(allowed.readBigUInt64LE(i)) === mechanism) ok = true;
      if (!ok) throw new CkError(CKR.MECHANISM_INVALID, 'mechanism not in the key\'s CKA_ALLOWED_MECHANISMS');
    }
    return o;
  }

  /** Creating or changing an object of this kind needs a R/W session (token objects)
   * and a user login (private objects). */
  checkWriteAccess(s: Session, isToken: boolean, isPrivate: boolean): void {
    if (isToken && !s.readWrite) throw new CkError(CKR.SESSION_READ_ONLY);
    if (isPrivate && this.tokenOf(s).roleOf(s.app) !== 'user') throw new CkError(CKR.USER_NOT_LOGGED_IN);
  }

  /** The application is gone: its sessions, session objects and logins go with it. */
  endApp(app: string): void {
    for (const s of this.sessions.ofApp(app)) {
      this.tokenOf(s).dropSessionObjects(s.handle);
      this.sessions.close(s);
    }
    for (const t of this.tokens) t.appEnded(app);
  }
}
