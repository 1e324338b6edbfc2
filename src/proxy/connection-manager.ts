/**
 * The connection manager of a node's data plane (ztunnel's
 * `ConnectionManager`): it owns every live proxied connection, from the
 * moment its first socket is accepted (or its HBONE stream arrives) until
 * every socket of it has closed.
 *
 * Invariants:
 *  1. Every socket of a connection is adopted at once: from then on its
 *     'error' events are handled here (remembered as the connection's first
 *     failure), so nothing a peer does can throw out of the event loop.
 *  2. A connection is finished exactly once: one record, then it leaves the
 *     manager. A connection closed by the manager (policy, limit, stop)
 *     carries the manager's reason into that record.
 *  3. Admission is decided by {@link admit} (pure) against the live counts:
 *     connections per source pod and direction, and per node. A refusal is
 *     counted and logged once per burst, never silently.
 *  4. `closeWhere` resets every socket of every matching connection (RST;
 *     RST_STREAM for HBONE streams): what a policy change denies stops now.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import type {
  ConnectionDirection,
  ConnectionEndpoint,
  ConnectionOutcome,
  ConnectionRecord,
  ServiceDialled,
} from '../hbone/connection-record.js';
import { resetStream } from '../hbone/relay.js';
import type { BufferBudget } from '../hbone/buffer-budget.js';
import { classifyFailure, type FailureReason } from './failure.js';

/** A live connection as listed by the admin API and matched by `closeWhere`. */
export interface ConnectionInfo {
  readonly id: number;
  readonly direction: ConnectionDirection;
  /** The enrolled pod whose proxy holds it (`namespace/name`). */
  readonly pod: string;
  /**
   * Who the per-pod limits count it against: the local pod for outbound
   * and passthrough, the source pod's address for inbound.
   */
  readonly limitKey: string;
  readonly source: ConnectionEndpoint;
  readonly destination: ConnectionEndpoint;
  /** Inbound HBONE: the client-supplied `forwarded` address (`ip:port`). */
  readonly forwarded?: string;
  /** Outbound to a Service: its name and the address and port dialled. */
  readonly service?: ServiceDialled;
  readonly startedAt: string;
}

/** Concurrency limits; 0 or absent: unlimited. */
export interface ConnectionLimits {
  /** Live connections one enrolled pod may open through its proxy (outbound + passthrough). */
  readonly perPodOutbound?: number;
  /**
   * Live connections one source may hold into this node's pods (inbound
   * HBONE + inbound plaintext), by source pod address.
   */
  readonly perPodInbound?: number;
  /** Live connections on the node, every pod and direction. */
  readonly perNode?: number;
}

/** Which limit refused a connection (a metric label). */
export type LimitKind = 'pod-outbound' | 'pod-inbound' | 'node';

/** The live counts {@link admit} decides on. */
export interface LiveCounts {
  readonly podOutbound: number;
  readonly podInbound: number;
  readonly node: number;
}

/** Whether one more connection of `direction` may open (pure). */
export function admit(
  direction: ConnectionDirection,
  live: LiveCounts,
  limits: ConnectionLimits,
): { readonly ok: true } | { readonly ok: false; readonly limit: LimitKind } {
  const over = (n: number, max: number | undefined): boolean =>
    max !== undefined && max > 0 && n >= max;
  if (over(live.node, limits.perNode)) return { ok: false, limit: 'node' };
  if (isInbound(direction)) {
    if (over(live.podInbound, limits.perPodInbound)) return { ok: false, limit: 'pod-inbound' };
  } else if (over(live.podOutbound, limits.perPodOutbound))
    return { ok: false, limit: 'pod-outbound' };
  return { ok: true };
}

function isInbound(direction: ConnectionDirection): boolean {
  return direction === 'inbound' || direction === 'inbound-plaintext';
}

/** How a connection ended, given by the path that carried it. */
export interface ConnectionEnd {
  readonly outcome: ConnectionOutcome;
  readonly reason?: string;
  readonly bytesSent?: number;
  readonly bytesReceived?: number;
}

/** Options of {@link ConnectionManager}. */
export interface ConnectionManagerOptions {
  readonly limits?: ConnectionLimits;
  /** The node-wide budget of bytes buffered by relays; default none. */
  readonly budget?: BufferBudget;
  readonly log: Logger;
  /** Every finished connection, once. */
  onRecord(record: ConnectionRecord): void;
  /** A connection refused by a limit (a counter). */
  onLimit?(limit: LimitKind, direction: ConnectionDirection): void;
  readonly now?: () => number;
}

/** One live connection; see the file comment. */
export class ManagedConnection {
  readonly id: number;
  #direction: ConnectionDirection;
  readonly pod: string;
  readonly limitKey: string;
  readonly source: ConnectionEndpoint;
  destination: ConnectionEndpoint;
  readonly forwarded: string | undefined;
  /** The Service the source dialled, once the outbound path resolved it. */
  service: ServiceDialled | undefined;
  /** The policy that denied it (`Kind namespace/name`), when one did. */
  policy: string | undefined;
  readonly started: number;
  readonly #manager: ConnectionManager;
  readonly #sockets = new Set<Duplex>();
  #failure: Error | undefined;
  #closedBy: FailureReason | undefined;
  #finished = false;

  constructor(
    manager: ConnectionManager,
    id: number,
    init: Omit<ConnectionInfo, 'id' | 'startedAt'>,
    started: number,
  ) {
    this.#manager = manager;
    this.id = id;
    this.#direction = init.direction;
    this.forwarded = init.forwarded;
    this.pod = init.pod;
    this.limitKey = init.limitKey;
    this.source = init.source;
    this.destination = init.destination;
    this.service = init.service;
    this.started = started;
  }

  get direction(): ConnectionDirection {
    return this.#direction;
  }

  /** An outbound connection decided to go out in plaintext; counts stay outbound. */
  reclassify(direction: 'passthrough'): void {
    if (this.#direction === 'outbound') this.#direction = direction;
  }

  get info(): ConnectionInfo {
    return {
      id: this.id,
      direction: this.direction,
      ...(this.forwarded === undefined ? {} : { forwarded: this.forwarded }),
      pod: this.pod,
      limitKey: this.limitKey,
      source: this.source,
      destination: this.destination,
      ...(this.service === undefined ? {} : { service: this.service }),
      startedAt: new Date(this.started).toISOString(),
    };
  }

  /** The node-wide relay buffer budget. */
  get budget(): BufferBudget | undefined {
    return this.#manager.budget;
  }

  /** The first error any of its sockets emitted. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Why the manager closed it (limit, policy, stop), if it did. */
  get closedBy(): FailureReason | undefined {
    return this.#closedBy;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Takes a socket (or stream) of this connection: its errors are handled
   * from now on (invariant 1). If the connection was already closed by the
   * manager, the socket is reset at once. Returns it.
   */
  adopt<T extends Duplex>(s: T): T {
    if (this.#sockets.has(s)) return s;
    this.#sockets.add(s);
    s.on('error', (err: Error) => {
      this.#failure ??= err;
    });
    s.once('close', () => this.#sockets.delete(s));
    if (this.#closedBy !== undefined || this.#finished) resetStream(s);
    return s;
  }

  /** Resets every socket of it (RST / RST_STREAM); the path then finishes it. */
  abort(reason: FailureReason): void {
    this.#closedBy ??= reason;
    for (const s of this.#sockets) resetStream(s);
  }

  /** Ends it: the one record (invariant 2). Resets any socket still open. */
  finish(end: ConnectionEnd): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const s of this.#sockets) resetStream(s);
    const closedBy = this.#closedBy;
    const record: ConnectionRecord = {
      direction: this.direction,
      source: this.source,
      destination: this.destination,
      ...(this.forwarded === undefined ? {} : { forwarded: this.forwarded }),
      ...(this.service === undefined ? {} : { service: this.service }),
      ...(this.policy === undefined ? {} : { policy: this.policy }),
      bytesSent: end.bytesSent ?? 0,
      bytesReceived: end.bytesReceived ?? 0,
      durationMs: this.#manager.now() - this.started,
      outcome:
        closedBy !== undefined && end.outcome !== 'ok'
          ? closedBy === 'policy'
            ? 'denied'
            : 'reset'
          : end.outcome,
      ...(closedBy !== undefined && end.outcome !== 'ok'
        ? { reason: closedBy }
        : end.reason === undefined
          ? {}
          : { reason: end.reason }),
    };
    this.#manager.release(this, record);
  }

  /** Ends it from an error, classified by the one taxonomy. */
  fail(err: unknown): void {
    const f = classifyFailure(err);
    this.finish({ outcome: f.outcome, reason: f.reason });
  }
}

/** Every live connection of a node; see the file comment. */
export class ConnectionManager {
  readonly #o: ConnectionManagerOptions;
  readonly #live = new Map<number, ManagedConnection>();
  readonly #podOutbound = new Map<string, number>();
  readonly #podInbound = new Map<string, number>();
  readonly #refused: Partial<Record<LimitKind, number>> = {};
  /** Last time a limit was logged, per limit and pod (one line per burst). */
  readonly #lastLogged = new Map<string, number>();
  #nextId = 0;

  constructor(o: ConnectionManagerOptions) {
    this.#o = o;
  }

  get budget(): BufferBudget | undefined {
    return this.#o.budget;
  }

  now(): number {
    return (this.#o.now ?? Date.now)();
  }

  get size(): number {
    return this.#live.size;
  }

  /** Connections refused by each limit since start. */
  refusedByLimit(): Readonly<Partial<Record<LimitKind, number>>> {
    return { ...this.#refused };
  }

  /**
   * Opens a connection for `socket` (adopted at once), or, over a limit,
   * resets the socket, records the refusal and returns undefined.
   */
  open(
    init: Omit<ConnectionInfo, 'id' | 'startedAt'>,
    socket?: Duplex,
  ): ManagedConnection | undefined {
    const verdict = admit(
      init.direction,
      {
        podOutbound: this.#podOutbound.get(init.limitKey) ?? 0,
        podInbound: this.#podInbound.get(init.limitKey) ?? 0,
        node: this.#live.size,
      },
      this.#o.limits ?? {},
    );
    const conn = new ManagedConnection(this, ++this.#nextId, init, this.now());
    if (socket) conn.adopt(socket);
    if (!verdict.ok) {
      this.#limitHit(verdict.limit, init);
      if (socket) resetStream(socket);
      this.#o.onRecord({
        direction: init.direction,
        source: init.source,
        destination: init.destination,
        ...(init.forwarded === undefined ? {} : { forwarded: init.forwarded }),
        bytesSent: 0,
        bytesReceived: 0,
        durationMs: 0,
        outcome: 'refused',
        reason: `limit-${verdict.limit}`,
      });
      return undefined;
    }
    this.#live.set(conn.id, conn);
    const counts = isInbound(init.direction) ? this.#podInbound : this.#podOutbound;
    counts.set(init.limitKey, (counts.get(init.limitKey) ?? 0) + 1);
    return conn;
  }

  /** Called by {@link ManagedConnection.finish}. */
  release(conn: ManagedConnection, record: ConnectionRecord): void {
    if (this.#live.delete(conn.id)) {
      const counts = isInbound(conn.direction) ? this.#podInbound : this.#podOutbound;
      const n = (counts.get(conn.limitKey) ?? 1) - 1;
      if (n <= 0) counts.delete(conn.limitKey);
      else counts.set(conn.limitKey, n);
    }
    this.#o.onRecord(record);
  }

  /**
   * The record of a connection refused before it was ever managed (an HBONE
   * stream answered 400, 401 or 503 before delivery): one record still.
   */
  recordRefused(record: ConnectionRecord): void {
    this.#o.onRecord(record);
  }

  /** Closes one connection a policy now denies (RST); its record says `denied` and names it. */
  deny(id: number, policy: string | undefined): boolean {
    const conn = this.#live.get(id);
    if (!conn) return false;
    conn.policy = policy;
    conn.abort('policy');
    return true;
  }

  /** Live connections, oldest first. */
  list(filter?: (c: ConnectionInfo) => boolean): ConnectionInfo[] {
    const all = [...this.#live.values()].map((c) => c.info);
    return filter ? all.filter(filter) : all;
  }

  /** Closes one connection (RST); false when it is not live. */
  close(id: number, reason: FailureReason = 'closed'): boolean {
    const conn = this.#live.get(id);
    if (!conn) return false;
    conn.abort(reason);
    return true;
  }

  /** Closes every live connection `predicate` matches (e.g. a policy now denies it); returns how many. */
  closeWhere(predicate: (c: ConnectionInfo) => boolean, reason: FailureReason = 'closed'): number {
    let n = 0;
    for (const conn of this.#live.values())
      if (predicate(conn.info)) {
        conn.abort(reason);
        n++;
      }
    return n;
  }

  #limitHit(limit: LimitKind, init: Omit<ConnectionInfo, 'id' | 'startedAt'>): void {
    this.#refused[limit] = (this.#refused[limit] ?? 0) + 1;
    this.#o.onLimit?.(limit, init.direction);
    const key = `${limit} ${init.limitKey}`;
    const t = this.now();
    const last = this.#lastLogged.get(key);
    if (last !== undefined && t - last < 10_000) return;
    if (this.#lastLogged.size > 1000) this.#lastLogged.clear();
    this.#lastLogged.set(key, t);
    const limits = this.#o.limits ?? {};
    const max =
      limit === 'node'
        ? limits.perNode
        : limit === 'pod-inbound'
          ? limits.perPodInbound
          : limits.perPodOutbound;
    this.#o.log.warn(
      {
        limit,
        max,
        pod: init.pod,
        counted: init.limitKey,
        direction: init.direction,
        source: init.source.address,
        refusedSoFar: this.#refused[limit],
      },
      'connection limit reached; new connections are reset (logged once per 10 s per limit and source)',
    );
  }
}
