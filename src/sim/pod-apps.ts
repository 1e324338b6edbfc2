/**
 * Applications inside simulated pods (end-to-end tests). They use the
 * netns addon without SO_MARK, so the pod's own redirect rules capture them
 * exactly as they capture a real workload.
 *
 * The test server speaks a one-line protocol:
 *   ECHO\n          echo everything back
 *   WHO\n           answer the peer address it sees, then close
 *   SINK\n          read to EOF, answer sha256 hex and byte count, close
 *   SOURCE <n>\n    send n deterministic bytes, close
 *   HALF\n          read to EOF, then answer "got <n>" and close (half-close)
 */
import { createHash } from 'node:crypto';
import { MeshlessError } from '../errors.js';
import type { Server, Socket } from 'node:net';
import { connectFromNetns, listenInNetns } from '../netns/socket-in-netns.js';

/** Deterministic bytes: block i is sha256("meshless:" + i), repeated. */
export function patternBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (let i = 0; o < n; i++) {
    const block = createHash('sha256').update(`meshless:${i}`).digest();
    o += block.copy(out, o, 0, Math.min(32, n - o));
  }
  return out;
}

/** A running test server. */
export interface TestServer {
  readonly server: Server;
  /** Peer addresses seen, in order. */
  readonly peers: string[];
  close(): Promise<void>;
}

/** Starts the one-line-protocol server on `port` inside the netns at `netnsPath`. */
export async function startTestServer(netnsPath: string, port: number): Promise<TestServer> {
  const server = await listenInNetns({ netnsPath, port, host: '0.0.0.0', allowHalfOpen: true });
  const peers: string[] = [];
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    peers.push(s.remoteAddress ?? '?');
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      s.off('data', onData);
      const cmd = head.subarray(0, nl).toString();
      const rest = head.subarray(nl + 1);
      if (cmd === 'ECHO') {
        if (rest.length) s.write(rest);
        s.pipe(s);
      } else if (cmd === 'WHO') {
        s.end(`${s.remoteAddress}:${s.remotePort}\n`);
      } else if (cmd === 'SINK' || cmd === 'HALF') {
        const hash = createHash('sha256').update(rest);
        let n = rest.length;
        s.on('data', (c: Buffer) => {
          hash.update(c);
          n += c.length;
        });
        s.on('end', () => s.end(cmd === 'SINK' ? `${hash.digest('hex')} ${n}\n` : `got ${n}\n`));
      } else if (cmd.startsWith('SOURCE ')) {
        s.end(patternBytes(Number(cmd.slice(7))));
      } else s.destroy();
    };
    s.on('data', onData);
  });
  return {
    server,
    peers,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** How long an app waits for its connection to open. */
const CONNECT_TIMEOUT_MS = 15_000;

/** Connects as the app in `netnsPath` would (no mark: captured by the pod's rules). */
export function connectAsApp(
  netnsPath: string,
  host: string,
  port: number,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<Socket> {
  return connectFromNetns({ netnsPath, host, port, timeoutMs });
}

/** How {@link converse} reaches its peer and how long it waits. */
export interface ConverseOptions {
  /** Connect timeout in ms. */
  readonly connectTimeoutMs: number;
  /** For the whole answer once connected, in ms. */
  readonly timeoutMs: number;
  /** Node's `allowHalfOpen` for the socket; default false. */
  readonly allowHalfOpen?: boolean;
  /** The rejection when `timeoutMs` passes. */
  readonly timeoutError: () => Error;
}

/**
 * Connects as the app in `netnsPath` would, sends `chunks` in order,
 * half-closes, and collects the whole answer (to the peer's FIN).
 */
export async function converse(
  netnsPath: string,
  host: string,
  port: number,
  chunks: readonly (string | Buffer)[],
  options: ConverseOptions,
): Promise<Buffer> {
  const s = await connectFromNetns({
    netnsPath,
    host,
    port,
    timeoutMs: options.connectTimeoutMs,
    ...(options.allowHalfOpen === undefined ? {} : { allowHalfOpen: options.allowHalfOpen }),
  });
  return new Promise((resolve, reject) => {
    const answer: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(options.timeoutError());
    }, options.timeoutMs);
    s.on('data', (c: Buffer) => answer.push(c));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(answer));
    });
    for (const chunk of chunks) s.write(chunk);
    s.end();
  });
}

/** Sends `payload` (after the command line), half-closes, collects the whole answer. */
export function exchange(
  netnsPath: string,
  host: string,
  port: number,
  command: string,
  payload: Buffer = Buffer.alloc(0),
  timeoutMs = 60_000,
): Promise<Buffer> {
  return converse(netnsPath, host, port, [`${command}\n`, payload], {
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    timeoutMs,
    timeoutError: () =>
      new MeshlessError('MESHLESS_E_SIM', `exchange ${command} with ${host}:${port} timed out`),
  });
}
