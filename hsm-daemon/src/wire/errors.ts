// A ProtocolError means the peer broke protocol v1 (not a PKCS#11 error): the connection
// that carried it is closed after one log line. It lives apart from codec.ts so that
// params.ts and framing.ts can throw it without importing the codec.
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}
