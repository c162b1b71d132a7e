// Build step (after tsc): writes dist/integrity.json, the HMAC-SHA-256 of every shipped
// daemon file, which the power-on self-tests check at start (hsm-daemon/src/selftest/integrity.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeManifest } from '../dist/hsm-daemon/src/selftest/integrity.js';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
writeManifest(dist);
