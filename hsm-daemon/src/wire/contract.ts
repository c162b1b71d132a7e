// The contract between the wire layer (framing, HELLO, applications, codec) and the
// dispatcher (one handler per C_* call). The wire layer owns bytes; the dispatcher
// owns PKCS#11 semantics. Neither imports the other's internals: only this file.
import type { Mechanism } from '../mechanisms/types.js';

/** What the kernel (SO_PEERCRED) says about the peer; never what the client claims. */
export interface ClientIdentity {
  pid: number;
  uid: number;
  gid: number;
  /** /proc/<pid>/exe at connect time, or null when unreadable. */
  exe: string | null;
}

/** The client's native layout, declared in HELLO; used to convert CK_ULONG-typed
 * attribute values and flat mechanism parameters to and from canonical form. */
export interface ClientLayout {
  ulongSize: 4 | 8;
  littleEndian: boolean;
}

/** One application: all connections that joined with the same HELLO token (same pid). */
export interface AppContext {
  /** Opaque, unique per application for the daemon's lifetime (hex). */
  readonly id: string;
  readonly peer: ClientIdentity;
  readonly layout: ClientLayout;
  /** Wire protocol version from HELLO (omitted = 1). Version 2 modules receive a token-
   * generated GCM IV in the C_EncryptInit reply (protocol.md "Calls"). */
  readonly protocol?: number;
}

/** A template attribute in canonical form (see mechanisms/types.ts AttrMap): CK_ULONG
 * values 8-byte little-endian, CK_BBOOL one byte, arrays of CK_ULONG (e.g.
 * CKA_ALLOWED_MECHANISMS) as n × 8-byte LE. Array-of-attribute attributes
 * (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE) carry `nested`
 * and an empty `value`. A value whose native length does not match its type is passed
 * through unconverted; the object layer rejects it (CKR_ATTRIBUTE_VALUE_INVALID). */
export interface Attr {
  type: number;
  value: Buffer;
  nested?: Attr[];
}

/** One attribute's answer for C_GetAttributeValue: null = CK_UNAVAILABLE_INFORMATION. */
export interface AttrAnswer {
  type: number;
  value: Buffer | null;
  nested?: AttrAnswer[];
}

/** Decodes one request payload. Every method throws ProtocolError when the payload is
 * short; `end()` throws ProtocolError when bytes remain. A ProtocolError closes the
 * connection (one log line); the dispatcher lets it propagate. */
export interface RequestReader {
  u8(): number;
  u32(): number;
  /** u64 BE; throws ProtocolError above Number.MAX_SAFE_INTEGER unless `allowHuge`,
   * in which case such values come back as Number.MAX_SAFE_INTEGER (handles that can
   * never exist, lengths that can never be satisfied). */
  ulong(allowHuge?: boolean): number;
  bytes(): Buffer;
  optBytes(): Buffer | null;
  ulongList(): number[];
  padded(n: number): Buffer;
  template(): Attr[];
  attrTypes(): number[];
  mechanism(): Mechanism;
  end(): void;
}

/** Encodes one reply payload. */
export interface ReplyWriter {
  u8(v: number): this;
  u32(v: number): this;
  ulong(v: number | bigint): this;
  bytes(b: Buffer): this;
  ulongList(v: number[]): this;
  /** Blank-padded (0x20) to exactly n bytes; longer text is truncated. */
  padded(text: string | Buffer, n: number): this;
  version(major: number, minor: number): this;
  /** Converted from canonical to the client's native layout. */
  attrValues(values: AttrAnswer[]): this;
  finish(): Buffer;
}

export interface Reply {
  rv: number;
  /** Omitted = empty payload. */
  payload?: Buffer;
}

export interface CallHandler {
  /** Called once per request frame after HELLO. `callId` is 1..68 (FUNCTIONS order).
   * Must not throw anything but ProtocolError; every other failure is a Reply rv. */
  handle(app: AppContext, callId: number, req: RequestReader, newWriter: () => ReplyWriter): Promise<Reply>;
  /** The application ended: C_Finalize answered CKR_OK, or its last connection closed.
   * Called exactly once per application. */
  appEnded(app: AppContext): void;
}
