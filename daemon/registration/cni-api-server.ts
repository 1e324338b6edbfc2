/**
 * The registration API on the daemon's Unix socket (protocol in
 * src/registration/protocol.ts). Only root may connect: the socket is
 * 0600 in a 0700 directory. Bodies are bounded; every failure is a JSON
 * error with a stable code, and one bad request never affects another.
 */
import { chmod, mkdir, stat, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { MeshlessError, errorMessage, isErrno } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import {
  MAX_REQUEST_BYTES,
  parseAddRequest,
  parseCheckRequest,
  parseDelRequest,
  parseGcRequest,
} from '../../src/registration/protocol.js';
import type { RegistrationService } from './registration-service.js';

const STATUS_OF: Record<string, number> = {
  MESHLESS_E_API_REQUEST: 400,
  MESHLESS_E_NETNS_MISSING: 400,
  MESHLESS_E_WRONG_NODE: 409,
  MESHLESS_E_REGISTRATION_CONFLICT: 409,
  MESHLESS_E_NOT_READY: 503,
  MESHLESS_E_ENROL: 500,
};

const KNOWN_PATHS = new Set(['/v1/add', '/v1/del', '/v1/check', '/v1/gc', '/v1/status']);

/**
 * Reads a JSON body of at most MAX_REQUEST_BYTES. A larger one is refused
 * with 413 but still read to its end and discarded (never buffered): tearing
 * the connection down instead would lose the 413 and leave the plugin with
 * a bare "socket hang up". requestTimeout bounds how long a client can send.
 */
function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): MeshlessError =>
      new MeshlessError('MESHLESS_E_API_TOO_LARGE', `request body over ${MAX_REQUEST_BYTES} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BYTES;
    if (over) reject(tooLarge());
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (over) return;
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new MeshlessError('MESHLESS_E_API_REQUEST', 'request body is not valid JSON'));
      }
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** True when a live process accepts connections on the socket at `path`. */
export function isSocketServed(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Removes a socket file left by a dead daemon; refuses to steal a live one. */
async function clearStaleSocket(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isSocket())
      throw new MeshlessError('MESHLESS_E_SOCKET', `${path} exists and is not a socket`);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  const alive = await isSocketServed(path);
  if (alive)
    throw new MeshlessError('MESHLESS_E_SOCKET_BUSY', `another daemon already serves ${path}`);
  await unlink(path);
}

export interface CniApiServer {
  readonly server: Server;
  close(): Promise<void>;
}

export async function startCniApiServer(
  socketPath: string,
  service: RegistrationService,
  log: Logger,
  observe?: (command: string, seconds: number, outcome: string) => void,
): Promise<CniApiServer> {
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  await clearStaleSocket(socketPath);

  const route = async (
    method: string | undefined,
    path: string | undefined,
    req: IncomingMessage,
  ): Promise<unknown> => {
    if (method === 'GET' && path === '/v1/status') return service.status();
    // An unknown path is 404 whatever the method; 405 is for a known path.
    if (!KNOWN_PATHS.has(path ?? ''))
      throw new MeshlessError('MESHLESS_E_API_PATH', `unknown API path ${path ?? '?'}`);
    if (method !== 'POST')
      throw new MeshlessError(
        'MESHLESS_E_API_METHOD',
        `${method ?? '?'} ${path ?? '?'} is not part of the API`,
      );
    switch (path) {
      case '/v1/add':
        return service.add(parseAddRequest(await readBody(req)));
      case '/v1/del':
        await service.del(parseDelRequest(await readBody(req)));
        return {};
      case '/v1/check':
        return service.check(parseCheckRequest(await readBody(req)));
      case '/v1/gc':
        return service.gc(parseGcRequest(await readBody(req)));
      default:
        throw new MeshlessError('MESHLESS_E_API_PATH', `unknown API path ${path ?? '?'}`);
    }
  };

  // Node checks headersTimeout and requestTimeout only every
  // connectionsCheckingInterval (30 s by default): a client trickling its
  // headers would hold its connection ~35 s instead of 5.
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    const started = process.hrtime.bigint();
    const command = (req.url ?? '').replace('/v1/', '');
    route(req.method, req.url, req).then(
      (body) => {
        send(res, 200, body);
        observe?.(command, Number(process.hrtime.bigint() - started) / 1e9, 'ok');
      },
      (err: unknown) => {
        const code = err instanceof MeshlessError ? err.code : 'MESHLESS_E_INTERNAL';
        const status =
          STATUS_OF[code] ??
          (code === 'MESHLESS_E_API_TOO_LARGE'
            ? 413
            : code === 'MESHLESS_E_API_METHOD'
              ? 405
              : code === 'MESHLESS_E_API_PATH'
                ? 404
                : 500);
        (status >= 500 ? log.error : log.warn).call(
          log,
          { command, code, error: errorMessage(err) },
          'CNI API request failed',
        );
        if (!res.headersSent) send(res, status, { error: { code, message: errorMessage(err) } });
        observe?.(command, Number(process.hrtime.bigint() - started) / 1e9, code);
      },
    );
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 32;

  // The socket is created 0600 (umask during bind), not chmod-ed after:
  // there is no moment at which another user could connect.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  await chmod(socketPath, 0o600);
  log.info({ socket: socketPath }, 'CNI registration API listening');
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
