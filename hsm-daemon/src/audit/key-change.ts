// Installing another checkpoint signing key while the log keeps verifying (a restore brings
// the backed-up key; docs/backup.md "Audit signing key").
//
// Order, so that a crash at any point leaves a log `audit verify` accepts and a daemon that
// signs with the key the log says is in force:
//   1. the new key is sealed into the pending file (checkpoint.ts stageCheckpointKey);
//   2. the writer numbers checkpoint(old) · CheckpointKeyChange · checkpoint(old) in a row and
//      switches its signer (writer.changeSigner), and the three entries reach the disk;
//   3. the pending file becomes the live sealed key, the old public key joins the keyring.
// A crash between 2 and 3 is settled at the next start (resolvePendingCheckpointKey): the
// pending key is committed when the log's tail holds its covered key change, else dropped.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Json } from './canonical.js';
import {
  KEY_CHANGE_OPERATION,
  commitStagedCheckpointKey,
  discardStagedCheckpointKey,
  pendingCheckpointKeyId,
  stageCheckpointKey,
} from './checkpoint.js';
import { parseEntryLine } from './segments.js';
import type { AuditWriter } from './writer.js';

/** How much of the live log's end is searched for an interrupted key change. */
const TAIL_BYTES = 4 * 1024 * 1024;

export interface KeyChangeResult {
  changed: boolean;
  previous_key_id: string | null;
  new_key_id: string;
}

/** Makes the PKCS#8 P-256 key `der` the checkpoint signer (steps 1–3 above). `der` is not
 * zeroed here. Throws when the key is not usable or the log cannot be written; the old key
 * then stays in force. */
export async function installCheckpointKey(writer: AuditWriter, dataDir: string, der: Buffer, details: Record<string, Json>): Promise<KeyChangeResult> {
  if (!writer.healthy) throw new Error(writer.lastError ?? 'the audit log is not open');
  const prev = writer.opts.signer;
  const next = stageCheckpointKey(dataDir, der);
  if (prev && prev.keyId === next.keyId) {
    discardStagedCheckpointKey(dataDir);
    return { changed: false, previous_key_id: prev.keyId, new_key_id: next.keyId };
  }
  try {
    await writer.changeSigner(next, details);
  } catch (e) {
    // The three entries share one write; a failed write is cut from the file, so the old
    // key is still the one the log has in force.
    writer.opts.signer = prev;
    discardStagedCheckpointKey(dataDir);
    throw e;
  }
  commitStagedCheckpointKey(dataDir);
  return { changed: true, previous_key_id: prev?.keyId ?? null, new_key_id: next.keyId };
}

/** At start, before the signer is loaded: finishes or drops a key change a crash interrupted. */
export function resolvePendingCheckpointKey(dataDir: string, logPath: string, log: (msg: string) => void): void {
  let pending: string | null;
  try {
    pending = pendingCheckpointKeyId(dataDir);
  } catch (e) {
    log(`unreadable pending checkpoint key dropped: ${(e as Error).message}`);
    discardStagedCheckpointKey(dataDir);
    return;
  }
  if (pending === null) return;
  if (tailHasCoveredChange(logPath, pending)) {
    commitStagedCheckpointKey(dataDir);
    log(`audit checkpoint key change to ${pending} was recorded in the log before an interruption; the new key is now installed`);
  } else {
    discardStagedCheckpointKey(dataDir);
    log(`audit checkpoint key change to ${pending} was interrupted before the log recorded it; the previous key stays in force`);
  }
}

function tailHasCoveredChange(logPath: string, keyId: string): boolean {
  if (!existsSync(logPath)) return false;
  const fd = openSync(logPath, 'r');
  let text: string;
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, start + got);
      if (n === 0) break;
      got += n;
    }
    text = buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
  let seen = false;
  for (const line of text.split('\n')) {
    const e = parseEntryLine(line);
    if (!e) continue;
    if (e.operation === KEY_CHANGE_OPERATION && e.details?.new_key_id === keyId) seen = true;
    else if (seen && e.operation === 'Checkpoint') return true;
  }
  return false;
}
