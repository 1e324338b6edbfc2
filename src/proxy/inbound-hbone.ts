/**
 * Inbound HBONE (port 15008): the pod's HBONE server (mutual TLS, then
 * HTTP/2 CONNECT streams; src/hbone) wired to the pod: each stream the
 * server decides to deliver is handed to the connection manager (counted
 * against the source pod, by its `forwarded` address, else the TCP peer)
 * and delivered to the application from inside the pod with the peer's
 * address as source. Before that, the pod's policies decide (401 when
 * they deny); every refused stream still gets its one record.
 */
import type { SecureContext } from 'node:tls';
import { createHboneServer, type HboneServer } from '../hbone/hbone-server.js';
import type { HbonePeer } from '../hbone/hbone-handshake.js';
import { parseAuthority, type HostPort } from '../hbone/hbone-protocol.js';
import type { TrustBundle } from '../identity/trust-bundle.js';
import { PROXY_PORTS } from '../redirect/constants.js';
import type { ConnectionManager } from './connection-manager.js';
import type { InboundPolicy } from './inbound-policy.js';
import type { PodSide } from './pod-side.js';

export interface InboundHboneDeps {
  readonly trustDomain: string;
  /** The pod's current SVID context (read at every handshake). */
  secureContext(): SecureContext;
  trustBundle(): TrustBundle;
  onHandshakeFailure?(reason: string): void;
  onStreamRefused?(reason: string): void;
  onSessionError?(reason: string): void;
  /**
   * Authorization, STRICT mTLS and NetworkPolicy for each stream before it
   * is delivered: a denial answers 401 and its record names the policy.
   * Absent: every verified peer of the trust domain is allowed.
   */
  readonly policy?: InboundPolicy;
}

export function createInboundHbone(
  side: PodSide,
  manager: ConnectionManager,
  deps: InboundHboneDeps,
): HboneServer {
  return createHboneServer({
    secureContext: () => deps.secureContext(),
    trustDomain: deps.trustDomain,
    trustBundle: () => deps.trustBundle(),
    localAddresses: () => side.addresses,
    forbiddenPorts: Object.values(PROXY_PORTS),
    connectUpstream: (target, peer) =>
      side.connectFromPod(
        { address: target.host, port: target.port },
        { source: { address: peer.address, port: peer.port } },
      ),
    ...(manager.budget === undefined ? {} : { budget: manager.budget }),
    ...(deps.policy === undefined
      ? {}
      : {
          authorize: (peer: HbonePeer, target: HostPort) => {
            const forwarded =
              peer.forwardedFor === undefined ? undefined : parseAuthority(peer.forwardedFor);
            return (
              deps.policy?.({
                transport: 'hbone',
                principal: peer.identity,
                sourceIp: forwarded?.host ?? peer.address,
                destinationIp: target.host,
                destinationPort: target.port,
                pod: side.pod,
              }) ?? false
            );
          },
        }),
    onRecord: (r) => manager.recordRefused(r),
    track: (init) => {
      const forwarded = init.forwarded === undefined ? undefined : parseAuthority(init.forwarded);
      return manager.open({
        ...init,
        pod: side.pod,
        limitKey: forwarded?.host ?? init.source.address,
      });
    },
    identity: side.identity,
    ...(deps.onHandshakeFailure === undefined
      ? {}
      : { onHandshakeFailure: deps.onHandshakeFailure }),
    ...(deps.onStreamRefused === undefined ? {} : { onStreamRefused: deps.onStreamRefused }),
    ...(deps.onSessionError === undefined ? {} : { onSessionError: deps.onSessionError }),
    log: side.log,
  });
}
