// Rewrites the generated table in docs/policy.md: npx vite-node test/unit/policy/write-doc.ts
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOC_BEGIN, DOC_END, renderPolicyTable } from '../../../hsm-daemon/src/policy/doc.js';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/policy.md');
const text = readFileSync(file, 'utf8');
const start = text.indexOf(DOC_BEGIN);
const end = text.indexOf(DOC_END);
if (start < 0 || end < start) throw new Error(`${file} has no generated section markers`);
writeFileSync(file, text.slice(0, start) + renderPolicyTable() + text.slice(end + DOC_END.length));
process.stdout.write(`updated ${file}\n`);
