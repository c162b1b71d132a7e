// RSA private-key operations that node only offers synchronously
// (crypto.privateDecrypt) run on a small pool of worker threads so a 4096-bit
// exponentiation never stalls the event loop. The worker source is inline so it
// needs no separate build step and no TypeScript loader.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';

export interface PrivateDecryptOptions {
  key: KeyObject;
  padding: number;
  oaepHash?: string;
  oaepLabel?: Buffer;
}

// Runs in the worker: node's privateDecrypt with the given options, nothing else.
// Inputs and outputs are zeroed after use because both may be secret.
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { privateDecrypt } = require('node:crypto');
parentPort.on('message', (m) => {
  const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  let out = null;
  try {
    out = privateDecrypt(m.opts, data);
    parentPort.postMessage({ id: m.id, out });
  } catch {
    parentPort.postMessage({ id: m.id, failed: true });
  } finally {
    data.fill(0);
    if (out) out.fill(0);
  }
});
`;

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(onDead: (w: PoolWorker) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; out?: Uint8Array; failed?: boolean }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.failed || !m.out) p.reject(new Error('private key operation failed'));
      else p.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
    });
    const die = (): void => {
      onDead(this);
      for (const p of this.pending.values()) p.reject(new Error('crypto worker exited'));
      this.pending.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', die);
  }
}

const MAX_WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));
const workers: PoolWorker[] = [];
let nextId = 1;

function pick(): PoolWorker {
  const idle = workers.find((w) => w.pending.size === 0);
  if (idle) return idle;
  if (workers.length < MAX_WORKERS) {
    const w = new PoolWorker((dead) => {
      const i = workers.indexOf(dead);
      if (i >= 0) workers.splice(i, 1);
    });
    workers.push(w);
    return w;
  }
  return workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
}

/** crypto.privateDecrypt(opts, data) off the event loop. Rejects with a plain Error
 * carrying no OpenSSL text; callers map it to the right CKR. */
export function privateDecryptOffloaded(opts: PrivateDecryptOptions, data: Buffer): Promise<Buffer> {
  const w = pick();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    w.pending.set(id, { resolve, reject });
    // A waiting caller must keep the process alive; an idle pool must not.
    w.worker.ref();
    w.worker.postMessage({ id, opts, data });
  });
}
