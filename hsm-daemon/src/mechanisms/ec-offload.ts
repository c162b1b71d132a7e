// Raw ECDSA verification (bigint, ~0.3-3 ms per call) on a small worker pool so the
// event loop stays free and both cores work. Only public values cross the thread
// boundary. When running from TypeScript sources (unit tests) there is no compiled
// worker script, so verification runs inline instead.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Curve, type EcVerifyKey, ecdsaVerifyDigestSync } from './ecmath.js';

const WORKER_URL = new URL('./ecverify-worker.js', import.meta.url);
export const EC_OFFLOAD_AVAILABLE = import.meta.url.endsWith('.js');

interface Slot {
  worker: Worker;
  pending: Map<number, (ok: boolean | Error) => void>;
}

const MAX_WORKERS = Math.max(1, Math.min(4, availableParallelism()));
const slots: Slot[] = [];
let nextId = 1;

function spawn(): Slot {
  const slot: Slot = { worker: new Worker(WORKER_URL), pending: new Map() };
  slot.worker.unref();
  slot.worker.on('message', (m: { id: number; ok: boolean }) => {
    const done = slot.pending.get(m.id);
    if (!done) return;
    slot.pending.delete(m.id);
    if (slot.pending.size === 0) slot.worker.unref();
    done(m.ok === true);
  });
  const die = (): void => {
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    for (const done of slot.pending.values()) done(new Error('ECDSA verify worker exited'));
    slot.pending.clear();
  };
  slot.worker.on('error', die);
  slot.worker.on('exit', die);
  slots.push(slot);
  return slot;
}

// Sticky per key (so each worker's table cache stays warm), spreading keys by x.
function pick(x: bigint): Slot {
  if (slots.length < MAX_WORKERS) {
    const idle = slots.find((s) => s.pending.size === 0);
    return idle ?? spawn();
  }
  const home = slots[Number(x % BigInt(slots.length))]!;
  const least = slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  return home.pending.size <= least.pending.size + 1 ? home : least;
}

/** ECDSA verification of r||s over a digest; off-thread when possible. */
export function ecdsaVerifyOffloaded(vk: EcVerifyKey, digest: Buffer, sig: Buffer): Promise<boolean> {
  const c: Curve = vk.curve;
  if (!EC_OFFLOAD_AVAILABLE || !vk.valid || sig.length !== 2 * c.size) return Promise.resolve(ecdsaVerifyDigestSync(vk, digest, sig));
  const slot = pick(vk.x);
  const id = nextId++;
  return new Promise((resolve, reject) => {
    slot.pending.set(id, (r) => (r instanceof Error ? reject(r) : resolve(r)));
    slot.worker.ref();
    slot.worker.postMessage({ id, curve: c.name, x: vk.x.toString(16), y: vk.y.toString(16), digest: Uint8Array.from(digest), sig: Uint8Array.from(sig) });
  });
}
