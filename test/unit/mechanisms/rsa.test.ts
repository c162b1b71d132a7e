import { execFileSync } from 'node:child_process';
import { constants, createHash, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, sign, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RsaFamily } from '../../../hsm-daemon/src/mechanisms/rsa.js';
import { readUlong, ulongAttr } from '../../../hsm-daemon/src/mechanisms/attrs.js';
import { digestInfo, hashByName } from '../../../hsm-daemon/src/mechanisms/common.js';
import { CKA, CKF, CKG, CKK, CKM, CKO, CKR, CKZ } from '../../../hsm-daemon/src/pkcs11/constants.generated.js';
import type { AttrMap, KeyRef, MechanismParam } from '../../../hsm-daemon/src/mechanisms/types.js';
import { expectRv, keyRef, mech, multiPart, objectFrom, secretKey } from './helpers.js';

const fam = new RsaFamily();
const pss = (hashAlg: number, mgf: number, saltLen: number): MechanismParam => ({ kind: 'pss', hashAlg, mgf, saltLen });
const oaep = (hashAlg: number, mgf: number, label: Buffer = Buffer.alloc(0)): MechanismParam => ({ kind: 'oaep', hashAlg, mgf, source: CKZ.DATA_SPECIFIED, sourceData: label });

let pub: KeyRef;
let priv: KeyRef;
let pubAttrs: AttrMap;
let privAttrs: AttrMap;
let nodePub: KeyObject;
let nodePriv: KeyObject;
const K = 256;

beforeAll(async () => {
  const { publicKey, privateKey } = await fam.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), new Map([[CKA.MODULUS_BITS, ulongAttr(2048)]]), new Map());
  pubAttrs = publicKey;
  privAttrs = privateKey;
  pub = objectFrom(publicKey, CKO.PUBLIC_KEY);
  priv = objectFrom(privateKey, CKO.PRIVATE_KEY);
  const b = (a: number): string => privateKey.get(a)!.toString('base64url');
  const jwk = { kty: 'RSA', n: b(CKA.MODULUS), e: b(CKA.PUBLIC_EXPONENT) };
  nodePub = createPublicKey({ key: jwk, format: 'jwk' });
  nodePriv = createPrivateKey({
    key: { ...jwk, d: b(CKA.PRIVATE_EXPONENT), p: b(CKA.PRIME_1), q: b(CKA.PRIME_2), dp: b(CKA.EXPONENT_1), dq: b(CKA.EXPONENT_2), qi: b(CKA.COEFFICIENT) },
    format: 'jwk',
  });
});

describe('RSA key generation', () => {
  it('sets the public and private components', () => {
    expect(readUlong(pubAttrs.get(CKA.KEY_TYPE)!)).toBe(CKK.RSA);
    expect(readUlong(pubAttrs.get(CKA.MODULUS_BITS)!)).toBe(2048);
    expect(pubAttrs.get(CKA.MODULUS)).toHaveLength(256);
    expect(pubAttrs.get(CKA.PUBLIC_EXPONENT)!.toString('hex')).toBe('010001');
    for (const a of [CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT])
      expect(privAttrs.get(a)!.length).toBeGreaterThan(0);
    expect(nodePriv.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
  it('honours CKA_PUBLIC_EXPONENT and refuses bad sizes/exponents', async () => {
    const { publicKey } = await fam.generateKeyPair(
      mech(CKM.RSA_PKCS_KEY_PAIR_GEN),
      new Map([[CKA.MODULUS_BITS, ulongAttr(3072)], [CKA.PUBLIC_EXPONENT, Buffer.from([0x01, 0x00, 0x03])]]),
      new Map(),
    );
    expect(publicKey.get(CKA.PUBLIC_EXPONENT)!.toString('hex')).toBe('010003');
    expect(publicKey.get(CKA.MODULUS)).toHaveLength(384);
    await expectRv(() => fam.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), new Map([[CKA.MODULUS_BITS, ulongAttr(1024)]]), new Map()), CKR.KEY_SIZE_RANGE);
    await expectRv(() => fam.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), new Map(), new Map()), CKR.TEMPLATE_INCOMPLETE);
    await expectRv(
      () => fam.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), new Map([[CKA.MODULUS_BITS, ulongAttr(2048)], [CKA.PUBLIC_EXPONENT, Buffer.from([0x01, 0x00, 0x00])]]), new Map()),
      CKR.ATTRIBUTE_VALUE_INVALID,
    );
  });
});

// One table for every signature mechanism: how node verifies/produces the same thing.
interface SigCase {
  name: string;
  type: number;
  param?: MechanismParam;
  /** What the token is given: the message for hashed mechanisms, else a pre-hash. */
  input: (msg: Buffer) => Buffer;
  nodeVerify: (msg: Buffer, sig: Buffer) => boolean;
  nodeSign?: (msg: Buffer) => Buffer;
  multiPart: boolean;
}
const pkcs1 = { padding: constants.RSA_PKCS1_PADDING };
const pssOpt = (saltLength: number) => ({ padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
const hashed = (h: string, type: number): SigCase => ({
  name: `${h} PKCS#1 v1.5`,
  type,
  input: (m) => m,
  nodeVerify: (m, s) => verify(h, m, { key: nodePub, ...pkcs1 }, s),
  nodeSign: (m) => sign(h, m, { key: nodePriv, ...pkcs1 }),
  multiPart: true,
});
const hashedPss = (h: string, type: number, hashAlg: number, mgf: number, salt: number): SigCase => ({
  name: `${h} PSS salt ${salt}`,
  type,
  param: pss(hashAlg, mgf, salt),
  input: (m) => m,
  nodeVerify: (m, s) => verify(h, m, { key: nodePub, ...pssOpt(salt) }, s),
  nodeSign: (m) => sign(h, m, { key: nodePriv, ...pssOpt(salt) }),
  multiPart: true,
});
const SIGS: SigCase[] = [
  hashed('sha1', CKM.SHA1_RSA_PKCS),
  hashed('sha224', CKM.SHA224_RSA_PKCS),
  hashed('sha256', CKM.SHA256_RSA_PKCS),
  hashed('sha384', CKM.SHA384_RSA_PKCS),
  hashed('sha512', CKM.SHA512_RSA_PKCS),
  hashed('sha3-256', CKM.SHA3_256_RSA_PKCS),
  hashedPss('sha224', CKM.SHA224_RSA_PKCS_PSS, CKM.SHA224, CKG.MGF1_SHA224, 28),
  hashedPss('sha256', CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256, CKG.MGF1_SHA256, 32),
  hashedPss('sha256', CKM.SHA256_RSA_PKCS_PSS, CKM.SHA256, CKG.MGF1_SHA256, 0),
  hashedPss('sha384', CKM.SHA384_RSA_PKCS_PSS, CKM.SHA384, CKG.MGF1_SHA384, 48),
  hashedPss('sha512', CKM.SHA512_RSA_PKCS_PSS, CKM.SHA512, CKG.MGF1_SHA512, 64),
  {
    name: 'raw RSA_PKCS over a SHA-256 DigestInfo',
    type: CKM.RSA_PKCS,
    input: (m) => digestInfo(hashByName('sha256'), createHash('sha256').update(m).digest()),
    nodeVerify: (m, s) => verify('sha256', m, { key: nodePub, ...pkcs1 }, s),
    nodeSign: (m) => sign('sha256', m, { key: nodePriv, ...pkcs1 }),
    multiPart: true,
  },
  {
    name: 'raw RSA_PKCS_PSS over a SHA-256 digest',
    type: CKM.RSA_PKCS_PSS,
    param: pss(CKM.SHA256, CKG.MGF1_SHA256, 32),
    input: (m) => createHash('sha256').update(m).digest(),
    nodeVerify: (m, s) => verify('sha256', m, { key: nodePub, ...pssOpt(32) }, s),
    nodeSign: (m) => sign('sha256', m, { key: nodePriv, ...pssOpt(32) }),
    multiPart: false,
  },
  {
    name: 'raw RSA_PKCS_PSS, SHA-384 digest with canonical raw params',
    type: CKM.RSA_PKCS_PSS,
    param: { kind: 'bytes', data: Buffer.concat([ulongAttr(CKM.SHA384), ulongAttr(CKG.MGF1_SHA384), ulongAttr(20)]) },
    input: (m) => createHash('sha384').update(m).digest(),
    nodeVerify: (m, s) => verify('sha384', m, { key: nodePub, ...pssOpt(20) }, s),
    multiPart: false,
  },
  {
    name: 'raw RSA_X_509',
    type: CKM.RSA_X_509,
    input: (m) => createHash('sha256').update(m).digest(),
    nodeVerify: (m, s) => publicEncrypt({ key: nodePub, padding: constants.RSA_NO_PADDING }, s).equals(Buffer.concat([Buffer.alloc(K - 32), createHash('sha256').update(m).digest()])),
    multiPart: true,
  },
];

describe.each(SIGS)('RSA signature: $name', (c) => {
  const msg = Buffer.from('attack at dawn, '.repeat(20));
  it('signs; node verifies; we verify; multi-part equals single-part where deterministic', async () => {
    const input = c.input(msg);
    const sig = await fam.createOperation('sign', mech(c.type, c.param), priv).oneShot(input);
    expect(sig).toHaveLength(K);
    expect(c.nodeVerify(msg, sig)).toBe(true);
    expect(await fam.createOperation('verify', mech(c.type, c.param), pub).oneShot(input, sig)).toHaveLength(0);
    if (c.multiPart) {
      const sig2 = await multiPart(fam.createOperation('sign', mech(c.type, c.param), priv), input);
      expect(c.nodeVerify(msg, sig2)).toBe(true);
      expect(await multiPart(fam.createOperation('verify', mech(c.type, c.param), pub), input, sig)).toHaveLength(0);
    }
  });
  it('verifies node-made signatures, and reports bad ones exactly', async () => {
    const input = c.input(msg);
    const sig = c.nodeSign ? c.nodeSign(msg) : await fam.createOperation('sign', mech(c.type, c.param), priv).oneShot(input);
    expect(await fam.createOperation('verify', mech(c.type, c.param), pub).oneShot(input, sig)).toHaveLength(0);
    const bad = Buffer.from(sig);
    bad[10]! ^= 1;
    await expectRv(() => fam.createOperation('verify', mech(c.type, c.param), pub).oneShot(input, bad), CKR.SIGNATURE_INVALID);
    await expectRv(() => fam.createOperation('verify', mech(c.type, c.param), pub).oneShot(input, sig.subarray(1)), CKR.SIGNATURE_LEN_RANGE);
    await expectRv(() => fam.createOperation('verify', mech(c.type, c.param), pub).oneShot(input, Buffer.alloc(K, 0xff)), CKR.SIGNATURE_INVALID);
  });
});

describe('RSA signature errors', () => {
  it('RSA_PKCS input longer than k-11 is DATA_LEN_RANGE', async () => {
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_PKCS), priv).oneShot(Buffer.alloc(K - 10)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_X_509), priv).oneShot(Buffer.alloc(K + 1)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_X_509), priv).oneShot(Buffer.alloc(K, 0xff)), CKR.DATA_LEN_RANGE);
  });
  it('PSS parameters are validated', async () => {
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_PKCS_PSS), priv), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(CKM.SHA256_RSA_PKCS_PSS, pss(CKM.SHA384, CKG.MGF1_SHA384, 32)), priv), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, 0x99, 32)), priv), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32)), priv).oneShot(Buffer.alloc(20)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('sign', mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 300)), priv).oneShot(Buffer.alloc(32)), CKR.MECHANISM_PARAM_INVALID);
  });
  it('PSS with an MGF hash different from the message hash', async () => {
    const p = pss(CKM.SHA256, CKG.MGF1_SHA1, 32);
    const digest = createHash('sha256').update('m').digest();
    const sig = await fam.createOperation('sign', mech(CKM.RSA_PKCS_PSS, p), priv).oneShot(digest);
    expect(await fam.createOperation('verify', mech(CKM.RSA_PKCS_PSS, p), pub).oneShot(digest, sig)).toHaveLength(0);
    await expectRv(() => fam.createOperation('verify', mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32)), pub).oneShot(digest, sig), CKR.SIGNATURE_INVALID);
  });
  it('key type and key class are checked', async () => {
    await expectRv(() => fam.createOperation('sign', mech(CKM.SHA256_RSA_PKCS), pub), CKR.KEY_TYPE_INCONSISTENT);
    await expectRv(() => fam.createOperation('sign', mech(CKM.SHA256_RSA_PKCS), secretKey(Buffer.alloc(16))), CKR.KEY_TYPE_INCONSISTENT);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.SHA256_RSA_PKCS), pub), CKR.MECHANISM_INVALID);
  });
  it('a modulus below 2048 bits is KEY_SIZE_RANGE', async () => {
    const small = keyRef(new Map([[CKA.CLASS, ulongAttr(CKO.PUBLIC_KEY)], [CKA.KEY_TYPE, ulongAttr(CKK.RSA)], [CKA.MODULUS, Buffer.alloc(128, 0xcb)], [CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1])]]));
    await expectRv(() => fam.createOperation('verify', mech(CKM.SHA256_RSA_PKCS), small), CKR.KEY_SIZE_RANGE);
  });
});

describe('RSA signatures against the openssl CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'craton-rsa-'));
    writeFileSync(join(dir, 'pub.pem'), nodePub.export({ type: 'spki', format: 'pem' }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it.each([
    ['PKCS#1 v1.5', CKM.SHA256_RSA_PKCS, undefined, []],
    ['PSS', CKM.SHA256_RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32), ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32']],
  ] as Array<[string, number, MechanismParam | undefined, string[]]>)('%s verifies with openssl dgst', async (_n, type, param, opts) => {
    const msg = Buffer.from('verified by an independent implementation');
    writeFileSync(join(dir, 'msg'), msg);
    writeFileSync(join(dir, 'sig'), await fam.createOperation('sign', mech(type, param), priv).oneShot(msg));
    const out = execFileSync('openssl', ['dgst', '-sha256', ...opts, '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig'), join(dir, 'msg')]).toString();
    expect(out).toContain('Verified OK');
  });
});

describe('RSA encryption', () => {
  const OAEPS: Array<[string, number, number, string, Buffer<ArrayBufferLike>]> = [
    ['SHA-1', CKM.SHA_1, CKG.MGF1_SHA1, 'sha1', Buffer.alloc(0)],
    ['SHA-256', CKM.SHA256, CKG.MGF1_SHA256, 'sha256', Buffer.from('label')],
    ['SHA-384', CKM.SHA384, CKG.MGF1_SHA384, 'sha384', Buffer.alloc(0)],
    ['SHA-512', CKM.SHA512, CKG.MGF1_SHA512, 'sha512', Buffer.from('another label')],
  ];
  it.each(OAEPS)('OAEP %s round-trips with node both ways', async (_n, h, mgf, node, label) => {
    const p = oaep(h, mgf, label);
    const data = Buffer.from('a secret key value');
    const c = await fam.createOperation('encrypt', mech(CKM.RSA_PKCS_OAEP, p), pub).oneShot(data);
    expect(privateDecrypt({ key: nodePriv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: node, oaepLabel: label }, c)).toEqual(data);
    const nc = publicEncrypt({ key: nodePub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: node, oaepLabel: label }, data);
    expect(await fam.createOperation('decrypt', mech(CKM.RSA_PKCS_OAEP, p), priv).oneShot(nc)).toEqual(data);
    expect(await multiPart(fam.createOperation('decrypt', mech(CKM.RSA_PKCS_OAEP, p), priv), nc)).toEqual(data);
    const hLen = hashByName(node).len;
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.RSA_PKCS_OAEP, p), pub).oneShot(Buffer.alloc(K - 2 * hLen - 1)), CKR.DATA_LEN_RANGE);
    const wrongLabel = oaep(h, mgf, Buffer.from('x'));
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.RSA_PKCS_OAEP, wrongLabel), priv).oneShot(nc), CKR.ENCRYPTED_DATA_INVALID);
  });
  it('OAEP parameter checks', async () => {
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.RSA_PKCS_OAEP), pub), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA1)), pub), CKR.MECHANISM_PARAM_INVALID);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.RSA_PKCS_OAEP, oaep(CKM.MD5, CKG.MGF1_SHA1)), pub), CKR.MECHANISM_PARAM_INVALID);
  });
  it('PKCS#1 v1.5 round-trips with node, rejects bad input exactly', async () => {
    const data = Buffer.from('sixteen byte key');
    const c = await fam.createOperation('encrypt', mech(CKM.RSA_PKCS), pub).oneShot(data);
    expect(await fam.createOperation('decrypt', mech(CKM.RSA_PKCS), priv).oneShot(c)).toEqual(data);
    const nc = publicEncrypt({ key: nodePub, padding: constants.RSA_PKCS1_PADDING }, data);
    expect(await fam.createOperation('decrypt', mech(CKM.RSA_PKCS), priv).oneShot(nc)).toEqual(data);
    await expectRv(() => fam.createOperation('encrypt', mech(CKM.RSA_PKCS), pub).oneShot(Buffer.alloc(K - 10)), CKR.DATA_LEN_RANGE);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.RSA_PKCS), priv).oneShot(c.subarray(1)), CKR.ENCRYPTED_DATA_LEN_RANGE);
    // A raw block without 00 02 padding decrypts to garbage: the padding check fails.
    const junk = publicEncrypt({ key: nodePub, padding: constants.RSA_NO_PADDING }, Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(K - 2, 0x44)]));
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.RSA_PKCS), priv).oneShot(junk), CKR.ENCRYPTED_DATA_INVALID);
    await expectRv(() => fam.createOperation('decrypt', mech(CKM.RSA_PKCS), priv).oneShot(Buffer.alloc(K, 0xff)), CKR.ENCRYPTED_DATA_INVALID);
  });
  it('X.509 raw round-trips (left-padded block)', async () => {
    const data = Buffer.from('raw');
    const c = await fam.createOperation('encrypt', mech(CKM.RSA_X_509), pub).oneShot(data);
    const d = await fam.createOperation('decrypt', mech(CKM.RSA_X_509), priv).oneShot(c);
    expect(d).toEqual(Buffer.concat([Buffer.alloc(K - 3), data]));
  });
  it.each([
    ['OAEP', CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA256)],
    ['PKCS#1 v1.5', CKM.RSA_PKCS, undefined],
  ] as Array<[string, number, MechanismParam | undefined]>)('%s wraps and unwraps a secret key', async (_n, type, p) => {
    const target = secretKey(Buffer.alloc(32, 0x77));
    const w = await fam.wrap(mech(type, p), pub, target);
    expect((await fam.unwrap(mech(type, p), priv, w, new Map())).get(CKA.VALUE)).toEqual(Buffer.alloc(32, 0x77));
    await expectRv(() => fam.unwrap(mech(type, p), priv, w.subarray(1), new Map()), CKR.WRAPPED_KEY_LEN_RANGE);
    await expectRv(() => fam.wrap(mech(type, p), secretKey(Buffer.alloc(16)), target), CKR.WRAPPING_KEY_TYPE_INCONSISTENT);
  });
  it('mechanism info: bits, flags', () => {
    const gen = fam.mechanisms().find((m) => m.type === CKM.RSA_PKCS_KEY_PAIR_GEN)!;
    expect(gen).toEqual({ type: CKM.RSA_PKCS_KEY_PAIR_GEN, minKeySize: 2048, maxKeySize: 4096, flags: CKF.GENERATE_KEY_PAIR });
    const oaepInfo = fam.mechanisms().find((m) => m.type === CKM.RSA_PKCS_OAEP)!;
    expect(oaepInfo.flags).toBe(CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP);
  });
});
