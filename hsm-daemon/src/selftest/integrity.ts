// Software integrity test (FIPS 140-3 §7.10.2 pre-operational integrity): an HMAC-SHA-256
// over every shipped daemon file (dist/hsm-daemon/**/*.js), computed by
// `npm run build` (scripts/integrity-manifest.mjs → dist/integrity.json) and checked at
// start. The key is fixed and public — this detects modified, missing or added code, it
// is not a signature.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const KEY = Buffer.from('Craton HSM software integrity key v1');
export const MANIFEST_NAME = 'integrity.json';

export interface Manifest {
  version: 1;
  algorithm: 'HMAC-SHA-256';
  root: string;
  files: Record<string, string>;
  mac: string;
}

export interface IntegrityResult {
  ok: boolean;
  files: number;
  error?: string;
}

/** dist/ of the running build: this file is dist/hsm-daemon/src/selftest/integrity.js. */
export function defaultDistDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

function listJs(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...listJs(dir, r));
    else if (ent.isFile() && ent.name.endsWith('.js')) out.push(r);
  }
  return out.sort();
}

const fileMac = (data: Buffer): string => createHmac('sha256', KEY).update(data).digest('hex');
const listMac = (files: Record<string, string>): string => {
  const h = createHmac('sha256', KEY);
  for (const k of Object.keys(files).sort()) h.update(`${k}\0${files[k]}\n`);
  return h.digest('hex');
};

export function buildManifest(distDir: string, root = 'hsm-daemon'): Manifest {
  const files: Record<string, string> = {};
  for (const f of listJs(path.join(distDir, root))) files[f] = fileMac(readFileSync(path.join(distDir, root, f)));
  return { version: 1, algorithm: 'HMAC-SHA-256', root, files, mac: listMac(files) };
}

export function writeManifest(distDir: string): Manifest {
  const m = buildManifest(distDir);
  writeFileSync(path.join(distDir, MANIFEST_NAME), JSON.stringify(m, null, 1) + '\n');
  return m;
}

/** `corrupt` (fault injection only) treats the first file as modified. */
export function verifyIntegrity(distDir = defaultDistDir(), corrupt = false): IntegrityResult {
  const mpath = path.join(distDir, MANIFEST_NAME);
  if (!existsSync(mpath)) return { ok: false, files: 0, error: `${mpath} is missing (run npm run build)` };
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    return { ok: false, files: 0, error: `${mpath} is unreadable: ${(e as Error).message}` };
  }
  if (m.version !== 1 || m.algorithm !== 'HMAC-SHA-256' || typeof m.files !== 'object' || typeof m.root !== 'string')
    return { ok: false, files: 0, error: 'manifest format not recognised' };
  const eq = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  if (!eq(listMac(m.files), String(m.mac))) return { ok: false, files: 0, error: 'manifest MAC mismatch' };
  const rootDir = path.join(distDir, m.root);
  let present: string[];
  try {
    present = listJs(rootDir);
  } catch (e) {
    return { ok: false, files: 0, error: `cannot list ${rootDir}: ${(e as Error).message}` };
  }
  const listed = Object.keys(m.files).sort();
  const extra = present.filter((f) => !(f in m.files));
  if (extra.length) return { ok: false, files: listed.length, error: `unlisted file ${m.root}/${extra[0]}` };
  for (const [i, f] of listed.entries()) {
    let data: Buffer;
    try {
      data = readFileSync(path.join(rootDir, f));
    } catch {
      return { ok: false, files: listed.length, error: `missing file ${m.root}/${f}` };
    }
    if (corrupt && i === 0) data = Buffer.concat([data, Buffer.from(' ')]);
    if (!eq(fileMac(data), String(m.files[f]))) return { ok: false, files: listed.length, error: `HMAC mismatch for ${m.root}/${f}` };
  }
  return { ok: true, files: listed.length };
}
