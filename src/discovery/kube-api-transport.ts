/**
 * GET and watch requests to the Kubernetes API server, authenticated by a
 * `KubeConfig` of @kubernetes/client-node (which owns credentials: client
 * certificates, bearer tokens, token files re-read per request, exec
 * plugins, CA, proxies). We send the requests ourselves, with node:http(s)
 * and the agent and headers the KubeConfig prepares, because the library's
 * `Watch` cannot be cancelled before the response arrives, has no idle
 * timeout (its 30 s timeout signal is overwritten before use) and silently
 * drops unparseable lines, and its generated list API deserializes every
 * field of every Pod into model classes we would throw away.
 *
 * Invariants: every request can be aborted at any time and then leaves no
 * socket behind; a watch reports its end exactly once.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { MeshlessError, errorMessage } from '../errors.js';

/** A failed API call. `statusCode` is what the library's ListWatch inspects (410: relist). */
export type KubeApiError = MeshlessError & { readonly statusCode: number | undefined };

/** Query parameters of a list or watch call; undefined values are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A KubeApiError for `what`, with the HTTP status and the API's Status message if any. */
export function kubeApiError(
  what: string,
  statusCode: number | undefined,
  detail: string,
  cause?: unknown,
): KubeApiError {
  const err = new MeshlessError(
    'MESHLESS_E_DISCOVERY_API',
    `${what}: ${statusCode === undefined ? '' : `HTTP ${statusCode}: `}${detail}`,
    { cause, details: statusCode === undefined ? undefined : { statusCode } },
  );
  return Object.assign(err, { statusCode });
}

/** The message of a v1 Status body, else the raw text (shortened). */
function statusMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && typeof parsed['message'] === 'string') return parsed['message'];
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return body.length > 200 ? `${body.slice(0, 200)}...` : body || 'no body';
}

/** Callbacks of one watch stream. */
export interface WatchCallbacks {
  /** One parsed line of the stream (a watch event, not yet validated). */
  onEvent(event: unknown): void;
  /** The stream ended: cleanly (the server closed it) or with an error. Called once. */
  onEnd(err: KubeApiError | undefined): void;
}

/** A running watch request. */
export interface WatchHandle {
  /** Ends the request now; `onEnd` is not called after this. */
  abort(): void;
}

/** Requests to the API server named by the KubeConfig's current cluster. */
export class KubeApiTransport {
  readonly #kc: KubeConfig;
  readonly #server: string;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new MeshlessError(
        'MESHLESS_E_DISCOVERY_KUBECONFIG',
        'kubeconfig has no current cluster',
      );
    this.#kc = kc;
    this.#server = cluster.server.replace(/\/+$/, '');
  }

  /** The API server's base URL. */
  get server(): string {
    return this.#server;
  }

  /**
   * Checks that credentials and TLS settings can be applied (files exist,
   * plain HTTP only with `insecure-skip-tls-verify`): a configuration
   * error, not a reason to retry.
   */
  async check(): Promise<void> {
    await this.#options();
  }

  async #options(): Promise<RequestOptions> {
    const opts: RequestOptions = {};
    await this.#kc.applyToHTTPSOptions(opts);
    return opts;
  }

  #url(path: string, query: Query): URL {
    const url = new URL(this.#server + path);
    for (const [k, v] of Object.entries(query))
      if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** Sends a GET; resolves with the response once its headers are in. */
  async #get(
    url: URL,
    signal: AbortSignal,
    idleTimeoutMs: number,
  ): Promise<{ res: IncomingMessage; destroy(): void }> {
    const opts = await this.#options();
    signal.throwIfAborted();
    const headers = isRecord(opts.headers) ? opts.headers : {};
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        ...opts,
        method: 'GET',
        headers: { ...headers, Accept: 'application/json' },
        signal,
      });
      req.setTimeout(idleTimeoutMs, () =>
        req.destroy(new Error(`no data from the API server for ${idleTimeoutMs} ms`)),
      );
      req.once('error', reject);
      req.once('response', (res) => resolve({ res, destroy: () => req.destroy() }));
      req.end();
    });
  }

  /** GET `path` and parse the JSON body. Rejects with a KubeApiError. */
  async getJson(
    path: string,
    query: Query,
    signal: AbortSignal,
    idleTimeoutMs = 60_000,
  ): Promise<unknown> {
    const url = this.#url(path, query);
    const what = `GET ${url.pathname}`;
    let body: string;
    let status: number | undefined;
    try {
      const { res } = await this.#get(url, signal, idleTimeoutMs);
      status = res.statusCode;
      res.setEncoding('utf8');
      body = '';
      for await (const chunk of res) body += String(chunk);
    } catch (err) {
      throw kubeApiError(what, status, errorMessage(err), err);
    }
    if (status !== 200) throw kubeApiError(what, status, statusMessage(body));
    try {
      return JSON.parse(body) as unknown;
    } catch (err) {
      throw kubeApiError(what, status, `invalid JSON: ${errorMessage(err)}`, err);
    }
  }

  /**
   * Opens a watch (`?watch=true`) and feeds each newline-delimited JSON
   * event to `cb.onEvent`. A non-200 answer, a reset connection, a stream
   * cut mid-line, an unparseable line or `idleTimeoutMs` without a byte all
   * end it with an error.
   */
  watch(path: string, query: Query, cb: WatchCallbacks, idleTimeoutMs: number): WatchHandle {
    const url = this.#url(path, { ...query, watch: true });
    const what = `watch ${url.pathname}`;
    const controller = new AbortController();
    let ended = false;
    let destroy = (): void => undefined;
    const end = (err: KubeApiError | undefined): void => {
      if (ended) return;
      ended = true;
      destroy();
      if (!controller.signal.aborted) cb.onEnd(err);
    };
    this.#get(url, controller.signal, idleTimeoutMs).then(
      ({ res, destroy: d }) => {
        destroy = d;
        if (ended) return d();
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (c) => (body += String(c)));
          res.on('end', () => end(kubeApiError(what, res.statusCode, statusMessage(body))));
          res.on('error', (err) => end(kubeApiError(what, res.statusCode, errorMessage(err), err)));
          return;
        }
        let pending = '';
        res.on('data', (chunk) => {
          pending += String(chunk);
          let nl: number;
          while (!ended && (nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            let event: unknown;
            try {
              event = JSON.parse(line);
            } catch (err) {
              end(kubeApiError(what, 200, `unparseable watch event: ${errorMessage(err)}`, err));
              return;
            }
            cb.onEvent(event);
          }
        });
        res.on('end', () =>
          end(
            pending.trim() === ''
              ? undefined
              : kubeApiError(what, 200, 'stream ended in the middle of an event'),
          ),
        );
        res.on('error', (err) => end(kubeApiError(what, 200, errorMessage(err), err)));
        res.on('close', () => {
          if (!res.complete) end(kubeApiError(what, 200, 'connection closed mid-stream'));
        });
      },
      (err: unknown) => end(kubeApiError(what, undefined, errorMessage(err), err)),
    );
    return {
      abort: () => {
        controller.abort();
        end(undefined);
      },
    };
  }
}
