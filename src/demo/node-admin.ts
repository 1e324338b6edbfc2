/**
 * The demo nodes' daemons listen on 127.0.0.1 inside their node netns: this
 * GETs their admin endpoint from there (a socket opened in that netns, then
 * plain HTTP over it), without curl.
 */
import { request } from 'node:http';
import { MeshlessError, errorMessage } from '../errors.js';
import { connectFromNetns } from '../netns/socket-in-netns.js';

/** The daemon's default admin port (docs/reference/ports-and-marks.md). */
export const ADMIN_PORT = 15000;

/**
 * GETs `path` from 127.0.0.1:`port` inside the netns at `netnsPath`; parses JSON.
 * @throws MeshlessError `MESHLESS_E_DEMO_ADMIN` when it cannot, naming the node.
 */
export async function getAdminInNetns(
  netnsPath: string,
  path: string,
  options: { port?: number; timeoutMs?: number } = {},
): Promise<unknown> {
  const port = options.port ?? ADMIN_PORT;
  const timeoutMs = options.timeoutMs ?? 3000;
  const fail = (why: string, cause?: unknown): MeshlessError =>
    new MeshlessError(
      'MESHLESS_E_DEMO_ADMIN',
      `admin ${path} of the daemon in ${netnsPath} (127.0.0.1:${port}): ${why}; see its log`,
      { cause },
    );
  let socket;
  try {
    socket = await connectFromNetns({ netnsPath, host: '127.0.0.1', port, timeoutMs });
  } catch (err) {
    throw fail(errorMessage(err), err);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        headers: { accept: 'application/json' },
        createConnection: () => socket,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(fail(errorMessage(err), err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            return reject(fail(`answered ${res.statusCode ?? '?'}: ${text.trim()}`));
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(fail('answered something that is not JSON', err));
          }
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(fail(errorMessage(err), err)));
    req.end();
  });
}

/** A pod registered with a node's daemon, as `/workloads` reports it. */
export interface RegisteredWorkload {
  readonly namespace: string;
  readonly podName: string;
  readonly enrolled: boolean;
  readonly identity: string | null;
}

/** Reads `/workloads`, keeping the fields the demo uses. Pure. */
export function parseWorkloads(doc: unknown): RegisteredWorkload[] {
  if (!Array.isArray(doc)) return [];
  const out: RegisteredWorkload[] = [];
  for (const w of doc as unknown[]) {
    if (typeof w !== 'object' || w === null) continue;
    const o = w as Record<string, unknown>;
    if (typeof o['namespace'] !== 'string' || typeof o['podName'] !== 'string') continue;
    out.push({
      namespace: o['namespace'],
      podName: o['podName'],
      enrolled: o['enrolled'] === true,
      identity: typeof o['identity'] === 'string' ? o['identity'] : null,
    });
  }
  return out;
}
