// Renders the policy table as the Markdown section of docs/policy.md. A unit test
// compares the two; regenerate with `npx vite-node test/unit/policy/write-doc.ts`.
import { POLICY_TABLE, type PolicyRow } from './table.js';
import { mechName } from './table.js';

export const DOC_BEGIN = '<!-- policy-table:begin (generated from hsm-daemon/src/policy/table.ts) -->';
export const DOC_END = '<!-- policy-table:end -->';

const STATUS: Record<PolicyRow['status'], string> = {
  approved: 'approved',
  'verify-only': 'verify only (legacy)',
  'non-approved': 'non-approved',
};

const SIZE: Record<NonNullable<PolicyRow['size']>, string> = {
  rsa: 'RSA ≥ rsa_min_bits',
  ec: 'P-256/384/521 (≥ ec_min_bits)',
  edwards: 'Ed25519/Ed448',
  hmac: 'key ≥ hmac_min_key_bits',
  aes: '128/192/256',
};

const cell = (s: string) => s.replace(/\|/g, '\\|');

function openssl(row: PolicyRow): string {
  const parts = row.openssl.map((id) => `${id.nid !== undefined ? `${id.nid} ` : ''}${id.names.map((n) => `\`${n}\``).join(' ')}`);
  if (row.tls?.length) parts.push(`TLS: ${row.tls.map((t) => `\`${t}\``).join(' ')}`);
  return parts.join('; ') || '—';
}

export function renderPolicyTable(): string {
  const lines = [
    DOC_BEGIN,
    '',
    '| Algorithm | Category | FIPS 140-3 status | Size rule | Gate | PKCS#11 mechanisms | OpenSSL (NID names; TLS suites) | Reason |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of POLICY_TABLE) {
    lines.push(
      `| ${cell(r.algorithm)} | ${r.category} | ${STATUS[r.status]} | ${r.size ? SIZE[r.size] : '—'} | ${r.gate ?? '—'} | ${
        r.mechanisms.map((m) => `\`${mechName(m)}\``).join(' ') || '—'
      } | ${cell(openssl(r))} | ${cell(r.reason)} |`,
    );
  }
  lines.push('', DOC_END);
  return lines.join('\n');
}
