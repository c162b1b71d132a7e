// Incremental frame parsing and reply framing (protocol.md "Framing"). The parser holds
// at most one frame plus the chunk that completed it, and rejects an oversized length
// as soon as the 4-byte length field has arrived, before any of the body is buffered.
import { ProtocolError } from './errors.js';

/** Bytes after `length` in a request header: request_id, call_id, flags. */
export const REQUEST_HEADER_AFTER_LENGTH = 8;
/** Bytes after `length` in a reply header: request_id, call_id, flags, rv. */
export const REPLY_HEADER_AFTER_LENGTH = 16;
const LENGTH_BYTES = 4;
const REQUEST_HEADER = LENGTH_BYTES + REQUEST_HEADER_AFTER_LENGTH;

export interface Frame {
  requestId: number;
  callId: number;
  flags: number;
  payload: Buffer;
}

export class FrameParser {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxFrame: number) {}

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The next complete frame, or null when more bytes are needed. */
  next(): Frame | null {
    if (this.size < LENGTH_BYTES) return null;
    const length = this.peek(LENGTH_BYTES).readUInt32BE(0);
    if (length > this.maxFrame) throw new ProtocolError(`frame length ${length} exceeds max_frame ${this.maxFrame}`);
    if (length < REQUEST_HEADER_AFTER_LENGTH) throw new ProtocolError(`frame length ${length} is shorter than the request header`);
    const total = LENGTH_BYTES + length;
    if (this.size < total) return null;
    const frame = this.take(total);
    return {
      requestId: frame.readUInt32BE(4),
      callId: frame.readUInt16BE(8),
      flags: frame.readUInt16BE(10),
      payload: frame.subarray(REQUEST_HEADER),
    };
  }

  /** Drops everything (the connection is closing). */
  clear(): void {
    this.chunks = [];
    this.size = 0;
  }

  /** The first n buffered bytes as one buffer (merging only the chunks needed). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    let have = 0;
    let k = 0;
    while (have < n) have += this.chunks[k++]!.length;
    const merged = Buffer.concat(this.chunks.slice(0, k));
    this.chunks.splice(0, k, merged);
    return merged;
  }

  /** Removes and returns exactly n bytes (n ≤ size). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      // Copied when the frame is a small part of a large chunk, so that a stored
      // reference into the payload cannot pin the whole read buffer.
      out = first.length === n ? first : Buffer.from(first.subarray(0, n));
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const want = n - off;
        if (c.length <= want) {
          c.copy(out, off);
          off += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, off, 0, want);
          off += want;
          this.chunks[0] = c.subarray(want);
        }
      }
    }
    this.size -= n;
    return out;
  }
}

/** A reply header (length, request_id, call_id, flags = 0, rv) for a payload of `payloadLength`. */
export function replyHeader(requestId: number, callId: number, rv: number | bigint, payloadLength: number): Buffer {
  const h = Buffer.allocUnsafe(LENGTH_BYTES + REPLY_HEADER_AFTER_LENGTH);
  h.writeUInt32BE(REPLY_HEADER_AFTER_LENGTH + payloadLength, 0);
  h.writeUInt32BE(requestId, 4);
  h.writeUInt16BE(callId, 8);
  h.writeUInt16BE(0, 10);
  h.writeBigUInt64BE(BigInt(rv), 12);
  return h;
}

/** Size of a reply frame's `length` field for a payload. */
export const replyLength = (payloadLength: number): number => REPLY_HEADER_AFTER_LENGTH + payloadLength;
