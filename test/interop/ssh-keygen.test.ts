// OpenSSH's PKCS#11 support lists the HSM's public keys (ssh-keygen -D).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, runCli } from '../helpers/module.js';
import { initTokenWithKeys, p11ok } from '../helpers/p11tool.js';

let d: Daemon;
let work: string;
beforeAll(async () => {
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'craton-ssh-'));
  await initTokenWithKeys(d);
});
afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Splits an SSH wire-format public key blob into its length-prefixed strings. */
function sshStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < blob.length) {
    const len = blob.readUInt32BE(off);
    out.push(blob.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}
const stripZeros = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

async function exportedJwk(id: string) {
  const file = path.join(work, `${id}.der`);
  await p11ok(d, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', id, '-o', file]);
  return createPublicKey({ key: readFileSync(file), format: 'der', type: 'spki' }).export({ format: 'jwk' });
}

describe('ssh-keygen -D', () => {
  it('lists the RSA and EC public keys, matching the pkcs11-tool export', async () => {
    const r = await runCli('ssh-keygen', ['-D', d.modulePath], { env: d.env, timeoutMs: 60_000 });
    expect(r.code, describeRun(r)).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const rsa = lines.filter((l) => l.startsWith('ssh-rsa '));
    const ec = lines.filter((l) => l.startsWith('ecdsa-sha2-nistp256 '));
    expect(rsa, r.stdout).toHaveLength(1);
    expect(ec, r.stdout).toHaveLength(1);
    expect(lines, r.stdout).toHaveLength(2);

    // ssh-rsa blob: "ssh-rsa", e, n (mpints).
    const [rsaType, e, n] = sshStrings(Buffer.from(rsa[0]!.split(' ')[1]!, 'base64'));
    expect(rsaType!.toString()).toBe('ssh-rsa');
    const rsaJwk = await exportedJwk('01');
    expect(stripZeros(n!).toString('base64url')).toBe(rsaJwk.n);
    expect(stripZeros(e!).toString('base64url')).toBe(rsaJwk.e);
    expect(stripZeros(n!).length).toBe(256);

    // ecdsa blob: "ecdsa-sha2-nistp256", "nistp256", Q (04 || x || y).
    const [ecType, curve, q] = sshStrings(Buffer.from(ec[0]!.split(' ')[1]!, 'base64'));
    expect(ecType!.toString()).toBe('ecdsa-sha2-nistp256');
    expect(curve!.toString()).toBe('nistp256');
    const ecJwk = await exportedJwk('02');
    expect(ecJwk.crv).toBe('P-256');
    expect(q!.length).toBe(65);
    expect(q![0]).toBe(4);
    expect(q!.subarray(1, 33).toString('base64url')).toBe(ecJwk.x);
    expect(q!.subarray(33).toString('base64url')).toBe(ecJwk.y);
  });

  it('fails cleanly when the daemon is not reachable', async () => {
    const env = { ...d.env, CRATON_HSM_SOCKET: path.join(work, 'no-such.sock') };
    const r = await runCli('ssh-keygen', ['-D', d.modulePath], { env, timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stdout).not.toMatch(/^ssh-rsa /m);
  });
});
