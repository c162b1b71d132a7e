// `evidence.sign`: the daemon signs the SHA-256 digest of a compliance evidence document
// (craton-hsm-admin evidence, docs/evidence.md) with the audit checkpoint key. The CLI
// builds the document from the log files; only the daemon holds the key (sealed on disk,
// docs/audit.md "Key files"), so only it can vouch for the document. The statement is
// domain-separated (audit/checkpoint.ts evidenceStatementBytes): a signature made here can
// never verify as a checkpoint, nor a checkpoint signature as evidence. The daemon sees
// the digest only; what it signs is "this digest, at this time, by this HSM".
import { CKR } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import { EVIDENCE_FORMAT } from '../audit/checkpoint.js';
import { BadRequest, type AdminContext } from './commands.js';

export interface EvidenceSignature {
  format: typeof EVIDENCE_FORMAT;
  digest: string;
  signed_at: string;
  signature: string;
  key_id: string;
  public_key: string;
}

export function evidenceSign(ctx: AdminContext, args: Record<string, unknown>): EvidenceSignature {
  const digest = args.digest;
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) throw new BadRequest('digest: expected the SHA-256 of the canonical document, 64 lowercase hex digits');
  const signer = ctx.evidenceSigner?.();
  if (!signer) throw new CkError(CKR.FUNCTION_FAILED, 'no audit signing key is loaded ([audit] log_level = "none", or the checkpoint key could not be opened; see the daemon log)');
  const signedAt = new Date().toISOString();
  return { format: EVIDENCE_FORMAT, digest, signed_at: signedAt, signature: signer.signEvidence(digest, signedAt), key_id: signer.keyId, public_key: signer.publicKeyPem };
}
