// Worker thread for raw ECDSA verification (public data only). Keeps a small
// per-key table cache so repeated verifies with one key reuse precomputation.
import { parentPort } from 'node:worker_threads';
import { CURVES, ecVerifyKey, ecdsaVerifyDigestSync, type EcVerifyKey } from './ecmath.js';

const MAX_KEYS = 64;
const keys = new Map<string, EcVerifyKey>();

interface Req {
  id: number;
  curve: string;
  x: string;
  y: string;
  digest: Uint8Array;
  sig: Uint8Array;
}

parentPort?.on('message', (m: Req) => {
  let ok = false;
  try {
    const c = CURVES.find((k) => k.name === m.curve);
    if (c) {
      const tag = `${m.curve}:${m.x}:${m.y}`;
      let vk = keys.get(tag);
      if (vk) keys.delete(tag);
      else vk = ecVerifyKey(c, BigInt('0x' + m.x), BigInt('0x' + m.y));
      keys.set(tag, vk); // most recently used last
      if (keys.size > MAX_KEYS) keys.delete(keys.keys().next().value!);
      const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
      ok = ecdsaVerifyDigestSync(vk, buf(m.digest), buf(m.sig));
    }
  } catch {
    ok = false;
  }
  parentPort!.postMessage({ id: m.id, ok });
});
