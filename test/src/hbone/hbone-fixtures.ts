// Shared fixtures for HBONE tests: a test PKI (root -> node CA -> SVIDs),
// an HBONE server on loopback fed by a plain TCP listener, upstream
// servers, and tunnel requests.
import net from 'node:net';
import type { SecureContext } from 'node:tls';
import { buildSecureContext } from '../../../src/identity/secure-context.js';
import { workloadSpiffeId } from '../../../src/identity/spiffe-id.js';
import type { TrustBundle } from '../../../src/identity/trust-bundle.js';
import { issueX509Svid, type X509Svid } from '../../../src/identity/x509-svid.js';
import type { TunnelRequest } from '../../../src/hbone/hbone-client.js';
import {
  createHboneServer,
  type HboneServer,
  type HboneServerOptions,
} from '../../../src/hbone/hbone-server.js';
import type { ConnectionRecord } from '../../../src/hbone/connection-record.js';
import { HBONE_RECEIVE_BUFFER_BYTES } from '../../../src/hbone/hbone-protocol.js';
import { connectFromNetns, listenInNetns } from '../../../src/netns/socket-in-netns.js';
import { until } from '../../support/until.js';
import { TD, makePki, type Pki } from '../identity/pki-fixtures.js';

export { TD };
export const ID_X = `spiffe://${TD}/ns/a/sa/x`;
export const ID_Y = `spiffe://${TD}/ns/b/sa/y`;

export interface TestPki extends Pki {
  svid(namespace: string, sa: string): Promise<X509Svid>;
  context(svid: X509Svid): SecureContext;
}

/** A root and a node CA for `td` (the identity tests' {@link makePki}, valid now), issuing SVIDs valid now. */
export async function makeTestPki(td = TD): Promise<TestPki> {
  const pki = await makePki(td, Date.now());
  return {
    ...pki,
    svid: (ns, sa) => issueX509Svid(pki.nodeCa, workloadSpiffeId(td, ns, sa), { now: Date.now() }),
    context: (svid) => buildSecureContext(svid, pki.bundle),
  };
}

export interface RunningHbone {
  readonly port: number;
  readonly hbone: HboneServer;
  readonly records: ConnectionRecord[];
  close(): Promise<void>;
}

/** An HBONE server on 127.0.0.1:<random>, delivering to 127.0.0.1 upstreams. */
export async function startHbone(
  options: Partial<HboneServerOptions> & Pick<HboneServerOptions, 'secureContext' | 'trustBundle'>,
): Promise<RunningHbone> {
  const records: ConnectionRecord[] = [];
  const hbone = createHboneServer({
    trustDomain: TD,
    localAddresses: () => ['127.0.0.1'],
    connectUpstream: (target) => connectTcp(target.host, target.port),
    onRecord: (r) => records.push(r),
    ...options,
  });
  // Made like the daemon's 15008 listener (HBONE_RECEIVE_BUFFER_BYTES), in this netns.
  const listener = await listenInNetns({
    host: '127.0.0.1',
    port: 0,
    receiveBufferBytes: HBONE_RECEIVE_BUFFER_BYTES,
  });
  listener.on('connection', (s: net.Socket) => hbone.handleConnection(s));
  const port = (listener.address() as net.AddressInfo).port;
  return {
    port,
    hbone,
    records,
    close: async () => {
      // Stop accepting, then close the HBONE server, which owns every
      // accepted socket; only then can the listener's close callback fire
      // (it waits for all of them: awaiting it first would deadlock).
      const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
      await hbone.close();
      await listenerClosed;
    },
  };
}

/** A connected, half-open-capable TCP socket. */
export function connectTcp(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface Upstream {
  readonly port: number;
  readonly server: net.Server;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 running `handler` per connection (half-open allowed). */
export async function startUpstream(handler: (s: net.Socket) => void): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const up: { accepted: number } = { accepted: 0 };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    up.accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    handler(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(up, {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** Echoes every byte back, and ends when the client ends. */
export function echo(s: net.Socket): void {
  s.pipe(s);
}

/** A tunnel request from a/x to b/y at 127.0.0.1:`hbonePort`, for `targetPort`. */
export function tunnelRequest(
  pki: { bundle: TrustBundle },
  clientContext: SecureContext,
  hbonePort: number,
  targetPort: number,
  overrides: Partial<TunnelRequest> = {},
): TunnelRequest {
  return {
    sourceIdentity: ID_X,
    destinationIdentity: ID_Y,
    sourceIp: '127.0.0.1',
    hboneAddress: { host: '127.0.0.1', port: hbonePort },
    target: { host: '127.0.0.1', port: targetPort },
    forwardedFor: { ip: '127.0.0.1', port: 40000 },
    secureContext: clientContext,
    trustDomain: TD,
    trustBundle: () => pki.bundle,
    connectSocket: () =>
      connectFromNetns({
        host: '127.0.0.1',
        port: hbonePort,
        allowHalfOpen: true,
        receiveBufferBytes: HBONE_RECEIVE_BUFFER_BYTES,
      }),
    ...overrides,
  };
}

/** Reads a stream to its end. */
export async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

/** Resolves when `predicate` holds, polling; rejects after `ms` ({@link until}). */
export function eventually(predicate: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  return until(what, predicate, ms);
}

/** A port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
