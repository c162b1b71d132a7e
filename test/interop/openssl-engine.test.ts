// OpenSSL 3 through Debian's libp11 engine (libengine-pkcs11-openssl) with RFC 7512 pkcs11:
// URIs: signatures and OAEP decryption made in the HSM, checked by plain openssl (no engine);
// a CSR and a self-signed certificate made with HSM keys; `openssl s_server` on 127.0.0.1
// serving TLS 1.3 from an HSM-held key, with `openssl s_client` completing the handshake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { initTokenWithKeys, p11ok, USER_PIN } from '../helpers/p11tool.js';

const ENGINE_SO = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';
const EC_KEY = 'pkcs11:token=t1;object=ec1;type=private';
const RSA_KEY = 'pkcs11:token=t1;object=rsa1;type=private';

let d: Daemon;
let work: string;
let engEnv: NodeJS.ProcessEnv; // OPENSSL_CONF loads the engine with our module and the PIN
let plainEnv: NodeJS.ProcessEnv; // no engine, no module: the independent checker
const servers: ChildProcess[] = [];
const f = (name: string) => path.join(work, name);
const eng = (args: string[], timeoutMs = 30_000) => runCli('openssl', args, { env: engEnv, timeoutMs });
const plain = (args: string[]) => runCli('openssl', args, { env: plainEnv, timeoutMs: 30_000 });
async function ok(run: Promise<Awaited<ReturnType<typeof eng>>>, what: string) {
  const r = await run;
  expect(r.code, `${what}\n${describeRun(r)}`).toBe(0);
  return r;
}

beforeAll(async () => {
  expect(existsSync(ENGINE_SO), `${ENGINE_SO} (Debian libengine-pkcs11-openssl) is not installed`).toBe(true);
  // The default strict profile: libp11 makes every RSA PKCS#1 v1.5 signature (dgst -sign,
  // req -x509, TLS with RSA keys) as CKM_RSA_PKCS over a DigestInfo it builds itself, which
  // the policy allows because the DigestInfo names SHA-256 (checked at C_Sign).
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-ossl-eng-'));
  writeFileSync(
    f('openssl.cnf'),
    [
      'openssl_conf = openssl_init',
      '[openssl_init]',
      'engines = engine_section',
      '[engine_section]',
      'pkcs11 = pkcs11_section',
      '[pkcs11_section]',
      'engine_id = pkcs11',
      `dynamic_path = ${ENGINE_SO}`,
      `MODULE_PATH = ${d.modulePath}`,
      `PIN = ${USER_PIN}`,
      'init = 0',
      '',
    ].join('\n'),
  );
  engEnv = { ...d.env, OPENSSL_CONF: f('openssl.cnf') };
  plainEnv = { ...process.env, OPENSSL_CONF: '/dev/null', CRATON_HSM_SOCKET: '/nonexistent' };
  writeFileSync(f('data'), 'signed by the libp11 engine inside Craton HSM\n');
  writeFileSync(f('other'), 'signed by the libp11 engine inside Craton HSM!\n');
  await initTokenWithKeys(d);
  // Public keys exported by pkcs11-tool, independently of the engine.
  for (const [id, name] of [['01', 'rsa'], ['02', 'ec']]) {
    await p11ok(d, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', id, '-o', f(`${name}.der`)]);
    await ok(plain(['pkey', '-pubin', '-inform', 'DER', '-in', f(`${name}.der`), '-out', f(`${name}.pem`)]), 'pkey');
  }
});
afterAll(async () => {
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.sequential('OpenSSL 3 + libp11 engine', () => {
  it('the engine exports the same public keys as pkcs11-tool', async () => {
    for (const [obj, name] of [['ec1', 'ec'], ['rsa1', 'rsa']]) {
      const r = await ok(eng(['pkey', '-engine', 'pkcs11', '-inform', 'engine', '-in', `pkcs11:token=t1;object=${obj};type=public`, '-pubout']), `export ${obj}`);
      expect(r.stdout.trim()).toBe(readFileSync(f(`${name}.pem`), 'utf8').trim());
    }
  });

  it('ECDSA-SHA256 and RSA-SHA256 signatures verify with plain openssl; a changed message does not', async () => {
    for (const [uri, name] of [[EC_KEY, 'ec'], [RSA_KEY, 'rsa']]) {
      await ok(eng(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri, '-out', f(`sig.${name}`), f('data')]), `sign ${name}`);
      const v = await plain(['dgst', '-sha256', '-verify', f(`${name}.pem`), '-signature', f(`sig.${name}`), f('data')]);
      expect(v.code, describeRun(v)).toBe(0);
      expect(v.stdout).toContain('Verified OK');
      const bad = await plain(['dgst', '-sha256', '-verify', f(`${name}.pem`), '-signature', f(`sig.${name}`), f('other')]);
      expect(bad.code).not.toBe(0);
    }
  });

  it('RSA-PSS (SHA-256, salt = digest length) signature verifies with plain openssl', async () => {
    const opts = ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'];
    await ok(eng(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', RSA_KEY, ...opts, '-out', f('sig.pss'), f('data')]), 'sign pss');
    const v = await plain(['dgst', '-sha256', '-verify', f('rsa.pem'), ...opts, '-signature', f('sig.pss'), f('data')]);
    expect(v.code, describeRun(v)).toBe(0);
    // A PSS signature is not a PKCS#1 v1.5 one.
    const v15 = await plain(['dgst', '-sha256', '-verify', f('rsa.pem'), '-signature', f('sig.pss'), f('data')]);
    expect(v15.code).not.toBe(0);
  });

  it('RSA-OAEP(SHA-256): plain openssl encrypts, the HSM key decrypts', async () => {
    writeFileSync(f('secret'), 'a 32-byte session key, say......');
    const oaep = ['-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256'];
    await ok(plain(['pkeyutl', '-encrypt', '-pubin', '-inkey', f('rsa.pem'), ...oaep, '-in', f('secret'), '-out', f('ct')]), 'encrypt');
    await ok(eng(['pkeyutl', '-decrypt', '-engine', 'pkcs11', '-keyform', 'engine', '-inkey', RSA_KEY, ...oaep, '-in', f('ct'), '-out', f('pt')]), 'decrypt');
    expect(readFileSync(f('pt'), 'utf8')).toBe('a 32-byte session key, say......');
  });

  it('a CSR signed by the HSM EC key passes plain `openssl req -verify` and carries the HSM public key', async () => {
    await ok(eng(['req', '-new', '-engine', 'pkcs11', '-keyform', 'engine', '-key', EC_KEY, '-subj', '/CN=craton csr', '-out', f('csr.pem')]), 'req');
    const v = await plain(['req', '-verify', '-in', f('csr.pem'), '-noout']);
    expect(v.code, describeRun(v)).toBe(0);
    expect(v.stderr + v.stdout).toMatch(/verify OK/);
    const pub = await ok(plain(['req', '-in', f('csr.pem'), '-noout', '-pubkey']), 'req -pubkey');
    expect(pub.stdout.trim()).toBe(readFileSync(f('ec.pem'), 'utf8').trim());
  });

  it('self-signed certificates (EC and RSA) made with HSM keys verify with plain openssl', async () => {
    for (const [uri, name] of [[EC_KEY, 'ec'], [RSA_KEY, 'rsa']]) {
      await ok(
        eng(['req', '-new', '-x509', '-days', '2', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri, '-subj', `/CN=localhost ${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-out', f(`${name}.crt`)]),
        `req -x509 ${name}`,
      );
      const v = await plain(['verify', '-CAfile', f(`${name}.crt`), f(`${name}.crt`)]);
      expect(v.code, describeRun(v)).toBe(0);
      const pub = await ok(plain(['x509', '-in', f(`${name}.crt`), '-noout', '-pubkey']), 'x509 -pubkey');
      expect(pub.stdout.trim()).toBe(readFileSync(f(`${name}.pem`), 'utf8').trim());
    }
  });

  /** Starts s_server with the HSM key; resolves with its port once it is accepting. */
  function sServer(uri: string, cert: string): Promise<{ port: number; proc: ChildProcess; out: () => string }> {
    const proc = spawn('openssl', ['s_server', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri, '-cert', cert, '-accept', '127.0.0.1:0', '-tls1_3', '-naccept', '1'], {
      env: engEnv,
      stdio: ['pipe', 'pipe', 'pipe'], // stdin stays open: s_server quits at EOF on stdin
    });
    servers.push(proc);
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000); // bounded whatever happens
    proc.once('exit', () => clearTimeout(killer));
    return new Promise((resolve, reject) => {
      const t = setInterval(() => {
        const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearInterval(t);
          resolve({ port: Number(m[1]), proc, out: () => out });
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearInterval(t);
          reject(new Error(`s_server exited before accepting:\n${out}`));
        }
      }, 50);
    });
  }

  for (const [name, uri, sigType] of [
    ['EC P-256', EC_KEY, 'ECDSA'],
    ['RSA-2048 (RSA-PSS in TLS 1.3)', RSA_KEY, 'RSA-PSS'],
  ] as const) {
    it(`s_server with the HSM ${name} key completes a TLS 1.3 handshake with s_client`, async () => {
      const crt = f(`${uri === EC_KEY ? 'ec' : 'rsa'}.crt`);
      const srv = await sServer(uri, crt);
      try {
        const c = await runCli('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-tls1_3', '-CAfile', crt, '-verify_return_error', '-brief'], {
          env: plainEnv,
          timeoutMs: 20_000,
        });
        expect(c.code, `${describeRun(c)}\n--- s_server ---\n${srv.out()}`).toBe(0);
        expect(c.stderr).toContain('CONNECTION ESTABLISHED');
        expect(c.stderr).toMatch(/Protocol version: TLSv1\.3/);
        expect(c.stderr).toMatch(new RegExp(`Signature type: ${sigType}`));
        expect(c.stderr).toMatch(/Verification: OK/);
      } finally {
        srv.proc.kill('SIGKILL');
      }
    });
  }

  it('a wrong PIN makes the engine fail to load the key', async () => {
    writeFileSync(f('bad.cnf'), readFileSync(f('openssl.cnf'), 'utf8').replace(`PIN = ${USER_PIN}`, 'PIN = 9999'));
    const r = await runCli('openssl', ['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', EC_KEY, '-out', f('sig.bad'), f('data')], {
      env: { ...engEnv, OPENSSL_CONF: f('bad.cnf') },
      timeoutMs: 30_000,
    });
    expect(r.code, describeRun(r)).not.toBe(0);
  });
});
