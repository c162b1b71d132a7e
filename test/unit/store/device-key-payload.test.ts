// The source's device key in a backup payload (store/backup-payload.ts, version 2) and the
// re-seal of device-sealed objects under another host's key (store/object-seal.ts).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PayloadError, decodePayload, encodePayload, type BackupPayload } from '../../../hsm-daemon/src/store/backup-payload.js';
import { ResealError, objectAad, openObjectBody, resealDeviceObjects, sealObjectBody } from '../../../hsm-daemon/src/store/object-seal.js';
import type { TokenRecord } from '../../../hsm-daemon/src/store/token-file.js';

const SECRET = Buffer.from('{"attrs":{"11":"c2VjcmV0IGtleSB2YWx1ZQ=="},"arrays":{}}');

function record(deviceKey: Buffer, sealSlot?: number): TokenRecord {
  const slot = sealSlot ?? 0;
  return {
    format: 1,
    slot: 0,
    initialized: true,
    label: 'unit',
    serial: '0123456789ABCDEF',
    so: { salt: 'AA==', iterations: 1000, verifier: 'AA==', wrappedTokenKey: 'AA==' },
    user: null,
    failedLogins: { so: 0, user: 0 },
    objects: [
      { uid: 'pub', clear: { '0': 'BAAAAAAAAAA=' }, private: false, sealed: sealObjectBody(deviceKey, 'device', slot, 'pub', SECRET), sealKey: 'device' },
      { uid: 'priv', clear: {}, private: true, sealed: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    ],
    ...(sealSlot !== undefined ? { sealSlot } : {}),
  };
}

const payload = (token: TokenRecord): BackupPayload => ({ token, gcm: { limit: 100, counters: [] }, auditKeyId: null });

describe('device key in the backup payload', () => {
  it('follows the audit key as raw bytes (version 2) and comes back as a view into the payload', () => {
    const dk = randomBytes(32);
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    const p = { ...payload(record(dk)), auditKeyId: 'a'.repeat(64) };
    const bytes = encodePayload(p, der, dk);
    const json = JSON.parse(bytes.subarray(4, 4 + bytes.readUInt32BE(0)).toString('utf8'));
    expect(json).toMatchObject({ version: 2, device_key: { bytes: 32 } });
    expect(JSON.stringify(json)).not.toContain(dk.toString('base64'));
    const d = decodePayload(bytes, { maxObjects: 10 });
    expect(d.payload).toEqual(p);
    expect(d.auditKeyDer).toEqual(der);
    expect(d.deviceKey).toEqual(dk);
    bytes.fill(0);
    expect(d.deviceKey!.every((b) => b === 0)).toBe(true);
  });

  it('a payload without one stays version 1, as older daemons wrote it', () => {
    const p = payload({ ...record(randomBytes(32)), objects: [] });
    const bytes = encodePayload(p, null);
    expect(JSON.parse(bytes.subarray(4, 4 + bytes.readUInt32BE(0)).toString('utf8')).version).toBe(1);
    expect(decodePayload(bytes, { maxObjects: 10 })).toEqual({ payload: p, auditKeyDer: null, deviceKey: null });
  });

  it('refuses device-sealed objects without the key, a private object under the device key, a short key', () => {
    const dk = randomBytes(32);
    expect(() => decodePayload(encodePayload(payload(record(dk)), null), { maxObjects: 10 })).toThrow(/device key but not that key/);
    const priv = record(dk);
    priv.objects[0]!.private = true;
    expect(() => decodePayload(encodePayload(payload(priv), null, dk), { maxObjects: 10 })).toThrow(PayloadError);
    const bytes = encodePayload(payload(record(dk)), null, dk);
    expect(() => decodePayload(bytes.subarray(0, bytes.length - 1), { maxObjects: 10 })).toThrow(PayloadError);
  });
});

describe('resealDeviceObjects', () => {
  it('moves device-sealed objects from one key to another, bound to the same slot; others untouched', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const rec = record(a, 3);
    const out = resealDeviceObjects(rec, a, b);
    expect(out.objects[1]).toBe(rec.objects[1]);
    expect(rec.objects[0]!.sealed).not.toBe(out.objects[0]!.sealed); // the input is not changed
    expect(openObjectBody(b, out.objects[0]!, 3)).toEqual(SECRET);
    expect(openObjectBody(a, out.objects[0]!, 3)).toBeNull();
    expect(openObjectBody(b, out.objects[0]!, 0)).toBeNull();
  });

  it('check mode (no target key) verifies only; a key that does not open a blob is refused', () => {
    const a = randomBytes(32);
    const rec = record(a);
    expect(resealDeviceObjects(rec, a, null)).toEqual(rec);
    expect(() => resealDeviceObjects(rec, randomBytes(32), null)).toThrow(ResealError);
    expect(() => resealDeviceObjects(rec, null, null)).toThrow(/does not hold/);
  });

  it('the two key domains have distinct AADs', () => {
    expect(objectAad('token', 0, 'x')).toBe('craton-hsm/object/v1/slot-0/x'); // unchanged for existing stores
    expect(objectAad('device', 0, 'x')).not.toBe(objectAad('token', 0, 'x'));
  });
});
