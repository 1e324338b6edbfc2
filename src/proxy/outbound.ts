/**
 * Outbound (port 15001): an enrolled pod's captured connection, routed by
 * {@link decideOutbound} from its original destination.
 *
 * - a Service address (ClusterIP, external or load-balancer IP, node port):
 *   decided as the backend {@link decideOutbound} picked, before kube-proxy
 *   could DNAT it; the record carries the Service.
 * - enrolled destination: held inline (docs/reference/behaviour.md): the application's bytes
 *   stay in the kernel and Node's buffer until the HBONE CONNECT answered
 *   200, then relayed. A failed tunnel resets the application; never
 *   plaintext.
 * - unknown address of the cluster's pod or Service ranges: held, decided again at every
 *   discovery change, reset when the wait runs out (never plaintext).
 * - anything else: {@link passThrough}.
 * - our own ports: reset (self-call loop).
 *
 * The application socket is adopted by its {@link ManagedConnection} at
 * accept: whatever it does while held (FIN, RST, silence) is handled, and
 * the connection ends with exactly one record.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import type { HbonePool } from '../hbone/pool.js';
import { HboneError } from '../hbone/hbone-error.js';
import { HBONE_RECEIVE_BUFFER_BYTES } from '../hbone/hbone-protocol.js';
import { resetStream } from '../hbone/relay.js';
import type { TrustBundle } from '../identity/trust-bundle.js';
import type { ConnectionManager, ManagedConnection } from './connection-manager.js';
import { classifyFailure } from './failure.js';
import { decideOutbound, type Endpoint } from './outbound-decision.js';
import { passThrough } from './passthrough.js';
import type { PodAddressSpace } from './pod-address-space.js';
import type { ServiceIndex } from './service-index.js';
import { abandoned, finishAbandoned, holdUntil, type PodSide } from './pod-side.js';
import type { WorkloadIndex } from './workload-index.js';

/** What the outbound path needs beyond the pod. */
export interface OutboundDeps {
  readonly trustDomain: string;
  secureContext(identity: string): SecureContext;
  trustBundle(): TrustBundle;
  index(): WorkloadIndex;
  readonly pool: HbonePool;
  /** The cluster's address space now (pod and Service ranges); default none. */
  podSpace?(): PodAddressSpace;
  /** The Services now (ClusterIPs, node ports... -> backends); default none. */
  services?(): ServiceIndex;
  /** Resolves at the next workload index change, or after `ms`. */
  indexChanged?(ms: number): Promise<void>;
  /** How long a connection to an unknown pod address waits for discovery, ms; default 2000. */
  readonly discoveryWaitMs?: number;
  /** Peers' HBONE port; default the decision's (15008). */
  readonly peerHbonePort?: number;
  /** A client-side handshake failure (a metric). */
  handshakeFailed?(reason: string): void;
}

/** Takes an accepted outbound socket and its original destination. */
export function handleOutbound(
  side: PodSide,
  manager: ConnectionManager,
  deps: OutboundDeps,
  app: Socket,
  source: Endpoint,
  dst: Endpoint,
): void {
  const conn = manager.open(
    {
      direction: 'outbound',
      pod: side.pod,
      limitKey: side.pod,
      source: { ...source, identity: side.identity },
      destination: { ...dst },
    },
    app,
  );
  if (!conn) return;
  route(side, deps, conn, app, dst, 0);
}

function route(
  side: PodSide,
  deps: OutboundDeps,
  conn: ManagedConnection,
  app: Socket,
  dst: Endpoint,
  waitedMs: number,
): void {
  if (abandoned(conn, app)) {
    finishAbandoned(conn);
    return;
  }
  const decision = decideOutbound(dst, deps.index(), deps.podSpace?.(), deps.services?.());
  if (decision.kind !== 'wait-for-discovery' && decision.service !== undefined)
    conn.service = { name: decision.service, address: dst.address, port: dst.port };
  switch (decision.kind) {
    case 'refuse':
      resetStream(app);
      conn.finish({ outcome: 'refused', reason: decision.code });
      return;
    case 'passthrough':
      // A Service's plain backend is dialled itself, never the Service
      // address, where kube-proxy could pick an enrolled backend.
      conn.destination = { ...decision.target };
      passThrough(side, conn, app, decision.target);
      return;
    case 'wait-for-discovery': {
      const budget = (deps.discoveryWaitMs ?? 2000) - waitedMs;
      if (budget <= 0 || !deps.indexChanged) {
        resetStream(app);
        conn.finish({ outcome: 'refused', reason: 'discovery-timeout' });
        return;
      }
      const t0 = Date.now();
      void deps
        .indexChanged(budget)
        .then(() => route(side, deps, conn, app, dst, waitedMs + Math.max(1, Date.now() - t0)));
      return;
    }
    case 'hbone':
      break;
  }
  const target = decision.target;
  conn.destination = { ...target, identity: decision.destination.identity };
  const hbone = {
    address: decision.hbone.address,
    port: deps.peerHbonePort ?? decision.hbone.port,
  };
  let tunnel: Promise<Duplex>;
  try {
    tunnel = deps.pool.openTunnel({
      sourceIdentity: side.identity,
      destinationIdentity: decision.destination.identity,
      sourceIp:
        side.addresses.find((a) => a.includes(':') === target.address.includes(':')) ??
        conn.source.address,
      hboneAddress: { host: hbone.address, port: hbone.port },
      target: { host: target.address, port: target.port },
      forwardedFor: { ip: conn.source.address, port: conn.source.port },
      secureContext: deps.secureContext(side.identity),
      trustDomain: deps.trustDomain,
      trustBundle: () => deps.trustBundle(),
      connectSocket: () =>
        side.connectFromPod(hbone, { receiveBufferBytes: HBONE_RECEIVE_BUFFER_BYTES }),
    });
  } catch (err) {
    // No SVID for the pod right now (released meanwhile): never plaintext.
    resetStream(app);
    conn.fail(err);
    return;
  }
  holdUntil(conn, app, tunnel, (err) => {
    if (
      err instanceof HboneError &&
      (err.reason === 'tls-handshake' || err.reason === 'peer-identity' || err.reason === 'alpn')
    )
      deps.handshakeFailed?.(classifyFailure(err).reason);
  });
}
