// Copy of bench/worker.mjs for bench/audit-bench.mjs (kept separately: bench/run.mjs moved to a C load generator).
// One benchmark client: a child process (forked by bench/run.mjs) that loads one PKCS#11
// module through pkcs11js, opens one session, logs in and then runs whatever operation the
// parent asks for, for a fixed time. pkcs11js calls are synchronous, so concurrency comes
// from running several of these processes at once.
//
// argv: <module path> <token label> <user PIN>
// IPC in:  {cmd:'setup', soPin}            create the bench keys (token objects) through the module
//          {cmd:'run', op, warmupMs, ms}   run one operation; reply {ops, elapsedMs, p50Us, p99Us} or {error}
//          {cmd:'quit'}
import pkcs11js from 'pkcs11js';
import { randomBytes } from 'node:crypto';

const [modulePath, tokenLabel, userPin] = process.argv.slice(2);
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const K = pkcs11js;

const p11 = new pkcs11js.PKCS11();
p11.load(modulePath);
// CKF_OS_LOCKING_OK: p11-kit-client.so refuses flags 0 (no locking) with CKR_CANT_LOCK.
p11.C_Initialize({ flags: K.CKF_OS_LOCKING_OK });

function rvName(e) {
  const m = /(CKR_\w+)/.exec(String(e?.message ?? e));
  return m ? m[1] : String(e?.message ?? e);
}

function findSlot() {
  for (const slot of p11.C_GetSlotList(true)) {
    const info = p11.C_GetTokenInfo(slot);
    if (info.label.trim() === tokenLabel) return slot;
  }
  throw new Error(`no token labelled ${tokenLabel}`);
}

const slot = findSlot();
const session = p11.C_OpenSession(slot, K.CKF_SERIAL_SESSION | K.CKF_RW_SESSION);
try {
  p11.C_Login(session, K.CKU_USER, userPin);
} catch (e) {
  if (rvName(e) !== 'CKR_USER_ALREADY_LOGGED_IN') throw e;
}

function findOne(cls, label) {
  p11.C_FindObjectsInit(session, [
    { type: K.CKA_CLASS, value: cls },
    { type: K.CKA_LABEL, value: label },
  ]);
  const h = p11.C_FindObjects(session, 2);
  p11.C_FindObjectsFinal(session);
  if (h.length !== 1) throw new Error(`expected one object ${label}, found ${h.length}`);
  return h[0];
}

function setup() {
  p11.C_GenerateKeyPair(
    session,
    { mechanism: K.CKM_EC_KEY_PAIR_GEN },
    [
      { type: K.CKA_TOKEN, value: true },
      { type: K.CKA_LABEL, value: 'bench-ec' },
      { type: K.CKA_EC_PARAMS, value: P256 },
      { type: K.CKA_VERIFY, value: true },
    ],
    [
      { type: K.CKA_TOKEN, value: true },
      { type: K.CKA_LABEL, value: 'bench-ec' },
      { type: K.CKA_PRIVATE, value: true },
      { type: K.CKA_SENSITIVE, value: true },
      { type: K.CKA_SIGN, value: true },
    ],
  );
  p11.C_GenerateKeyPair(
    session,
    { mechanism: K.CKM_RSA_PKCS_KEY_PAIR_GEN },
    [
      { type: K.CKA_TOKEN, value: true },
      { type: K.CKA_LABEL, value: 'bench-rsa' },
      { type: K.CKA_MODULUS_BITS, value: 2048 },
      { type: K.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: K.CKA_VERIFY, value: true },
    ],
    [
      { type: K.CKA_TOKEN, value: true },
      { type: K.CKA_LABEL, value: 'bench-rsa' },
      { type: K.CKA_PRIVATE, value: true },
      { type: K.CKA_SENSITIVE, value: true },
      { type: K.CKA_SIGN, value: true },
    ],
  );
  p11.C_GenerateKey(session, { mechanism: K.CKM_AES_KEY_GEN }, [
    { type: K.CKA_TOKEN, value: true },
    { type: K.CKA_LABEL, value: 'bench-aes' },
    { type: K.CKA_VALUE_LEN, value: 32 },
    { type: K.CKA_PRIVATE, value: true },
    { type: K.CKA_SENSITIVE, value: true },
    { type: K.CKA_ENCRYPT, value: true },
    { type: K.CKA_DECRYPT, value: true },
  ]);
}

let keys = null;
function getKeys() {
  if (!keys) {
    keys = {
      ec: findOne(K.CKO_PRIVATE_KEY, 'bench-ec'),
      rsa: findOne(K.CKO_PRIVATE_KEY, 'bench-rsa'),
      aes: findOne(K.CKO_SECRET_KEY, 'bench-aes'),
    };
  }
  return keys;
}

const hash32 = randomBytes(32);
const kib = randomBytes(1024);
const sigEc = Buffer.alloc(128);
const sigRsa = Buffer.alloc(512);
const ct = Buffer.alloc(1024 + 16);
const md = Buffer.alloc(64);
const rnd = Buffer.alloc(32);
const iv = randomBytes(12);
let ivCounter = 0;

/** Returns a function doing one operation, plus a cleanup. */
function makeOp(op) {
  const k = op === 'random32' || op === 'sha256-1k' ? null : getKeys();
  switch (op) {
    case 'ecdsa-p256-sign':
      return {
        fn: () => {
          p11.C_SignInit(session, { mechanism: K.CKM_ECDSA }, k.ec);
          p11.C_Sign(session, hash32, sigEc);
        },
      };
    case 'rsa2048-sign':
      return {
        fn: () => {
          p11.C_SignInit(session, { mechanism: K.CKM_SHA256_RSA_PKCS }, k.rsa);
          p11.C_Sign(session, hash32, sigRsa);
        },
      };
    case 'aes-gcm-1k':
      return {
        fn: () => {
          iv.writeUInt32BE(ivCounter++ >>> 0, 8); // a fresh IV per message
          p11.C_EncryptInit(
            session,
            { mechanism: K.CKM_AES_GCM, parameter: { type: K.CK_PARAMS_GCM, iv, ivBits: 96, tagBits: 128 } },
            k.aes,
          );
          p11.C_Encrypt(session, kib, ct);
        },
      };
    case 'sha256-1k':
      return {
        fn: () => {
          p11.C_DigestInit(session, { mechanism: K.CKM_SHA256 });
          p11.C_Digest(session, kib, md);
        },
      };
    case 'random32':
      return { fn: () => p11.C_GenerateRandom(session, rnd) };
    case 'ec-keygen': {
      // Session objects in a session of their own, closed afterwards (drops the keys).
      const s = p11.C_OpenSession(slot, K.CKF_SERIAL_SESSION | K.CKF_RW_SESSION);
      return {
        fn: () =>
          p11.C_GenerateKeyPair(
            s,
            { mechanism: K.CKM_EC_KEY_PAIR_GEN },
            [
              { type: K.CKA_TOKEN, value: false },
              { type: K.CKA_EC_PARAMS, value: P256 },
              { type: K.CKA_VERIFY, value: true },
            ],
            [
              { type: K.CKA_TOKEN, value: false },
              { type: K.CKA_PRIVATE, value: true },
              { type: K.CKA_SENSITIVE, value: true },
              { type: K.CKA_SIGN, value: true },
            ],
          ),
        cleanup: () => p11.C_CloseSession(s),
      };
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function run(op, warmupMs, ms) {
  let o;
  try {
    o = makeOp(op);
  } catch (e) {
    return { error: rvName(e) };
  }
  try {
    const wEnd = performance.now() + warmupMs;
    o.fn(); // at least once: an unsupported operation fails here
    while (performance.now() < wEnd) o.fn();
    const lat = [];
    const t0 = performance.now();
    const end = t0 + ms;
    let t = t0;
    while (t < end) {
      o.fn();
      const t2 = performance.now();
      lat.push(t2 - t);
      t = t2;
    }
    const elapsedMs = t - t0;
    lat.sort((a, b) => a - b);
    return {
      ops: lat.length,
      elapsedMs,
      p50Us: Math.round(percentile(lat, 0.5) * 1000),
      p99Us: Math.round(percentile(lat, 0.99) * 1000),
    };
  } catch (e) {
    return { error: rvName(e) };
  } finally {
    try {
      o.cleanup?.();
    } catch {
      /* reported by the next run if it matters */
    }
  }
}

process.on('message', (m) => {
  if (m.cmd === 'setup') {
    try {
      setup();
      process.send({ ok: true });
    } catch (e) {
      process.send({ error: rvName(e) });
    }
  } else if (m.cmd === 'run') {
    process.send(run(m.op, m.warmupMs, m.ms));
  } else if (m.cmd === 'quit') {
    try {
      p11.C_CloseSession(session);
      p11.C_Finalize();
    } catch {
      /* exiting anyway */
    }
    process.exit(0);
  }
});
process.send({ ready: true });
