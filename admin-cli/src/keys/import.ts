// Key and certificate files → PKCS#11 object templates for the daemon's `key.import`
// (docs/admin.md "key import"). Reads PEM (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8, SPKI,
// certificates, several blocks in one file), DER of the same, PKCS#12 (node-forge opens the
// container; node:crypto parses what is inside, since forge knows only RSA keys) and raw
// AES / generic secrets. Attribute values are the daemon's canonical encodings
// (pkcs11/values.ts), and keys are represented exactly as the daemon represents keys it
// generates (mechanisms/ec.ts, rsa.ts), so an imported key and a generated one look alike.
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { CKA, CKC, CKK, CKO } from '../../../hsm-daemon/src/pkcs11/index.js';
import { boolValue, ulongValue } from '../../../hsm-daemon/src/pkcs11/values.js';
import { TAG, children, sequence, tlv } from './der.js';

export const KEY_KINDS = ['rsa', 'ec', 'ed25519', 'aes', 'generic'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];
export const FILE_FORMATS = ['pem', 'der', 'pkcs8', 'pkcs12'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

/** A file that cannot be imported as asked; `wrongPassphrase` for a failed decryption. */
export class ImportError extends Error {
  constructor(
    message: string,
    readonly wrongPassphrase = false,
  ) {
    super(message);
  }
}

export interface ImportRequest {
  /** The file's bytes and its name (for messages). */
  data: Buffer;
  name: string;
  label: string;
  /** CKA_ID; default: SHA-1 of the public key value (modulus, EC point, Ed25519 key). */
  id?: Buffer;
  type?: KeyKind;
  format?: FileFormat;
  /** Private and secret keys get CKA_EXTRACTABLE = true (default false). */
  extractable?: boolean;
  /** Asked only when the file is encrypted. */
  passphrase: () => Promise<string>;
}

export interface PlannedObject {
  /** For messages: "RSA-2048 private key", "certificate CN=…". */
  what: string;
  template: Map<number, Buffer>;
}

/** CKA_EC_PARAMS of Ed25519 keys: the RFC 8410 OID, as the daemon's own Ed25519 keys are made by clients that send it. */
export const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');
const AES_LENGTHS = [16, 24, 32];

const b64u = (s: string | undefined): Buffer => {
  if (!s) throw new ImportError('the key lacks a component');
  return Buffer.from(s, 'base64url');
};
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

// ---- reading the file ------------------------------------------------------------------

interface Contents {
  privateKeys: KeyObject[];
  publicKeys: KeyObject[];
  certs: X509Certificate[];
}

const empty = (): Contents => ({ privateKeys: [], publicKeys: [], certs: [] });

function isPem(data: Buffer): boolean {
  return data.subarray(0, 4096).toString('latin1').includes('-----BEGIN ');
}

interface PemBlock {
  label: string;
  text: string;
  der: Buffer;
}

function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (let m; (m = re.exec(text)); ) {
    const body = m[2]!
      .split(/\r?\n/)
      .filter((l) => !/^[A-Za-z-]+:/.test(l)) // RFC 1421 headers (Proc-Type, DEK-Info)
      .join('');
    out.push({ label: m[1]!, text: m[0], der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** Decrypts with the passphrase, telling a wrong passphrase from a damaged file as well as node lets us. */
async function decryptKey(req: ImportRequest, key: Parameters<typeof createPrivateKey>[0] & object, what: string): Promise<KeyObject> {
  const passphrase = await req.passphrase();
  try {
    return createPrivateKey({ ...(key as object), passphrase } as Parameters<typeof createPrivateKey>[0]);
  } catch {
    throw new ImportError(`${req.name}: cannot decrypt the ${what}: wrong passphrase, or the file is damaged`, true);
  }
}

async function fromPem(req: ImportRequest, text: string): Promise<Contents> {
  const c = empty();
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new ImportError(`${req.name}: no complete PEM block (-----BEGIN …----- … -----END …-----)`);
  for (const b of blocks) {
    if (req.format === 'pkcs8' && b.label !== 'PRIVATE KEY' && b.label !== 'ENCRYPTED PRIVATE KEY') {
      throw new ImportError(`${req.name}: --format pkcs8, but the file holds a "${b.label}" PEM block`);
    }
    try {
      switch (b.label) {
        case 'CERTIFICATE':
        case 'X509 CERTIFICATE':
          c.certs.push(new X509Certificate(b.der));
          break;
        case 'ENCRYPTED PRIVATE KEY':
          c.privateKeys.push(await decryptKey(req, { key: b.der, format: 'der', type: 'pkcs8' }, 'encrypted PKCS#8 key'));
          break;
        case 'PRIVATE KEY':
        case 'RSA PRIVATE KEY':
        case 'EC PRIVATE KEY':
          if (/Proc-Type:\s*4,ENCRYPTED/.test(b.text)) c.privateKeys.push(await decryptKey(req, { key: b.text, format: 'pem' }, `encrypted ${b.label}`));
          else c.privateKeys.push(createPrivateKey({ key: b.text, format: 'pem' }));
          break;
        case 'PUBLIC KEY':
        case 'RSA PUBLIC KEY':
          c.publicKeys.push(createPublicKey({ key: b.text, format: 'pem' }));
          break;
        case 'EC PARAMETERS': // `openssl ecparam -genkey` writes the curve before the key; the key names it too
          break;
        default:
          throw new ImportError(`${req.name}: unsupported PEM block "${b.label}"`);
      }
    } catch (e) {
      if (e instanceof ImportError) throw e;
      throw new ImportError(`${req.name}: the "${b.label}" PEM block cannot be parsed (${(e as Error).message})`);
    }
  }
  return c;
}

const PKCS7_DATA = Buffer.from('06092a864886f70d010701', 'hex');

/** PFX: SEQUENCE { INTEGER 3, ContentInfo { id-data, … }, … }. */
function looksLikePkcs12(der: Buffer): boolean {
  const s = sequence(der);
  if (!s || s.length < 2 || s[0]!.tag !== TAG.INTEGER || !s[0]!.body.equals(Buffer.from([3]))) return false;
  const ci = s[1]!.tag === TAG.SEQUENCE ? children(s[1]!.body) : undefined;
  return ci !== undefined && ci.length >= 1 && ci[0]!.der.equals(PKCS7_DATA);
}

/** EncryptedPrivateKeyInfo: SEQUENCE { AlgorithmIdentifier, OCTET STRING }. */
function looksLikeEncryptedPkcs8(der: Buffer): boolean {
  const s = sequence(der);
  return s !== undefined && s.length === 2 && s[0]!.tag === TAG.SEQUENCE && s[1]!.tag === TAG.OCTET_STRING;
}

async function fromDer(req: ImportRequest, der: Buffer): Promise<Contents> {
  const c = empty();
  if (!sequence(der)) throw new ImportError(`${req.name}: neither PEM nor DER (${der.length} bytes that are not one ASN.1 SEQUENCE)`);
  if (req.format === 'pkcs12' || (req.format === undefined && looksLikePkcs12(der))) return fromPkcs12(req, der);
  if (looksLikeEncryptedPkcs8(der)) {
    c.privateKeys.push(await decryptKey(req, { key: der, format: 'der', type: 'pkcs8' }, 'encrypted PKCS#8 key'));
    return c;
  }
  const attempts: Array<() => void> = [
    () => c.privateKeys.push(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })),
    ...(req.format === 'pkcs8'
      ? []
      : [
          () => void c.certs.push(new X509Certificate(der)),
          () => void c.privateKeys.push(createPrivateKey({ key: der, format: 'der', type: 'pkcs1' })),
          () => void c.privateKeys.push(createPrivateKey({ key: der, format: 'der', type: 'sec1' })),
          () => void c.publicKeys.push(createPublicKey({ key: der, format: 'der', type: 'spki' })),
          () => void c.publicKeys.push(createPublicKey({ key: der, format: 'der', type: 'pkcs1' })),
        ]),
  ];
  for (const a of attempts) {
    try {
      a();
      return c;
    } catch {
      // not this structure; try the next
    }
  }
  throw new ImportError(
    `${req.name}: not a ${req.format === 'pkcs8' ? 'PKCS#8 private key' : 'key, certificate or PKCS#12 file'} this tool can read (DER); see \`craton-hsm-admin key import --help\``,
  );
}

type Forge = typeof import('node-forge');
type Asn1 = import('node-forge').asn1.Asn1;

async function fromPkcs12(req: ImportRequest, der: Buffer): Promise<Contents> {
  // Loaded only for PKCS#12: the other commands (and the CLI's start-up) do without it.
  const forge: Forge = (await import('node-forge')).default;
  const forgeDer = (a: Asn1): Buffer => Buffer.from(forge.asn1.toDer(a).getBytes(), 'binary');
  if (!looksLikePkcs12(der)) throw new ImportError(`--format pkcs12 contradicts ${req.name}: it is not a PKCS#12 (PFX) file`);
  let asn1: Asn1;
  try {
    asn1 = forge.asn1.fromDer(der.toString('binary'));
  } catch (e) {
    throw new ImportError(`${req.name}: not a PKCS#12 file (${(e as Error).message})`);
  }
  const open = (password: string) => forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  let p12: ReturnType<Forge['pkcs12']['pkcs12FromAsn1']>;
  try {
    // Files exported with an empty password open without asking.
    p12 = open('');
  } catch {
    const pass = await req.passphrase();
    try {
      p12 = open(pass);
    } catch (e) {
      const m = (e as Error).message;
      const wrong = /MAC could not be verified|wrong password|Invalid password/i.test(m);
      throw new ImportError(`${req.name}: cannot open the PKCS#12 file: ${wrong ? 'wrong passphrase' : m}`, wrong);
    }
  }
  const c = empty();
  const oids = forge.pki.oids;
  for (const type of [oids.pkcs8ShroudedKeyBag!, oids.keyBag!]) {
    for (const bag of p12.getBags({ bagType: type })[type] ?? []) {
      // forge parses RSA keys itself and hands back the PrivateKeyInfo of any other kind.
      const info = bag.asn1 ?? (bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : undefined);
      if (!info) continue;
      const pkcs8 = forgeDer(info);
      try {
        c.privateKeys.push(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
      } catch (e) {
        throw new ImportError(`${req.name}: a private key in the PKCS#12 file cannot be read (${(e as Error).message})`);
      } finally {
        pkcs8.fill(0);
      }
    }
  }
  for (const bag of p12.getBags({ bagType: oids.certBag! })[oids.certBag!] ?? []) {
    const certAsn1 = bag.asn1 ?? (bag.cert ? forge.pki.certificateToAsn1(bag.cert) : undefined);
    if (certAsn1) c.certs.push(new X509Certificate(forgeDer(certAsn1)));
  }
  return c;
}

// ---- templates ---------------------------------------------------------------------------

const ulong = (n: number) => ulongValue(n);
const bool = (b: boolean) => boolValue(b);
const text = (s: string) => Buffer.from(s, 'utf8');

interface PublicParts {
  kind: 'rsa' | 'ec' | 'ed25519';
  /** The attributes both halves carry (CKA_KEY_TYPE, CKA_MODULUS/… or CKA_EC_PARAMS). */
  common: Array<[number, Buffer]>;
  /** The public object's own value (CKA_EC_POINT) when it has one. */
  publicOnly: Array<[number, Buffer]>;
  /** What CKA_ID is derived from. */
  idSource: Buffer;
  describe: string;
}

function kindOf(k: KeyObject, where: string): 'rsa' | 'ec' | 'ed25519' {
  const t = k.asymmetricKeyType;
  if (t === 'rsa' || t === 'ec' || t === 'ed25519') return t;
  throw new ImportError(`${where}: ${t ?? 'unknown'} keys are not supported (RSA, EC and Ed25519 are)`);
}

/** EC: the named-curve OID and the point, straight from the SubjectPublicKeyInfo, so any
 * named curve comes through with its OID (and the daemon's policy can name a refused one). */
function ecPublic(pub: KeyObject, where: string): { params: Buffer; point: Buffer } {
  const spki = sequence(pub.export({ format: 'der', type: 'spki' }));
  const alg = spki?.[0] ? sequence(spki[0].der) : undefined;
  const bits = spki?.[1];
  if (!alg || alg.length < 2 || !bits || bits.tag !== TAG.BIT_STRING) throw new ImportError(`${where}: malformed EC public key`);
  if (alg[1]!.tag !== TAG.OID) throw new ImportError(`${where}: the EC key has explicit curve parameters; re-encode it with a named curve (openssl ec -param_enc named_curve)`);
  return { params: Buffer.from(alg[1]!.der), point: Buffer.from(bits.body.subarray(1)) };
}

function publicParts(pub: KeyObject, where: string): PublicParts {
  const kind = kindOf(pub, where);
  if (kind === 'rsa') {
    const j = pub.export({ format: 'jwk' });
    const n = b64u(j.n);
    return {
      kind,
      common: [[CKA.KEY_TYPE, ulong(CKK.RSA)], [CKA.MODULUS, n], [CKA.PUBLIC_EXPONENT, b64u(j.e)]],
      publicOnly: [],
      idSource: n,
      describe: `RSA-${pub.asymmetricKeyDetails?.modulusLength ?? n.length * 8}`,
    };
  }
  if (kind === 'ec') {
    const { params, point } = ecPublic(pub, where);
    return {
      kind,
      common: [[CKA.KEY_TYPE, ulong(CKK.EC)], [CKA.EC_PARAMS, params]],
      publicOnly: [[CKA.EC_POINT, tlv(TAG.OCTET_STRING, point)]],
      idSource: point,
      describe: `EC ${pub.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(),
    };
  }
  const x = b64u(pub.export({ format: 'jwk' }).x);
  return {
    kind,
    common: [[CKA.KEY_TYPE, ulong(CKK.EC_EDWARDS)], [CKA.EC_PARAMS, Buffer.from(ED25519_PARAMS)]],
    // Edwards points are the raw RFC 8032 bytes, as the daemon's own Ed25519 keys hold them.
    publicOnly: [[CKA.EC_POINT, x]],
    idSource: x,
    describe: 'Ed25519',
  };
}

/** The private halves: RSA CRT components, the EC scalar, the Ed25519 seed. */
function privateValues(priv: KeyObject, kind: PublicParts['kind']): Array<[number, Buffer]> {
  if (kind === 'rsa') {
    const j = priv.export({ format: 'jwk' });
    return [
      [CKA.PRIVATE_EXPONENT, b64u(j.d)],
      [CKA.PRIME_1, b64u(j.p)],
      [CKA.PRIME_2, b64u(j.q)],
      [CKA.EXPONENT_1, b64u(j.dp)],
      [CKA.EXPONENT_2, b64u(j.dq)],
      [CKA.COEFFICIENT, b64u(j.qi)],
    ];
  }
  if (kind === 'ec') {
    // SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING d (curve-size bytes), … }.
    const sec1 = priv.export({ format: 'der', type: 'sec1' });
    try {
      const s = sequence(sec1);
      if (!s || s.length < 2 || s[1]!.tag !== TAG.OCTET_STRING) throw new ImportError('malformed EC private key');
      return [[CKA.VALUE, Buffer.from(s[1]!.body)]];
    } finally {
      sec1.fill(0);
    }
  }
  return [[CKA.VALUE, b64u(priv.export({ format: 'jwk' }).d)]];
}

const sameKey = (a: KeyObject, b: KeyObject): boolean =>
  a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));

/** Issuer, serial number and subject exactly as the certificate encodes them. */
function certFields(cert: X509Certificate): { issuer: Buffer; serial: Buffer; subject: Buffer } {
  const top = sequence(cert.raw);
  const tbs = top?.[0] && top[0].tag === TAG.SEQUENCE ? children(top[0].body) : undefined;
  if (!tbs) throw new ImportError('malformed certificate');
  const f = tbs[0]!.tag === TAG.CONTEXT_0 ? tbs.slice(1) : tbs; // [0] version is optional (v1 certificates)
  // serialNumber, signature, issuer, validity, subject
  if (f.length < 5 || f[0]!.tag !== TAG.INTEGER || f[2]!.tag !== TAG.SEQUENCE || f[4]!.tag !== TAG.SEQUENCE) throw new ImportError('malformed certificate');
  return { serial: Buffer.from(f[0]!.der), issuer: Buffer.from(f[2]!.der), subject: Buffer.from(f[4]!.der) };
}

function checkType(req: ImportRequest, found: string, what: string): void {
  if (req.type && req.type !== found) throw new ImportError(`--type ${req.type} contradicts ${req.name}: it holds ${what}`);
}

function secretPlan(req: ImportRequest): PlannedObject[] {
  const kind = req.type as 'aes' | 'generic';
  const value = Buffer.from(req.data);
  if (req.format) throw new ImportError(`--format ${req.format} does not apply to --type ${kind}: the file is the raw key bytes`);
  if (isPem(value) || sequence(value)) {
    const looks = isPem(value) ? 'PEM' : 'DER';
    throw new ImportError(`--type ${kind} contradicts ${req.name}: it is ${looks}, not raw key bytes (for keys and certificates leave --type out or name their type)`);
  }
  if (kind === 'aes' && !AES_LENGTHS.includes(value.length)) {
    throw new ImportError(`${req.name}: ${value.length} bytes is not an AES key (16, 24 or 32 raw bytes; \`openssl rand -out key.bin 32\`)`);
  }
  if (value.length === 0) throw new ImportError(`${req.name} is empty`);
  const t = new Map<number, Buffer>([
    [CKA.CLASS, ulong(CKO.SECRET_KEY)],
    [CKA.KEY_TYPE, ulong(kind === 'aes' ? CKK.AES : CKK.GENERIC_SECRET)],
    [CKA.TOKEN, bool(true)],
    [CKA.PRIVATE, bool(true)],
    [CKA.SENSITIVE, bool(true)],
    [CKA.EXTRACTABLE, bool(req.extractable === true)],
    [CKA.LABEL, text(req.label)],
    [CKA.ENCRYPT, bool(kind === 'aes')],
    [CKA.DECRYPT, bool(kind === 'aes')],
    [CKA.WRAP, bool(kind === 'aes')],
    [CKA.UNWRAP, bool(kind === 'aes')],
    [CKA.SIGN, bool(true)], // CMAC for AES, HMAC for generic secrets
    [CKA.VERIFY, bool(true)],
    [CKA.DERIVE, bool(kind === 'generic')],
    [CKA.VALUE, value],
  ]);
  // No default CKA_ID for secrets: a hash of the value would publish a fingerprint of the key.
  if (req.id) t.set(CKA.ID, req.id);
  return [{ what: `${kind === 'aes' ? `AES-${value.length * 8}` : `${value.length * 8}-bit generic`} secret key`, template: t }];
}

/** Reads the file and returns the objects to create, in order: private key, public key, certificates. */
export async function planImport(req: ImportRequest): Promise<PlannedObject[]> {
  if (req.type === 'aes' || req.type === 'generic') return secretPlan(req);
  if (req.data.length === 0) throw new ImportError(`${req.name} is empty`);

  let c: Contents;
  if (isPem(req.data)) {
    if (req.format === 'der' || req.format === 'pkcs12') throw new ImportError(`--format ${req.format} contradicts ${req.name}: it is PEM text`);
    c = await fromPem(req, req.data.toString('latin1'));
  } else {
    if (req.format === 'pem') throw new ImportError(`--format pem contradicts ${req.name}: it holds no PEM block`);
    c = await fromDer(req, req.data);
  }

  if (c.privateKeys.length > 1) throw new ImportError(`${req.name} holds ${c.privateKeys.length} private keys; import one at a time`);
  const priv = c.privateKeys[0];
  const pubKey = priv ? createPublicKey(priv) : c.publicKeys[0];
  if (!priv && c.publicKeys.length > 1) throw new ImportError(`${req.name} holds ${c.publicKeys.length} public keys; import one at a time`);
  if (priv && c.publicKeys.some((p) => !sameKey(p, pubKey!))) throw new ImportError(`${req.name}: the public key in the file does not belong to its private key`);
  if (!pubKey && c.certs.length === 0) throw new ImportError(`${req.name}: nothing to import`);

  const out: PlannedObject[] = [];
  const leaf = pubKey ? c.certs.find((x) => sameKey(x.publicKey, pubKey)) : c.certs[0];
  let pairId: Buffer | undefined;

  if (pubKey) {
    const what = priv ? 'a private key' : 'a public key';
    const parts = publicParts(pubKey, req.name);
    checkType(req, parts.kind, `${parts.kind === 'ed25519' ? 'an Ed25519' : `an ${parts.kind.toUpperCase()}`} ${what.slice(2)}`);
    pairId = req.id ?? sha1(parts.idSource);
    const subject: Array<[number, Buffer]> = leaf ? [[CKA.SUBJECT, certFields(leaf).subject]] : [];
    const named: Array<[number, Buffer]> = [[CKA.TOKEN, bool(true)], [CKA.LABEL, text(req.label)], [CKA.ID, pairId], ...subject];
    if (priv) {
      const rsa = parts.kind === 'rsa';
      out.push({
        what: `${parts.describe} private key`,
        template: new Map([
          [CKA.CLASS, ulong(CKO.PRIVATE_KEY)],
          ...parts.common,
          ...named,
          [CKA.PRIVATE, bool(true)],
          [CKA.SENSITIVE, bool(true)],
          [CKA.EXTRACTABLE, bool(req.extractable === true)],
          [CKA.SIGN, bool(true)],
          [CKA.SIGN_RECOVER, bool(false)],
          [CKA.DECRYPT, bool(rsa)],
          [CKA.UNWRAP, bool(rsa)],
          [CKA.DERIVE, bool(parts.kind === 'ec')],
          ...privateValues(priv, parts.kind),
        ]),
      });
    }
    const rsa = parts.kind === 'rsa';
    out.push({
      what: `${parts.describe} public key`,
      template: new Map([
        [CKA.CLASS, ulong(CKO.PUBLIC_KEY)],
        ...parts.common,
        ...parts.publicOnly,
        ...named,
        [CKA.PRIVATE, bool(false)],
        [CKA.VERIFY, bool(true)],
        [CKA.VERIFY_RECOVER, bool(false)],
        [CKA.ENCRYPT, bool(rsa)],
        [CKA.WRAP, bool(rsa)],
        [CKA.DERIVE, bool(false)],
      ]),
    });
  }

  let caIndex = 0;
  for (const cert of c.certs) {
    const main = cert === leaf;
    const parts = publicParts(cert.publicKey, `${req.name}: certificate ${cert.subject.replace(/\n/g, ', ')}`);
    if (!pubKey && main) checkType(req, parts.kind, `a certificate for an ${parts.kind === 'ed25519' ? 'Ed25519' : parts.kind.toUpperCase()} key`);
    const f = certFields(cert);
    // The certificate of the imported key shares its label and CKA_ID; the others (the
    // chain) are found by their own key's id, and labelled after the import's label.
    const id = main ? (pairId ?? req.id ?? sha1(parts.idSource)) : sha1(parts.idSource);
    const label = main ? req.label : `${req.label}-ca${++caIndex}`;
    const category = main && priv ? 1 : cert.ca ? 2 : 0; // token user / authority / unspecified
    out.push({
      what: `certificate ${cert.subject.replace(/\n/g, ', ')}`,
      template: new Map([
        [CKA.CLASS, ulong(CKO.CERTIFICATE)],
        [CKA.CERTIFICATE_TYPE, ulong(CKC.X_509)],
        [CKA.TOKEN, bool(true)],
        [CKA.PRIVATE, bool(false)],
        [CKA.LABEL, text(label)],
        [CKA.ID, id],
        [CKA.CERTIFICATE_CATEGORY, ulong(category)],
        [CKA.SUBJECT, f.subject],
        [CKA.ISSUER, f.issuer],
        [CKA.SERIAL_NUMBER, f.serial],
        [CKA.VALUE, Buffer.from(cert.raw)],
      ]),
    });
  }
  return out;
}

/** The admin socket's form: { "0x<type>": base64 } per object. */
export function toWire(objects: PlannedObject[]): Array<{ template: Record<string, string> }> {
  return objects.map((o) => ({ template: Object.fromEntries([...o.template].map(([t, v]) => [`0x${t.toString(16)}`, v.toString('base64')])) }));
}

/** Zeroes every value the plan holds (private and secret key material among them). */
export function wipePlan(objects: PlannedObject[]): void {
  for (const o of objects) for (const v of o.template.values()) v.fill(0);
}

