// Events, redaction, filters and the compliance report of craton-trace (no root needed).
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_SETTINGS } from '../../../hsm-daemon/src/policy/table.js';
import { decodeWaitStatus, fileType, isoMicros, libraryName, openFlags, parseIsoMicros, type CryptoOpEvent, type TraceEvent } from '../../../tracer/src/events.js';
import { globToRegExp, makeFilter, parseExpression } from '../../../tracer/src/filter.js';
import { redactEvent, redactPath } from '../../../tracer/src/redact.js';
import { buildReport, reportText } from '../../../tracer/src/report.js';
import { containerIdFromCgroup, loaderArgs, normalise, ProcCache } from '../../../tracer/src/session.js';

describe('events', () => {
  it('timestamps: ISO 8601, UTC, microseconds, round trip', () => {
    expect(isoMicros(1733653845123456)).toBe('2024-12-08T10:30:45.123456Z');
    expect(isoMicros(1733653845000001)).toBe('2024-12-08T10:30:45.000001Z');
    expect(parseIsoMicros('2024-12-08T10:30:45.123456Z')).toBe(1733653845123456);
  });
  it.each([
    ['/etc/ssl/certs/server.crt', undefined, 'certificate'],
    ['/etc/ssl/private/server.key', undefined, 'private_key'],
    ['/opt/app/keystore.jks', undefined, 'keystore'],
    ['/etc/ssl/keystore.p12', undefined, 'keystore'],
    ['/x/a.pem', '-----BEGIN CERTIFICATE-----\nMII', 'certificate'],
    ['/x/a.pem', '-----BEGIN PRIVATE KEY-----\nMII', 'private_key'],
    ['/x/a.pem', '-----BEGIN EC PRIVATE KEY-----\n', 'private_key'],
    ['/x/a.pem', undefined, 'unknown'],
    ['/x/a.der', undefined, 'unknown'],
  ])('file type %s', (p, head, t) => expect(fileType(p, head)).toBe(t));
  it.each([
    ['/usr/lib/x86_64-linux-gnu/libssl.so.3', 'libssl'],
    ['/lib/x86_64-linux-gnu/libcrypto.so.3', 'libcrypto'],
    ['/usr/lib/x86_64-linux-gnu/libgnutls.so.30', 'libgnutls'],
    ['/usr/lib/libsodium.so.23', 'libsodium'],
    ['/usr/lib/x86_64-linux-gnu/libnss3.so', 'libnss3'],
    ['/usr/lib/libmbedtls.so.14', 'libmbedtls'],
    ['/usr/lib/libc.so.6', undefined],
  ])('library name %s', (p, n) => expect(libraryName(p)).toBe(n));
  it('open flags and wait status', () => {
    expect(openFlags(0)).toBe('O_RDONLY');
    expect(openFlags(0o2000000 | 2)).toBe('O_RDWR|O_CLOEXEC');
    expect(decodeWaitStatus(9)).toEqual({ exit_code: 137, signal: 9 });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exit_code: 3 });
  });
  it('container id from /proc/PID/cgroup', () => {
    const id = 'a'.repeat(64);
    expect(containerIdFromCgroup(`0::/system.slice/docker-${id}.scope\n`)).toBe(id);
    expect(containerIdFromCgroup('0::/user.slice/user-0.slice/session-1.scope\n')).toBeUndefined();
  });
});

describe('redaction (seed 001)', () => {
  it.each([
    ['/home/alice/key.pem', '/home/USER/key.pem'],
    ['/home/bob/cert.pem', '/home/USER/cert.pem'],
    ['/root/secret.key', '/home/ROOT/secret.key'],
    ['/root', '/home/ROOT'],
    ['/etc/ssl/certs/ca.crt', '/etc/ssl/certs/ca.crt'],
    ['/usr/lib/libssl.so', '/usr/lib/libssl.so'],
    ['/var/lib/ssl/cert.pem', '/var/lib/ssl/cert.pem'],
    ['/rootfs/x.pem', '/rootfs/x.pem'],
    ['openssl x509 -in /home/carol/c.pem -out=/root/o.pem', 'openssl x509 -in /home/USER/c.pem -out=/home/ROOT/o.pem'],
  ])('%s', (a, b) => expect(redactPath(a)).toBe(b));
  it('redacts every path field of an event', () => {
    const e = redactEvent({ event_type: 'process_exec', timestamp: 't', pid: 1, ppid: 0, uid: 0, process: 'x', binary: '/home/al/bin/x', cmdline: 'x /root/k.key' });
    expect(e).toMatchObject({ binary: '/home/USER/bin/x', cmdline: 'x /home/ROOT/k.key' });
  });
});

const op = (over: Partial<CryptoOpEvent>): CryptoOpEvent => ({
  event_type: 'crypto_op',
  timestamp: '2025-10-04T14:30:20.000000Z',
  pid: 10,
  ppid: 1,
  uid: 0,
  process: 'myapp',
  binary: '/usr/local/bin/myapp',
  cgroup_id: 1,
  operation: 'DIGEST',
  algorithm: 'SHA-256',
  probe: 'EVP_DigestInit_ex',
  caller: 'application',
  approved: true,
  allowed: true,
  action: 'ALLOWED',
  reason: '',
  ...over,
});
const lib: TraceEvent = { event_type: 'lib_load', timestamp: 't', pid: 11, process: 'nginx', library: '/usr/lib/libssl.so.3', library_name: 'libssl' };
const file: TraceEvent = { event_type: 'file_open', timestamp: 't', pid: 11, process: 'nginx', file: '/etc/ssl/server.pem', file_type: 'certificate', flags: 'O_RDONLY' };

describe('filters (AND logic)', () => {
  const enc = op({ operation: 'ENCRYPT', algorithm: 'AES-GCM' });
  const md5 = op({ algorithm: 'MD5', approved: false, allowed: false, action: 'WARNED', binary: '/usr/bin/legacy-app', process: 'legacy-app', pid: 12 });
  const all: TraceEvent[] = [op({}), enc, md5, lib, file];
  const run = (o: Parameters<typeof makeFilter>[0], r?: () => number) => all.filter(makeFilter(o, r));
  it.each<[string, Parameters<typeof makeFilter>[0], TraceEvent[]]>([
    ['pid', { pid: 12 }, [md5]],
    ['name substring', { name: 'legacy' }, [md5]],
    ['library substring', { library: 'libssl' }, [lib]],
    ['file glob', { file: '*.pem' }, [file]],
    ['file glob with dir', { file: '/etc/ssl/*' }, [file]],
    ['expression', { expression: 'operation:ENCRYPT AND algorithm:AES*' }, [enc]],
    ['expression, case-insensitive op', { expression: 'operation:encrypt' }, [enc]],
    ['binary expression', { expression: 'binary:/usr/bin/*' }, [md5]],
    ['signer alias', { expression: 'signer:/usr/local/bin/myapp' }, [op({}), enc]],
    ['exclude', { exclude: ['/usr/local/*'] }, [md5, lib, file]],
    ['AND of filters', { name: 'nginx', file: '*.pem' }, [file]],
    ['types', { types: ['lib_load'] }, [lib]],
  ])('%s', (_n, o, want) => expect(run(o)).toEqual(want));
  it('sampling keeps warnings and non-crypto events', () => {
    expect(run({ sampleRate: 0.5 }, () => 0.9)).toEqual([md5, lib, file]);
    expect(run({ sampleRate: 0.5 }, () => 0.1)).toEqual(all);
  });
  it('rejects an unknown field', () => expect(() => parseExpression('colour:red')).toThrow(/unknown field/));
  it('globs', () => {
    expect(globToRegExp('a?c[0-9]*').test('abc1zz')).toBe(true);
    expect(globToRegExp('*.pem').test('/x/y.pem.bak')).toBe(false);
  });
});

describe('compliance report (seed 000)', () => {
  const events: TraceEvent[] = [
    ...Array.from({ length: 7 }, (_, i) => op({ timestamp: `2025-10-04T14:3${i}:00.000000Z` })),
    op({ timestamp: '2025-10-04T14:40:00.000000Z', algorithm: 'MD5', approved: false, allowed: false, action: 'BLOCKED' }),
    op({ timestamp: '2025-10-04T15:01:00.000000Z', algorithm: 'RC4', operation: 'ENCRYPT', approved: false, allowed: false, action: 'BLOCKED' }),
    op({ timestamp: '2025-10-04T15:02:00.000000Z', algorithm: 'RC4', operation: 'ENCRYPT', approved: false, allowed: false, action: 'BLOCKED' }),
    op({ timestamp: '2025-10-04T15:03:00.000000Z', algorithm: 'SHA-1', approved: false, allowed: false, action: 'WARNED' }),
    lib,
    file,
  ];
  const r = buildReport(events, { now: () => new Date('2025-10-05T00:00:00Z') });
  it('figures', () => {
    expect(r).toMatchObject({
      period: '2025-10-04T14:30:00.000000Z to 2025-10-04T15:03:00.000000Z',
      total_operations: 11,
      approved_operations: 7,
      blocked_operations: 3,
      warned_operations: 1,
      approval_rate: 63.64,
      blocked_algorithms: [{ algorithm: 'RC4', count: 2 }, { algorithm: 'MD5', count: 1 }],
    });
  });
  it('hourly buckets', () => {
    expect(r.buckets.map((b) => [b.period, b.total_operations, b.blocked_operations])).toEqual([
      ['2025-10-04T14:00:00Z to 2025-10-04T15:00:00Z', 8, 1],
      ['2025-10-04T15:00:00Z to 2025-10-04T16:00:00Z', 3, 2],
    ]);
  });
  it('since/until and the empty report', () => {
    expect(buildReport(events, { since: '2025-10-04T15:00:00Z' }).total_operations).toBe(3);
    const empty = buildReport([]);
    expect(empty.approval_rate).toBeNull();
    expect(reportText(empty)).toMatch(/n\/a/);
  });
  it('text form names blocked algorithms', () => expect(reportText(r)).toMatch(/Blocked algorithms:\s+RC4 ×2, MD5 ×1/));
});

describe('loader records → events', () => {
  it('exec fills the binary of later crypto ops; exit decodes the signal', () => {
    const procs = new ProcCache();
    const base = { ts_us: 1733653845123456, pid: 999_999_1, tid: 999_999_1, ppid: 1, uid: 0, cgroup_id: 1, process: 'openssl' };
    normalise({ ...base, event_type: 'process_exec', binary: '/usr/bin/openssl', cmdline: 'openssl dgst -md5', cmdline_truncated: false }, DEFAULT_POLICY_SETTINGS, procs);
    const c = normalise(
      { ...base, event_type: 'crypto_op', probe: 'EVP_DigestInit_ex', operation: 'DIGEST', nid: 4, sn: 'MD5', ln: 'md5', internal: false, blocked: true, would_block: false, exempt: false, signal_error: false },
      DEFAULT_POLICY_SETTINGS,
      procs,
    );
    expect(c).toMatchObject({ event_type: 'crypto_op', binary: '/usr/bin/openssl', algorithm: 'MD5', approved: false, action: 'BLOCKED', timestamp: '2024-12-08T10:30:45.123456Z', caller: 'application' });
    expect(normalise({ ...base, event_type: 'process_exit', wait_status: 9 }, DEFAULT_POLICY_SETTINGS, procs)).toMatchObject({ exit_code: 137, signal: 9 });
  });
  it('strict-mode loader arguments carry the table-derived rules', () => {
    const args = loaderArgs({ settings: DEFAULT_POLICY_SETTINGS, enforce: 'strict', enforceOnly: ['/tmp/x'], allowBinaries: ['/usr/bin/ok'] }, () => [{ nid: 4, kind: 'digest', sn: 'MD5', ln: 'md5' }], 123);
    expect(args.slice(0, 2)).toEqual(['--skip-pid', '123']);
    expect(args).toContain('--enforce');
    expect(args[args.indexOf('--block-nid') + 1]).toMatch(/^4:0x/);
    expect(args).toEqual(expect.arrayContaining(['--exempt', '/usr/bin/ok', '--enforce-only', '/tmp/x']));
    expect(loaderArgs({ settings: DEFAULT_POLICY_SETTINGS, enforce: 'warn' }, () => [])).not.toContain('--enforce');
  });
});
