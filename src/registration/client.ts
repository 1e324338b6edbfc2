/**
 * The plugin's side of the registration API: one HTTP/1.1 request over the
 * daemon's Unix socket, bounded in time. The outcome tells apart "the
 * daemon answered" from "the daemon could not be reached", because the
 * plugin's fallback depends on it.
 *
 * HTTP is spoken by hand over `node:net` (one request per connection,
 * `Connection: close`): the plugin runs once per pod event, and Node's
 * `http` client costs ~2.5 ms to load and ~7 ms more for its first request
 * in a fresh process, against ~3 ms for the whole exchange here.
 */
import { connect } from 'node:net';
import type { ErrorResponse } from './protocol.js';

export type DaemonOutcome<T> =
  | { readonly kind: 'ok'; readonly body: T }
  | {
      readonly kind: 'error';
      readonly status: number;
      readonly code: string;
      readonly message: string;
    }
  | { readonly kind: 'unreachable'; readonly reason: string };

const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Room for the status line and headers on top of the body. */
const MAX_HEAD_BYTES = 16 * 1024;

/** A complete HTTP response, or why the bytes are not one. */
export type ParsedResponse =
  | { readonly kind: 'complete'; readonly status: number; readonly body: Buffer }
  | { readonly kind: 'partial' }
  | { readonly kind: 'invalid'; readonly reason: string };

const CRLF = Buffer.from('\r\n');

/** Decodes a chunked body; undefined while the terminating chunk has not arrived. */
function dechunk(data: Buffer): Buffer | 'invalid' | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const sizeText = data.subarray(at, eol).toString('latin1').split(';')[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return 'invalid';
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      // Optional trailers, then an empty line.
      const tail = data.subarray(eol + 2);
      const ended = tail.subarray(0, 2).equals(CRLF) || tail.indexOf('\r\n\r\n') >= 0;
      return ended ? Buffer.concat(parts) : undefined;
    }
    const start = eol + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}

/**
 * Parses what has arrived of an HTTP/1.1 response. Pure; `ended` says the
 * peer closed, which completes a body delimited by the connection's end.
 */
export function parseResponse(data: Buffer, ended: boolean): ParsedResponse {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (data.length > MAX_HEAD_BYTES) return { kind: 'invalid', reason: 'response head too large' };
    return ended
      ? { kind: 'invalid', reason: 'connection closed before a response' }
      : { kind: 'partial' };
  }
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return { kind: 'invalid', reason: 'invalid HTTP status line' };
  const status = Number(m[1]);
  let length: number | undefined;
  let chunked = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'invalid', reason: 'invalid HTTP header' };
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) return { kind: 'invalid', reason: 'invalid content-length' };
      length = Number(value);
    } else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(value);
  }
  const rest = data.subarray(headEnd + 4);
  if (chunked) {
    const body = dechunk(rest);
    if (body === 'invalid') return { kind: 'invalid', reason: 'invalid chunked body' };
    if (body !== undefined) return { kind: 'complete', status, body };
    return ended ? { kind: 'invalid', reason: 'response cut short' } : { kind: 'partial' };
  }
  if (length !== undefined) {
    if (rest.length >= length) return { kind: 'complete', status, body: rest.subarray(0, length) };
    return ended ? { kind: 'invalid', reason: 'response cut short' } : { kind: 'partial' };
  }
  // No length: 204/304 have no body; anything else runs to the connection's end.
  if (status === 204 || status === 304) return { kind: 'complete', status, body: Buffer.alloc(0) };
  return ended ? { kind: 'complete', status, body: rest } : { kind: 'partial' };
}

/** Maps a complete response to the outcome the plugin acts on. */
function outcomeOf<T>(status: number, body: Buffer): DaemonOutcome<T> {
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    return {
      kind: 'error',
      status,
      code: 'MESHLESS_E_API_RESPONSE',
      message: `daemon sent invalid JSON (HTTP ${status})`,
    };
  }
  if (status >= 200 && status < 300) return { kind: 'ok', body: parsed as T };
  const err = (parsed as Partial<ErrorResponse> | null)?.error;
  return {
    kind: 'error',
    status,
    code: typeof err?.code === 'string' ? err.code : 'MESHLESS_E_API',
    message: typeof err?.message === 'string' ? err.message : `HTTP ${status}`,
  };
}

/** Calls the daemon at `socketPath`; never throws. */
export function callDaemon<T>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<DaemonOutcome<T>> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const head =
      `${method} ${path} HTTP/1.1\r\nHost: meshlessd\r\nConnection: close\r\n` +
      (payload !== undefined
        ? `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`
        : method === 'POST'
          ? 'Content-Length: 0\r\n'
          : '') +
      '\r\n';
    const request =
      payload === undefined ? Buffer.from(head) : Buffer.concat([Buffer.from(head), payload]);
    let settled = false;
    let destroy: () => void = () => undefined;
    const done = (o: DaemonOutcome<T>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      destroy();
      resolve(o);
    };
    const deadline = Date.now() + timeoutMs;
    const send = (): void => {
      const socket = connect(socketPath);
      destroy = () => socket.destroy();
      let received: Buffer = Buffer.alloc(0);
      let retried = false;
      const settle = (ended: boolean): void => {
        if (retried) return;
        const r = parseResponse(received, ended);
        if (r.kind === 'complete') done(outcomeOf<T>(r.status, r.body));
        else if (r.kind === 'invalid')
          done({ kind: 'unreachable', reason: `daemon answered badly: ${r.reason}` });
      };
      socket.on('connect', () => socket.write(request));
      socket.on('data', (c: Buffer) => {
        received = received.length === 0 ? c : Buffer.concat([received, c]);
        if (received.length > MAX_RESPONSE_BYTES + MAX_HEAD_BYTES) {
          done({ kind: 'unreachable', reason: 'daemon response too large' });
          return;
        }
        settle(false);
      });
      socket.on('end', () => settle(true));
      socket.on('close', () => settle(true));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (settled || retried) return;
        // EAGAIN: the socket's accept queue is full (a burst of pod events
        // while the daemon is busy); the daemon is there, so try again.
        if (err.code === 'EAGAIN' && received.length === 0 && deadline - Date.now() > 50) {
          retried = true;
          socket.destroy();
          setTimeout(send, 10 + Math.random() * 20);
          return;
        }
        const hint =
          err.code === 'ENOENT'
            ? `socket ${socketPath} does not exist (is meshlessd running on this node?)`
            : err.code === 'ECONNREFUSED'
              ? `nothing listens on ${socketPath} (is meshlessd running on this node?)`
              : `${err.code ?? 'error'}: ${err.message}`;
        done({ kind: 'unreachable', reason: hint });
      });
    };
    const timer = setTimeout(() => {
      done({ kind: 'unreachable', reason: `no answer from the daemon within ${timeoutMs} ms` });
    }, timeoutMs);
    send();
  });
}
