// graphene-pk11 (the object layer over pkcs11js named in the design card) against the module:
// token info, login, key generation, ECDSA/RSA-PSS sign+verify checked by node:crypto, AES-GCM
// with AAD, digest, random, object search and attribute rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, randomBytes, verify as nodeVerify, constants as cc, createDecipheriv } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { p11ok, SO_PIN, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
let mod: graphene.Module;
let session: graphene.Session;

beforeAll(async () => {
  d = await startDaemon();
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 'graphene', '--so-pin', SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
  process.env.CRATON_HSM_SOCKET = d.socketPath;
  mod = graphene.Module.load(d.modulePath, 'Craton');
  mod.initialize();
});
afterAll(async () => {
  try {
    session?.close();
    mod?.finalize();
  } catch {
    /* reported by the tests */
  }
  await d?.stop();
});

/** DER OCTET STRING (CKA_EC_POINT) → uncompressed point. */
function unwrapPoint(der: Buffer): Buffer {
  expect(der[0]).toBe(0x04);
  const len = der[1]!;
  expect(len).toBe(der.length - 2);
  return der.subarray(2);
}

describe.sequential('graphene-pk11', () => {
  it('module, slot and token info', () => {
    expect(mod.manufacturerID.trim()).not.toBe('');
    const slots = mod.getSlots(true);
    expect(slots.length).toBeGreaterThanOrEqual(1);
    const token = slots.items(0).getToken();
    expect(token.label.trim()).toBe('graphene');
    expect(token.flags & graphene.TokenFlag.TOKEN_INITIALIZED).toBeTruthy();
    expect(token.flags & graphene.TokenFlag.USER_PIN_INITIALIZED).toBeTruthy();
    expect(token.flags & graphene.TokenFlag.LOGIN_REQUIRED).toBeTruthy();
    expect(token.flags & graphene.TokenFlag.RNG).toBeTruthy();
    const mechs = slots.items(0).getMechanisms();
    const names: string[] = [];
    for (let i = 0; i < mechs.length; i++) names.push(mechs.items(i).name);
    for (const m of ['ECDSA_SHA256', 'SHA256_RSA_PKCS_PSS', 'AES_GCM', 'SHA256', 'EC_KEY_PAIR_GEN']) expect(names).toContain(m);
  });

  it('login: a wrong PIN is refused, the right one accepted', () => {
    session = mod.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    expect(() => session.login('999999')).toThrow(/CKR_PIN_INCORRECT/);
    session.login(USER_PIN);
    (session as unknown as { getInfo(): void }).getInfo(); // refreshes session.state
    expect(session.state).toBe(3); // CKS_RW_USER_FUNCTIONS
  });

  it('EC P-256: ECDSA_SHA256 signature verifies in graphene and in node:crypto', () => {
    const keys = session.generateKeyPair(
      graphene.KeyGenMechanism.EC,
      { keyType: graphene.KeyType.EC, token: false, verify: true, paramsEC: graphene.NamedCurve.getByName('secp256r1').value },
      { keyType: graphene.KeyType.EC, token: false, sign: true, private: true, sensitive: true },
    );
    const data = Buffer.from('graphene signs through Craton HSM');
    const sig = session.createSign('ECDSA_SHA256', keys.privateKey).once(data);
    expect(sig.length).toBe(64);
    expect(session.createVerify('ECDSA_SHA256', keys.publicKey).once(data, sig)).toBe(true);
    const point = unwrapPoint(keys.publicKey.getAttribute({ pointEC: null }).pointEC as Buffer);
    const pub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
    expect(nodeVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(nodeVerify('sha256', Buffer.from('other'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
    // The private value is sensitive: graphene surfaces CKR_ATTRIBUTE_SENSITIVE.
    expect(() => keys.privateKey.getAttribute({ value: null })).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
  });

  it('RSA-2048: SHA256_RSA_PKCS_PSS signature verifies in node:crypto', () => {
    const keys = session.generateKeyPair(
      graphene.KeyGenMechanism.RSA,
      { keyType: graphene.KeyType.RSA, token: false, verify: true, modulusBits: 2048, publicExponent: Buffer.from([1, 0, 1]) },
      { keyType: graphene.KeyType.RSA, token: false, sign: true, private: true, sensitive: true },
    );
    const data = randomBytes(200);
    const mech = { name: 'SHA256_RSA_PKCS_PSS', params: new graphene.RsaPssParams(graphene.MechanismEnum.SHA256, graphene.RsaMgf.MGF1_SHA256, 32) };
    const sig = session.createSign(mech, keys.privateKey).once(data);
    expect(sig.length).toBe(256);
    const { modulus, publicExponent } = keys.publicKey.getAttribute({ modulus: null, publicExponent: null });
    const pub = createPublicKey({ key: { kty: 'RSA', n: (modulus as Buffer).toString('base64url'), e: (publicExponent as Buffer).toString('base64url') }, format: 'jwk' });
    expect(nodeVerify('sha256', data, { key: pub, padding: cc.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)).toBe(true);
    expect(session.createVerify(mech, keys.publicKey).once(data, sig)).toBe(true);
  });

  it('AES-256-GCM with AAD (CK_GCM_PARAMS of PKCS#11 2.40) round-trips; node:crypto decrypts it', () => {
    const value = randomBytes(32);
    const key = session.create({ class: graphene.ObjectClass.SECRET_KEY, keyType: graphene.KeyType.AES, token: false, encrypt: true, decrypt: true, value }).toType<graphene.SecretKey>();
    const iv = randomBytes(12);
    const aad = Buffer.from('header');
    const pt = randomBytes(1000);
    const alg = { name: 'AES_GCM', params: new graphene.AesGcm240Params(iv, aad, 128) };
    const ct = session.createCipher(alg, key).once(pt, Buffer.alloc(pt.length + 16));
    expect(ct.length).toBe(pt.length + 16);
    const dec = createDecipheriv('aes-256-gcm', value, iv);
    dec.setAAD(aad);
    dec.setAuthTag(ct.subarray(pt.length));
    expect(Buffer.concat([dec.update(ct.subarray(0, pt.length)), dec.final()]).equals(pt)).toBe(true);
    const back = session.createDecipher(alg, key).once(ct, Buffer.alloc(ct.length));
    expect(back.equals(pt)).toBe(true);
    const tampered = Buffer.from(ct);
    tampered[3]! ^= 1;
    expect(() => session.createDecipher(alg, key).once(tampered, Buffer.alloc(ct.length))).toThrow(/CKR_ENCRYPTED_DATA_INVALID/);
  });

  it('AES key generation, SHA-256 digest and random', () => {
    const key = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 32, token: false, encrypt: true, decrypt: true });
    expect(key.getAttribute({ valueLen: null }).valueLen).toBe(32);
    expect(key.getAttribute({ local: null }).local).toBe(true);
    const data = randomBytes(5000);
    expect(session.createDigest('SHA256').once(data).equals(createHash('sha256').update(data).digest())).toBe(true);
    const a = session.generateRandom(32);
    const b = session.generateRandom(32);
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(false);
  });

  it('find: session objects by class; logout hides private keys', () => {
    const priv = session.find({ class: graphene.ObjectClass.PRIVATE_KEY });
    expect(priv.length).toBe(2);
    const pub = session.find({ class: graphene.ObjectClass.PUBLIC_KEY });
    expect(pub.length).toBe(2);
    session.logout();
    expect(session.find({ class: graphene.ObjectClass.PRIVATE_KEY }).length).toBe(0);
    expect(session.find({ class: graphene.ObjectClass.PUBLIC_KEY }).length).toBe(2);
  });
});
