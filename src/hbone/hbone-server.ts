/**
 * The server end of HBONE, on an enrolled pod's port 15008: mutual TLS 1.3
 * with the pod's SVID, HTTP/2, CONNECT streams delivered to the application
 * (docs/reference/hbone.md; istio/ztunnel `src/proxy/inbound.rs`).
 *
 * The daemon accepts raw TCP on a listener bound inside the pod's netns and
 * hands each socket to {@link HboneServer.handleConnection}. Per connection:
 *  1. TLS: {@link acceptHboneTls} (hbone-handshake.ts) runs the mutual TLS
 *     1.3 handshake with the pod's current SVID and returns the verified
 *     peer, or a counted rejection (the connection closed).
 *  2. HTTP/2: the verified TLS socket is given to a plain `http2.Server`
 *     (`emit('connection')`), synchronously inside the handshake's 'secure'
 *     event, so the session takes over the socket before any byte is read.
 *  3. Each stream: {@link decideConnectRequest} (400), optional
 *     authorization (401), `connectUpstream` (503 when it fails), then 200
 *     and {@link relay}. One {@link ConnectionRecord} per stream; with a
 *     `track` owner (the daemon's connection manager) the owner adopts the
 *     stream and the upstream socket and writes that record.
 */
import http2, {
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { SecureContext } from 'node:tls';
import { errorMessage, isErrno } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { TrustBundle } from '../identity/trust-bundle.js';
import { acceptHboneTls, type HandshakeRejectReason, type HbonePeer } from './hbone-handshake.js';
import { relayEnd, type ConnectionOutcome, type ConnectionRecord } from './connection-record.js';
import {
  CONNECTION_WINDOW_BYTES,
  DEFAULT_FORBIDDEN_PORTS,
  SERVER_HTTP2_SETTINGS,
  SESSION_MEMORY_MB,
  decideConnectRequest,
  formatAuthority,
  parseAuthority,
  type HostPort,
} from './hbone-protocol.js';
import { relay, resetStream } from './relay.js';
import type { BufferBudget } from './buffer-budget.js';

export type { HbonePeer, HandshakeRejectReason } from './hbone-handshake.js';

/** What {@link HboneServerOptions.authorize} answers: allowed, or a denial naming its policy. */
export type Authorization =
  boolean | { readonly allowed: boolean; readonly policy?: string | undefined };

/** The owner of a delivered stream; see {@link HboneServerOptions.track}. */
export interface StreamOwner {
  adopt<T extends Duplex>(s: T): T;
  finish(end: {
    readonly outcome: ConnectionOutcome;
    readonly reason?: string;
    readonly bytesSent?: number;
    readonly bytesReceived?: number;
  }): void;
}

/** Options of {@link createHboneServer}. */
export interface HboneServerOptions {
  /** The pod's current SVID context; read at every new handshake. */
  readonly secureContext: () => SecureContext;
  /** Our trust domain: peers must belong to it. */
  readonly trustDomain: string;
  /** The current trust bundle. */
  readonly trustBundle: () => TrustBundle;
  /** The pod's IPs: a CONNECT authority must name one. */
  readonly localAddresses: () => readonly string[];
  /** Ports a CONNECT may not target; default 15001, 15006, 15008. */
  readonly forbiddenPorts?: readonly number[];
  /** Connects to the application; a rejection answers 503. */
  connectUpstream(target: HostPort, peer: HbonePeer): Promise<net.Socket>;
  /**
   * Authorization; a denial answers 401 and its record names the deciding
   * `policy`. Default: every verified peer is allowed.
   */
  authorize?(peer: HbonePeer, target: HostPort): Authorization | Promise<Authorization>;
  /** One record per stream, when it ends (streams given to a `track` owner: theirs instead). */
  onRecord?(record: ConnectionRecord): void;
  /**
   * Hands a stream about to be delivered to its owner (the daemon's
   * connection manager): the owner adopts the stream and the upstream
   * socket, may cut them, and receives the stream's one record through
   * `finish`. Undefined refuses the stream (503; the owner recorded why).
   */
  track?(
    record: Omit<
      ConnectionRecord,
      'outcome' | 'reason' | 'bytesSent' | 'bytesReceived' | 'durationMs'
    >,
  ): StreamOwner | undefined;
  /** A refused handshake, with its reason (a metric label). */
  onHandshakeFailure?(reason: HandshakeRejectReason): void;
  /** A stream not delivered, with its reason (a metric label). */
  onStreamRefused?(reason: StreamRefuseReason): void;
  /** An HTTP/2 session killed for a protocol violation or a flood (a metric label). */
  onSessionError?(reason: SessionErrorReason): void;
  /** The node-wide budget of bytes buffered by relays. */
  readonly budget?: BufferBudget;
  /** The pod's SPIFFE ID, for records. */
  readonly identity?: string;
  /** Deadline for the TLS handshake; default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /**
   * A session with no stream open and no frame received for this long is
   * closed; default 5 min. Pooled clients PING every 10 s, so only dead
   * sessions hit it, e.g. one nghttp2 ended with GOAWAY after a flood: Node
   * then stops reading the socket and would never notice the peer leave.
   */
  readonly sessionIdleTimeoutMs?: number;
  /** Deadline for `connectUpstream`; default 10 s (then 503). */
  readonly upstreamTimeoutMs?: number;
  readonly log?: Logger;
  /** Wall clock for certificate validity, ms. */
  readonly now?: () => number;
}

/** Why a stream was not delivered (a metric label). */
export type StreamRefuseReason =
  | 'not-connect'
  | 'bad-authority'
  | 'not-local-address'
  | 'forbidden-port'
  | 'unauthorized'
  | 'upstream-refused'
  | 'upstream-timeout'
  | 'upstream-error'
  | 'limit'
  | 'cancelled';

/**
 * Why an established session was cut: nghttp2 detected a flood (SETTINGS,
 * PING, RST_STREAM, too many rejected streams), or the peer broke the
 * protocol (e.g. more than {@link MAX_SESSION_INVALID_FRAMES} invalid frames).
 */
export type SessionErrorReason = 'flood' | 'protocol-error';

/** Invalid frames (bad pseudo-headers, ...) a session may send before it is cut; Node's default is 1000. */
export const MAX_SESSION_INVALID_FRAMES = 100;
/** Streams refused (beyond maxConcurrentStreams) before a session is cut; Node's default 100. */
export const MAX_SESSION_REJECTED_STREAMS = 100;

/** Counts of {@link HboneServer.stats}. */
export interface HboneServerStats {
  /** TLS connections open (handshaking or established). */
  readonly connections: number;
  /** Handshakes that passed verification, since start. */
  readonly handshakes: number;
  /** Streams open. */
  readonly streams: number;
  /** Refused handshakes by reason, since start. */
  readonly rejectedHandshakes: Readonly<Partial<Record<HandshakeRejectReason, number>>>;
  /** Refused streams by reason, since start. */
  readonly refusedStreams: Readonly<Partial<Record<StreamRefuseReason, number>>>;
  /** Sessions cut for a protocol violation or a flood, by reason, since start. */
  readonly sessionErrors: Readonly<Partial<Record<SessionErrorReason, number>>>;
}

/** An HBONE server fed with accepted sockets. */
export interface HboneServer {
  /** Takes an accepted TCP connection to port 15008. */
  handleConnection(socket: net.Socket): void;
  /** Closes every connection (streams cut) and refuses new ones. */
  close(): Promise<void>;
  stats(): HboneServerStats;
}

function upstreamFailure(err: unknown): { outcome: ConnectionOutcome; reason: StreamRefuseReason } {
  const cause = err instanceof Error ? err.cause : undefined;
  if (isErrno(err, 'ECONNREFUSED') || isErrno(cause, 'ECONNREFUSED'))
    return { outcome: 'refused', reason: 'upstream-refused' };
  if (isErrno(err, 'ETIMEDOUT') || isErrno(cause, 'ETIMEDOUT'))
    return { outcome: 'timeout', reason: 'upstream-timeout' };
  return { outcome: 'error', reason: 'upstream-error' };
}

/** Creates an HBONE server; see the file comment for what it does per connection. */
export function createHboneServer(options: HboneServerOptions): HboneServer {
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const forbiddenPorts = options.forbiddenPorts ?? DEFAULT_FORBIDDEN_PORTS;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 10_000;
  const sessionIdleTimeoutMs = options.sessionIdleTimeoutMs ?? 300_000;
  /** Open streams per session (idle sessions are closed, busy ones never). */
  const sessionStreams = new Map<Http2Session, number>();

  const sockets = new Set<tls.TLSSocket>();
  const sessions = new Map<Http2Session, HbonePeer>();
  const rejectedHandshakes: Partial<Record<HandshakeRejectReason, number>> = {};
  const refusedStreams: Partial<Record<StreamRefuseReason, number>> = {};
  const sessionErrors: Partial<Record<SessionErrorReason, number>> = {};
  let handshakes = 0;
  let streams = 0;
  let closed = false;
  /** The peer of the connection being handed to `h2` (set around a synchronous emit). */
  let handingOver: HbonePeer | undefined;
  let handingOverSocket: tls.TLSSocket | undefined;

  const h2 = http2.createServer({
    settings: SERVER_HTTP2_SETTINGS,
    maxSessionMemory: SESSION_MEMORY_MB,
    maxSessionInvalidFrames: MAX_SESSION_INVALID_FRAMES,
    maxSessionRejectedStreams: MAX_SESSION_REJECTED_STREAMS,
  });

  h2.on('session', (session: Http2Session) => {
    const peer = handingOver;
    if (!peer) {
      session.destroy();
      return;
    }
    sessions.set(session, peer);
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    session.on('error', (err) => {
      const reason: SessionErrorReason = /flood/i.test(err.message) ? 'flood' : 'protocol-error';
      sessionErrors[reason] = (sessionErrors[reason] ?? 0) + 1;
      options.onSessionError?.(reason);
      log.debug({ error: err.message, reason, peer: peer.identity }, 'HBONE session error');
    });
    // Node closes the session but not a socket it did not create: cut it here.
    const socket = handingOverSocket;
    session.once('close', () => {
      sessions.delete(session);
      sessionStreams.delete(session);
      socket?.destroy();
    });
    session.setTimeout(sessionIdleTimeoutMs, () => {
      if ((sessionStreams.get(session) ?? 0) > 0) return;
      log.debug({ peer: peer.identity }, 'HBONE session idle; closing');
      session.destroy();
    });
  });

  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const peer = sessions.get(stream.session as Http2Session);
    stream.on('error', () => undefined);
    if (!peer) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    streams++;
    const session = stream.session as Http2Session;
    sessionStreams.set(session, (sessionStreams.get(session) ?? 0) + 1);
    stream.once('close', () => {
      streams--;
      sessionStreams.set(session, (sessionStreams.get(session) ?? 1) - 1);
    });
    void serveStream(stream, headers, peer);
  });

  const refuse = (
    owner: StreamOwner | undefined,
    stream: ServerHttp2Stream,
    status: number,
    reason: StreamRefuseReason,
    record: Omit<ConnectionRecord, 'outcome' | 'reason' | 'bytesSent' | 'bytesReceived'>,
    outcome: ConnectionOutcome,
  ): void => {
    refusedStreams[reason] = (refusedStreams[reason] ?? 0) + 1;
    options.onStreamRefused?.(reason);
    if (!stream.destroyed && !stream.headersSent)
      stream.respond({ ':status': status }, { endStream: true });
    if (owner) owner.finish({ outcome, reason });
    else if (reason !== 'limit')
      options.onRecord?.({ ...record, bytesSent: 0, bytesReceived: 0, outcome, reason });
  };

  async function serveStream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    tlsPeer: HbonePeer,
  ): Promise<void> {
    const started = now();
    const decision = decideConnectRequest(headers, {
      localAddresses: options.localAddresses(),
      forbiddenPorts,
    });
    const peer: HbonePeer =
      decision.ok && decision.forwardedFor !== undefined
        ? { ...tlsPeer, forwardedFor: decision.forwardedFor }
        : tlsPeer;
    const client = peer.forwardedFor !== undefined ? parseAuthority(peer.forwardedFor) : undefined;
    const authority = headers[':authority'];
    const requested =
      (typeof authority === 'string' ? parseAuthority(authority) : undefined) ??
      ({ host: '', port: 0 } as const);
    const base = (): Omit<
      ConnectionRecord,
      'outcome' | 'reason' | 'bytesSent' | 'bytesReceived'
    > => ({
      direction: 'inbound',
      source: { address: peer.address, port: peer.port, identity: peer.identity },
      ...(client === undefined ? {} : { forwarded: formatAuthority(client) }),
      destination: {
        address: requested.host,
        port: requested.port,
        ...(options.identity === undefined ? {} : { identity: options.identity }),
      },
      durationMs: now() - started,
    });

    if (!decision.ok) {
      log.debug(
        { problem: decision.problem, authority, peer: peer.identity },
        'HBONE request refused',
      );
      refuse(undefined, stream, decision.status, decision.problem, base(), 'error');
      return;
    }
    const { target } = decision;
    // Let the rest of the read be processed first: a RST_STREAM right behind
    // the HEADERS (rapid reset, CVE-2023-44487) then costs no upstream dial.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (stream.destroyed || stream.closed) {
      refuse(undefined, stream, 503, 'cancelled', base(), 'reset');
      return;
    }
    if (options.authorize) {
      let verdict: Authorization = false;
      try {
        verdict = await options.authorize(peer, target);
      } catch (err) {
        log.warn({ error: errorMessage(err) }, 'HBONE authorization failed; denying');
      }
      if (verdict !== true && !(typeof verdict === 'object' && verdict.allowed)) {
        const policy = typeof verdict === 'object' ? verdict.policy : undefined;
        refuse(
          undefined,
          stream,
          401,
          'unauthorized',
          { ...base(), ...(policy === undefined ? {} : { policy }) },
          'denied',
        );
        return;
      }
    }

    const { durationMs: _unused, ...identity } = base();
    void _unused;
    const owner = options.track?.(identity);
    if (options.track && !owner) {
      refuse(undefined, stream, 503, 'limit', base(), 'refused');
      return;
    }
    owner?.adopt(stream);
    let upstream: net.Socket;
    try {
      upstream = await withTimeout(options.connectUpstream(target, peer), upstreamTimeoutMs);
    } catch (err) {
      const { outcome, reason } = upstreamFailure(err);
      log.debug(
        { error: errorMessage(err), target: formatAuthority(target) },
        'HBONE upstream failed',
      );
      refuse(owner, stream, 503, reason, base(), outcome);
      return;
    }
    owner?.adopt(upstream);
    if (stream.destroyed || stream.closed) {
      resetStream(upstream);
      refuse(owner, stream, 503, 'cancelled', base(), 'reset');
      return;
    }
    stream.respond({ ':status': 200 });
    const result = await relay(
      stream,
      upstream,
      options.budget === undefined ? {} : { budget: options.budget },
    );
    const end = relayEnd(result);
    if (owner) owner.finish(end);
    else options.onRecord?.({ ...base(), ...end });
  }

  function handleConnection(raw: net.Socket): void {
    if (closed) {
      raw.destroy();
      return;
    }
    const socket = acceptHboneTls(raw, {
      secureContext: options.secureContext(),
      trustDomain: options.trustDomain,
      trustBundle: options.trustBundle(),
      timeoutMs: handshakeTimeoutMs,
      now: now(),
      onRejected: (reason, detail) => {
        rejectedHandshakes[reason] = (rejectedHandshakes[reason] ?? 0) + 1;
        options.onHandshakeFailure?.(reason);
        log.debug({ reason, detail }, 'HBONE handshake refused');
      },
      onVerified: (verified, peer) => {
        handshakes++;
        handingOver = peer;
        handingOverSocket = verified;
        try {
          h2.emit('connection', verified);
        } finally {
          handingOver = undefined;
          handingOverSocket = undefined;
        }
      },
    });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  }

  async function close(): Promise<void> {
    closed = true;
    const waits: Promise<void>[] = [];
    for (const socket of sockets) {
      waits.push(new Promise<void>((resolve) => socket.once('close', () => resolve())));
      socket.destroy();
    }
    for (const session of sessions.keys()) session.destroy();
    await Promise.all(waits);
  }

  function stats(): HboneServerStats {
    return {
      connections: sockets.size,
      handshakes,
      streams,
      rejectedHandshakes: { ...rejectedHandshakes },
      refusedStreams: { ...refusedStreams },
      sessionErrors: { ...sessionErrors },
    };
  }

  return { handleConnection, close, stats };
}

function withTimeout<T extends net.Socket>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(
        Object.assign(new Error(`upstream connect timed out after ${ms} ms`), {
          code: 'ETIMEDOUT',
        }),
      );
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (expired) value.destroy();
        else resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
