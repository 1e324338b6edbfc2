/**
 * Istio's CA API, the one message pair meshless speaks
 * (istio/api `security/v1alpha1/ca.proto`, service
 * `istio.v1.auth.IstioCertificateService`, method `CreateCertificate`), as
 * gRPC over HTTP/2, encoded by hand: two small messages do not justify a
 * protobuf runtime and a gRPC library in the daemon.
 *
 *   message IstioCertificateRequest {
 *     string csr = 1;                        // PEM
 *     int64 validity_duration = 3;           // seconds
 *     google.protobuf.Struct metadata = 4;   // {"ImpersonatedIdentity": "spiffe://..."}
 *   }
 *   message IstioCertificateResponse { repeated string cert_chain = 1; }
 *
 * `cert_chain` is the leaf, then intermediates, and the signing root last,
 * as istiod answers. meshless adds the whole trust bundle (every root) in the
 * response header `meshless-trust-bundle-bin` (gRPC binary metadata, base64),
 * which other clients ignore.
 *
 * Invariants: the decoder is strict (known wire types, lengths within the
 * message, a size cap) and never throws anything but ProtocolError.
 */

/** Path of the method on the wire. */
export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';
/** The metadata key istiod reads for a node agent asking on a workload's behalf. */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';
/** Response header carrying every root of the trust bundle, PEM. */
export const TRUST_BUNDLE_HEADER = 'meshless-trust-bundle-bin';
/** Largest message either side accepts. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** gRPC status codes used here (grpc/grpc `doc/statuscodes.md`). */
export const GRPC_STATUS = {
  ok: 0,
  invalidArgument: 3,
  permissionDenied: 7,
  resourceExhausted: 8,
  failedPrecondition: 9,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
  unimplemented: 12,
} as const;

export interface IstioCertificateRequest {
  readonly csr: string;
  readonly validityDurationSeconds: number;
  /** String values of `metadata` (other value kinds are ignored). */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface IstioCertificateResponse {
  readonly certChain: readonly string[];
}

/** A message that breaks the wire format. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

// ---- encoding ----

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function lengthDelimited(field: number, body: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

function stringField(field: number, value: string): Buffer {
  return lengthDelimited(field, Buffer.from(value, 'utf8'));
}

/** A google.protobuf.Struct of string values. */
function encodeStruct(values: Readonly<Record<string, string>>): Buffer {
  const entries = Object.entries(values).map(([k, v]) =>
    // map<string, Value> fields = 1; Value.string_value = 3
    lengthDelimited(1, Buffer.concat([stringField(1, k), lengthDelimited(2, stringField(3, v))])),
  );
  return Buffer.concat(entries);
}

export function encodeRequest(req: IstioCertificateRequest): Buffer {
  return Buffer.concat([
    stringField(1, req.csr),
    Buffer.concat([varint((3 << 3) | 0), varint(req.validityDurationSeconds)]),
    lengthDelimited(4, encodeStruct(req.metadata)),
  ]);
}

export function encodeResponse(res: IstioCertificateResponse): Buffer {
  return Buffer.concat(res.certChain.map((c) => stringField(1, c)));
}

// ---- decoding ----

interface Field {
  readonly number: number;
  readonly wireType: number;
  /** Varint value (wire type 0). */
  readonly value: bigint;
  /** Bytes (wire type 2). */
  readonly bytes: Buffer;
}

function readVarint(buf: Buffer, at: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (let p = at; p < buf.length && p < at + 10; p++) {
    const b = buf[p] as number;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, p + 1];
    shift += 7n;
  }
  throw new ProtocolError('truncated or overlong varint');
}

function* fields(buf: Buffer): Generator<Field> {
  let p = 0;
  while (p < buf.length) {
    const [key, afterKey] = readVarint(buf, p);
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (number === 0) throw new ProtocolError('field number 0');
    if (wireType === 0) {
      const [value, next] = readVarint(buf, afterKey);
      p = next;
      yield { number, wireType, value, bytes: Buffer.alloc(0) };
    } else if (wireType === 2) {
      const [length, start] = readVarint(buf, afterKey);
      const end = start + Number(length);
      if (length > BigInt(buf.length) || end > buf.length)
        throw new ProtocolError('length-delimited field overruns the message');
      p = end;
      yield { number, wireType, value: 0n, bytes: buf.subarray(start, end) };
    } else if (wireType === 1) {
      if (afterKey + 8 > buf.length) throw new ProtocolError('truncated fixed64');
      p = afterKey + 8;
    } else if (wireType === 5) {
      if (afterKey + 4 > buf.length) throw new ProtocolError('truncated fixed32');
      p = afterKey + 4;
    } else throw new ProtocolError(`unsupported wire type ${wireType}`);
  }
}

function utf8(bytes: Buffer): string {
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

function decodeStruct(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fields(buf)) {
    if (entry.number !== 1 || entry.wireType !== 2) continue;
    let key: string | undefined;
    let value: string | undefined;
    for (const f of fields(entry.bytes)) {
      if (f.number === 1 && f.wireType === 2) key = utf8(f.bytes);
      else if (f.number === 2 && f.wireType === 2)
        for (const v of fields(f.bytes))
          if (v.number === 3 && v.wireType === 2) value = utf8(v.bytes);
    }
    if (key !== undefined && value !== undefined) out[key] = value;
  }
  return out;
}

function decodeWith<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function decodeRequest(buf: Buffer): IstioCertificateRequest {
  return decodeWith('IstioCertificateRequest', () => {
    let csr = '';
    let validity = 0n;
    let metadata: Record<string, string> = {};
    for (const f of fields(buf)) {
      if (f.number === 1 && f.wireType === 2) csr = utf8(f.bytes);
      else if (f.number === 3 && f.wireType === 0) validity = f.value;
      else if (f.number === 4 && f.wireType === 2) metadata = decodeStruct(f.bytes);
    }
    if (validity > BigInt(Number.MAX_SAFE_INTEGER)) validity = 0n;
    return { csr, validityDurationSeconds: Number(validity), metadata };
  });
}

export function decodeResponse(buf: Buffer): IstioCertificateResponse {
  return decodeWith('IstioCertificateResponse', () => {
    const certChain: string[] = [];
    for (const f of fields(buf))
      if (f.number === 1 && f.wireType === 2) certChain.push(utf8(f.bytes));
    return { certChain };
  });
}

// ---- gRPC length-prefixed framing ----

/** One uncompressed gRPC message frame. */
export function frameMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/**
 * The single message of a unary call's body. Throws ProtocolError for a
 * compressed, truncated, oversized or repeated message.
 */
export function unframeMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new ProtocolError('gRPC body shorter than a frame header');
  if (body[0] !== 0) throw new ProtocolError('compressed gRPC messages are not supported');
  const length = body.readUInt32BE(1);
  if (length > MAX_MESSAGE_BYTES)
    throw new ProtocolError(`gRPC message of ${length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  if (body.length !== 5 + length) throw new ProtocolError('gRPC body is not exactly one message');
  return body.subarray(5);
}
