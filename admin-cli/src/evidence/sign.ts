// Signing (through the daemon, which alone holds the audit signing key) and verifying an
// evidence document. The signature covers the SHA-256 of the canonical document without
// its `signature` block, bound to the time of signing and domain-separated from audit
// checkpoints (audit/checkpoint.ts evidenceStatementBytes).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHECKPOINT_PUB_FILE, CHECKPOINT_PUBS_DIR, keyIdOf, readCheckpointKeyring, readCheckpointPublicKey } from '../../../hsm-daemon/src/audit/checkpoint.js';
import { adminCall } from '../client.js';
import { EVIDENCE_FORMAT, digestOf, evidenceStatementBytes, type EvidenceDocument, type SignatureBlock } from './document.js';

/** Asks the daemon to sign the document; returns it with its signature block. */
export async function signDocument(adminSocket: string, doc: EvidenceDocument): Promise<EvidenceDocument> {
  const digest = digestOf(doc);
  const r = (await adminCall(adminSocket, 'evidence.sign', { digest }, { timeoutMs: 30_000 })) as SignatureBlock;
  const sig: SignatureBlock = { format: EVIDENCE_FORMAT, digest: r.digest, signed_at: r.signed_at, signature: r.signature, key_id: r.key_id, public_key: r.public_key };
  if (sig.digest !== digest) throw new Error(`the daemon signed digest ${sig.digest}, not ${digest}`);
  return { ...doc, signature: sig };
}

export interface TrustedKey {
  key: KeyObject;
  keyId: string;
  /** Where it came from (file path or "key ring …"). */
  source: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Each check in order, with its outcome; the first failing one explains the verdict. */
  checks: Array<{ check: string; ok: boolean; detail: string }>;
  key_id: string | null;
  signed_at: string | null;
  digest: string | null;
}

/** Keys that may have signed: --pubkey alone, or else the data dir's checkpoint key and the
 * keyring of earlier checkpoint keys (<data_dir>/audit-checkpoint-pubs/, kept across key
 * changes by backup restores), so a document signed before a key change still verifies. */
export function trustedKeys(dataDir: string, pubkeyFile?: string): TrustedKey[] {
  if (pubkeyFile) {
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(pubkeyFile, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw e;
      throw new Error('not a PEM public key');
    }
    return [{ key, keyId: keyIdOf(key), source: pubkeyFile }];
  }
  const current = readCheckpointPublicKey(dataDir);
  const currentId = current ? keyIdOf(createPublicKey(current)) : null;
  return [...readCheckpointKeyring(dataDir)].map(([keyId, key]) => ({
    key,
    keyId,
    source: keyId === currentId ? path.join(dataDir, CHECKPOINT_PUB_FILE) : `keyring ${path.join(dataDir, CHECKPOINT_PUBS_DIR)}`,
  }));
}

export function verifyDocument(doc: Record<string, unknown>, trusted: TrustedKey[]): VerifyReport {
  const rep: VerifyReport = { ok: false, checks: [], key_id: null, signed_at: null, digest: null };
  const check = (name: string, ok: boolean, detail: string) => {
    rep.checks.push({ check: name, ok, detail });
    return ok;
  };
  if (!check('format', doc.format === EVIDENCE_FORMAT, `document format ${JSON.stringify(doc.format)} (expected ${EVIDENCE_FORMAT})`)) return rep;
  const sig = doc.signature as SignatureBlock | null | undefined;
  if (!check('signed', !!sig && typeof sig === 'object', sig ? 'signature block present' : 'the document is unsigned (made with --unsigned, or the block was removed)')) return rep;
  rep.key_id = String(sig!.key_id);
  rep.signed_at = String(sig!.signed_at);
  let digest: string;
  try {
    digest = digestOf(doc);
  } catch (e) {
    check('digest', false, `the document has no canonical form: ${(e as Error).message}`);
    return rep;
  }
  rep.digest = digest;
  if (!check('digest', digest === sig!.digest, digest === sig!.digest ? `SHA-256 ${digest}` : `content changed since signing: SHA-256 now ${digest}, signed ${String(sig!.digest)}`)) return rep;
  let embedded: KeyObject;
  try {
    embedded = createPublicKey(String(sig!.public_key));
  } catch {
    check('signature', false, 'the embedded public key is not a PEM public key');
    return rep;
  }
  const embeddedId = keyIdOf(embedded);
  if (!check('key id', embeddedId === sig!.key_id, embeddedId === sig!.key_id ? embeddedId : `embedded key id ${String(sig!.key_id)} does not match the embedded key (${embeddedId})`)) return rep;
  let sigOk = false;
  try {
    sigOk = verify('sha256', evidenceStatementBytes(digest, String(sig!.signed_at)), { key: embedded, dsaEncoding: 'der' }, Buffer.from(String(sig!.signature), 'base64'));
  } catch {
    sigOk = false;
  }
  if (!check('signature', sigOk, sigOk ? 'ECDSA P-256 signature over the digest and signing time verifies with the embedded key' : 'the signature does not verify with the embedded key (document, signing time or signature altered)')) return rep;
  const match = trusted.find((t) => t.keyId === embeddedId);
  if (
    !check(
      'trusted key',
      !!match,
      match
        ? `the signing key is the HSM's audit signing key (${match.source})`
        : trusted.length === 0
          ? 'no trusted key to compare with: give --pubkey FILE (the HSM\'s audit-checkpoint-pub.pem)'
          : `the signing key ${embeddedId.slice(0, 16)}… is not the HSM's audit signing key (${trusted.map((t) => `${t.keyId.slice(0, 16)}… from ${t.source}`).join(', ')})`,
    )
  )
    return rep;
  rep.ok = true;
  return rep;
}
