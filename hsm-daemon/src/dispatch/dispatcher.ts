// Routes each call to its handler and turns the outcome into a reply: the one place
// where a thrown CkError becomes the CK_RV on the wire. Observers (the audit log, the
// policy monitor) see every completed call with what it touched, and never its data.
import { CKR, FUNCTIONS, callIdOf } from '../pkcs11/index.js';
import { CkError } from '../errors.js';
import type { AppContext, CallHandler, Reply, ReplyWriter, RequestReader } from '../wire/contract.js';
import type { Call, CallNote, Handler } from './call.js';
import type { HsmCore } from './core.js';
import * as general from './handlers/general.js';
import * as sessions from './handlers/sessions.js';
import * as objects from './handlers/objects.js';
import * as crypto from './handlers/crypto.js';
import * as keys from './handlers/keys.js';
import * as random from './handlers/random.js';

type FunctionName = (typeof FUNCTIONS)[number];

const HANDLERS: Partial<Record<FunctionName, Handler>> = {
  C_Finalize: general.finalize,
  C_GetSlotList: general.getSlotList,
  C_GetSlotInfo: general.getSlotInfo,
  C_GetTokenInfo: general.getTokenInfo,
  C_GetMechanismList: general.getMechanismList,
  C_GetMechanismInfo: general.getMechanismInfo,
  C_InitToken: sessions.initToken,
  C_InitPIN: sessions.initPin,
  C_SetPIN: sessions.setPin,
  C_OpenSession: sessions.openSession,
  C_CloseSession: sessions.closeSession,
  C_CloseAllSessions: sessions.closeAllSessions,
  C_GetSessionInfo: sessions.getSessionInfo,
  C_Login: sessions.login,
  C_Logout: sessions.logout,
  C_CreateObject: objects.createObject,
  C_CopyObject: objects.copyObject,
  C_DestroyObject: objects.destroyObject,
  C_GetObjectSize: objects.getObjectSize,
  C_GetAttributeValue: objects.getAttributeValue,
  C_SetAttributeValue: objects.setAttributeValue,
  C_FindObjectsInit: objects.findObjectsInit,
  C_FindObjects: objects.findObjects,
  C_FindObjectsFinal: objects.findObjectsFinal,
  C_EncryptInit: crypto.encryptInit,
  C_Encrypt: crypto.encrypt,
  C_EncryptUpdate: crypto.encryptUpdate,
  C_EncryptFinal: crypto.encryptFinal,
  C_DecryptInit: crypto.decryptInit,
  C_Decrypt: crypto.decrypt,
  C_DecryptUpdate: crypto.decryptUpdate,
  C_DecryptFinal: crypto.decryptFinal,
  C_DigestInit: crypto.digestInit,
  C_Digest: crypto.digest,
  C_DigestUpdate: crypto.digestUpdate,
  C_DigestKey: crypto.digestKey,
  C_DigestFinal: crypto.digestFinal,
  C_SignInit: crypto.signInit,
  C_Sign: crypto.sign,
  C_SignUpdate: crypto.signUpdate,
  C_SignFinal: crypto.signFinal,
  C_VerifyInit: crypto.verifyInit,
  C_Verify: crypto.verify,
  C_VerifyUpdate: crypto.verifyUpdate,
  C_VerifyFinal: crypto.verifyFinal,
  C_GenerateKey: keys.generateKey,
  C_GenerateKeyPair: keys.generateKeyPair,
  C_WrapKey: keys.wrapKey,
  C_UnwrapKey: keys.unwrapKey,
  C_DeriveKey: keys.deriveKey,
  C_SeedRandom: random.seedRandom,
  C_GenerateRandom: random.generateRandom,
};

const TABLE: Array<Handler | undefined> = FUNCTIONS.map((name) => HANDLERS[name]);

export interface CallRecord {
  app: AppContext;
  fn: FunctionName;
  rv: number;
  note: CallNote;
  /** performance.now() when the call reached the dispatcher (metrics/ latency: an observer
   * registered after the audit log measures handler + audit fsync). */
  startedAt?: number;
}

/** Sees every completed call. Throwing CkError replaces the reply with that CK_RV (the
 * audit log uses this to fail closed when it cannot record an operation). */
export type CallObserver = (record: CallRecord) => void | Promise<void>;

/** Runs before a call's handler; throwing CkError refuses the call (error states,
 * an unwritable audit log). */
export type CallGate = (app: AppContext, fn: FunctionName) => void;

export class Dispatcher implements CallHandler {
  private readonly observers: CallObserver[] = [];
  private readonly gates: CallGate[] = [];

  constructor(private readonly core: HsmCore) {}

  observe(o: CallObserver): void {
    this.observers.push(o);
  }

  gate(g: CallGate): void {
    this.gates.push(g);
  }

  async handle(app: AppContext, callId: number, req: RequestReader, newWriter: () => ReplyWriter): Promise<Reply> {
    const startedAt = performance.now();
    const fn = FUNCTIONS[callId - 1];
    const handler = TABLE[callId - 1];
    if (!fn) throw new Error(`unknown call id ${callId}`);
    const note: CallNote = {};
    let reply: Reply;
    if (!handler) {
      reply = { rv: CKR.FUNCTION_NOT_SUPPORTED };
    } else {
      const call: Call = { app, req, out: newWriter(), core: this.core, note };
      try {
        for (const g of this.gates) g(app, fn);
        const rv = (await handler(call)) ?? CKR.OK;
        reply = { rv, payload: call.out.finish() };
      } catch (err) {
        if (err instanceof CkError) {
          reply = { rv: err.rv };
          if (err.refusal) note.refusal ??= err.refusal;
          if (this.core.config.daemon.log_level === 'debug') this.core.log('debug', `${fn}: ${err.message}`);
        } else if (isProtocolError(err)) {
          throw err;
        } else {
          this.core.log('error', `${fn} failed unexpectedly (reported as CKR_GENERAL_ERROR): ${(err as Error)?.stack ?? String(err)}`);
          reply = { rv: CKR.GENERAL_ERROR };
        }
      }
    }
    for (const o of this.observers) {
      try {
        await o({ app, fn, rv: reply.rv, note, startedAt });
      } catch (err) {
        if (err instanceof CkError) {
          reply = { rv: err.rv };
          if (err.refusal) note.refusal ??= err.refusal;
          continue;
        }
        this.core.log('error', `observer failed for ${fn}: ${(err as Error).message}`);
      }
    }
    return reply;
  }

  appEnded(app: AppContext): void {
    this.core.endApp(app.id);
  }
}

function isProtocolError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ProtocolError';
}

export const FINALIZE_CALL_ID = callIdOf('C_Finalize');
