// OpenSC pkcs11-tool's built-in self tests. `--test` exercises MD5/SHA-1 digests, raw RSA and
// PKCS#1 v1.5 decryption; `--test-ec` signs with ECDSA-SHA1. The strict FIPS profile refuses
// those, so this daemon runs a permissive profile (see config/craton_hsm.toml [algorithms]).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun } from '../helpers/module.js';
import { initTokenWithKeys, p11ok, p11tool, USER_PIN } from '../helpers/p11tool.js';

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon({
    extraToml: '[algorithms]\nfips_approved_only = false\nallow_aes_ecb = true\nallow_raw_rsa = true\nallow_sha1_verify = true',
  });
  await initTokenWithKeys(d);
});
afterAll(async () => {
  await d?.stop();
});

describe.sequential('pkcs11-tool self tests (permissive profile)', () => {
  it('--test: random, digests, RSA verify and decryption all OK', async () => {
    const r = await p11tool(d, ['--slot', '0', '--test', '--login', '--pin', USER_PIN]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/C_SeedRandom\(\) and C_GenerateRandom\(\):\s+seems to be OK/);
    expect(r.stdout).toMatch(/all 4 digest functions seem to work/);
    expect(r.stdout).toMatch(/MD5: OK/);
    expect(r.stdout).toMatch(/SHA-1: OK/);
    expect(r.stdout).toMatch(/SHA256: OK/);
    // Signatures are only tested for mechanisms flagged CKF_HW, which a software token does not
    // claim (SoftHSM2 prints the same line).
    expect(r.stdout).toMatch(/Signatures: not implemented/);
    expect(r.stdout).toMatch(/Verify \(currently only for RSA\)\s+testing key \d+ \(rsa1\)\s+RSA-X-509: OK\s+RSA-PKCS: OK\s+SHA1-RSA-PKCS: OK/);
    expect(r.stdout).toMatch(/RSA-PKCS: OK/);
    expect(r.stdout.match(/RSA-PKCS-OAEP:[^\n]*\n?OK/g)?.length ?? 0).toBeGreaterThanOrEqual(1);
    expect(r.stdout).toMatch(/^No errors$/m);
    expect(r.stdout + r.stderr).not.toMatch(/^ERR|\bfailed\b|error: /m);
  });

  it('--test-ec: generate, relabel, ECDSA-SHA1 sign, delete', async () => {
    // --session-rw: pkcs11-tool 0.23 opens --test-ec's session read-only otherwise and its
    // C_GenerateKeyPair of token objects gets CKR_SESSION_READ_ONLY (as the spec requires).
    const r = await p11tool(d, ['--slot', '0', '--session-rw', '--test-ec', '--login', '--pin', USER_PIN, '--id', '0e', '--label', 'ectest', '--key-type', 'EC:prime256v1']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/Key pair generated:/);
    expect(r.stdout).toMatch(/\*\*\* Doing a signature \*\*\*/);
    expect(r.stdout).toMatch(/\*\*\* Deleting the private and the public key again \*\*\*/);
    expect(r.stdout).toMatch(/==> OK/);
    const objs = await p11ok(d, ['--slot', '0', '--list-objects', '--login', '--pin', USER_PIN]);
    expect(objs.stdout).not.toContain('ectest');
    expect(objs.stdout).toMatch(/label:\s+ec1/);
  });

  it('--test-ec without --session-rw fails with CKR_SESSION_READ_ONLY, not a crash', async () => {
    const r = await p11tool(d, ['--slot', '0', '--test-ec', '--login', '--pin', USER_PIN, '--id', '0f', '--label', 'ectest2', '--key-type', 'EC:prime256v1']);
    expect(r.code).not.toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stderr + r.stdout).toContain('CKR_SESSION_READ_ONLY');
  });
});
