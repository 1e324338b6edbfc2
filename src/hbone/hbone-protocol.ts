/**
 * HBONE wire decisions, free of I/O (docs/reference/hbone.md;
 * istio/ztunnel `src/proxy/h2`): the CONNECT request a client sends, the checks a server
 * makes before dialling upstream, and the HTTP/2 settings of both ends.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http2';

/** The HBONE port every enrolled pod listens on (inside its netns). */
export const HBONE_PORT = 15008;

/** Ports an HBONE request may never target: the proxy's own (self-call loop). */
export const DEFAULT_FORBIDDEN_PORTS: readonly number[] = [15001, 15006, 15008];

const MiB = 1024 * 1024;
const KiB = 1024;

/** HTTP/2 stream (initial) window, both ends. */
export const STREAM_WINDOW_BYTES = 4 * MiB;
/** HTTP/2 connection window, both ends, via `session.setLocalWindowSize`. */
export const CONNECTION_WINDOW_BYTES = 16 * MiB;
/**
 * Kernel receive buffer of every HBONE TCP socket, both ends (set with
 * `SO_RCVBUFFORCE` before connect/listen). Node's HTTP/2 session stops
 * reading its socket while a write to it is pending (node_http2.cc
 * `MaybeStopReading`), so when both ends of one connection carry bulk data
 * and both send buffers fill, neither reads again: a deadlock. Once a
 * receiver's kernel buffer can hold all the peer may send without a
 * WINDOW_UPDATE (the connection window, plus frame and TLS overhead), the
 * peer's writes always complete and it resumes reading. The memory is only
 * used while a reader lags; Linux's autotuning stops at tcp_rmem's maximum
 * (often 6 MiB) and starts at 128 KiB.
 */
export const HBONE_RECEIVE_BUFFER_BYTES = CONNECTION_WINDOW_BYTES + 4 * MiB;
/** Largest frame we accept. Node itself never sends DATA frames over 16 KiB. */
export const MAX_FRAME_BYTES = 1 * MiB;
/**
 * `maxSessionMemory` (MB) of both ends. Node's default of 10 refuses new
 * streams once that much is buffered in a session; with 4 MiB stream
 * windows a few busy streams reach it.
 */
export const SESSION_MEMORY_MB = 64;

/** Client SETTINGS (docs/reference/hbone.md: header list 16 KiB, no push). */
export const CLIENT_HTTP2_SETTINGS = {
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxFrameSize: MAX_FRAME_BYTES,
  maxHeaderListSize: 16 * KiB,
  enablePush: false,
} as const;

/** Server SETTINGS (docs/reference/hbone.md: 200 concurrent streams, header list 64 KiB, no push). */
export const SERVER_HTTP2_SETTINGS = {
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxFrameSize: MAX_FRAME_BYTES,
  maxHeaderListSize: 64 * KiB,
  maxConcurrentStreams: 200,
  enablePush: false,
} as const;

/** A host (IP literal) and port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Canonical text of an IP literal, so that two spellings of one IPv6
 * address compare equal (`0:0::1` and `::1`). Undefined when not an IP.
 */
export function canonicalIp(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6) return undefined;
  // The WHATWG URL parser serialises IPv6 in RFC 5952 form.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** `ip:port`, or `[ip]:port` for IPv6: an HBONE `:authority`. */
export function formatAuthority(target: HostPort): string {
  return isIP(target.host) === 6
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
}

const PORT = /^[0-9]{1,5}$/;

/** Parses `ip:port` / `[ip6]:port` (IP literals only); undefined when malformed. */
export function parseAuthority(authority: string): HostPort | undefined {
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0 || authority[close + 1] !== ':') return undefined;
    host = authority.slice(1, close);
    portText = authority.slice(close + 2);
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (isIP(host) !== 4) return undefined;
  }
  if (!PORT.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** The `forwarded` header for the original client (RFC 7239: the node is quoted). */
export function formatForwarded(client: { readonly ip: string; readonly port: number }): string {
  return `for="${formatAuthority({ host: client.ip, port: client.port })}"`;
}

/** The first `for=` node of a `forwarded` header, unquoted; undefined when absent. */
export function parseForwardedFor(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const first = value.split(',')[0] ?? '';
  for (const pair of first.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    const raw = pair.slice(eq + 1).trim();
    const node =
      raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw;
    return node === '' ? undefined : node;
  }
  return undefined;
}

/** CSPRNG bytes drawn 4 KiB at a time: one `randomBytes` per 170 CONNECTs instead of two each. */
const randomPool = { bytes: Buffer.alloc(0), offset: 0 };
function pooledRandomBytes(n: number): Buffer {
  if (randomPool.offset + n > randomPool.bytes.length) {
    randomPool.bytes = nodeRandomBytes(4096);
    randomPool.offset = 0;
  }
  const out = randomPool.bytes.subarray(randomPool.offset, randomPool.offset + n);
  randomPool.offset += n;
  return out;
}

/** A W3C `traceparent` for a new, unsampled trace: `00-<32 hex>-<16 hex>-00`. */
export function newTraceparent(randomBytes: (n: number) => Buffer = pooledRandomBytes): string {
  let traceId = randomBytes(16).toString('hex');
  let spanId = randomBytes(8).toString('hex');
  // All-zero IDs are invalid (W3C Trace Context §3.2.2.3-4).
  if (/^0+$/.test(traceId)) traceId = `${traceId.slice(0, 31)}1`;
  if (/^0+$/.test(spanId)) spanId = `${spanId.slice(0, 15)}1`;
  return `00-${traceId}-${spanId}-00`;
}

/** The headers of an HBONE CONNECT request. */
export interface ConnectRequestSpec {
  readonly target: HostPort;
  readonly forwardedFor: { readonly ip: string; readonly port: number };
  readonly baggage?: string;
  readonly traceparent?: string;
}

/** HTTP/2 request headers of an HBONE CONNECT. */
export function connectRequestHeaders(spec: ConnectRequestSpec): Record<string, string> {
  const headers: Record<string, string> = {
    ':method': 'CONNECT',
    ':authority': formatAuthority(spec.target),
    forwarded: formatForwarded(spec.forwardedFor),
    traceparent: spec.traceparent ?? newTraceparent(),
  };
  if (spec.baggage !== undefined) headers['baggage'] = spec.baggage;
  return headers;
}

/** Why an HBONE server refused a request before dialling upstream. */
export type ConnectRequestProblem =
  'not-connect' | 'bad-authority' | 'not-local-address' | 'forbidden-port';

/** The server's verdict on a request: a target to dial, or a status to answer. */
export type ConnectRequestDecision =
  | { readonly ok: true; readonly target: HostPort; readonly forwardedFor: string | undefined }
  | { readonly ok: false; readonly status: 400; readonly problem: ConnectRequestProblem };

/** What the server checks a request against. */
export interface ConnectRequestPolicy {
  /** The IPs of the pod this listener serves. */
  readonly localAddresses: readonly string[];
  readonly forbiddenPorts: readonly number[];
}

/**
 * Checks an inbound HBONE request (docs/reference/hbone.md): CONNECT only; `:authority`
 * an IP literal and port; the IP one of the pod's; the port not one of the
 * proxy's. Any failure is a 400.
 */
export function decideConnectRequest(
  headers: IncomingHttpHeaders,
  policy: ConnectRequestPolicy,
): ConnectRequestDecision {
  if (headers[':method'] !== 'CONNECT') return { ok: false, status: 400, problem: 'not-connect' };
  const authority = headers[':authority'];
  const target = typeof authority === 'string' ? parseAuthority(authority) : undefined;
  if (!target) return { ok: false, status: 400, problem: 'bad-authority' };
  const host = canonicalIp(target.host);
  if (!policy.localAddresses.some((ip) => canonicalIp(ip) === host))
    return { ok: false, status: 400, problem: 'not-local-address' };
  if (policy.forbiddenPorts.includes(target.port))
    return { ok: false, status: 400, problem: 'forbidden-port' };
  const forwarded = headers['forwarded'];
  return {
    ok: true,
    target,
    forwardedFor: parseForwardedFor(typeof forwarded === 'string' ? forwarded : undefined),
  };
}
