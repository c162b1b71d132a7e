// SIGHUP reload (hsm-daemon/src/reload) and sd_notify, against a real craton-hsmd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CKA, CKF, CKM, CKR, CKU, rvName } from '../../hsm-daemon/src/pkcs11/index.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { loadModule, type LoadedModule, rvOf, initTokenAndLogin } from '../helpers/module.js';

const SO_PIN = '12345678';
const USER_PIN = '1234';

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const count = (hay: string, needle: string) => hay.split(needle).length - 1;

describe.sequential('SIGHUP reloads the configuration', () => {
  let daemon: Daemon;
  let mod: LoadedModule;
  let s: Buffer;
  let aes: Buffer;
  const ecb = () =>
    rvOf(() => {
      mod.p11.C_EncryptInit(s, { mechanism: CKM.AES_ECB }, aes);
      return mod.p11.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(16));
    });
  const hup = async (line: string) => {
    const before = count(daemon.stderr(), line);
    daemon.proc.kill('SIGHUP');
    await waitFor(() => count(daemon.stderr(), line) > before, `"${line}" after SIGHUP`);
  };

  beforeAll(async () => {
    daemon = await startDaemon({ extraToml: '[algorithms]\nenforce = "strict"' });
    mod = loadModule(daemon.socketPath);
    const p11 = mod.p11;
    ({ session: s } = initTokenAndLogin(p11, { soPin: SO_PIN, userPin: USER_PIN, label: 'reload' }));
    aes = p11.C_GenerateKey(s, { mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.VALUE_LEN, value: 16 },
      { type: CKA.TOKEN, value: false },
      { type: CKA.ENCRYPT, value: true },
    ] as never);
  });

  afterAll(async () => {
    mod?.close();
    await daemon?.stop();
  });

  it('strict refuses AES-ECB; after enforce = "warn" and SIGHUP it runs', async () => {
    expect(rvName(ecb())).toBe(rvName(CKR.MECHANISM_INVALID));
    const text = readFileSync(daemon.configPath, 'utf8');
    expect(text).toMatch(/enforce = "strict"/);
    writeFileSync(daemon.configPath, text.replace('enforce = "strict"', 'enforce = "warn"'));
    await hup('reload: applied algorithms.enforce');
    expect(rvName(ecb())).toBe(rvName(CKR.OK));
  });

  it('an invalid file leaves the running configuration in force, with one error line', async () => {
    const good = readFileSync(daemon.configPath, 'utf8');
    writeFileSync(daemon.configPath, good.replace('enforce = "warn"', 'enforce = "sometimes"'));
    await hup('the running configuration is unchanged');
    const line = daemon.stderr().split('\n').find((l) => l.includes('the running configuration is unchanged'))!;
    expect(line).toMatch(/error: reload: config: algorithms\.enforce = "sometimes" is not allowed/);
    expect(rvName(ecb())).toBe(rvName(CKR.OK)); // still warn
    writeFileSync(daemon.configPath, good);
  });

  it('non-reloadable keys are refused with one warn line; reloadable ones in the same file apply', async () => {
    const good = readFileSync(daemon.configPath, 'utf8');
    writeFileSync(daemon.configPath, `${good.replace('enforce = "warn"', 'enforce = "strict"')}\n[slots]\ncount = 3\n`);
    await hup('reload: applied algorithms.enforce');
    expect(daemon.stderr()).toMatch(/warn: reload: not reloadable, kept the running values \(restart to apply\): slots\.count\n/);
    expect(mod.p11.C_GetSlotList(false).length).not.toBe(3);
    expect(rvName(ecb())).toBe(rvName(CKR.MECHANISM_INVALID)); // strict again
    writeFileSync(daemon.configPath, good);
  });

  it('SIGHUP still checkpoints and reopens the audit log (its own handler)', () => {
    expect(daemon.proc.exitCode).toBeNull();
    expect(daemon.stderr()).not.toMatch(/audit log reopen failed/);
  });
});

// A fake $NOTIFY_SOCKET: python3 binds an AF_UNIX datagram socket and prints each message.
const havePython = spawnSync('python3', ['-c', 'import socket'], { stdio: 'ignore' }).status === 0;
const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    m = s.recv(4096).decode()
    print(m.replace("\\n", "|"), flush=True)
`;

describe.skipIf(!havePython)('sd_notify', () => {
  let dir: string;
  let listener: ChildProcess;
  let got = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'craton-notify-'));
    listener = spawn('python3', ['-c', LISTENER, path.join(dir, 'notify.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    listener.stdout!.setEncoding('utf8').on('data', (d: string) => (got += d));
    await waitFor(() => got.includes('listening'), 'the notify listener');
  });
  afterAll(() => {
    listener?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('READY=1 once the socket listens, WATCHDOG=1 when asked, STOPPING=1 on SIGTERM', async () => {
    const daemon = await startDaemon({ env: { NOTIFY_SOCKET: path.join(dir, 'notify.sock'), WATCHDOG_USEC: '200000' } });
    const pid = daemon.proc.pid!;
    await waitFor(() => got.includes('READY=1'), 'READY=1');
    expect(got).toContain(`READY=1|MAINPID=${pid}|STATUS=serving ${daemon.socketPath}`);
    await waitFor(() => count(got, 'WATCHDOG=1') >= 2, 'two WATCHDOG=1 pings', 5000);
    expect(got).not.toContain('STOPPING=1');
    await daemon.stop();
    await waitFor(() => got.includes('STOPPING=1'), 'STOPPING=1');
    // Order: READY before STOPPING.
    expect(got.indexOf('READY=1')).toBeLessThan(got.indexOf('STOPPING=1'));
  });

  it('without NOTIFY_SOCKET nothing is sent and the daemon starts as before', async () => {
    const before = got;
    const daemon = await startDaemon();
    await daemon.stop();
    expect(got).toBe(before);
  });
});
