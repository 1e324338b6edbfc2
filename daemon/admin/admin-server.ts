/**
 * The daemon's admin endpoint (default 127.0.0.1:15000): read-only JSON
 * over plain HTTP, for the `meshless` CLI and operators with curl.
 *
 * - `GET <path>` runs the registered route (given the query parameters)
 *   and answers its value as JSON; `GET /` lists the routes.
 * - Unknown path: 404. Any method but GET: 405 with `Allow: GET`. A route
 *   that throws MESHLESS_E_ADMIN_REQUEST: 400; anything else: 500, with
 *   the message.
 * - Binds loopback only unless `allowNonLoopback` is set: the answers
 *   describe the node's workloads and certificates. (`:port` means
 *   127.0.0.1 here.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { parseListenAddress } from '../../src/config/daemon-config.js';
import { MeshlessError, errorMessage } from '../../src/errors.js';

/**
 * A route: returns the JSON-serialisable answer (or a promise of it). Gets
 * the query parameters; throws MeshlessError `MESHLESS_E_ADMIN_REQUEST` for
 * a bad request (400).
 */
export type AdminRoute = (query: URLSearchParams) => unknown;

/**
 * An action (POST): changes something at run time, e.g. the log level.
 * Gets the query parameters; throws MeshlessError `MESHLESS_E_ADMIN_REQUEST`
 * for a bad request (400).
 */
export type AdminAction = (query: URLSearchParams) => unknown;

/** Logger subset used (pino-compatible). */
export interface AdminLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Options for {@link createAdminServer}. */
export interface AdminServerOptions {
  /** `host:port`, `[v6]:port` or `:port`; default `127.0.0.1:15000`. */
  readonly address?: string;
  /** Path (e.g. `/certs`) to route. More can be added with `route()`. */
  readonly routes?: Readonly<Record<string, AdminRoute>>;
  /** POST paths (e.g. `/logging`). */
  readonly actions?: Readonly<Record<string, AdminAction>>;
  /** Permit a non-loopback address. Off by default. */
  readonly allowNonLoopback?: boolean;
  readonly logger?: AdminLogger;
}

/** A created (not yet listening) admin server. */
export interface AdminServer {
  readonly server: Server;
  /** Adds or replaces a route. */
  route(path: string, handler: AdminRoute): void;
  /** Binds; resolves with the bound address (port 0 gets a real port). */
  listen(): Promise<{ host: string; port: number }>;
  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void>;
}

/** The default admin address. */
export const DEFAULT_ADMIN_ADDRESS = '127.0.0.1:15000';

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function adminError(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_ADMIN', message, { cause });
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** Creates the admin server. Throws `MESHLESS_E_ADMIN` for a refused address. */
export function createAdminServer(options: AdminServerOptions = {}): AdminServer {
  const address = options.address ?? DEFAULT_ADMIN_ADDRESS;
  const parsed = parseListenAddress(address, 'adminAddress');
  let host = parsed.host;
  if (host === '') host = options.allowNonLoopback ? '::' : '127.0.0.1';
  if (!isLoopbackHost(host) && !options.allowNonLoopback)
    throw adminError(
      `admin address ${address} is not a loopback address; the admin endpoint describes this ` +
        "node's workloads and certificates, so it listens on 127.0.0.1 or ::1 only",
    );
  const routes = new Map<string, AdminRoute>(Object.entries(options.routes ?? {}));
  const actions = new Map<string, AdminAction>(Object.entries(options.actions ?? {}));
  const log = options.logger;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const action = actions.get(path);
    if (action) {
      if (req.method !== 'POST') {
        send(res, 405, { error: `use POST ${path}` }, { allow: 'POST' });
        return;
      }
      try {
        send(res, 200, await action(new URLSearchParams(query)));
      } catch (err) {
        const code = err instanceof MeshlessError ? err.code : undefined;
        send(res, code === 'MESHLESS_E_ADMIN_REQUEST' ? 400 : 500, {
          error: errorMessage(err),
          ...(code ? { code } : {}),
        });
      }
      return;
    }
    if (req.method !== 'GET') {
      send(
        res,
        405,
        { error: `method ${req.method ?? '?'} not allowed; use GET` },
        { allow: 'GET' },
      );
      return;
    }
    const route = routes.get(path);
    if (!route) {
      if (path === '/') {
        send(res, 200, { paths: [...routes.keys()].sort() });
        return;
      }
      send(res, 404, { error: `no such path ${path}`, paths: [...routes.keys()].sort() });
      return;
    }
    try {
      send(res, 200, await route(new URLSearchParams(query)));
    } catch (err) {
      const code = err instanceof MeshlessError ? err.code : undefined;
      const badRequest = code === 'MESHLESS_E_ADMIN_REQUEST';
      if (!badRequest) log?.warn({ path, err: errorMessage(err) }, 'admin route failed');
      send(res, badRequest ? 400 : 500, { error: errorMessage(err), ...(code ? { code } : {}) });
    }
  };

  // The timeouts below are enforced every connectionsCheckingInterval (30 s
  // by default): without this, a client trickling headers holds ~35 s.
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.warn({ err: errorMessage(err) }, 'admin request failed');
      if (!res.headersSent) send(res, 500, { error: errorMessage(err) });
      else res.destroy();
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  let closed = false;
  return {
    server,
    route(path, handler) {
      routes.set(path, handler);
    },
    listen() {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => {
          reject(
            adminError(
              `cannot listen on admin address ${address}: ${errorMessage(err)}` +
                ((err as { code?: string }).code === 'EADDRINUSE'
                  ? ' (is another meshless daemon running on this node?)'
                  : ''),
              err,
            ),
          );
        };
        server.once('error', onError);
        server.listen({ host, port: parsed.port }, () => {
          server.off('error', onError);
          const bound = server.address();
          const port = typeof bound === 'object' && bound ? bound.port : parsed.port;
          log?.debug({ host, port }, 'admin endpoint listening');
          resolve({ host, port });
        });
      });
    },
    close() {
      if (closed || !server.listening) {
        closed = true;
        return Promise.resolve();
      }
      closed = true;
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
