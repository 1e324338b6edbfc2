/**
 * The application in each demo pod (`meshless demo serve`, run inside the
 * pod's netns): one TCP port that answers
 *
 * - HTTP/1.x (the first line is a request line): `GET /` gets a short text
 *   naming the pod and the peer address it sees, so "the application sees
 *   the real peer address" can be checked with curl;
 * - anything else: echoed back byte for byte, half-close respected.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { MeshlessError, errorMessage } from '../errors.js';

/** Who the server is (what `GET /` tells). */
export interface PodServerIdentity {
  readonly pod: string;
  readonly namespace: string;
  readonly node: string;
}

const REQUEST_LINE = /^([A-Z]{3,10}) (\S+) HTTP\/1\.[01]\r?$/;
/** Longest first line or HTTP head we wait for before deciding it is echo traffic. */
const MAX_HEAD = 16 * 1024;

/** The text `GET /` answers. Pure. */
export function podServerGreeting(id: PodServerIdentity, peer: string): string {
  return `pod: ${id.namespace}/${id.pod} on ${id.node}\npeer: ${peer}\n`;
}

/** Reads the peer address out of a greeting (`ip:port`); undefined when absent. Pure. */
export function peerOfGreeting(text: string): string | undefined {
  return /^peer: (\S+)$/m.exec(text)?.[1];
}

function answerHttp(s: Socket, method: string, path: string, id: PodServerIdentity): void {
  const peer = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
  const ok = method === 'GET' || method === 'HEAD';
  const body = ok
    ? path === '/'
      ? podServerGreeting(id, peer)
      : 'not found\n'
    : 'only GET and HEAD\n';
  const status = !ok ? '405 Method Not Allowed' : path === '/' ? '200 OK' : '404 Not Found';
  s.end(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n` +
      (method === 'HEAD' ? '' : body),
  );
}

function handle(s: Socket, id: PodServerIdentity): void {
  s.on('error', () => undefined);
  let head = Buffer.alloc(0);
  let decided = false;
  const echo = (): void => {
    decided = true;
    s.off('data', onData);
    s.off('end', onEnd);
    if (head.length > 0) s.write(head);
    s.pipe(s);
  };
  const onEnd = (): void => {
    if (decided) return;
    decided = true;
    s.end(head);
  };
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > MAX_HEAD) echo();
      return;
    }
    const m = REQUEST_LINE.exec(head.subarray(0, nl).toString('latin1'));
    if (!m) return echo();
    // HTTP: wait for the end of the head.
    if (head.indexOf('\r\n\r\n') < 0 && head.indexOf('\n\n') < 0) {
      if (head.length > MAX_HEAD) s.destroy();
      return;
    }
    decided = true;
    s.off('data', onData);
    s.off('end', onEnd);
    answerHttp(s, m[1] ?? 'GET', m[2] ?? '/', id);
  };
  s.on('data', onData);
  s.on('end', onEnd);
}

/**
 * Listens on `port` (all addresses of this netns).
 * @throws MeshlessError `MESHLESS_E_DEMO_SERVE` when the port cannot be bound.
 */
export function startPodServer(
  port: number,
  id: PodServerIdentity,
  host = '0.0.0.0',
): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (s) => handle(s, id));
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new MeshlessError(
          'MESHLESS_E_DEMO_SERVE',
          `cannot listen on ${host}:${port}: ${errorMessage(err)}`,
          { cause: err },
        ),
      ),
    );
    server.listen(port, host, () => resolve(server));
  });
}
