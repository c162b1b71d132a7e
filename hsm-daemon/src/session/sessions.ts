// All open sessions, indexed by handle, application and slot. Knows nothing about
// tokens or objects; callers combine.
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { HandleAllocator } from '../objects/handles.js';
import { Session } from './session.js';

export class Sessions {
  private readonly byHandle = new Map<number, Session>();

  constructor(
    private readonly handles: HandleAllocator,
    private readonly maxPerApp: number,
  ) {}

  open(slotId: number, app: string, readWrite: boolean): Session {
    if (this.ofApp(app).length >= this.maxPerApp) throw new CkError(CKR.SESSION_COUNT, `at most ${this.maxPerApp} sessions per application`);
    const s = new Session(this.handles.take(), slotId, app, readWrite);
    this.byHandle.set(s.handle, s);
    return s;
  }

  /** The caller's session; another application's handle is as invalid as a made-up one. */
  get(handle: number, app: string): Session {
    const s = this.byHandle.get(handle);
    if (!s || s.app !== app) throw new CkError(CKR.SESSION_HANDLE_INVALID);
    return s;
  }

  close(s: Session): void {
    s.endOperations();
    this.byHandle.delete(s.handle);
  }

  ofApp(app: string, slotId?: number): Session[] {
    return [...this.byHandle.values()].filter((s) => s.app === app && (slotId === undefined || s.slotId === slotId));
  }

  onSlot(slotId: number): Session[] {
    return [...this.byHandle.values()].filter((s) => s.slotId === slotId);
  }
}
