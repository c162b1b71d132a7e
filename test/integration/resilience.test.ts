// What survives: restarts, kill -9 in the middle of token-store writes, a daemon that
// restarts under a running application, and garbage on the socket.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CKA, CKF, CKM, CKO, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, REPO_ROOT, type Daemon } from '../helpers/daemon.js';
import { loadModule, type LoadedModule, rvOf } from '../helpers/module.js';
import { readTokenStore } from '../../hsm-daemon/src/store/token-file.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});


async function freshDaemon(dataDir?: string): Promise<Daemon> {
  const d = await startDaemon({ slots: 1, dataDir });
  cleanups.push(() => d.stop());
  return d;
}

function initToken(m: LoadedModule): Buffer {
  const p11 = m.p11;
  const slot = p11.C_GetSlotList(true)[0]!;
  p11.C_InitToken(slot, SO_PIN, 'resilience');
  const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  p11.C_Login(s, CKU.SO, SO_PIN);
  p11.C_InitPIN(s, USER_PIN);
  p11.C_Logout(s);
  p11.C_CloseSession(s);
  return slot;
}

function countByLabelPrefix(m: LoadedModule, slot: Buffer, prefix: string): number {
  const p11 = m.p11;
  const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
  p11.C_Login(s, CKU.USER, USER_PIN);
  p11.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }]);
  const labels: string[] = [];
  for (;;) {
    const page = p11.C_FindObjects(s, 100);
    if (page.length === 0) break;
    for (const h of page) labels.push(p11.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])[0]!.value!.toString());
  }
  p11.C_FindObjectsFinal(s);
  p11.C_Logout(s);
  p11.C_CloseSession(s);
  return labels.filter((l) => l.startsWith(prefix)).length;
}

describe('token objects persist', () => {
  it('keys made before a restart sign after it, and the store holds no key in the clear', async () => {
    const d1 = await freshDaemon();
    let m = loadModule(d1.socketPath);
    const slot = initToken(m);
    let p11 = m.p11;
    let s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.USER, USER_PIN);
    const kp = p11.C_GenerateKeyPair(
      s,
      { mechanism: CKM.EC_KEY_PAIR_GEN },
      [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: 'persisted' }],
      [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: 'persisted' }, { type: CKA.SIGN, value: true }],
    );
    const point = Buffer.from(p11.C_GetAttributeValue(s, kp.publicKey, [{ type: CKA.EC_POINT }])[0]!.value!);
    m.close();
    await d1.stop();

    // A clean shutdown folds the journal into the snapshot (store/token-file.ts): the
    // snapshot alone is the whole token (what an older daemon or a lone copy would read).
    const journal = path.join(d1.dataDir, 'tokens', 'slot-0.journal');
    expect(existsSync(journal) ? statSync(journal).size : 0).toBe(0);
    const store = readFileSync(path.join(d1.dataDir, 'tokens', 'slot-0.json'), 'utf8');
    const parsed = readTokenStore(d1.dataDir, 0)!;
    expect((JSON.parse(store) as { objects: unknown[] }).objects).toHaveLength(parsed.objects.length);
    expect(parsed.format).toBe(1);
    const labelOf = (o: { clear: Record<string, string> }) => Buffer.from(o.clear[CKA.LABEL.toString(16)] ?? '', 'base64').toString();
    // the public key's attributes are readable before login; the private key is sealed whole
    expect(parsed.objects.filter((o) => !o.private).map(labelOf)).toContain('persisted');
    const privates = parsed.objects.filter((o) => o.private);
    expect(privates.length).toBeGreaterThan(0);
    for (const o of privates) {
      expect(Object.keys(o.clear)).toHaveLength(0);
      expect(o.sealed).toBeTruthy();
    }
    expect(store.includes('persisted')).toBe(false);

    const d2 = await freshDaemon(d1.dataDir);
    m = loadModule(d2.socketPath);
    cleanups.push(() => m.close());
    p11 = m.p11;
    s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    // before login only the public key is visible
    p11.C_FindObjectsInit(s, [{ type: CKA.LABEL, value: 'persisted' }]);
    expect(p11.C_FindObjects(s, 10)).toHaveLength(1);
    p11.C_FindObjectsFinal(s);
    p11.C_Login(s, CKU.USER, USER_PIN);
    p11.C_FindObjectsInit(s, [{ type: CKA.LABEL, value: 'persisted' }, { type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
    const [priv] = p11.C_FindObjects(s, 10);
    p11.C_FindObjectsFinal(s);
    expect(priv).toBeDefined();
    p11.C_FindObjectsInit(s, [{ type: CKA.EC_POINT, value: point }]);
    const [pub] = p11.C_FindObjects(s, 10);
    p11.C_FindObjectsFinal(s);
    p11.C_SignInit(s, { mechanism: CKM.ECDSA_SHA256 }, priv!);
    const sig = p11.C_Sign(s, Buffer.from('after restart'), Buffer.alloc(64));
    p11.C_VerifyInit(s, { mechanism: CKM.ECDSA_SHA256 }, pub!);
    expect(p11.C_Verify(s, Buffer.from('after restart'), sig)).toBe(true);
  });
});

describe('kill -9 during token-store writes', () => {
  it('loses no acknowledged object and never leaves a corrupt store', async () => {
    const d1 = await freshDaemon();
    const m = loadModule(d1.socketPath);
    const slot = initToken(m);
    m.close();
    const prefix = `k${randomBytes(3).toString('hex')}`;
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test/helpers/hammer.mjs'), d1.modulePath, '0', USER_PIN, prefix], {
      env: d1.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    // Let it write for a while so the kill lands in the middle of some write.
    await new Promise((r) => setTimeout(r, 1500 + Math.floor(Math.random() * 500)));
    await d1.kill9();
    await new Promise<void>((r) => child.once('exit', () => r()));
    const acked = out.split('\n').filter((l) => l.startsWith('acked ')).length;
    expect(acked).toBeGreaterThan(5);

    const raw = readFileSync(path.join(d1.dataDir, 'tokens', 'slot-0.json'), 'utf8');
    expect(() => JSON.parse(raw)).not.toThrow();
    expect(() => readTokenStore(d1.dataDir, 0)).not.toThrow();
    const d2 = await freshDaemon(d1.dataDir);
    const m2 = loadModule(d2.socketPath);
    cleanups.push(() => m2.close());
    const found = countByLabelPrefix(m2, slot, prefix);
    // every acknowledged object is there; at most the one in flight at the kill is extra
    expect(found).toBeGreaterThanOrEqual(acked);
    expect(found).toBeLessThanOrEqual(acked + 1);
  });
});

describe('a large token in snapshot and journal', () => {
  it('2,000 objects survive kill -9 across a compaction, and deletions made after the restart survive the next kill -9', async () => {
    const d1 = await freshDaemon();
    let m = loadModule(d1.socketPath);
    const slot = initToken(m);
    let s = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    m.p11.C_Login(s, CKU.USER, USER_PIN);
    const handles: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      handles.push(
        m.p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
          { type: CKA.VALUE_LEN, value: 32 },
          { type: CKA.TOKEN, value: true },
          { type: CKA.LABEL, value: `many-${i}` },
        ]),
      );
    }
    m.close();
    await d1.kill9();

    // The journal outgrew its bound on the way (about 0.8 KiB a key): part of the keys are
    // in a snapshot written by compaction, the rest only in journal lines after it.
    const snapshot = JSON.parse(readFileSync(path.join(d1.dataDir, 'tokens', 'slot-0.json'), 'utf8')) as { objects: unknown[]; generation?: string };
    expect(snapshot.generation).toBeTruthy();
    expect(snapshot.objects.length).toBeGreaterThan(0);
    expect(snapshot.objects.length).toBeLessThan(2000);
    expect(statSync(path.join(d1.dataDir, 'tokens', 'slot-0.journal')).size).toBeGreaterThan(0);

    const d2 = await freshDaemon(d1.dataDir);
    m = loadModule(d2.socketPath);
    expect(countByLabelPrefix(m, slot, 'many-')).toBe(2000);
    // destroy every tenth: journal lines after the compacted snapshot
    s = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    m.p11.C_Login(s, CKU.USER, USER_PIN);
    m.p11.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }]);
    const found = m.p11.C_FindObjects(s, 5000);
    m.p11.C_FindObjectsFinal(s);
    const doomed = new Set<string>();
    for (const h of found) {
      const label = m.p11.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])[0]!.value!.toString();
      if (Number(label.slice('many-'.length)) % 10 === 0) {
        m.p11.C_DestroyObject(s, h);
        doomed.add(label);
      }
    }
    expect(doomed.size).toBe(200);
    m.close();
    await d2.kill9();

    const d3 = await freshDaemon(d1.dataDir);
    m = loadModule(d3.socketPath);
    cleanups.push(() => m.close());
    expect(countByLabelPrefix(m, slot, 'many-')).toBe(1800);
    s = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    m.p11.C_Login(s, CKU.USER, USER_PIN);
    m.p11.C_FindObjectsInit(s, [{ type: CKA.LABEL, value: 'many-10' }]);
    expect(m.p11.C_FindObjects(s, 10)).toHaveLength(0);
    m.p11.C_FindObjectsFinal(s);
    m.p11.C_FindObjectsInit(s, [{ type: CKA.LABEL, value: 'many-11' }]);
    expect(m.p11.C_FindObjects(s, 10)).toHaveLength(1);
    m.p11.C_FindObjectsFinal(s);
  });
});

describe('a daemon that restarts under a running application', () => {
  it('same socket path: stale handles are rejected and a new C_OpenSession succeeds', async () => {
    const d1 = await freshDaemon();
    const m = loadModule(d1.socketPath);
    cleanups.push(() => m.close());
    const slot = initToken(m);
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    await d1.kill9();
    const d2 = await startDaemon({ slots: 1, dataDir: d1.dataDir });
    cleanups.push(() => d2.stop());
    expect(d2.socketPath).toBe(d1.socketPath);
    expect(rvName(rvOf(() => p11.C_GetSessionInfo(s)))).toMatch(/CKR_SESSION_HANDLE_INVALID|CKR_DEVICE_REMOVED/);
    const s2 = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expect(p11.C_GetSessionInfo(s2).slotID).toBeDefined();
    expect(rvName(rvOf(() => p11.C_GetSessionInfo(s)))).toBe('CKR_SESSION_HANDLE_INVALID');
  });
});

describe('a daemon that stops answering mid-call', () => {
  it('the call fails with CKR_DEVICE_ERROR after CRATON_HSM_TIMEOUT instead of hanging; the module recovers', async () => {
    const d = await freshDaemon();
    process.env.CRATON_HSM_TIMEOUT = '2'; // read at C_Initialize
    let m: LoadedModule;
    try {
      m = loadModule(d.socketPath);
    } finally {
      delete process.env.CRATON_HSM_TIMEOUT;
    }
    cleanups.push(() => m.close());
    const slot = initToken(m);
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expect(p11.C_GenerateRandom(s, Buffer.alloc(16)).length).toBe(16);

    // SIGSTOP: the socket still accepts bytes, nobody answers (a wedged daemon).
    d.proc.kill('SIGSTOP');
    cleanups.push(() => void d.proc.kill('SIGCONT'));
    expect(rvName(rvOf(() => p11.C_GenerateRandom(s, Buffer.alloc(16))))).toBe('CKR_DEVICE_ERROR');
    d.proc.kill('SIGCONT');

    // The connection that timed out was dropped (its late reply can never be taken for
    // another call's). It was the application's only one: if the daemon sees it close
    // before the module's next connection joins, it ends the application and the old
    // session is gone; if the new connection joins first, the application (and the
    // session) lives on. Either way the module answers, and new sessions work.
    expect(rvName(rvOf(() => p11.C_GenerateRandom(s, Buffer.alloc(16))))).toMatch(/^CKR_(OK|SESSION_HANDLE_INVALID)$/);
    const s2 = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expect(p11.C_GenerateRandom(s2, Buffer.alloc(16)).length).toBe(16);
  });
});

describe('garbage on the socket', () => {
  it('the daemon keeps serving after random and malformed frames', async () => {
    const d = await freshDaemon();
    const m = loadModule(d.socketPath);
    cleanups.push(() => m.close());
    const slot = initToken(m);
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const c = net.createConnection(d.socketPath);
        c.on('error', () => resolve());
        c.on('close', () => resolve());
        c.on('connect', () => {
          c.write(bytes);
          setTimeout(() => c.destroy(), 20);
        });
      });
    const hello = Buffer.from('000000120000000100000000000000010801' + '00000000', 'hex');
    for (let i = 0; i < 300; i++) {
      const kind = i % 4;
      let frame: Buffer;
      if (kind === 0) frame = randomBytes(1 + Math.floor(Math.random() * 64));
      else if (kind === 1) frame = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(16)]);
      else if (kind === 2) frame = Buffer.concat([hello, randomBytes(12 + Math.floor(Math.random() * 40))]);
      else {
        frame = Buffer.from(hello);
        frame[4 + Math.floor(Math.random() * (frame.length - 4))] ^= 1 << Math.floor(Math.random() * 8);
      }
      await send(frame);
    }
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    expect(p11.C_GenerateRandom(s, Buffer.alloc(16))).toHaveLength(16);
    expect(d.proc.exitCode).toBeNull();
  });
});

describe('no daemon at C_Initialize', () => {
  it('returns CKR_DEVICE_ERROR, silent unless CRATON_HSM_DEBUG=1', async () => {
    const { runCli } = await import('../helpers/module.js');
    const { MODULE_PATH } = await import('../helpers/daemon.js');
    const env = { ...process.env, CRATON_HSM_SOCKET: path.join(REPO_ROOT, 'no-such-dir', 'none.sock') };
    delete env.CRATON_HSM_DEBUG;
    const quiet = await runCli('pkcs11-tool', ['--module', MODULE_PATH, '--list-slots'], { env });
    expect(quiet.code).not.toBe(0);
    expect(quiet.stderr).toContain('CKR_DEVICE_ERROR');
    expect(quiet.stderr).not.toContain('craton-hsm:');
    const loud = await runCli('pkcs11-tool', ['--module', MODULE_PATH, '--list-slots'], { env: { ...env, CRATON_HSM_DEBUG: '1' } });
    expect(loud.stderr).toMatch(/craton-hsm: cannot connect to .*none\.sock/);
  });
});

describe('a client that dies mid-call', () => {
  it('the daemon finishes or drops the call and keeps serving others', async () => {
    const d = await freshDaemon();
    const m = loadModule(d.socketPath);
    cleanups.push(() => m.close());
    const slot = initToken(m);
    // A child starts slow RSA-4096 key generations and is killed while they run.
    const script = `
      import pkcs11js from 'pkcs11js';
      const p11 = new pkcs11js.PKCS11(); p11.load(process.argv[1]); p11.C_Initialize();
      const slot = p11.C_GetSlotList(true)[0];
      const s = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Login(s, pkcs11js.CKU_USER, '${USER_PIN}');
      process.stdout.write('busy\\n');
      for (;;) p11.C_GenerateKeyPair(s, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [{ type: pkcs11js.CKA_MODULUS_BITS, value: 4096 }], [{ type: pkcs11js.CKA_SIGN, value: true }]);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, d.modulePath], {
      cwd: REPO_ROOT,
      env: d.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve) => child.stdout.on('data', (b: Buffer) => b.toString().includes('busy') && resolve()));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGKILL');
    await new Promise<void>((r) => child.once('exit', () => r()));
    const p11 = m.p11;
    const s = p11.C_OpenSession(slot, CKF.SERIAL_SESSION);
    p11.C_Login(s, CKU.USER, USER_PIN);
    expect(p11.C_GenerateRandom(s, Buffer.alloc(16))).toHaveLength(16);
    // the dead client's session objects and login went with it: only ours remain
    expect(d.proc.exitCode).toBeNull();
    expect(d.stderr()).not.toMatch(/unhandled|TypeError|RangeError/i);
  });
});
