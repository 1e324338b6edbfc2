/**
 * Reads JSON from the node daemon's admin endpoint (default
 * 127.0.0.1:15000). Errors say what to check when the daemon cannot be
 * reached.
 */
import { request } from 'node:http';
import { MeshlessError, errorMessage } from '../src/errors.js';

/** The default `--admin` address. */
export const DEFAULT_ADMIN = '127.0.0.1:15000';

/** `host:port`, `[v6]:port` or `:port` (= 127.0.0.1) as host and port. */
export function parseAdminAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535)
    throw new MeshlessError(
      'MESHLESS_E_USAGE',
      `--admin "${address}" is not "host:port" (e.g. ${DEFAULT_ADMIN})`,
    );
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Options for {@link getAdminJson}. */
export interface AdminRequestOptions {
  readonly timeoutMs?: number;
}

/** GETs `path` from the admin endpoint at `address` and parses the JSON answer. */
export function getAdminJson(
  address: string,
  path: string,
  options: AdminRequestOptions = {},
): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const { host, port } = parseAdminAddress(address);
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
    const unreachable = (why: string, cause?: unknown): void =>
      reject(
        new MeshlessError(
          'MESHLESS_E_ADMIN_UNREACHABLE',
          `cannot reach the meshless daemon's admin endpoint at ${url} (${why}); ` +
            'is the daemon running on this node? Point --admin at its adminAddress otherwise',
          { cause, details: { address } },
        ),
      );
    const req = request(
      { host, port, path, method: 'GET', headers: { accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => unreachable(errorMessage(err), err));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch (err) {
            reject(
              new MeshlessError(
                'MESHLESS_E_ADMIN_RESPONSE',
                `${url} answered ${res.statusCode ?? '?'} with something that is not JSON; ` +
                  'is --admin pointing at the meshless daemon?',
                { cause: err },
              ),
            );
            return;
          }
          if (res.statusCode !== 200) {
            const error =
              typeof body === 'object' && body !== null && 'error' in body
                ? String((body as { error: unknown }).error)
                : text.trim();
            reject(
              new MeshlessError(
                'MESHLESS_E_ADMIN_RESPONSE',
                `${url} answered ${res.statusCode ?? '?'}: ${error}`,
                { details: { status: res.statusCode } },
              ),
            );
            return;
          }
          resolve(body);
        });
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    });
    req.on('error', (err) => {
      const code = (err as { code?: string }).code;
      unreachable(code === 'ECONNREFUSED' ? 'connection refused' : errorMessage(err), err);
    });
    req.end();
  });
}
