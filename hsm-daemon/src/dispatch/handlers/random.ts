// C_GenerateRandom and C_SeedRandom.
import { CKR } from '../../pkcs11/index.js';
import { CkError } from '../../errors.js';
import { addInput, randomBytes } from '../../drbg/index.js';
import type { Handler } from '../call.js';

/** One call's ceiling: comfortably inside a frame, and large requests are a client bug. */
const MAX_RANDOM = 1 << 20;

export const generateRandom: Handler = ({ app, req, out, core, note }) => {
  const h = req.ulong(true);
  const len = req.ulong(true);
  req.end();
  note.session = h;
  core.session(app.id, h);
  if (len > MAX_RANDOM) throw new CkError(CKR.DATA_LEN_RANGE, `at most ${MAX_RANDOM} bytes per call`);
  out.bytes(randomBytes(len));
};

export const seedRandom: Handler = ({ app, req, core, note }) => {
  const h = req.ulong(true);
  const seed = req.bytes();
  req.end();
  note.session = h;
  core.session(app.id, h);
  // A reseed with fresh OS entropy, the caller's bytes as additional input (never
  // credited as entropy).
  addInput(seed);
};
