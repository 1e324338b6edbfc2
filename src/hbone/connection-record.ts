/**
 * One record per proxied connection, the daemon's access log line (it
 * writes each record as one JSON line) and the source of per-connection
 * metrics. Produced by the HBONE server for inbound tunnels and by the
 * daemon for outbound and passthrough connections, from a {@link RelayResult}.
 */
import type { RelayResult } from './relay.js';

/** Which path a connection took through the node proxy. */
export type ConnectionDirection = 'outbound' | 'inbound' | 'inbound-plaintext' | 'passthrough';

/**
 * How a proxied connection ended:
 * - `ok`: both directions closed cleanly (FIN both ways);
 * - `refused`: the upstream (application or tunnel) refused the connection;
 * - `reset`: one side reset, and the other was reset in turn;
 * - `timeout`: a connect or handshake did not finish in time;
 * - `denied`: identity or authorization check failed;
 * - `error`: anything else (protocol error, bad request).
 */
export type ConnectionOutcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'denied' | 'error';

/** One end of a proxied connection. */
export interface ConnectionEndpoint {
  readonly address: string;
  readonly port: number;
  /** SPIFFE ID, when the end is an enrolled workload whose identity is known. */
  readonly identity?: string;
}

/** The record of one proxied connection. */
export interface ConnectionRecord {
  readonly direction: ConnectionDirection;
  readonly source: ConnectionEndpoint;
  readonly destination: ConnectionEndpoint;
  /**
   * Inbound HBONE: the `for=` node of the client's `forwarded` header
   * (`ip:port`), as the peer daemon claims it; `source` is the TCP peer.
   */
  readonly forwarded?: string;
  /** Bytes delivered from the source towards the destination. */
  readonly bytesSent: number;
  /** Bytes delivered from the destination back to the source. */
  readonly bytesReceived: number;
  /** From accepting the connection (or the HBONE stream) to its end. */
  readonly durationMs: number;
  readonly outcome: ConnectionOutcome;
  /** Stable, low-cardinality cause when the outcome is not `ok` (a metric label). */
  readonly reason?: string;
  /**
   * The Service the source dialled (`namespace/name` and the address and
   * port it dialled: ClusterIP, external IP or node port), when meshless
   * chose the backend; `destination` is then that backend.
   */
  readonly service?: ServiceDialled;
  /**
   * The policy that decided a denial (`Kind namespace/name`: an
   * AuthorizationPolicy, a STRICT PeerAuthentication, a NetworkPolicy).
   */
  readonly policy?: string;
}

/** A Service address an outbound connection was made to. */
export interface ServiceDialled {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

/** How a relayed connection ended, for its record: bytes, outcome, and who reset first. */
export interface RelayEnd {
  readonly outcome: ConnectionOutcome;
  readonly reason?: 'client-reset' | 'upstream-reset';
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** The record fields of a finished relay whose side `a` is the one that opened the connection. */
export function relayEnd(result: RelayResult): RelayEnd {
  return {
    outcome: result.outcome,
    bytesSent: result.bytesAtoB,
    bytesReceived: result.bytesBtoA,
    ...(result.outcome === 'ok'
      ? {}
      : { reason: result.failedSide === 'a' ? 'client-reset' : 'upstream-reset' }),
  };
}
