// A small CallHandler for wire-layer tests: decodes a few calls with the real codec so
// that garbage payloads exercise it, and records anything that breaks the contract.
import { CKR, callIdOf } from '../../../hsm-daemon/src/pkcs11/index.js';
import { ProtocolError } from '../../../hsm-daemon/src/wire/codec.js';
import type { AppContext, CallHandler, Reply, ReplyWriter, RequestReader } from '../../../hsm-daemon/src/wire/contract.js';

export const CALL = {
  finalize: callIdOf('C_Finalize'),
  getSlotList: callIdOf('C_GetSlotList'),
  createObject: callIdOf('C_CreateObject'),
  getAttributeValue: callIdOf('C_GetAttributeValue'),
  encryptInit: callIdOf('C_EncryptInit'),
  generateRandom: callIdOf('C_GenerateRandom'),
  seedRandom: callIdOf('C_SeedRandom'),
};

export class TestHandler implements CallHandler {
  readonly ended: string[] = [];
  readonly violations: string[] = [];
  inFlight = 0;
  /** Delay for C_SeedRandom, to keep a call in flight. */
  slowMs = 0;
  calls = 0;

  async handle(app: AppContext, callId: number, req: RequestReader, newWriter: () => ReplyWriter): Promise<Reply> {
    if (this.ended.includes(app.id)) this.violations.push(`call ${callId} for ended application ${app.id}`);
    this.inFlight++;
    this.calls++;
    try {
      return await this.dispatch(callId, req, newWriter);
    } catch (e) {
      if (!(e instanceof ProtocolError)) this.violations.push(`codec threw ${String(e)}`);
      throw e;
    } finally {
      this.inFlight--;
    }
  }

  private async dispatch(callId: number, req: RequestReader, newWriter: () => ReplyWriter): Promise<Reply> {
    switch (callId) {
      case CALL.finalize:
        req.end();
        return { rv: CKR.OK };
      case CALL.getSlotList:
        req.u8();
        req.end();
        return { rv: CKR.OK, payload: newWriter().ulongList([0, 1]).finish() };
      case CALL.createObject: {
        req.ulong();
        const t = req.template();
        req.end();
        return { rv: CKR.OK, payload: newWriter().ulong(t.length).finish() };
      }
      case CALL.encryptInit:
        req.ulong();
        req.mechanism();
        req.ulong();
        req.end();
        return { rv: CKR.OK };
      case CALL.getAttributeValue: {
        req.ulong(true);
        req.ulong(true);
        const types = req.attrTypes();
        req.end();
        return { rv: CKR.OK, payload: newWriter().attrValues(types.map((type) => ({ type, value: null }))).finish() };
      }
      case CALL.generateRandom: {
        req.ulong(true);
        const n = req.ulong(true);
        req.end();
        return { rv: CKR.OK, payload: newWriter().bytes(Buffer.alloc(Math.min(n, 1 << 20))).finish() };
      }
      case CALL.seedRandom:
        req.ulong(true);
        req.bytes();
        req.end();
        if (this.slowMs) await new Promise((r) => setTimeout(r, this.slowMs));
        return { rv: CKR.OK };
      default:
        return { rv: CKR.FUNCTION_NOT_SUPPORTED };
    }
  }

  appEnded(app: AppContext): void {
    if (this.ended.includes(app.id)) this.violations.push(`appEnded twice for ${app.id}`);
    this.ended.push(app.id);
  }
}
