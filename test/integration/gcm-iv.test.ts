// Token-generated AES-GCM IVs ([nonce] caller_iv = "generate", wire protocol 2) through the
// real module: a C client (test/c/gcm_iv_client.c) reads each IV back from
// CK_GCM_PARAMS.pIv; 100,000 encryptions under one key repeat no IV and all decrypt; kill -9
// of the daemon mid-stream, three times, never makes an IV come back. Also: caller IVs
// refused under "generate", and the audit entries' fips_approved for caller vs token IVs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKM, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, loadModule, pkcs11js, runCli, rvOf } from '../helpers/module.js';
import { initTokenWithPkcs11Tool } from './c-client.setup.js';

const SO_PIN = '87654321';
const USER_PIN = '2468';
const GENERATE = '[nonce]\ncaller_iv = "generate"\n[audit]\nlog_level = "none"\n';
let binary: string;

beforeAll(async () => {
  binary = path.join(mkdtempSync(path.join(os.tmpdir(), 'craton-gcmiv-')), 'gcm_iv_client');
  const cc = await runCli('gcc', [
    '-std=c11', '-O1', '-g', '-Wall', '-Wextra', '-Werror',
    '-I', path.join(REPO_ROOT, 'proxy-module/include'), '-I', '/usr/include/p11-kit-1',
    path.join(REPO_ROOT, 'test/c/gcm_iv_client.c'), '-o', binary, '-ldl',
  ]);
  expect(cc.code, describeRun(cc)).toBe(0);
});

const ivsOf = (out: string): string[] => [...out.matchAll(/^iv ([0-9a-f]{24})$/gm)].map((m) => m[1]!);
/** The §8.2.1 layout: 4-byte fixed field, 8-byte invocation counter. */
const counterOf = (iv: string): number => Number(BigInt('0x' + iv.slice(8)));

function expectUnique(ivs: string[]): void {
  const seen = new Set(ivs);
  expect(seen.size).toBe(ivs.length);
}

describe('caller_iv = "generate" through the C module', () => {
  let d: Daemon;
  afterAll(async () => {
    await d?.stop();
  });

  it('100,000 encryptions under one key: every IV comes back in pIv, none repeats, each decrypts', async () => {
    d = await startDaemon({ slots: 1, extraToml: GENERATE });
    await initTokenWithPkcs11Tool(d, SO_PIN, USER_PIN);
    const r = await runCli(binary, [d.modulePath, USER_PIN, 'gcm-100k', '100000'], { env: d.env, timeoutMs: 300_000 });
    expect(r.code, describeRun({ ...r, stdout: r.stdout.slice(-2000) })).toBe(0);
    expect(r.stdout).toMatch(/^done 100000$/m);
    const ivs = ivsOf(r.stdout);
    expect(ivs).toHaveLength(100_000);
    expectUnique(ivs);
    // one fixed field per key, invocation counters 0 … 99,999 in order
    expect(new Set(ivs.map((iv) => iv.slice(0, 8))).size).toBe(1);
    expect(ivs.map(counterOf)).toEqual(Array.from({ length: 100_000 }, (_, i) => i));
  }, 360_000);
});

describe('kill -9 in the middle of encrypting', () => {
  it('no IV ever comes back, across three restarts', async () => {
    let d = await startDaemon({ slots: 1, extraToml: GENERATE });
    await initTokenWithPkcs11Tool(d, SO_PIN, USER_PIN);
    const all: string[] = [];
    let maxBefore = -1;
    try {
      for (let round = 0; round < 4; round++) {
        const child = spawn(binary, [d.modulePath, USER_PIN, 'gcm-crash', round < 3 ? '0' : '500'], { env: d.env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
        const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
        if (round < 3) {
          // the client buffers its output: wait for the daemon's counter file to move on instead
          await new Promise((res) => setTimeout(res, 1500 + round * 300));
          await d.kill9();
          expect(await exited, err).toBe(2); // "stop": the daemon went away mid-stream
          expect(out).toMatch(/^stop \d+ rv=0x/m);
        } else {
          expect(await exited, err + out.slice(-500)).toBe(0);
        }
        const ivs = ivsOf(out);
        expect(ivs.length).toBeGreaterThan(round < 3 ? 100 : 499);
        // after each restart the counter resumes beyond every IV handed out before
        expect(Math.min(...ivs.map(counterOf))).toBeGreaterThan(maxBefore);
        maxBefore = Math.max(...ivs.map(counterOf));
        all.push(...ivs);
        if (round < 3) d = await startDaemon({ slots: 1, extraToml: GENERATE, dataDir: d.dataDir });
      }
      expectUnique(all);
    } finally {
      await d.stop();
    }
  }, 120_000);
});

describe('caller IVs and the approved indicator', () => {
  const gcm = (iv: Buffer) =>
    ({ mechanism: CKM.AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.alloc(0), tagBits: 128 } }) as never;

  async function session(toml: string) {
    const d = await startDaemon({ slots: 1, extraToml: toml });
    await initTokenWithPkcs11Tool(d, SO_PIN, USER_PIN);
    const m = loadModule(d.socketPath);
    const p11 = m.p11;
    const s = p11.C_OpenSession(p11.C_GetSlotList(true)[0]!, CKF.SERIAL_SESSION | CKF.RW_SESSION);
    p11.C_Login(s, CKU.USER, USER_PIN);
    const key = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [{ type: CKA.VALUE_LEN, value: 32 }] as never);
    return { d, m, p11, s, key };
  }

  function auditEncryptInits(d: Daemon): Array<{ fips_approved: boolean | null; result: unknown }> {
    return readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { operation: string; mechanism: string | null; fips_approved: boolean | null; result: unknown })
      .filter((e) => e.operation === 'EncryptInit' && e.mechanism === 'CKM_AES_GCM');
  }

  it('"generate" refuses a caller IV (non-zero, or not 12 bytes) and audits its own IVs approved', async () => {
    const { d, m, p11, s, key } = await session('[nonce]\ncaller_iv = "generate"\n');
    try {
      expect(rvName(rvOf(() => p11.C_EncryptInit(s, gcm(Buffer.alloc(12, 1)), key)))).toBe(rvName(CKR.MECHANISM_PARAM_INVALID));
      expect(rvName(rvOf(() => p11.C_EncryptInit(s, gcm(Buffer.alloc(16)), key)))).toBe(rvName(CKR.MECHANISM_PARAM_INVALID));
      p11.C_EncryptInit(s, gcm(Buffer.alloc(12)), key);
      p11.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(32));
    } finally {
      m.close();
      await d.stop();
    }
    const entries = auditEncryptInits(d);
    expect(entries.filter((e) => (e.result as { Success?: null }).Success === null).map((e) => e.fips_approved)).toEqual([true]);
  });

  it('"accept" runs a caller IV and audits it fips_approved = false (init and the encryption)', async () => {
    const { d, m, p11, s, key } = await session('[nonce]\ncaller_iv = "accept"\n');
    try {
      p11.C_EncryptInit(s, gcm(Buffer.alloc(12, 7)), key);
      p11.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(32));
      p11.C_DecryptInit(s, gcm(Buffer.alloc(12, 7)), key);
    } finally {
      m.close();
      await d.stop();
    }
    const lines = readFileSync(path.join(d.dataDir, 'craton_hsm_audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { operation: string; fips_approved: boolean | null });
    const of = (op: string) => lines.filter((e) => e.operation === op).map((e) => e.fips_approved);
    expect(of('EncryptInit')).toEqual([false]);
    expect(of('Encrypt')).toEqual([false]);
    expect(of('DecryptInit')).toEqual([true]); // decryption does not choose an IV
  });
});
