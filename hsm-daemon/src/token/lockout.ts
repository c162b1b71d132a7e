// PIN lockout policy pieces shared by Token: the delay schedule, the events, and the
// bookkeeping of who is guessing. The counters themselves live in the token record
// (token-file.ts) and are written durably before a wrong PIN is answered.
import { setTimeout as sleep } from 'node:timers/promises';

export type PinRole = 'so' | 'user';

/** Who presented a PIN: the application and, when there is one, its session. */
export interface PinCaller {
  app: string;
  session?: number;
}

export interface PinEvent {
  slot: number;
  role: PinRole;
  app: string;
  session?: number;
  /** Consecutive failures recorded for this role (the durable counter). */
  failed: number;
  max: number;
}

export interface RepeatedEvent extends PinEvent {
  /** Consecutive wrong PINs from this one session (or application). */
  fromCaller: number;
}

export interface LockedEvent extends PinEvent {
  /** true: this failure locked the PIN; false: an attempt on an already locked PIN. */
  transition: boolean;
}

export interface PinEvents {
  pin_incorrect: [PinEvent];
  pin_incorrect_repeated: [RepeatedEvent];
  pin_locked: [LockedEvent];
  pin_unlocked: [{ slot: number; role: PinRole; by: 'init_pin' | 'set_pin' | 'login' | 'admin' | 'init_token' }];
}

/** Wrong PINs from one session before pin_incorrect_repeated (a ticket) is raised. */
export const REPEATED_THRESHOLD = 3;

export interface DelaySettings {
  baseMs: number;
  capMs: number;
}

/** min(cap, base * 2^(failures - 1)); 0 when base is 0. */
export function failureDelayMs(failures: number, d: DelaySettings): number {
  if (d.baseMs <= 0 || failures <= 0) return 0;
  return Math.min(d.capMs, d.baseMs * 2 ** Math.min(failures - 1, 40));
}

/** Async: holds only the caller that guessed wrong, never the event loop. */
export async function failureDelay(failures: number, d: DelaySettings): Promise<void> {
  const ms = failureDelayMs(failures, d);
  if (ms > 0) await sleep(ms);
}

/**
 * Caps the PIN checks in flight so parallel guesses cannot overshoot the threshold: at
 * most (max - failed) checks of one role run at once; further ones wait for an answer.
 */
export class AttemptGate {
  private inflight = 0;
  private waiting: Array<() => void> = [];

  /** Resolves when the caller may check a PIN; false when the PIN is locked. */
  async enter(failed: () => number, max: number): Promise<boolean> {
    for (;;) {
      if (failed() + this.inflight < max) {
        this.inflight++;
        return true;
      }
      if (this.inflight === 0) return false;
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  leave(): void {
    this.inflight--;
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }
}
