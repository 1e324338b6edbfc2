/**
 * What every data path needs from the pod whose proxy carries a
 * connection: who it is, its connection manager, and how to open a socket
 * from inside it (marked 0x539; with the peer's address as source when
 * delivering inbound). The daemon's PodProxy provides it; the paths
 * (outbound, passthrough, inbound plaintext, inbound HBONE) never open a
 * socket any other way.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import { relayEnd } from '../hbone/connection-record.js';
import { relay, resetStream } from '../hbone/relay.js';
import type { ManagedConnection } from './connection-manager.js';
import type { Endpoint } from './outbound-decision.js';

export interface PodSide {
  /** `namespace/name`. */
  readonly pod: string;
  /** The pod's SPIFFE ID. */
  readonly identity: string;
  /** The pod's own addresses, normalized. */
  readonly addresses: readonly string[];
  readonly log: Logger;
  /**
   * A connected TCP socket from inside the pod to `target` (marked,
   * TCP_NODELAY, half-open allowed, reset if this process dies), bound to
   * `source` when given and of the same family (IP_TRANSPARENT).
   */
  connectFromPod(
    target: Endpoint,
    options?: { readonly source?: Endpoint; readonly receiveBufferBytes?: number },
  ): Promise<Socket>;
}

/**
 * Relays `a` (the side that opened the connection) and `b` both ways, then
 * finishes `conn` with the bytes and who reset first. Both are adopted.
 */
export function carry(conn: ManagedConnection, a: Duplex, b: Duplex): void {
  conn.adopt(a);
  conn.adopt(b);
  const budget = conn.budget;
  void relay(a, b, budget === undefined ? {} : { budget }).then((r) => conn.finish(relayEnd(r)));
}

/** True when the held side left, or the manager closed the connection, while it waited. */
export function abandoned(conn: ManagedConnection, held: Duplex): boolean {
  return held.destroyed || conn.closedBy !== undefined;
}

/** Finishes a connection whose held side left (or that the manager closed) while it waited. */
export function finishAbandoned(conn: ManagedConnection): void {
  conn.finish({ outcome: 'reset', reason: 'client-reset' });
}

/**
 * The end of holding `held` (the side that opened the connection, its
 * bytes unread) while its `upstream` is being opened: once it is open, the
 * two are relayed; if the held side left meanwhile (or the manager closed
 * the connection), the upstream is reset; if it failed, the held side is
 * reset (never a fallback) and the failure classified. One record either way.
 */
export function holdUntil(
  conn: ManagedConnection,
  held: Duplex,
  upstream: Promise<Duplex>,
  onFailure?: (err: unknown) => void,
): void {
  upstream.then(
    (u) => {
      if (abandoned(conn, held)) {
        resetStream(u);
        finishAbandoned(conn);
        return;
      }
      carry(conn, held, u);
    },
    (err: unknown) => {
      onFailure?.(err);
      if (abandoned(conn, held)) {
        finishAbandoned(conn);
        return;
      }
      resetStream(held);
      conn.fail(err);
    },
  );
}
