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
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { HboneServer } from '../../src/hbone/hbone-server.js';
import type { HbonePool } from '../../src/hbone/pool.js';
import { HBONE_RECEIVE_BUFFER_BYTES } from '../../src/hbone/hbone-protocol.js';
import { resetStream } from '../../src/hbone/relay.js';
import type { ConnectionRecord } from '../../src/hbone/connection-record.js';
import { SocketReserve } from '../../src/netns/socket-reserve.js';
import {
  connectFromNetns,
  connectFromReserve,
  lingerOff,
  listenInNetns,
  migrateListenerQueues,
  originalDestination,
} from '../../src/netns/socket-in-netns.js';
import type { ConnectionInfo, ConnectionManager } from '../../src/proxy/connection-manager.js';
import { createInboundHbone } from '../../src/proxy/inbound-hbone.js';
import { handleInboundPlaintext } from '../../src/proxy/inbound-plaintext.js';
import { handleOutbound, type OutboundDeps } from '../../src/proxy/outbound.js';
import type { Endpoint } from '../../src/proxy/outbound-decision.js';
import type { PodAddressSpace } from '../../src/proxy/pod-address-space.js';
import type { ServiceIndex } from '../../src/proxy/service-index.js';
import type { InboundPolicy } from '../../src/proxy/inbound-policy.js';
import type { PodSide } from '../../src/proxy/pod-side.js';
import {
  normalizeIp,
  workloadIdentity,
  type WorkloadIndex,
} from '../../src/proxy/workload-index.js';
import { PROXY_MARK, PROXY_PORTS } from '../../src/redirect/constants.js';
import type { TrustBundle } from '../../src/identity/trust-bundle.js';
import type { SecureContext } from 'node:tls';
import type { Registration } from '../registration/registry.js';

/**
 * A TCP socket to or from an application starts with `SO_LINGER` 0 (set
 * where it is made: on the listener, which accepted sockets inherit, or on
 * the socket we connect): if this process dies before the socket's graceful
 * end, the kernel resets it instead of closing it with a FIN, so the
 * application never takes a cut transfer for a complete one. Once our FIN
 * is sent ('finish'), closes are normal again, so nothing queued is lost.
 */
function lingerOffAtFinish(s: Socket): Socket {
  s.once('finish', () => lingerOff(s));
  return s;
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
  /** The node's connection manager: owns every connection, records each once. */
  readonly manager: ConnectionManager;
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
  /** The destination's policies, per inbound connection; absent: all verified peers allowed. */
  readonly policy?: InboundPolicy;
  /** Resolves at the next workload index change, or after `ms`. */
  indexChanged?(ms: number): Promise<void>;
  /** How long a connection to an unknown pod address waits for discovery, ms; default 2000. */
  readonly discoveryWaitMs?: number;
  /**
   * Where the listeners bind and peers are dialled. Production: the fixed
   * ports (docs/reference/ports-and-marks.md) on every address; in-process tests: port 0 on loopback,
   * in the test's own netns (`registration.netns` empty).
   */
  readonly ports?: {
    readonly outbound: number;
    readonly inboundPlaintext: number;
    readonly inboundHbone: number;
  };
  readonly bindHost?: string;
  /** Port of the peers' HBONE listeners; default 15008. */
  readonly peerHbonePort?: number;
  /**
   * The destination a captured connection had before the REDIRECT; default
   * `SO_ORIGINAL_DST`. In-process tests, which have no REDIRECT, supply it.
   */
  originalDestination?(socket: Socket): Endpoint;
}

export class PodProxy {
  readonly registration: Registration;
  readonly identity: string;
  /** The pod's own addresses, normalized (the registration never changes). */
  readonly addresses: readonly string[];
  readonly #deps: PodProxyDeps;
  readonly #log: Logger;
  readonly #servers: Server[] = [];
  readonly #manager: ConnectionManager;
  readonly #side: PodSide;
  readonly #outboundDeps: OutboundDeps;
  /** `namespace/name`. */
  readonly pod: string;
  #hbone: HboneServer | undefined;
  /** Sockets made ahead in the pod's netns, by family and transparency. */
  readonly #reserves = new Map<string, SocketReserve>();
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
    this.pod = `${registration.namespace}/${registration.podName}`;
    this.#log = deps.log.child({ pod: this.pod });
    this.#manager = deps.manager;
    this.#side = {
      pod: this.pod,
      identity: this.identity,
      addresses: this.addresses,
      log: this.#log,
      connectFromPod: (target, options) => this.#connectFromPod(target, options),
    };
    this.#outboundDeps = {
      trustDomain: deps.trustDomain,
      secureContext: (id) => deps.secureContext(id),
      trustBundle: () => deps.trustBundle(),
      index: () => deps.index(),
      pool: deps.pool,
      ...(deps.podSpace === undefined ? {} : { podSpace: deps.podSpace }),
      ...(deps.services === undefined ? {} : { services: deps.services }),
      ...(deps.indexChanged === undefined
        ? {}
        : { indexChanged: (ms: number) => deps.indexChanged?.(ms) ?? Promise.resolve() }),
      ...(deps.discoveryWaitMs === undefined ? {} : { discoveryWaitMs: deps.discoveryWaitMs }),
      ...(deps.peerHbonePort === undefined ? {} : { peerHbonePort: deps.peerHbonePort }),
      handshakeFailed: (reason) => deps.handshakeFailed('client', reason),
    };
  }

  /** The listeners' ports (outbound, inbound plaintext, HBONE per family), for tests. */
  listenerPorts(): number[] {
    return this.#servers.map((s) => (s.address() as { port: number }).port);
  }

  /** This pod's connections being proxied now, oldest first. */
  connections(): ConnectionInfo[] {
    return this.#manager.list((c) => c.pod === this.pod);
  }

  /** Binds every listener (all or none). */
  async start(): Promise<void> {
    const netnsPath = this.registration.netns;
    const families = [...new Set(this.registration.addresses.map((a) => a.family))];
    if (families.length === 0) families.push(4);
    this.#hbone = createInboundHbone(this.#side, this.#manager, {
      trustDomain: this.#deps.trustDomain,
      secureContext: () => this.#deps.secureContext(this.identity),
      trustBundle: () => this.#deps.trustBundle(),
      onHandshakeFailure: (reason) => this.#deps.handshakeFailed('server', reason),
      onStreamRefused: (reason) => this.#deps.streamRefused?.(reason),
      onSessionError: (reason) => this.#deps.sessionError?.(reason),
      ...(this.#deps.policy === undefined ? {} : { policy: this.#deps.policy }),
    });
    try {
      // An upgrade's old daemon closes its listeners while the new one's
      // share the ports: queued connections must move, not be reset.
      if (netnsPath !== '')
        try {
          migrateListenerQueues(netnsPath);
        } catch (err) {
          this.#log.warn(
            { error: errorMessage(err) },
            'cannot set net.ipv4.tcp_migrate_req in the pod; an upgrade may reset connections queued for the old daemon',
          );
        }
      for (const family of families) {
        const host = this.#deps.bindHost ?? (family === 4 ? '0.0.0.0' : '::');
        const ports = this.#deps.ports ?? PROXY_PORTS;
        const bind = (port: number): Promise<Server> =>
          listenInNetns({
            netnsPath,
            allowHalfOpen: true,
            host,
            port,
            family,
            reusePort: true,
            // Inherited by every accepted socket: no syscall per connection.
            noDelay: true,
            abortOnClose: port !== ports.inboundHbone,
            ...(family === 6 ? { v6Only: true } : {}),
            // Inherited by accepted HBONE sockets: no mutual-write deadlock.
            ...(port === ports.inboundHbone
              ? { receiveBufferBytes: HBONE_RECEIVE_BUFFER_BYTES }
              : {}),
          });
        const outbound = await bind(ports.outbound);
        this.#servers.push(outbound);
        outbound.on('connection', (s: Socket) => this.#onOutbound(s));
        const plaintext = await bind(ports.inboundPlaintext);
        this.#servers.push(plaintext);
        plaintext.on('connection', (s: Socket) => this.#onInboundPlaintext(s));
        const hbone = await bind(ports.inboundHbone);
        this.#servers.push(hbone);
        hbone.on('connection', (s: Socket) => this.#hbone?.handleConnection(s));
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

  /** A marked, connected socket from inside the pod (see {@link PodSide.connectFromPod}). */
  #connectFromPod(
    target: Endpoint,
    options: { readonly source?: Endpoint; readonly receiveBufferBytes?: number } = {},
  ): Promise<Socket> {
    const { source, receiveBufferBytes } = options;
    const family = target.address.includes(':') ? 6 : 4;
    const sameFamily = source !== undefined && source.address.includes(':') === (family === 6);
    const timeoutMs = this.#deps.connectTimeoutMs;
    if (receiveBufferBytes !== undefined)
      // An HBONE connection (pooled, rare): a socket of its own, sized buffers.
      return connectFromNetns({
        netnsPath: this.registration.netns,
        host: target.address,
        port: target.port,
        mark: PROXY_MARK.value,
        noDelay: true,
        abortOnClose: true,
        allowHalfOpen: true,
        timeoutMs,
        receiveBufferBytes,
      }).then(lingerOffAtFinish);
    // Every delivery and passthrough: a socket from the pod's reserve.
    return connectFromReserve(this.#reserve(family, sameFamily), {
      host: target.address,
      port: target.port,
      allowHalfOpen: true,
      timeoutMs,
      ...(sameFamily ? { bindAddress: source.address } : {}),
    }).then(lingerOffAtFinish);
  }

  /** The pod's reserve of sockets of `family`, transparent or not (made on first use). */
  #reserve(family: 4 | 6, transparent: boolean): SocketReserve {
    const key = `${family}${transparent ? 't' : ''}`;
    let reserve = this.#reserves.get(key);
    if (!reserve) {
      reserve = new SocketReserve({
        netnsPath: this.registration.netns,
        family,
        mark: PROXY_MARK.value,
        transparent,
        abortOnClose: true,
        noDelay: true,
      });
      this.#reserves.set(key, reserve);
    }
    return reserve;
  }

  /**
   * Takes an accepted application-side socket (`SO_LINGER` 0 and
   * TCP_NODELAY from its listener): an 'error' handler at once (until its
   * connection adopts it), counted, held (paused). Reads its original
   * destination; without one (not redirected) resets it and returns undefined.
   */
  #accept(
    s: Socket,
    direction: 'outbound' | 'inbound-plaintext',
  ): { source: Endpoint; dst: Endpoint } | undefined {
    s.on('error', () => undefined);
    lingerOffAtFinish(s);
    this.#deps.opened(direction);
    s.pause();
    const source = { address: normalizeIp(s.remoteAddress ?? ''), port: s.remotePort ?? 0 };
    try {
      const o = this.#deps.originalDestination?.(s) ?? originalDestination(s);
      return { source, dst: { address: normalizeIp(o.address), port: o.port } };
    } catch (err) {
      this.#log.warn(
        { error: errorMessage(err), direction },
        'connection without an original destination',
      );
      resetStream(s);
      return undefined;
    }
  }

  #onOutbound(app: Socket): void {
    const accepted = this.#accept(app, 'outbound');
    if (!accepted) return;
    handleOutbound(
      this.#side,
      this.#manager,
      this.#outboundDeps,
      app,
      accepted.source,
      accepted.dst,
    );
  }

  #onInboundPlaintext(peer: Socket): void {
    const accepted = this.#accept(peer, 'inbound-plaintext');
    if (!accepted) return;
    handleInboundPlaintext(
      this.#side,
      this.#manager,
      peer,
      accepted.source,
      accepted.dst,
      this.#deps.policy,
    );
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
    const mine = (c: ConnectionInfo): boolean => c.pod === this.pod;
    const deadline = Date.now() + drainMs;
    while (this.#manager.list(mine).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const cut = this.#manager.closeWhere(mine, 'draining');
    await this.#hbone?.close();
    for (const r of this.#reserves.values()) r.close();
    this.#log.info({ reset: cut }, 'pod proxy stopped');
  }
}
