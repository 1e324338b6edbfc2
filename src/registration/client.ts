/**
 * The plugin's side of the registration API: one HTTP request over the
 * daemon's Unix socket, bounded in time. The outcome tells apart "the
 * daemon answered" from "the daemon could not be reached", because the
 * plugin's fallback depends on it.
 */
import { request, type ClientRequest } from 'node:http';
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

/** Calls the daemon at `socketPath`; never throws. */
export function callDaemon<T>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<DaemonOutcome<T>> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    let settled = false;
    const done = (o: DaemonOutcome<T>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const deadline = Date.now() + timeoutMs;
    let req: ClientRequest;
    const send = (): void => {
      req = request(
        {
          socketPath,
          method,
          path,
          headers: {
            'content-type': 'application/json',
            ...(payload ? { 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy();
              done({ kind: 'unreachable', reason: 'daemon response too large' });
            } else chunks.push(c);
          });
          res.on('error', (err) => done({ kind: 'unreachable', reason: err.message }));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text === '' ? {} : JSON.parse(text);
            } catch {
              done({
                kind: 'error',
                status: res.statusCode ?? 0,
                code: 'MESHLESS_E_API_RESPONSE',
                message: `daemon sent invalid JSON (HTTP ${res.statusCode})`,
              });
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) done({ kind: 'ok', body: parsed as T });
            else {
              const err = (parsed as Partial<ErrorResponse>).error;
              done({
                kind: 'error',
                status,
                code: typeof err?.code === 'string' ? err.code : 'MESHLESS_E_API',
                message: typeof err?.message === 'string' ? err.message : `HTTP ${status}`,
              });
            }
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // EAGAIN: the socket's accept queue is full (a burst of pod events
        // while the daemon is busy); the daemon is there, so try again.
        if (err.code === 'EAGAIN' && deadline - Date.now() > 50) {
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
      req.end(payload);
    };
    const timer = setTimeout(() => {
      req.destroy();
      done({ kind: 'unreachable', reason: `no answer from the daemon within ${timeoutMs} ms` });
    }, timeoutMs);
    send();
  });
}
