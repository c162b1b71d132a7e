// Pieces of `craton-hsm-admin evidence` that need no daemon: time arguments, the integer-only
// rates, and the domain separation between evidence and checkpoint signatures.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf, statementBytes, evidenceStatementBytes } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { parseTime } from '../../../admin-cli/src/evidence/commands.js';
import { bucketWidth } from '../../../admin-cli/src/evidence/collect.js';
import { digestOf, rate } from '../../../admin-cli/src/evidence/document.js';
import { verifyDocument } from '../../../admin-cli/src/evidence/sign.js';

describe('evidence time arguments', () => {
  it('takes ISO 8601 with a zone, a plain date (UTC) or unix seconds', () => {
    expect(parseTime('--since', '2026-01-31T12:00:00Z')).toBe(Date.UTC(2026, 0, 31, 12) / 1000);
    expect(parseTime('--since', '2026-01-31T14:00:00+02:00')).toBe(Date.UTC(2026, 0, 31, 12) / 1000);
    expect(parseTime('--since', '2026-01-31T12:00:00.900Z')).toBe(Date.UTC(2026, 0, 31, 12) / 1000);
    expect(parseTime('--since', '2026-01-31')).toBe(Date.UTC(2026, 0, 31) / 1000);
    expect(parseTime('--until', '1795405636')).toBe(1795405636);
  });
  it('refuses what it cannot place in time, saying why', () => {
    expect(() => parseTime('--since', 'yesterday')).toThrow(/--since: "yesterday" is not a time/);
    expect(() => parseTime('--since', '2026-01-31T12:00:00')).toThrow(/add a time zone/);
    expect(() => parseTime('--until', '2026-13-45T99:00:00Z')).toThrow(/not a valid date/);
  });
});

describe('evidence figures', () => {
  it('rates are two-decimal strings, null without operations', () => {
    expect(rate(11, 15)).toBe('73.33');
    expect(rate(2, 3)).toBe('66.67');
    expect(rate(1, 1)).toBe('100.00');
    expect(rate(0, 4)).toBe('0.00');
    expect(rate(0, 0)).toBeNull();
  });
  it('at most 60 buckets over any period', () => {
    for (const span of [0, 5, 59, 600, 3600, 86400, 30 * 86400, 400 * 86400, 50 * 365 * 86400]) expect(Math.ceil((span + 1) / bucketWidth(span))).toBeLessThanOrEqual(60);
  });
});

describe('evidence signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const trusted = [{ key: publicKey, keyId: keyIdOf(publicKey), source: 'test' }];
  const body = { format: 'craton-hsm-evidence-v1', summary: { operations: 3 } };
  const signedAt = '2026-11-23T00:00:00.000Z';
  const withSig = (signature: Buffer) => ({ ...body, signature: { format: 'craton-hsm-evidence-v1', digest: digestOf(body), signed_at: signedAt, signature: signature.toString('base64'), key_id: keyIdOf(publicKey), public_key: pem } });

  it('a signature over the evidence statement verifies', () => {
    const sig = sign('sha256', evidenceStatementBytes(digestOf(body), signedAt), { key: privateKey, dsaEncoding: 'der' });
    expect(verifyDocument(withSig(sig), trusted).ok).toBe(true);
  });
  it('a checkpoint signature by the same key is not an evidence signature', () => {
    const sig = sign('sha256', statementBytes({ head_seq: 1, head_chain: digestOf(body), timestamp: 0 }), { key: privateKey, dsaEncoding: 'der' });
    const r = verifyDocument(withSig(sig), trusted);
    expect(r.ok).toBe(false);
    expect(r.checks.find((c) => !c.ok)!.check).toBe('signature');
  });
  it('moving the signing time breaks the signature', () => {
    const sig = sign('sha256', evidenceStatementBytes(digestOf(body), signedAt), { key: privateKey, dsaEncoding: 'der' });
    const doc = withSig(sig);
    doc.signature.signed_at = '2027-01-01T00:00:00.000Z';
    expect(verifyDocument(doc, trusted).checks.find((c) => !c.ok)!.check).toBe('signature');
  });
});
