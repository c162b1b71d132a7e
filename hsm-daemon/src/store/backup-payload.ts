// What a token backup holds once decrypted (docs/backup.md "Payload"):
//
//   JSON length (u32 BE) | JSON (UTF-8) | audit checkpoint key, PKCS#8 DER (may be empty)
//     | source device key, 32 bytes (version 2 only)
//
// The JSON carries the token record exactly as the token file stores it (private objects
// sealed under the token key, secret attributes of public objects under the source's
// device key, PIN verifiers and the wrapped token key as they are) and the token keys' GCM
// counters. The keys sit after the JSON as raw bytes so each lives in one Buffer that can
// be zeroed, never in a JS string. The device key is there only when the record holds
// device-sealed objects (the restore re-seals them under the target's device key); such a
// payload is version 2, so an older daemon refuses it by its version instead of misreading
// it. Version 1 payloads (no device key) are still read.
// decodePayload checks every field a restore will use, so a restore can validate
// everything before it changes anything.
import type { PinRecord, StoredObject, TokenRecord } from './token-file.js';

export const PAYLOAD_FORMAT = 'craton-hsm-backup-payload';
export const PAYLOAD_VERSION = 2;
/** Written when the payload carries no device key, so older daemons can read it. */
const PAYLOAD_VERSION_NO_DEVICE_KEY = 1;
const DEVICE_KEY_BYTES = 32;

export interface BackedUpCounter {
  /** Object uid (the counter file's `slot-<n>/<uid>` without the slot). */
  uid: string;
  /** The durable reservation mark: no invocation at or above it was ever handed out. */
  reserved: number;
  alerted: number;
}

export interface BackupPayload {
  token: TokenRecord;
  gcm: { limit: number; counters: BackedUpCounter[] };
  /** key_id of the audit checkpoint key that follows the JSON; null when there is none. */
  auditKeyId: string | null;
}

interface PayloadJson {
  format: typeof PAYLOAD_FORMAT;
  version: number;
  token: TokenRecord;
  gcm: { limit: number; counters: BackedUpCounter[] };
  audit_key: { key_id: string; pkcs8_bytes: number } | null;
  /** Version 2: the source's device key follows the audit key. */
  device_key?: { bytes: number };
}

/** The payload bytes; the caller zeroes them after encrypting. */
export function encodePayload(p: BackupPayload, auditKeyDer: Buffer | null, deviceKey: Buffer | null = null): Buffer {
  if (deviceKey && deviceKey.length !== DEVICE_KEY_BYTES) throw new Error(`device key: expected ${DEVICE_KEY_BYTES} bytes`);
  const json: PayloadJson = {
    format: PAYLOAD_FORMAT,
    version: deviceKey ? PAYLOAD_VERSION : PAYLOAD_VERSION_NO_DEVICE_KEY,
    token: p.token,
    gcm: p.gcm,
    audit_key: auditKeyDer && p.auditKeyId ? { key_id: p.auditKeyId, pkcs8_bytes: auditKeyDer.length } : null,
    ...(deviceKey ? { device_key: { bytes: deviceKey.length } } : {}),
  };
  const body = Buffer.from(JSON.stringify(json), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body, auditKeyDer ?? Buffer.alloc(0), deviceKey ?? Buffer.alloc(0)]);
}

export class PayloadError extends Error {
  constructor(message: string) {
    super(`the backup's content is not a valid token backup: ${message}`);
    this.name = 'PayloadError';
  }
}

const UID = /^[0-9A-Za-z_-]{1,128}$/;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isB64 = (v: unknown): v is string => isStr(v) && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkPin(v: unknown, what: string): PinRecord | null {
  if (v === null) return null;
  if (!isObj(v) || !isB64(v.salt) || !isCount(v.iterations) || v.iterations < 1 || !isB64(v.verifier) || !isB64(v.wrappedTokenKey)) {
    throw new PayloadError(`${what} PIN record is malformed`);
  }
  return { salt: v.salt, iterations: v.iterations, verifier: v.verifier, wrappedTokenKey: v.wrappedTokenKey };
}

function checkObject(v: unknown, i: number): StoredObject {
  if (!isObj(v) || !isStr(v.uid) || !UID.test(v.uid) || !isObj(v.clear) || typeof v.private !== 'boolean') throw new PayloadError(`object #${i} is malformed`);
  for (const [t, val] of Object.entries(v.clear)) if (!/^[0-9a-f]{1,8}$/.test(t) || !isB64(val)) throw new PayloadError(`object ${v.uid}: attribute ${t} is malformed`);
  if (v.sealed !== undefined && !isB64(v.sealed)) throw new PayloadError(`object ${v.uid}: sealed part is malformed`);
  if (v.sealKey !== undefined && (v.sealKey !== 'device' || v.private || v.sealed === undefined)) {
    throw new PayloadError(`object ${v.uid}: sealKey is malformed (only a public object's sealed part can be under the device key)`);
  }
  const o: StoredObject = { uid: v.uid, clear: v.clear as Record<string, string>, private: v.private };
  if (v.sealed !== undefined) o.sealed = v.sealed;
  if (v.sealKey === 'device') o.sealKey = 'device';
  return o;
}

function checkToken(v: unknown, maxObjects: number): TokenRecord {
  if (!isObj(v) || v.format !== 1) throw new PayloadError('token record has an unknown format');
  if (!isCount(v.slot) || typeof v.initialized !== 'boolean' || !isStr(v.label) || !isStr(v.serial)) throw new PayloadError('token record header is malformed');
  if (!v.initialized) throw new PayloadError('the backed-up token was not initialised');
  if (Buffer.byteLength(v.label, 'utf8') > 32 || !/^[0-9A-Za-z]{1,16}$/.test(v.serial)) throw new PayloadError('token label or serial is malformed');
  const fl = v.failedLogins;
  if (!isObj(fl) || !isCount(fl.so) || !isCount(fl.user)) throw new PayloadError('failed-login counters are malformed');
  if (v.sealSlot !== undefined && !isCount(v.sealSlot)) throw new PayloadError('sealSlot is malformed');
  if (!Array.isArray(v.objects)) throw new PayloadError('objects are missing');
  if (v.objects.length > maxObjects) throw new PayloadError(`${v.objects.length} objects exceed this daemon's [limits] max_objects_per_token (${maxObjects})`);
  const so = checkPin(v.so, 'SO');
  if (!so) throw new PayloadError('the SO PIN record is missing');
  const objects = v.objects.map(checkObject);
  if (new Set(objects.map((o) => o.uid)).size !== objects.length) throw new PayloadError('two objects share a uid');
  const rec: TokenRecord = {
    format: 1,
    slot: v.slot,
    initialized: true,
    label: v.label,
    serial: v.serial,
    so,
    user: checkPin(v.user, 'user'),
    failedLogins: { so: fl.so, user: fl.user },
    objects,
  };
  if (v.sealSlot !== undefined) rec.sealSlot = v.sealSlot;
  return rec;
}

/**
 * Parses and checks a decrypted payload. `auditKeyDer` and `deviceKey` are views into
 * `plain` (zero `plain` when done, which zeroes them too).
 */
export function decodePayload(
  plain: Buffer,
  limits: { maxObjects: number },
): { payload: BackupPayload; auditKeyDer: Buffer | null; deviceKey: Buffer | null } {
  if (plain.length < 4) throw new PayloadError('too short');
  const n = plain.readUInt32BE(0);
  if (4 + n > plain.length) throw new PayloadError('length field out of range');
  let j: unknown;
  try {
    j = JSON.parse(plain.subarray(4, 4 + n).toString('utf8'));
  } catch {
    throw new PayloadError('not JSON');
  }
  if (!isObj(j) || j.format !== PAYLOAD_FORMAT) throw new PayloadError('unknown payload format');
  if (j.version !== PAYLOAD_VERSION && j.version !== PAYLOAD_VERSION_NO_DEVICE_KEY) throw new PayloadError(`payload version ${String(j.version)} is not supported`);
  const token = checkToken(j.token, limits.maxObjects);
  const g = j.gcm;
  if (!isObj(g) || !isCount(g.limit) || !Array.isArray(g.counters)) throw new PayloadError('GCM counters are malformed');
  const uids = new Set(token.objects.map((o) => o.uid));
  const counters: BackedUpCounter[] = g.counters.map((c: unknown) => {
    if (!isObj(c) || !isStr(c.uid) || !UID.test(c.uid) || !isCount(c.reserved) || !isCount(c.alerted)) throw new PayloadError('a GCM counter is malformed');
    if (!uids.has(c.uid)) throw new PayloadError(`GCM counter for ${c.uid}, which is not an object of the token`);
    return { uid: c.uid, reserved: c.reserved, alerted: c.alerted };
  });
  let rest = plain.subarray(4 + n);
  let deviceKey: Buffer | null = null;
  const dk = j.device_key;
  if (j.version === PAYLOAD_VERSION_NO_DEVICE_KEY) {
    if (dk !== undefined) throw new PayloadError('a version 1 payload carries no device key');
  } else {
    if (!isObj(dk) || dk.bytes !== DEVICE_KEY_BYTES || rest.length < DEVICE_KEY_BYTES) throw new PayloadError('the device key is malformed');
    deviceKey = rest.subarray(rest.length - DEVICE_KEY_BYTES);
    rest = rest.subarray(0, rest.length - DEVICE_KEY_BYTES);
  }
  if (!deviceKey && token.objects.some((o) => o.sealKey === 'device')) {
    throw new PayloadError("it holds public objects sealed under the source's device key but not that key");
  }
  const ak = j.audit_key;
  let auditKeyId: string | null = null;
  let auditKeyDer: Buffer | null = null;
  if (ak === null) {
    if (rest.length !== 0) throw new PayloadError('unexpected bytes after the JSON');
  } else {
    if (!isObj(ak) || !isStr(ak.key_id) || !/^[0-9a-f]{64}$/.test(ak.key_id) || ak.pkcs8_bytes !== rest.length || rest.length === 0) {
      throw new PayloadError('the audit checkpoint key is malformed');
    }
    auditKeyId = ak.key_id;
    auditKeyDer = rest;
  }
  return { payload: { token, gcm: { limit: g.limit, counters }, auditKeyId }, auditKeyDer, deviceKey };
}
