/**
 * The proxy of one enrolled pod: three listeners bound inside the pod's
 * network namespace before the pod is reported enrolled, and what happens
 * to each connection they accept.
 *
 * - 15001 outbound: the original destination decides (src/proxy): an
 *   enrolled destination goes over HBONE (the app's bytes are held until the
 *   tunnel answered 200; a failed tunnel resets the app's connection, never
 *   plaintext), anything else is passed through in plaintext. Every socket
 *   opened inside the pod carries SO_MARK 0x539 so the pod's rules let it out.
 * - 15006 inbound plaintext: delivered to the app from inside the pod with
 *   the peer's address as source (IP_TRANSPARENT + the connmark routing).
 * - 15008 HBONE: mutual TLS + HTTP/2 CONNECT, delivered the same way.
 *
 * Invariant: a pod's listeners are either all bound or none is.
 */
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { createHboneServer, type HboneServer } from '../../src/hbone/hbone-server.js';
import type { HbonePool } from '../../src/hbone/pool.js';
import { HboneError } from '../../src/hbone/hbone-error.js';
import { HBONE_RECEIVE_BUFFER_BYTES } from '../../src/hbone/hbone-protocol.js';
import { relay } from '../../src/hbone/relay.js';
import type { ConnectionRecord, ServiceDialled } from '../../src/hbone/connection-record.js';
import {
  abortOnClose,
  connectFromNetns,
  lingerOff,
  listenInNetns,
  migrateListenerQueues,
  originalDestination,
} from '../../src/netns/socket-in-netns.js';
import {
  decideInboundPlaintext,
  decideOutbound,
  type Endpoint,
} from '../../src/proxy/outbound-decision.js';
import type { PodAddressSpace } from '../../src/proxy/pod-address-space.js';
import type { ServiceIndex } from '../../src/proxy/service-index.js';
import {
  normalizeIp,
  workloadIdentity,
  type WorkloadIndex,
} from '../../src/proxy/workload-index.js';
import { PROXY_MARK, PROXY_PORTS } from '../../src/redirect/constants.js';
import type { TrustBundle } from '../../src/identity/trust-bundle.js';
import type { SecureContext } from 'node:tls';
import type { Registration } from '../registration/registry.js';

/** A connection being proxied now (admin `/connections`). */
export interface ActiveConnection {
  readonly direction: ConnectionRecord['direction'];
  readonly source: ConnectionRecord['source'];
  readonly destination: ConnectionRecord['destination'];
  readonly startedAt: string;
}

let nextConnectionId = 0;

/** What a connection's record knows from its start. */
interface RecordBase {
  readonly direction: ConnectionRecord['direction'];
  readonly source: ConnectionRecord['source'];
  readonly started: number;
  readonly service?: ServiceDialled;
}

/** What a pod proxy needs from the rest of the daemon. */
export interface PodProxyDeps {
  readonly trustDomain: string;
  /** The current SVID context of a workload identity on this node. */
  secureContext(identity: string): SecureContext;
  trustBundle(): TrustBundle;
  index(): WorkloadIndex;
  readonly pool: HbonePool;
  readonly log: Logger;
  record(r: ConnectionRecord): void;
  opened(direction: ConnectionRecord['direction']): void;
  handshakeFailed(side: 'client' | 'server', reason: string): void;
  /** An inbound HBONE stream refused, or a session cut (flood, protocol error). */
  streamRefused?(reason: string): void;
  sessionError?(reason: string): void;
  /** Connect timeout to applications and peers, ms. */
  readonly connectTimeoutMs: number;
  /** The cluster's pod address space now (config `podCidrs`, else the nodes'); default none. */
  podSpace?(): PodAddressSpace;
  /** The Services now (ClusterIPs, node ports... -> backends); default none. */
  services?(): ServiceIndex;
  /** Resolves at the next workload index change, or after `ms`. */
  indexChanged?(ms: number): Promise<void>;
  /** How long a connection to an unknown pod address waits for discovery, ms; default 2000. */
  readonly discoveryWaitMs?: number;
}

export class PodProxy {
  readonly registration: Registration;
  readonly identity: string;
  /** The pod's own addresses, normalized (the registration never changes). */
  readonly addresses: readonly string[];
  readonly #deps: PodProxyDeps;
  readonly #log: Logger;
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket | Duplex>();
  readonly #active = new Map<number, ActiveConnection>();
  #hbone: HboneServer | undefined;
  #closed = false;

  constructor(registration: Registration, deps: PodProxyDeps) {
    this.registration = registration;
    this.addresses = registration.addresses.map((a) => normalizeIp(a.ip));
    this.#deps = deps;
    this.identity = workloadIdentity(
      deps.trustDomain,
      registration.namespace,
      registration.serviceAccount ?? 'default',
    );
    this.#log = deps.log.child({ pod: `${registration.namespace}/${registration.podName}` });
  }

  /** Connections being proxied now, oldest first. */
  connections(): ActiveConnection[] {
    return [...this.#active.values()];
  }

  /** Binds every listener (all or none). */
  async start(): Promise<void> {
    const netnsPath = this.registration.netns;
    const families = [...new Set(this.registration.addresses.map((a) => a.family))];
    if (families.length === 0) families.push(4);
    this.#hbone = createHboneServer({
      secureContext: () => this.#deps.secureContext(this.identity),
      trustDomain: this.#deps.trustDomain,
      trustBundle: () => this.#deps.trustBundle(),
      localAddresses: () => this.addresses,
      forbiddenPorts: Object.values(PROXY_PORTS),
      connectUpstream: (target, peer) =>
        this.#deliver(
          { address: target.host, port: target.port },
          { address: peer.address, port: peer.port },
        ).then((upstream) => {
          const id = ++nextConnectionId;
          this.#active.set(id, {
            direction: 'inbound',
            source: { address: peer.address, port: peer.port, identity: peer.identity },
            destination: { address: target.host, port: target.port, identity: this.identity },
            startedAt: new Date().toISOString(),
          });
          upstream.once('close', () => this.#active.delete(id));
          return upstream;
        }),
      identity: this.identity,
      onHandshakeFailure: (reason) => this.#deps.handshakeFailed('server', reason),
      onStreamRefused: (reason) => this.#deps.streamRefused?.(reason),
      onSessionError: (reason) => this.#deps.sessionError?.(reason),
      onRecord: (r) => this.#deps.record(r),
      log: this.#log,
    });
    try {
      // An upgrade's old daemon closes its listeners while the new one's
      // share the ports: queued connections must move, not be reset.
      try {
        migrateListenerQueues(netnsPath);
      } catch (err) {
        this.#log.warn(
          { error: errorMessage(err) },
          'cannot set net.ipv4.tcp_migrate_req in the pod; an upgrade may reset connections queued for the old daemon',
        );
      }
      for (const family of families) {
        const host = family === 4 ? '0.0.0.0' : '::';
        const bind = (port: number): Promise<Server> =>
          listenInNetns({
            netnsPath,
            allowHalfOpen: true,
            host,
            port,
            family,
            reusePort: true,
            ...(family === 6 ? { v6Only: true } : {}),
            // Inherited by accepted HBONE sockets: no mutual-write deadlock.
            ...(port === PROXY_PORTS.inboundHbone
              ? { receiveBufferBytes: HBONE_RECEIVE_BUFFER_BYTES }
              : {}),
          });
        const outbound = await bind(PROXY_PORTS.outbound);
        this.#servers.push(outbound);
        outbound.on('connection', (s: Socket) => this.#onOutbound(s));
        const plaintext = await bind(PROXY_PORTS.inboundPlaintext);
        this.#servers.push(plaintext);
        plaintext.on('connection', (s: Socket) => this.#onInboundPlaintext(s));
        const hbone = await bind(PROXY_PORTS.inboundHbone);
        this.#servers.push(hbone);
        hbone.on('connection', (s: Socket) => {
          s.setNoDelay(true);
          this.#hbone?.handleConnection(s);
        });
      }
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    for (const s of this.#servers)
      s.on('error', (err) => this.#log.error({ error: errorMessage(err) }, 'listener error'));
    this.#log.info(
      { identity: this.identity, listeners: this.#servers.length },
      'pod proxy listening',
    );
  }

  #track<T extends Socket | Duplex>(s: T): T {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
    return s;
  }

  /**
   * A TCP socket to or from an application: if this process dies before the
   * socket's graceful end, the kernel resets it (`SO_LINGER` 0) instead of
   * closing it with a FIN, so the application never takes a cut transfer for
   * a complete one. Once our FIN is sent ('finish'), closes are normal again.
   */
  #abortive(s: Socket): Socket {
    if (abortOnClose(s)) s.once('finish', () => lingerOff(s));
    return s;
  }

  /** Opens a marked socket from inside the pod to `target`, with `source` as its source address when given. */
  #connectFromPod(
    target: Endpoint,
    source?: Endpoint,
    receiveBufferBytes?: number,
  ): Promise<Socket> {
    const sameFamily =
      source !== undefined && source.address.includes(':') === target.address.includes(':');
    return connectFromNetns({
      netnsPath: this.registration.netns,
      host: target.address,
      port: target.port,
      mark: PROXY_MARK.value,
      noDelay: true,
      allowHalfOpen: true,
      timeoutMs: this.#deps.connectTimeoutMs,
      ...(sameFamily ? { transparent: true, bindAddress: source.address } : {}),
      ...(receiveBufferBytes === undefined ? {} : { receiveBufferBytes }),
    });
  }

  /** Delivers to the app inside this pod, keeping the peer's address as source. */
  #deliver(target: Endpoint, peer: Endpoint): Promise<Socket> {
    return this.#connectFromPod(target, peer).then((s) => this.#track(this.#abortive(s)));
  }

  /**
   * Takes an accepted application-side socket: tracked, aborted with RST if
   * this process dies, counted, held (paused) and TCP_NODELAY. Reads its
   * original destination; without one (not redirected) resets it and
   * returns undefined.
   */
  #accept(
    s: Socket,
    direction: 'outbound' | 'inbound-plaintext',
    identity: string | undefined,
  ): { source: ConnectionRecord['source']; dst: Endpoint; started: number } | undefined {
    this.#track(this.#abortive(s));
    this.#deps.opened(direction);
    s.pause();
    s.setNoDelay(true);
    const started = Date.now();
    const source = {
      address: normalizeIp(s.remoteAddress ?? ''),
      port: s.remotePort ?? 0,
      identity,
    };
    try {
      const o = originalDestination(s);
      return { source, dst: { address: normalizeIp(o.address), port: o.port }, started };
    } catch (err) {
      this.#log.warn(
        { error: errorMessage(err), direction },
        'connection without an original destination',
      );
      s.resetAndDestroy();
      return undefined;
    }
  }

  #onOutbound(app: Socket): void {
    const accepted = this.#accept(app, 'outbound', this.identity);
    if (!accepted) return;
    const { source, dst, started } = accepted;
    this.#route(app, dst, { direction: 'outbound' as const, source, started }, 0);
  }

  /**
   * Routes a captured outbound connection. A destination in the pod address
   * space discovery does not know yet is decided again at every index
   * change until `waitedMs` reaches `discoveryWaitMs`; then the
   * app is reset (fail closed: never plaintext to what may be an enrolled pod).
   */
  #route(
    app: Socket,
    dst: Endpoint,
    outbound: { direction: 'outbound'; source: ConnectionRecord['source']; started: number },
    waitedMs: number,
  ): void {
    const source = outbound.source;
    const decision = decideOutbound(
      dst,
      this.#deps.index(),
      this.#deps.podSpace?.(),
      this.#deps.services?.(),
    );
    const service =
      decision.kind !== 'wait-for-discovery' && decision.service !== undefined
        ? { name: decision.service, address: dst.address, port: dst.port }
        : undefined;
    const base = service === undefined ? outbound : { ...outbound, service };
    if (decision.kind === 'wait-for-discovery') {
      const budget = (this.#deps.discoveryWaitMs ?? 2000) - waitedMs;
      if (budget <= 0 || !this.#deps.indexChanged || this.#closed) {
        app.resetAndDestroy();
        this.#emit(
          base,
          { address: dst.address, port: dst.port },
          0,
          0,
          'refused',
          'destination in the pod address space unknown to discovery',
        );
        return;
      }
      const t0 = Date.now();
      void this.#deps.indexChanged(budget).then(() => {
        if (app.destroyed) return;
        this.#route(app, dst, outbound, waitedMs + Math.max(1, Date.now() - t0));
      });
      return;
    }
    if (decision.kind === 'refuse') {
      app.resetAndDestroy();
      this.#emit(base, { address: dst.address, port: dst.port }, 0, 0, 'refused', decision.reason);
      return;
    }
    if (decision.kind === 'passthrough') {
      // A Service's plain backend is dialled itself, never the Service
      // address, where kube-proxy could pick an enrolled backend.
      const target = decision.target;
      const destination = { address: target.address, port: target.port, identity: undefined };
      this.#connectFromPod(target).then(
        (upstream) =>
          this.#pump(
            { ...base, direction: 'passthrough' },
            destination,
            app,
            this.#track(this.#abortive(upstream)),
          ),
        (err: unknown) => {
          app.resetAndDestroy();
          this.#emit(
            { ...base, direction: 'passthrough' },
            destination,
            0,
            0,
            outcomeOf(err),
            errorMessage(err),
          );
        },
      );
      return;
    }
    const target = decision.target;
    const destination = {
      address: target.address,
      port: target.port,
      identity: decision.destination.identity,
    };
    this.#deps.pool
      .openTunnel({
        sourceIdentity: this.identity,
        destinationIdentity: decision.destination.identity,
        sourceIp:
          this.addresses.find((a) => a.includes(':') === target.address.includes(':')) ??
          source.address,
        hboneAddress: { host: decision.hbone.address, port: decision.hbone.port },
        target: { host: target.address, port: target.port },
        forwardedFor: { ip: source.address, port: source.port },
        secureContext: this.#deps.secureContext(this.identity),
        trustDomain: this.#deps.trustDomain,
        trustBundle: () => this.#deps.trustBundle(),
        connectSocket: () =>
          this.#connectFromPod(decision.hbone, undefined, HBONE_RECEIVE_BUFFER_BYTES),
      })
      .then(
        (tunnel) => this.#pump(base, destination, app, this.#track(tunnel)),
        (err: unknown) => {
          // Never a plaintext fallback to an enrolled destination.
          app.resetAndDestroy();
          if (
            err instanceof HboneError &&
            (err.reason === 'tls-handshake' ||
              err.reason === 'peer-identity' ||
              err.reason === 'alpn')
          )
            this.#deps.handshakeFailed('client', err.reason);
          this.#emit(base, destination, 0, 0, outcomeOf(err), errorMessage(err));
        },
      );
  }

  #onInboundPlaintext(peer: Socket): void {
    const accepted = this.#accept(peer, 'inbound-plaintext', undefined);
    if (!accepted) return;
    const { source, dst, started } = accepted;
    const base = { direction: 'inbound-plaintext' as const, source, started };
    const destination = { address: dst.address, port: dst.port, identity: this.identity };
    const verdict = decideInboundPlaintext(dst, this.addresses);
    if (!verdict.deliver) {
      peer.resetAndDestroy();
      this.#emit(base, destination, 0, 0, 'refused', verdict.reason);
      return;
    }
    this.#deliver(dst, source).then(
      (app) => this.#pump(base, destination, peer, app),
      (err: unknown) => {
        peer.resetAndDestroy();
        this.#emit(base, destination, 0, 0, outcomeOf(err), errorMessage(err));
      },
    );
  }

  #pump(
    base: RecordBase,
    destination: ConnectionRecord['destination'],
    a: Duplex,
    b: Duplex,
  ): void {
    const id = ++nextConnectionId;
    this.#active.set(id, {
      direction: base.direction,
      source: base.source,
      destination,
      startedAt: new Date(base.started).toISOString(),
    });
    const done = (): void => void this.#active.delete(id);
    relay(a, b)
      .finally(done)
      .then(
        (r) => this.#emit(base, destination, r.bytesAtoB, r.bytesBtoA, r.outcome, undefined),
        (err: unknown) => this.#emit(base, destination, 0, 0, 'error', errorMessage(err)),
      );
  }

  #emit(
    base: RecordBase,
    destination: ConnectionRecord['destination'],
    sent: number,
    received: number,
    outcome: ConnectionRecord['outcome'],
    reason: string | undefined,
  ): void {
    this.#deps.record({
      direction: base.direction,
      source: base.source,
      destination,
      bytesSent: sent,
      bytesReceived: received,
      durationMs: Date.now() - base.started,
      outcome,
      ...(reason === undefined ? {} : { reason }),
      ...(base.service === undefined ? {} : { service: base.service }),
    });
  }

  /**
   * Stops accepting at once; established connections may finish until
   * `drainMs`, then are reset.
   */
  async stop(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Stop accepting now. (close()'s callback would wait for every accepted
    // socket, including pooled HBONE connections that live for minutes.)
    for (const s of this.#servers) s.close();
    const deadline = Date.now() + drainMs;
    while (this.#sockets.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const cut = this.#sockets.size;
    for (const s of this.#sockets) {
      if ('resetAndDestroy' in s && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else s.destroy();
    }
    await this.#hbone?.close();
    this.#log.info({ reset: cut }, 'pod proxy stopped');
  }
}

function outcomeOf(err: unknown): ConnectionRecord['outcome'] {
  if (err instanceof HboneError) {
    if (err.reason === 'connect-timeout' || err.reason === 'response-timeout') return 'timeout';
    if (
      err.reason === 'peer-identity' ||
      err.reason === 'tls-handshake' ||
      err.reason === 'http-status-401'
    )
      return 'denied';
    if (err.reason === 'connect-failed' || err.reason === 'http-status-503') return 'refused';
    if (err.reason === 'reset' || err.reason === 'goaway' || err.reason === 'session-closed')
      return 'reset';
  }
  const text = `${errorMessage(err)} ${String((err as { cause?: { code?: unknown } })?.cause?.code ?? '')}`;
  if (/ETIMEDOUT|timed? ?out/i.test(text)) return 'timeout';
  if (/ECONNREFUSED|refused|503/i.test(text)) return 'refused';
  if (/ECONNRESET|reset/i.test(text)) return 'reset';
  if (/identity|certificate|401|denied|rejected/i.test(text)) return 'denied';
  return 'error';
}
