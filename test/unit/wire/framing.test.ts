import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../hsm-daemon/src/wire/errors.js';
import { FrameParser, replyHeader } from '../../../hsm-daemon/src/wire/framing.js';
import { requestFrame } from './helpers.js';

describe('FrameParser', () => {
  it('reassembles frames fed byte by byte and splits frames sharing a chunk', () => {
    const frames = [requestFrame(1, 5, Buffer.of(1)), requestFrame(2, 13, Buffer.alloc(300, 7)), requestFrame(3, 2)];
    const all = Buffer.concat(frames);
    const p = new FrameParser(1024);
    const got = [];
    for (const byte of all) {
      p.push(Buffer.of(byte));
      for (let f = p.next(); f; f = p.next()) got.push(f);
    }
    expect(got.map((f) => [f.requestId, f.callId, f.flags, f.payload.length])).toEqual([
      [1, 5, 0, 1],
      [2, 13, 0, 300],
      [3, 2, 0, 0],
    ]);
    expect(p.buffered).toBe(0);

    const q = new FrameParser(1024);
    q.push(all);
    expect([q.next()?.requestId, q.next()?.requestId, q.next()?.requestId, q.next()]).toEqual([1, 2, 3, null]);
  });

  it('rejects an oversized length as soon as the length field is complete', () => {
    const p = new FrameParser(100);
    p.push(Buffer.of(0, 0, 0));
    expect(p.next()).toBeNull();
    p.push(Buffer.of(101));
    expect(() => p.next()).toThrow(ProtocolError);
  });

  it('rejects a length shorter than the request header', () => {
    const p = new FrameParser(100);
    p.push(Buffer.of(0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0));
    expect(() => p.next()).toThrow(ProtocolError);
  });

  it('builds reply headers', () => {
    const h = replyHeader(9, 44, 0xc0, 3);
    expect(h.readUInt32BE(0)).toBe(16 + 3);
    expect([h.readUInt32BE(4), h.readUInt16BE(8), h.readUInt16BE(10), h.readBigUInt64BE(12)]).toEqual([9, 44, 0, 0xc0n]);
  });
});
