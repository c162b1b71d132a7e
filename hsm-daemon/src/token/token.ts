// One slot's token: its PINs and login state per application, its objects, and their
// durable storage. PKCS#11 makes login state a property of the application, shared by
// all its sessions on this token; different applications log in independently.
import { CKF, CKR, CKU } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import { HsmObject, type ObjectOwner } from '../objects/object.js';
import type { HandleAllocator } from '../objects/handles.js';
import { secretAttributes } from '../objects/rules.js';
import type { AttrMap } from '../mechanisms/types.js';
import type { Attr } from '../wire/contract.js';
import { TokenFile, type PinRecord, type StoredObject, type TokenHeader, type TokenRecord } from '../store/token-file.js';
import { DeviceKey } from '../store/device-key.js';
import { domainOf, openObjectBody, resealDeviceObjects, sealObjectBody } from '../store/object-seal.js';
import { randomBytes } from '../drbg/index.js';
import { makePinRecord, openWithPin } from './pin.js';
import { EventEmitter } from 'node:events';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AttemptGate, REPEATED_THRESHOLD, failureDelay, type DelaySettings, type PinCaller, type PinEvents } from './lockout.js';

export type { PinCaller, PinEvents } from './lockout.js';

export type Role = 'so' | 'user';

export interface TokenSettings {
  dataDir: string;
  pbkdf2Iterations: number;
  pinMinLength: number;
  pinMaxLength: number;
  maxFailedLogins: number;
  defaultLabel: string;
  maxObjects: number;
}

export class Token {
  private initialized = false;
  private label: string;
  private serial = '';
  private so: PinRecord | null = null;
  private user: PinRecord | null = null;
  private failed = { so: 0, user: 0 };
  /** Slot number in the sealed objects' AAD (differs from slotId after a cross-slot restore). */
  private sealSlot: number;
  /** Held once any login since start has opened it; needed to seal new secrets. */
  private tokenKey: Buffer | null = null;
  /** Stored objects not open yet: sealed under the token key (private objects, and public
   * ones from stores older than the device key) until a login opens it; and device-sealed
   * ones whose blob does not authenticate (kept as they are, never visible). */
  private locked: StoredObject[] = [];
  /** Seals the secrets of public token objects (store/device-key.ts). */
  private readonly deviceKey: DeviceKey;
  private readonly objects = new Map<number, HsmObject>();
  private readonly logins = new Map<string, Role>();
  /** See recentlyVerified(): per-process key and the MAC of each role's last verified PIN. */
  private readonly pinMacKey = randomBytes(32);
  private readonly pinMacs = new Map<Role, Buffer>();
  private readonly sealedCache = new WeakMap<HsmObject, StoredObject>();
  private readonly file: TokenFile;
  /** PIN lockout events (main.ts forwards them to the alerts module). */
  readonly events = new EventEmitter<PinEvents>();
  /** Set by lifecycle/security.ts: told when an object is gone (destroyed, its session or
   * application ended) and when C_InitToken cleared the token, to drop GCM counters. */
  onObjectGone: ((o: HsmObject) => void) | null = null;
  onTokenCleared: ((slotId: number) => void) | null = null;
  private delay: DelaySettings = { baseMs: 0, capMs: 0 };
  private readonly gates = { so: new AttemptGate(), user: new AttemptGate() };
  /** Consecutive wrong PINs per caller (`role/app/session`), for pin_incorrect_repeated. */
  private readonly callerFailures = new Map<string, number>();

  constructor(
    readonly slotId: number,
    private readonly settings: TokenSettings,
    private readonly handles: HandleAllocator,
  ) {
    this.label = settings.defaultLabel;
    this.sealSlot = slotId;
    this.deviceKey = new DeviceKey(settings.dataDir);
    this.file = new TokenFile(settings.dataDir, slotId, { snapshot: () => this.snapshot(), header: () => this.header() });
  }

  load(): void {
    const rec = this.file.load();
    if (!rec) {
      this.serial = randomBytes(8).toString('hex').toUpperCase();
      return;
    }
    this.applyRecord(rec, rec.sealSlot ?? this.slotId, this.deviceKeyFor(rec, this.file.path));
  }

  /** The device key when `rec` has device-sealed objects; throws when its file is missing
   * (a new key would strand them: better to stop and say which file to put back). */
  private deviceKeyFor(rec: TokenRecord, where: string): Buffer | null {
    if (!rec.objects.some((o) => o.sealed !== undefined && domainOf(o) === 'device')) return null;
    const key = this.deviceKey.existing();
    if (!key) {
      throw new Error(
        `${where} holds public objects sealed under the device key ${this.deviceKey.path}, which is missing; put that file back from this host's backup, or restore the token with craton-hsm-admin restore`,
      );
    }
    return key;
  }

  /** Takes over a stored record's state: device-sealed public objects open at once, objects
   * sealed under the token key stay locked until a login. */
  private applyRecord(rec: TokenRecord, sealSlot: number, deviceKey: Buffer | null): void {
    this.initialized = rec.initialized;
    this.label = rec.label;
    this.serial = rec.serial;
    this.so = rec.so;
    this.user = rec.user;
    this.failed = { ...rec.failedLogins };
    this.sealSlot = sealSlot;
    for (const so of rec.objects) {
      if (!so.sealed) this.sealedCache.set(this.adopt(so.uid, decodeAttrs(so.clear), new Map(), { session: null, app: null }), so);
      else if (!(domainOf(so) === 'device' && deviceKey && this.openStored(deviceKey, so))) this.locked.push(so);
    }
  }

  /**
   * Replaces this token's whole state with a backed-up record (admin/backup.ts), then
   * persists it durably. The caller has validated `rec` and checked that no session is open.
   * Object uids are kept (GCM counters are keyed by them); handles are new. Every login
   * ends: the token key in memory belonged to the old state. `rec.slot` may name another
   * slot: the sealed blobs stay bound to the slot they were sealed on (sealSlot).
   */
  async adoptRecord(rec: TokenRecord): Promise<void> {
    const deviceKey = this.deviceKeyFor(rec, 'the restored token'); // before anything changes
    for (const o of this.objects.values()) o.wipe(secretAttributes(o.objectClass));
    this.objects.clear();
    this.locked = [];
    this.logins.clear();
    this.tokenKey?.fill(0);
    this.tokenKey = null;
    this.pinMacs.clear();
    this.callerFailures.clear();
    this.applyRecord(rec, rec.sealSlot ?? rec.slot, deviceKey);
    this.file.rewrite();
    await this.file.persist();
  }

  /** A copy of the device key when `rec` (this token's record) holds device-sealed objects,
   * for a backup to carry; null otherwise. The caller zeroes it. */
  deviceKeyForBackup(rec: TokenRecord): Buffer | null {
    const key = this.deviceKeyFor(rec, this.file.path);
    return key ? Buffer.from(key) : null;
  }

  /**
   * A backed-up record made fit for this data directory: its device-sealed objects opened
   * with the source's device key `from` and sealed again under this one (created if need
   * be). With `check` only, verifies that every one opens and creates nothing. Throws
   * ResealError (store/object-seal.ts) and changes nothing when one does not open.
   */
  resealForThisDevice(rec: TokenRecord, from: Buffer | null, check = false): TokenRecord {
    if (!rec.objects.some((o) => domainOf(o) === 'device')) return rec;
    return resealDeviceObjects(rec, from, check ? null : this.deviceKey.obtain());
  }

  /** Checks the SO PIN without logging in (admin backup/restore); counts towards the
   * lockout like C_Login. Throws CKR_PIN_INCORRECT / CKR_PIN_LOCKED. */
  async verifySoPin(pin: Buffer, who: PinCaller = { app: '' }): Promise<void> {
    if (!this.so) throw new CkError(CKR.TOKEN_NOT_RECOGNIZED, `the token in slot ${this.slotId} is not initialised`);
    const key = await this.checkPin('so', this.so, pin, who);
    key.fill(0);
    if (this.failed.so !== 0) {
      this.failed.so = 0;
      await this.persistHeader();
    }
  }

  /** The token's stored form, exactly as the token file holds it (admin backup). */
  record(): TokenRecord {
    return this.snapshot();
  }

  /** Exponential delay before a wrong PIN is answered ([security] failed_login_delay_*). */
  configureLockout(delay: DelaySettings): void {
    this.delay = { ...delay };
  }

  /** Consecutive failed logins recorded for `role` (durable). */
  failedLogins(role: Role): number {
    return this.failed[role];
  }

  get isInitialized(): boolean {
    return this.initialized;
  }
  get tokenLabel(): string {
    return this.label;
  }
  get serialNumber(): string {
    return this.serial;
  }
  get userPinInitialized(): boolean {
    return this.user !== null;
  }
  get objectCount(): number {
    return this.objects.size + this.locked.length;
  }

  /** CKF_* token flags for C_GetTokenInfo, PIN counters included. */
  flags(): number {
    let f = CKF.RNG | CKF.LOGIN_REQUIRED | CKF.CLOCK_ON_TOKEN;
    if (this.initialized) f |= CKF.TOKEN_INITIALIZED;
    if (this.user) f |= CKF.USER_PIN_INITIALIZED;
    f |= this.counterFlags(this.failed.user, CKF.USER_PIN_COUNT_LOW, CKF.USER_PIN_FINAL_TRY, CKF.USER_PIN_LOCKED);
    f |= this.counterFlags(this.failed.so, CKF.SO_PIN_COUNT_LOW, CKF.SO_PIN_FINAL_TRY, CKF.SO_PIN_LOCKED);
    return f;
  }

  private counterFlags(failed: number, low: number, final: number, locked: number): number {
    const max = this.settings.maxFailedLogins;
    if (failed >= max) return locked;
    if (failed === max - 1) return final | low;
    return failed > 0 ? low : 0;
  }

  roleOf(app: string): Role | null {
    return this.logins.get(app) ?? null;
  }

  checkPinLength(pin: Buffer): void {
    if (pin.length < this.settings.pinMinLength || pin.length > this.settings.pinMaxLength) {
      throw new CkError(
        CKR.PIN_LEN_RANGE,
        `PIN must be ${this.settings.pinMinLength}–${this.settings.pinMaxLength} bytes`,
      );
    }
  }

  /** C_InitToken; the caller has checked that no session is open on this token. */
  async initToken(soPin: Buffer, label: string, who: PinCaller = { app: '' }): Promise<void> {
    if (this.initialized && this.so) {
      const key = await this.checkPin('so', this.so, soPin, who);
      key.fill(0);
    } else {
      this.checkPinLength(soPin);
    }
    for (const o of this.objects.values()) o.wipe(secretAttributes(o.objectClass));
    this.objects.clear();
    this.locked = [];
    this.logins.clear();
    this.tokenKey?.fill(0);
    this.tokenKey = randomBytes(32);
    this.pinMacs.clear();
    this.so = await makePinRecord(soPin, this.tokenKey, this.settings.pbkdf2Iterations);
    this.user = null;
    this.failed = { so: 0, user: 0 };
    this.callerFailures.clear();
    this.label = label;
    this.sealSlot = this.slotId;
    this.initialized = true;
    this.file.rewrite();
    await this.file.persist();
    this.onTokenCleared?.(this.slotId);
  }

  async login(app: string, role: Role, pin: Buffer, session?: number): Promise<void> {
    const rec = role === 'so' ? this.so : this.user;
    if (!rec) throw new CkError(role === 'so' ? CKR.TOKEN_NOT_RECOGNIZED : CKR.USER_PIN_NOT_INITIALIZED);
    const key = await this.checkPin(role, rec, pin, { app, session });
    if (this.failed[role] !== 0) {
      this.failed[role] = 0;
      await this.persistHeader();
    }
    this.unlock(key);
    this.logins.set(app, role);
  }

  /** Verifies the user PIN without changing login state (CKU_CONTEXT_SPECIFIC). */
  async verifyUserPin(pin: Buffer, who: PinCaller = { app: '' }): Promise<void> {
    if (!this.user) throw new CkError(CKR.USER_PIN_NOT_INITIALIZED);
    const key = await this.checkPin('user', this.user, pin, who);
    key.fill(0);
    if (this.failed.user !== 0) {
      this.failed.user = 0;
      await this.persistHeader();
    }
  }

  logout(app: string): void {
    this.logins.delete(app);
  }

  /** C_InitPIN by a logged-in SO: sets the user PIN and clears its lockout. */
  async initUserPin(pin: Buffer): Promise<void> {
    this.checkPinLength(pin);
    const key = this.requireKey();
    this.pinMacs.delete('user');
    this.user = await makePinRecord(pin, key, this.settings.pbkdf2Iterations);
    const wasLocked = this.failed.user >= this.settings.maxFailedLogins;
    this.failed.user = 0;
    this.clearCallerFailures('user');
    await this.persistHeader();
    if (wasLocked) this.events.emit('pin_unlocked', { slot: this.slotId, role: 'user', by: 'init_pin' });
  }

  /** Clears a role's failure counter and lockout (hook for `craton-hsm-admin pin reset`,
   * which needs the admin socket). Durable before it resolves. */
  async resetPinLockout(role: Role): Promise<void> {
    this.failed[role] = 0;
    this.clearCallerFailures(role);
    await this.persistHeader();
    this.events.emit('pin_unlocked', { slot: this.slotId, role, by: 'admin' });
  }

  /** C_SetPIN for `role` (the logged-in role, or the user when nobody is logged in). */
  async setPin(role: Role, oldPin: Buffer, newPin: Buffer, who: PinCaller = { app: '' }): Promise<void> {
    const rec = role === 'so' ? this.so : this.user;
    if (!rec) throw new CkError(CKR.USER_PIN_NOT_INITIALIZED);
    const key = await this.checkPin(role, rec, oldPin, who);
    try {
      this.checkPinLength(newPin);
    } catch (err) {
      key.fill(0);
      throw err;
    }
    this.unlock(key);
    const next = await makePinRecord(newPin, this.requireKey(), this.settings.pbkdf2Iterations);
    this.pinMacs.delete(role);
    if (role === 'so') this.so = next;
    else this.user = next;
    this.failed[role] = 0;
    await this.persistHeader();
  }

  /**
   * The one PIN check: refuses a locked PIN (CKR_PIN_LOCKED), lets at most
   * (max - failed) checks of a role run at once so parallel guesses cannot overshoot the
   * threshold, records a failure durably before answering, then delays the answer
   * (async: only this caller waits). Returns the token key when the PIN is right.
   */
  private async checkPin(role: Role, rec: PinRecord, pin: Buffer, who: PinCaller): Promise<Buffer> {
    const max = this.settings.maxFailedLogins;
    if (!(await this.gates[role].enter(() => this.failed[role], max))) {
      this.events.emit('pin_locked', { ...this.eventBase(role, who), transition: false });
      throw new CkError(CKR.PIN_LOCKED, `${role} PIN is locked`);
    }
    let key: Buffer | null;
    try {
      key = this.recentlyVerified(role, pin);
      if (!key) {
        key = await openWithPin(pin, rec);
        if (key) this.pinMacs.set(role, this.pinMac(role, pin));
        else await this.recordFailure(role, who);
      }
    } finally {
      this.gates[role].leave();
    }
    if (!key) {
      await failureDelay(this.failed[role], this.delay);
      throw new CkError(CKR.PIN_INCORRECT);
    }
    this.callerFailures.delete(callerKey(role, who));
    return key;
  }

  /**
   * Repeated logins with a PIN already verified by PBKDF2 since the daemon started skip the
   * slow derivation: the daemon keeps an HMAC of that PIN under a random key that exists
   * only in its memory. The stored verifier keeps its full PBKDF2 cost (an offline guess
   * still pays it); a wrong PIN never matches and takes the PBKDF2 path and its counting.
   * Returns a copy of the open token key on a match.
   */
  private recentlyVerified(role: Role, pin: Buffer): Buffer | null {
    const known = this.pinMacs.get(role);
    if (!known || !this.tokenKey) return null;
    const mac = this.pinMac(role, pin);
    return timingSafeEqual(mac, known) ? Buffer.from(this.tokenKey) : null;
  }

  private pinMac(role: Role, pin: Buffer): Buffer {
    return createHmac('sha256', this.pinMacKey).update(role).update(pin).digest();
  }

  private async recordFailure(role: Role, who: PinCaller): Promise<void> {
    this.failed[role] += 1;
    // Durable before the caller learns the PIN was wrong: a kill between guesses must
    // not reset the count.
    await this.persistHeader();
    const base = this.eventBase(role, who);
    this.events.emit('pin_incorrect', base);
    const ck = callerKey(role, who);
    const n = (this.callerFailures.get(ck) ?? 0) + 1;
    this.callerFailures.set(ck, n);
    if (n === REPEATED_THRESHOLD) this.events.emit('pin_incorrect_repeated', { ...base, fromCaller: n });
    if (this.failed[role] === this.settings.maxFailedLogins) this.events.emit('pin_locked', { ...base, transition: true });
  }

  private eventBase(role: Role, who: PinCaller) {
    return { slot: this.slotId, role, app: who.app, session: who.session, failed: this.failed[role], max: this.settings.maxFailedLogins };
  }

  private clearCallerFailures(role: Role): void {
    for (const k of [...this.callerFailures.keys()]) if (k.startsWith(`${role}/`)) this.callerFailures.delete(k);
  }

  private requireKey(): Buffer {
    if (!this.tokenKey) throw new CkError(CKR.USER_NOT_LOGGED_IN, 'the token key is not open; log in first');
    return this.tokenKey;
  }

  private unlock(key: Buffer): void {
    if (this.tokenKey) {
      key.fill(0);
      return;
    }
    this.tokenKey = key;
    // Public objects among these come from a store older than the device key. Once adopted
    // they have no cached stored form, so the next write of this token seals them under
    // the device key (storedForm): stores migrate by themselves, and from then on these
    // objects are usable without a login after a restart too.
    const migrating: HsmObject[] = [];
    this.locked = this.locked.filter((so) => {
      const obj = domainOf(so) === 'device' ? null : this.openStored(key, so);
      if (obj && !obj.isPrivate) migrating.push(obj);
      return obj === null;
    });
    // Queued, not written: a login alone writes nothing; the next write carries them. When
    // the device key cannot be opened now, the next snapshot tries again (and reports it).
    try {
      for (const obj of migrating) this.file.put(this.storedForm(obj));
    } catch {
      /* left for the next snapshot */
    }
  }

  /** Opens a sealed stored object with `key` and adopts it; null when it does not open. Its
   * stored form is kept as it is unless it is a public object sealed under the token key,
   * which the next write moves to the device key (storedForm). */
  private openStored(key: Buffer, so: StoredObject): HsmObject | null {
    const inner = openObjectBody(key, so, this.sealSlot);
    if (!inner) return null;
    let body: { attrs: Record<string, string>; arrays?: Record<string, Attr[]> };
    try {
      body = JSON.parse(inner.toString('utf8')) as typeof body;
    } finally {
      inner.fill(0);
    }
    const attrs = decodeAttrs({ ...so.clear, ...body.attrs });
    const arrays = new Map<number, Attr[]>(Object.entries(body.arrays ?? {}).map(([t, v]) => [Number.parseInt(t, 16), reviveAttrs(v)]));
    const obj = this.adopt(so.uid, attrs, arrays, { session: null, app: null });
    if (so.private || domainOf(so) === 'device') this.sealedCache.set(obj, so);
    return obj;
  }

  appEnded(app: string): void {
    this.logins.delete(app);
    for (const o of [...this.objects.values()]) if (o.owner.app === app) this.forget(o);
  }

  /** How many session objects this application holds on this token. */
  sessionObjectCount(app: string): number {
    let n = 0;
    for (const o of this.objects.values()) if (o.owner.app === app) n++;
    return n;
  }

  /** Objects this application can see right now (token objects and its own session
   * objects; private ones only while it is logged in as the user). */
  visibleTo(app: string): HsmObject[] {
    const user = this.logins.get(app) === 'user';
    return [...this.objects.values()].filter((o) => (o.owner.app === null || o.owner.app === app) && (user || !o.isPrivate));
  }

  find(handle: number): HsmObject | undefined {
    return this.objects.get(handle);
  }

  async addObject(uid: string, attrs: AttrMap, arrays: Map<number, Attr[]>, owner: ObjectOwner): Promise<HsmObject> {
    const [obj] = await this.addObjects([{ uid, attrs, arrays, owner }]);
    return obj!;
  }

  /**
   * Adds several objects as one change: they are adopted together (no await in between, so
   * no snapshot can hold some of them) and the token objects among them reach disk in one
   * durable write. A crash leaves all of them or none (a key pair, an imported bundle).
   */
  async addObjects(items: Array<{ uid: string; attrs: AttrMap; arrays: Map<number, Attr[]>; owner: ObjectOwner }>): Promise<HsmObject[]> {
    if (this.objectCount + items.length > this.settings.maxObjects) throw new CkError(CKR.DEVICE_MEMORY, 'object limit of this token reached');
    const objs = items.map((i) => this.adopt(i.uid, i.attrs, i.arrays, i.owner));
    const forgetAll = () => {
      for (const o of objs) this.objects.delete(o.handle);
    };
    if (objs.some((o) => o.isToken)) {
      let forms: StoredObject[];
      try {
        forms = objs.filter((o) => o.isToken).map((o) => this.storedForm(o));
      } catch (err) {
        forgetAll();
        throw err;
      }
      for (const f of forms) this.file.put(f);
      try {
        await this.file.persist();
      } catch (err) {
        // Not durable: the objects must not exist for anyone, and the next write (a new
        // snapshot after a failed one, TokenFile) settles the files.
        forgetAll();
        throw err;
      }
    }
    return objs;
  }

  async updateObject(obj: HsmObject, attrs: AttrMap): Promise<void> {
    const before = obj.attrs;
    obj.update(attrs);
    this.sealedCache.delete(obj);
    if (!obj.isToken) return;
    try {
      this.file.put(this.storedForm(obj));
      await this.file.persist();
    } catch (err) {
      obj.update(before);
      this.sealedCache.delete(obj);
      throw err;
    }
  }

  async destroyObject(obj: HsmObject): Promise<void> {
    this.objects.delete(obj.handle);
    if (obj.isToken) {
      this.file.remove(obj.uid);
      await this.file.persist();
    }
    obj.wipe(secretAttributes(obj.objectClass));
    this.onObjectGone?.(obj);
  }

  /** Session objects die with their session. */
  dropSessionObjects(session: number): void {
    for (const o of [...this.objects.values()]) if (o.owner.session === session) this.forget(o);
  }

  private forget(o: HsmObject): void {
    this.objects.delete(o.handle);
    o.wipe(secretAttributes(o.objectClass));
    this.onObjectGone?.(o);
  }

  private adopt(uid: string, attrs: AttrMap, arrays: Map<number, Attr[]>, owner: ObjectOwner): HsmObject {
    const obj = new HsmObject(this.handles.take(), this.slotId, uid, attrs, arrays, owner);
    this.objects.set(obj.handle, obj);
    return obj;
  }

  /** The stored form of a token object: a private one sealed under the token key (throws
   * CKR_USER_NOT_LOGGED_IN when it is not open), the secrets of a public one under the
   * device key (no login needed: PKCS#11 lets R/W public sessions create public objects). */
  private storedForm(obj: HsmObject): StoredObject {
    const cached = this.sealedCache.get(obj);
    if (cached) return cached;
    const secret = secretAttributes(obj.objectClass);
    const clear: Record<string, string> = {};
    const hidden: Record<string, string> = {};
    for (const [t, v] of obj.attrs) {
      const key = t.toString(16);
      if (obj.isPrivate || secret.has(t)) hidden[key] = v.toString('base64');
      else clear[key] = v.toString('base64');
    }
    const arrays = Object.fromEntries([...obj.arrays].map(([t, v]) => [t.toString(16), v]));
    const needsSeal = Object.keys(hidden).length > 0 || obj.arrays.size > 0;
    const stored: StoredObject = { uid: obj.uid, clear, private: obj.isPrivate };
    if (needsSeal) {
      const key = obj.isPrivate ? this.requireKey() : this.openDeviceKey();
      const body = Buffer.from(JSON.stringify({ attrs: hidden, arrays }));
      try {
        stored.sealed = sealObjectBody(key, obj.isPrivate ? 'token' : 'device', this.sealSlot, obj.uid, body);
      } finally {
        body.fill(0);
      }
      if (!obj.isPrivate) stored.sealKey = 'device';
    }
    this.sealedCache.set(obj, stored);
    return stored;
  }

  private openDeviceKey(): Buffer {
    try {
      return this.deviceKey.obtain();
    } catch (err) {
      throw new CkError(CKR.DEVICE_ERROR, `cannot open or create the device key ${this.deviceKey.path}: ${(err as Error).message}`);
    }
  }

  private snapshot(): TokenRecord {
    const objects: StoredObject[] = [...this.locked];
    for (const o of this.objects.values()) if (o.isToken) objects.push(this.storedForm(o));
    return { format: 1, ...this.header(), objects };
  }

  private header(): TokenHeader {
    return {
      slot: this.slotId,
      initialized: this.initialized,
      label: this.label,
      serial: this.serial,
      so: this.so,
      user: this.user,
      failedLogins: { ...this.failed },
      ...(this.sealSlot !== this.slotId ? { sealSlot: this.sealSlot } : {}),
    };
  }

  /** Folds the token's journal into its snapshot (clean shutdown; store/token-file.ts). */
  compactStore(): Promise<void> {
    return this.file.compact();
  }

  /** Persists the current state (used at start to create the file for a new token). */
  persist(): Promise<void> {
    return this.persistHeader();
  }

  /** Durable once the header (label, PIN records, failure counters …) is on disk. */
  private persistHeader(): Promise<void> {
    this.file.headerChanged();
    return this.file.persist();
  }
}

function callerKey(role: Role, who: PinCaller): string {
  return `${role}/${who.app}/${who.session ?? '-'}`;
}

function decodeAttrs(rec: Record<string, string>): AttrMap {
  return new Map(Object.entries(rec).map(([t, v]) => [Number.parseInt(t, 16), Buffer.from(v, 'base64')]));
}

/** JSON turns Buffers into {type:'Buffer', data:[…]}; bring nested template values back. */
function reviveAttrs(list: Attr[]): Attr[] {
  return list.map((a) => ({
    type: a.type,
    value: Buffer.from((a.value as unknown as { data: number[] }).data ?? []),
    nested: a.nested ? reviveAttrs(a.nested) : undefined,
  }));
}

export const USER_TYPES: ReadonlyMap<number, Role> = new Map([
  [CKU.SO, 'so'],
  [CKU.USER, 'user'],
]);
