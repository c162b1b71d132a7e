// Object and session handles. Handles are never reused during a daemon's life so a stale
// handle held by a client can only be invalid, never point at someone else's object.
// They start at a random offset so handles from before a daemon restart are unlikely to
// collide with new ones (the module also rejects them by instance id).
import { randomInt } from 'node:crypto';

export class HandleAllocator {
  private next: number;
  constructor() {
    this.next = randomInt(1, 1 << 20) * 16;
  }
  take(): number {
    return this.next++;
  }
}
