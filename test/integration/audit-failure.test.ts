// Audit write/open failure end to end: a real craton-hsmd whose audit log lives on a small
// tmpfs, a real client (pkcs11js → libcraton_hsm.so), and a PagerDuty Events v2 receiver on
// 127.0.0.1. When the filesystem fills up (or is read-only when the daemon starts),
// audited calls fail closed with CKR_DEVICE_ERROR, the process log says so at error
// level, and a critical `audit_failure` page is delivered; when space comes back the
// daemon writes a Recovery entry, calls succeed again, the incident is resolved and the
// log still verifies.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { REPO_ROOT, startDaemon, type Daemon } from '../helpers/daemon.js';
import { describeRun, loadModule, rvOf, runCli, type LoadedModule } from '../helpers/module.js';
import { SO_PIN, USER_PIN, p11ok } from '../helpers/p11tool.js';

const ADMIN = path.join(REPO_ROOT, 'bin', 'craton-hsm-admin');

// ---- a tmpfs we can fill ------------------------------------------------------------------
const mounts: string[] = [];
function tryMount(): { dir: string | null; why: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'craton-audit-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    mounts.push(dir);
    return { dir, why: '' };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    const detail = err.stderr?.toString().trim() || err.message;
    return { dir: null, why: `cannot mount a tmpfs (uid ${process.getuid?.()}; mount said: ${detail})` };
  }
}
const probe = tryMount();
const MOUNT_DIR = probe.dir;

/** Fills the filesystem of `dir` with a filler file until ENOSPC. */
function fill(dir: string): string {
  const f = path.join(dir, 'filler');
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(4096, 0x78);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  // the last partial page too
  const fd2 = openSync(f, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(1, 0x78));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd2);
  }
  return f;
}

// ---- the PagerDuty receiver --------------------------------------------------------------
let server: http.Server;
let url: string;
const hits = new Map<string, Array<Record<string, any>>>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      const body = JSON.parse(data || '{}');
      const key = String(body.routing_key);
      hits.set(key, [...(hits.get(key) ?? []), body]);
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`;
});

const daemons: Daemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.stop().catch(() => undefined);
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', [m], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', m], { stdio: 'pipe' });
    }
    rmSync(m, { recursive: true, force: true });
  }
});

async function waitFor<T>(f: () => T | undefined | false, ms = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(routingKey: string, logPath: string): Promise<Daemon> {
  const d = await startDaemon({
    slots: 1,
    extraToml: `[audit]\nlog_path = "${logPath}"\n[alerts]\nmax_retries = 2\n[alerts.pagerduty]\nurl = "${url}"\nrouting_key = "${routingKey}"\n`,
  });
  daemons.push(d);
  return d;
}

const pages = (key: string, action: string) => (hits.get(key) ?? []).filter((h) => h.event_action === action && h.dedup_key === 'audit_failure');
const random = (m: LoadedModule, session: Buffer) => rvOf(() => m.p11.C_GenerateRandom(session, Buffer.alloc(32)));

function openUserSession(d: Daemon): { m: LoadedModule; session: Buffer } {
  const m = loadModule(d.socketPath);
  const slot = m.p11.C_GetSlotList(true)[0]!;
  const session = m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  m.p11.C_Login(session, CKU.USER, USER_PIN);
  return { m, session };
}

async function initToken(d: Daemon): Promise<void> {
  await p11ok(d, ['--init-token', '--slot', '0', '--label', 'audit-fail', '--so-pin', SO_PIN]);
  await p11ok(d, ['--slot', '0', '--init-pin', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--pin', USER_PIN]);
}

const verify = (d: Daemon, logPath: string) => runCli(process.execPath, [ADMIN, '--config', d.configPath, '--data-dir', d.dataDir, 'audit', 'verify'], { env: d.env }).then((r) => ({ ...r, logPath }));

describe.skipIf(!MOUNT_DIR)(`audit log on a full filesystem (tmpfs 256k)${MOUNT_DIR ? '' : ` — skipped: ${probe.why}`}`, () => {
  const key = 'rk-audit-enospc';
  let d: Daemon;
  let logPath: string;

  it('fails closed with CKR_DEVICE_ERROR, logs at error level and pages; recovers when space returns', async () => {
    const dir = path.join(MOUNT_DIR!, 'enospc');
    execFileSync('mkdir', ['-m', '700', dir]);
    logPath = path.join(dir, 'craton_hsm_audit.jsonl');
    d = await start(key, logPath);
    await initToken(d);
    const { m, session } = openUserSession(d);
    try {
      expect(random(m, session)).toBe(CKR.OK);
      const filler = fill(MOUNT_DIR!);

      // The log's last page may still take a few entries; then the write fails.
      let first = -1;
      for (let i = 0; i < 200 && first < 0; i++) {
        const rv = random(m, session);
        if (rv !== CKR.OK) first = rv;
      }
      expect(rvName(first)).toBe('CKR_DEVICE_ERROR');
      // From now on audited calls are refused up front (fail_closed), crypto and object calls alike.
      expect(rvName(random(m, session))).toBe('CKR_DEVICE_ERROR');
      expect(rvName(rvOf(() => m.p11.C_DigestInit(session, { mechanism: 0x250 /* CKM_SHA256 */ })))).toBe('CKR_DEVICE_ERROR');

      await waitFor(() => /error.*audit log write failed: .*ENOSPC/.test(d.stderr()), 10_000, 'the error line');
      await waitFor(() => /"event":"alert".*"kind":"audit_failure"/.test(d.stderr()), 10_000, 'the alert line');
      const trig = await waitFor(() => pages(key, 'trigger')[0], 15_000, 'the PagerDuty trigger');
      expect(trig.payload.severity).toBe('critical');
      expect(trig.payload.summary).toMatch(/audit log .* cannot be written .*ENOSPC.*fail_closed/);
      expect(pages(key, 'trigger')).toHaveLength(1); // repeats are one incident

      // Space comes back: the daemon reopens (on the next call, at most 1/s, or every 5 s),
      // writes a Recovery entry, and calls succeed again.
      unlinkSync(filler);
      await waitFor(() => random(m, session) === CKR.OK, 15_000, 'calls to succeed again');
      const res = await waitFor(() => pages(key, 'resolve')[0], 15_000, 'the PagerDuty resolve');
      expect(res.dedup_key).toBe('audit_failure');
      expect(d.stderr()).toMatch(/audit log available again/);
    } finally {
      m.close();
    }
    await d.stop();
    const v = await verify(d, logPath);
    expect(v.code, describeRun(v)).toBe(0);
  });
});

describe.skipIf(!MOUNT_DIR)(`audit log on a read-only filesystem at startup${MOUNT_DIR ? '' : ` — skipped: ${probe.why}`}`, () => {
  it('open failure fails closed and pages; remounting read-write recovers', async () => {
    const key = 'rk-audit-erofs';
    const ro = tryMount();
    if (!ro.dir) throw new Error(ro.why);
    const logPath = path.join(ro.dir, 'craton_hsm_audit.jsonl');
    execFileSync('mount', ['-o', 'remount,ro', ro.dir], { stdio: 'pipe' });
    const d = await start(key, logPath);
    expect(d.stderr()).toMatch(/error.*audit log unavailable: .*(EROFS|read-only)/);
    const m = loadModule(d.socketPath);
    try {
      const slot = m.p11.C_GetSlotList(true)[0]!;
      // C_OpenSession is audited (level all): refused too.
      expect(rvName(rvOf(() => m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION)))).toBe('CKR_DEVICE_ERROR');
      const trig = await waitFor(() => pages(key, 'trigger')[0], 15_000, 'the PagerDuty trigger');
      expect(trig.payload.severity).toBe('critical');
      expect(trig.payload.summary).toMatch(/EROFS|read-only/);

      execFileSync('mount', ['-o', 'remount,rw', ro.dir], { stdio: 'pipe' });
      // The next call (at most one reopen attempt per second) or the 5 s retry reopens it.
      await waitFor(() => rvOf(() => m.p11.C_OpenSession(slot, CKF.SERIAL_SESSION)) !== CKR.DEVICE_ERROR, 15_000, 'the audit log to reopen');
      await waitFor(() => pages(key, 'resolve')[0], 15_000, 'the PagerDuty resolve');
    } finally {
      m.close();
    }
    await initToken(d);
    const u = openUserSession(d);
    expect(random(u.m, u.session)).toBe(CKR.OK);
    u.m.close();
    await d.stop();
    const v = await verify(d, logPath);
    expect(v.code, describeRun(v)).toBe(0);
  });
});
