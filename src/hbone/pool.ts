/**
 * The outbound HBONE connection pool (istio/ztunnel `src/proxy/pool.rs`).
 *
 * Invariants:
 *  1. Connections are grouped by key {source identity, destination
 *     identity, source IP, HBONE address}; a tunnel only ever rides a
 *     connection of its own key.
 *  2. At most one connection attempt is in flight per key. A tunnel that
 *     finds no connection with a free stream slot waits for that attempt
 *     instead of dialling (no thundering herd); if the attempt fails, every
 *     waiter gets its error.
 *  3. A stream slot is reserved synchronously, before the CONNECT is sent,
 *     and released exactly once when the stream closes (or could not be
 *     opened); `conn.streams` never exceeds `maxStreamsPerConnection`.
 *  4. Only a connection in state `ready` is handed out. GOAWAY, a session
 *     error or close, a missed PING or idle expiry take it out of its key
 *     at once and for good; streams already on it run to their end.
 *  5. The idle timer of a connection runs iff it is `ready` with no stream.
 *  6. After close() no connection is opened and openTunnel rejects.
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../logger.js';
import { connectHbone, openConnectStream, type TunnelRequest } from './hbone-client.js';
import { HboneError } from './hbone-error.js';
import { canonicalIp, formatAuthority } from './hbone-protocol.js';

/** Options of {@link HbonePool}; defaults per docs/reference/hbone.md. */
export interface HbonePoolOptions {
  /** Streams per connection before another is opened; default 100. */
  readonly maxStreamsPerConnection?: number;
  /** A connection with no stream for this long is closed; default 5 min. */
  readonly idleTimeoutMs?: number;
  /** Deadline for connect + TLS + HTTP/2 preface, and for a CONNECT's answer; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** PING period on every connection; default 10 s. */
  readonly pingIntervalMs?: number;
  /** A PING unanswered this long kills the connection; default 20 s. */
  readonly pingTimeoutMs?: number;
  readonly log?: Logger;
  /** Wall clock (certificate validity), ms. */
  readonly now?: () => number;
}

/** Counts of {@link HbonePool.stats}. */
export interface HbonePoolStats {
  /** Connections open (ready or draining). */
  readonly connections: number;
  /** Streams open or being opened. */
  readonly streams: number;
  /** Keys with a connection attempt in flight. */
  readonly connecting: number;
}

type ConnectionState = 'ready' | 'draining' | 'closed';

interface PooledConnection {
  readonly key: string;
  readonly session: ClientHttp2Session;
  state: ConnectionState;
  streams: number;
  idleTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  pingSentAt: number | undefined;
}

interface PoolEntry {
  readonly connections: Set<PooledConnection>;
  connecting: Promise<PooledConnection> | undefined;
}

/** The pool key of a tunnel request (invariant 1). */
export function poolKey(req: TunnelRequest): string {
  return JSON.stringify([
    req.sourceIdentity,
    req.destinationIdentity,
    canonicalIp(req.sourceIp) ?? req.sourceIp,
    formatAuthority({
      host: canonicalIp(req.hboneAddress.host) ?? req.hboneAddress.host,
      port: req.hboneAddress.port,
    }),
  ]);
}

/**
 * Pooled outbound HBONE connections. {@link HbonePool.openTunnel} returns a
 * CONNECT stream that the peer answered 200, ready to relay.
 */
export class HbonePool {
  readonly #maxStreams: number;
  readonly #idleTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #entries = new Map<string, PoolEntry>();
  /** Every connection not yet closed, including draining ones. */
  readonly #live = new Set<PooledConnection>();
  #closed = false;

  constructor(options: HbonePoolOptions = {}) {
    this.#maxStreams = options.maxStreamsPerConnection ?? 100;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#pingIntervalMs = options.pingIntervalMs ?? 10_000;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 20_000;
    this.#log = options.log ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Opens a tunnel to `req.target` over a pooled connection (a new one when
   * none of this key has a free slot). Resolves after the peer's 200;
   * rejects with {@link HboneError} (its `reason` is a metric label).
   */
  async openTunnel(req: TunnelRequest): Promise<Duplex> {
    const key = poolKey(req);
    const conn = await this.#reserve(key, req);
    let stream;
    try {
      stream = await openConnectStream(conn.session, req, {
        responseTimeoutMs: this.#connectTimeoutMs,
      });
    } catch (err) {
      this.#release(conn);
      throw err;
    }
    stream.once('close', () => this.#release(conn));
    return stream;
  }

  /** Current counts. */
  stats(): HbonePoolStats {
    let streams = 0;
    for (const conn of this.#live) streams += conn.streams;
    let connecting = 0;
    for (const entry of this.#entries.values()) if (entry.connecting) connecting++;
    return { connections: this.#live.size, streams, connecting };
  }

  /**
   * Closes every connection (GOAWAY, then destroy) and refuses new tunnels.
   * Open tunnels are cut. Resolves when every session has closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#live].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.session.destroyed) {
            resolve();
            return;
          }
          conn.session.once('close', () => resolve());
          this.#retire(conn, 'closed');
          conn.session.destroy();
        }),
    );
    await Promise.all(closing);
    this.#entries.clear();
  }

  /** Picks a connection with a free slot and takes the slot (invariants 2, 3). */
  async #reserve(key: string, req: TunnelRequest): Promise<PooledConnection> {
    for (;;) {
      if (this.#closed) throw new HboneError('pool-closed', 'the HBONE pool is closed');
      let entry = this.#entries.get(key);
      if (!entry) {
        entry = { connections: new Set(), connecting: undefined };
        this.#entries.set(key, entry);
      }
      for (const conn of entry.connections) {
        if (conn.state === 'ready' && conn.streams < this.#maxStreams) {
          conn.streams++;
          if (conn.idleTimer) {
            clearTimeout(conn.idleTimer);
            conn.idleTimer = undefined;
          }
          return conn;
        }
      }
      if (!entry.connecting) entry.connecting = this.#connect(key, entry, req);
      await entry.connecting;
    }
  }

  async #connect(key: string, entry: PoolEntry, req: TunnelRequest): Promise<PooledConnection> {
    try {
      const { session, peerIdentity } = await connectHbone(req, {
        connectTimeoutMs: this.#connectTimeoutMs,
        maxStreams: this.#maxStreams,
        now: this.#now,
        log: this.#log,
      });
      const conn: PooledConnection = {
        key,
        session,
        state: 'ready',
        streams: 0,
        idleTimer: undefined,
        pingTimer: undefined,
        pingSentAt: undefined,
      };
      if (this.#closed) {
        session.destroy();
        throw new HboneError('pool-closed', 'the HBONE pool is closed');
      }
      this.#live.add(conn);
      entry.connections.add(conn);
      this.#watch(conn);
      this.#armIdle(conn);
      this.#log.debug(
        { peer: peerIdentity, address: formatAuthority(req.hboneAddress) },
        'HBONE pool: new connection',
      );
      return conn;
    } finally {
      entry.connecting = undefined;
      this.#dropIfEmpty(key, entry);
    }
  }

  #watch(conn: PooledConnection): void {
    const { session } = conn;
    session.on('error', (err) => {
      this.#log.debug({ err: err.message }, 'HBONE pool: session error');
      this.#retire(conn, 'draining');
    });
    session.on('goaway', () => this.#retire(conn, 'draining'));
    session.once('close', () => this.#retire(conn, 'closed'));
    if (this.#pingIntervalMs > 0) {
      conn.pingTimer = setInterval(() => this.#ping(conn), this.#pingIntervalMs);
      conn.pingTimer.unref();
    }
  }

  #ping(conn: PooledConnection): void {
    const started = conn.pingSentAt;
    if (started !== undefined) {
      if (Date.now() - started >= this.#pingTimeoutMs) {
        this.#log.warn(
          { timeoutMs: this.#pingTimeoutMs },
          'HBONE pool: PING unanswered, closing the connection',
        );
        this.#retire(conn, 'closed');
        conn.session.destroy();
      }
      return;
    }
    if (conn.session.destroyed || conn.session.closed) return;
    conn.pingSentAt = Date.now();
    const sent = conn.session.ping((err) => {
      if (!err) conn.pingSentAt = undefined;
    });
    if (!sent) conn.pingSentAt = undefined;
  }

  #armIdle(conn: PooledConnection): void {
    if (conn.state !== 'ready' || conn.streams > 0 || conn.idleTimer) return;
    conn.idleTimer = setTimeout(() => {
      conn.idleTimer = undefined;
      if (conn.streams > 0) return;
      this.#log.debug({}, 'HBONE pool: closing idle connection');
      this.#retire(conn, 'draining');
      conn.session.close();
    }, this.#idleTimeoutMs);
    conn.idleTimer.unref();
  }

  #release(conn: PooledConnection): void {
    conn.streams--;
    this.#armIdle(conn);
  }

  /** Takes `conn` out of rotation (invariant 4). */
  #retire(conn: PooledConnection, state: 'draining' | 'closed'): void {
    if (conn.state === 'closed') return;
    conn.state = state;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    const entry = this.#entries.get(conn.key);
    if (entry) {
      entry.connections.delete(conn);
      this.#dropIfEmpty(conn.key, entry);
    }
    if (state === 'closed') {
      if (conn.pingTimer) clearInterval(conn.pingTimer);
      conn.pingTimer = undefined;
      this.#live.delete(conn);
    }
  }

  #dropIfEmpty(key: string, entry: PoolEntry): void {
    if (entry.connections.size === 0 && !entry.connecting && this.#entries.get(key) === entry)
      this.#entries.delete(key);
  }
}
