// A fingerprint of the FIPS policy in force: the [algorithms] settings and the hash of
// their canonical JSON, plus the hash of the policy table the build carries. The daemon
// writes it into the audit log (PolicyInForce, events.ts) and craton-hsm-admin evidence
// recomputes it, so an evidence document can name the exact policy of a period.
import { createHash } from 'node:crypto';
import { canonicalJson, type Json } from '../audit/canonical.js';
import { POLICY_TABLE, type PolicySettings } from './table.js';

export interface PolicyFingerprint {
  settings: Record<string, Json>;
  policy_hash: string;
  table_hash: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Plain JSON copy of the settings (arrays copied, nothing else). */
export function settingsJson(s: PolicySettings): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(s)) out[k] = Array.isArray(v) ? [...(v as string[])] : (v as Json);
  return out;
}

export const policyHash = (settings: Record<string, Json>): string => sha256(canonicalJson(settings));

let tableHash: string | undefined;
/** SHA-256 of the canonical policy table: changes whenever a row, verdict or reason does. */
export function policyTableHash(): string {
  tableHash ??= sha256(canonicalJson(POLICY_TABLE as unknown as Json));
  return tableHash;
}

export function policyFingerprint(s: PolicySettings): PolicyFingerprint {
  const settings = settingsJson(s);
  return { settings, policy_hash: policyHash(settings), table_hash: policyTableHash() };
}
