/**
 * Inbound plaintext (port 15006): a connection from a source that is not
 * enrolled, captured on its way into the pod, delivered to the application
 * from inside the pod with the peer's address as source (IP_TRANSPARENT and
 * the connmark routing carry the replies back), so the application sees the
 * real client. The pod's policies decide first (STRICT mTLS refuses every
 * plaintext connection); a denial resets the peer. Held until the
 * application accepted; a failure resets it.
 */
import type { Socket } from 'node:net';
import { resetStream } from '../hbone/relay.js';
import type { ConnectionManager } from './connection-manager.js';
import type { InboundPolicy } from './inbound-policy.js';
import { decideInboundPlaintext, type Endpoint } from './outbound-decision.js';
import { holdUntil, type PodSide } from './pod-side.js';

export function handleInboundPlaintext(
  side: PodSide,
  manager: ConnectionManager,
  peer: Socket,
  source: Endpoint,
  dst: Endpoint,
  policy?: InboundPolicy,
): void {
  const conn = manager.open(
    {
      direction: 'inbound-plaintext',
      pod: side.pod,
      limitKey: source.address,
      source,
      destination: { ...dst, identity: side.identity },
    },
    peer,
  );
  if (!conn) return;
  const verdict = decideInboundPlaintext(dst, side.addresses);
  if (!verdict.deliver) {
    resetStream(peer);
    conn.finish({ outcome: 'refused', reason: verdict.code });
    return;
  }
  const allowed = policy?.({
    transport: 'plaintext',
    sourceIp: source.address,
    destinationIp: dst.address,
    destinationPort: dst.port,
    pod: side.pod,
  });
  if (allowed !== undefined && !allowed.allowed) {
    // No identity to answer with a status: the peer gets a reset, the app nothing.
    resetStream(peer);
    conn.policy = allowed.policy;
    conn.finish({ outcome: 'denied', reason: 'policy' });
    return;
  }
  holdUntil(conn, peer, side.connectFromPod(dst, { source }));
}
