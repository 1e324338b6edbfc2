/**
 * The data plane of a node: one PodProxy per enrolled workload of this node,
 * one HBONE connection pool shared by all of them, and the workload index,
 * Service index and pod address space kept in step with discovery
 * (src/proxy/destination-view.ts). It is the WorkloadObserver the
 * registration service tells about enrolled pods: enrolling issues the
 * workload's identity and binds its listeners before the pod is reported
 * enrolled; releasing drains and closes them.
 */
import type { Logger } from '../../src/logger.js';
import type { DiscoverySource } from '../../src/discovery/discovery-source.js';
import type { EnrolmentPolicy } from '../../src/discovery/enrolment.js';
import { HbonePool } from '../../src/hbone/pool.js';
import { BufferBudget } from '../../src/hbone/buffer-budget.js';
import type { ConnectionRecord } from '../../src/hbone/connection-record.js';
import { DestinationView } from '../../src/proxy/destination-view.js';
import type { ClusterSnapshot } from '../../src/discovery/cluster-state.js';
import {
  clusterAddressSpace,
  type AddressRangeOrigin,
  type ClusterAddressSpace,
} from '../../src/proxy/pod-address-space.js';
import { requestOfConnection, type InboundPolicy } from '../../src/proxy/inbound-policy.js';
import type { SecureContext } from 'node:tls';
import type { TrustBundle } from '../../src/identity/trust-bundle.js';
import type { Registration } from '../registration/registry.js';
import type { WorkloadObserver } from '../registration/registration-service.js';
import {
  ConnectionManager,
  type ConnectionLimits,
  type LimitKind,
} from '../../src/proxy/connection-manager.js';
import { PodProxy } from './pod-proxy.js';

/**
 * What the data plane needs of the node's identities: the identity service
 * on the main thread, or a worker's copy of the SVIDs it hands over
 * (workers/worker-identities.ts).
 */
export interface ProxyIdentities {
  /** Registers a workload as a user of its identity; resolves once its SVID is held. */
  acquire(workloadKey: string, namespace: string, serviceAccount: string): Promise<unknown>;
  release(workloadKey: string): unknown;
  /** The current TLS context of an identity held on this node. */
  secureContextFor(id: string): SecureContext;
  readonly trustBundle: TrustBundle;
}

/** The cluster address space of a snapshot, given the configured ranges (empty: discovery's). */
export function addressSpaceOf(
  s: ClusterSnapshot,
  podCidrs: readonly string[],
  serviceCidrs: readonly string[],
): ClusterAddressSpace {
  return clusterAddressSpace(
    { podCidrs, serviceCidrs },
    { nodes: s.nodes.values(), serviceCidrs: s.serviceCidrs.values() },
  );
}

/** What an operator must fix in an address space although the data plane serves. */
export function addressSpaceWarnings(a: ClusterAddressSpace): string[] {
  return [
    ...(a.pods === 'none' ? [POD_SPACE_UNKNOWN] : []),
    ...(a.services === 'none' ? [SERVICE_SPACE_UNKNOWN] : []),
  ];
}

export interface ProxyServiceOptions {
  readonly trustDomain: string;
  readonly policy: EnrolmentPolicy;
  readonly discovery: DiscoverySource;
  readonly identity: ProxyIdentities;
  readonly log: Logger;
  /** How long released pods' connections may finish, ms. */
  readonly drainMs: number;
  readonly connectTimeoutMs?: number;
  /** Every finished connection (logging, metrics, admin). */
  readonly onRecord?: (r: ConnectionRecord) => void;
  /** Every accepted connection, by direction. */
  readonly onOpen?: (direction: ConnectionRecord['direction']) => void;
  /** A refused HBONE handshake, by side and reason. */
  readonly onHandshakeFailure?: (side: 'client' | 'server', reason: string) => void;
  /** An inbound HBONE stream refused, by reason. */
  readonly onStreamRefused?: (reason: string) => void;
  /** An inbound HBONE session cut for a flood or a protocol violation. */
  readonly onSessionError?: (reason: string) => void;
  /**
   * The cluster's pod CIDRs (config `podCidrs`): unknown addresses in them
   * fail closed. Empty: the Node objects' `spec.podCIDRs` from discovery.
   */
  readonly podCidrs?: readonly string[];
  /**
   * The cluster's Service ranges (config `serviceCidrs`): an unknown
   * ClusterIP in them fails closed. Empty: the ServiceCIDR objects.
   */
  readonly serviceCidrs?: readonly string[];
  /**
   * The destination's policies (authorization, STRICT mTLS, NetworkPolicy
   * for tunnels), asked for every inbound connection; absent: every
   * verified peer of the trust domain and every plaintext peer is allowed.
   */
  readonly inboundPolicy?: InboundPolicy;
  /** How long a connection to an unknown pod address waits for discovery, ms; default 2000. */
  readonly discoveryWaitMs?: number;
  /** Concurrent connection limits (per pod, per node). */
  readonly limits?: ConnectionLimits;
  /** Bytes all relays together may buffer; default unlimited. */
  readonly relayBufferBytes?: number;
  /** The relay buffer budget ran out (relays stop reading until it has room). */
  readonly onBufferBudgetSpent?: () => void;
  /** A connection refused by a limit. */
  readonly onLimit?: (limit: LimitKind, direction: ConnectionRecord['direction']) => void;
}

/** The warning when neither config nor the Node objects give the pod address space. */
export const POD_SPACE_UNKNOWN =
  'pod address space unknown: podCidrs is not set and no Node has spec.podCIDRs, so a connection ' +
  'to a pod discovery has not seen yet would pass through in plaintext; set podCidrs to the ' +
  "cluster's pod CIDRs";

/** The warning when neither config nor ServiceCIDR objects give the Service ranges. */
export const SERVICE_SPACE_UNKNOWN =
  'Service address range unknown: serviceCidrs is not set and the cluster has no ServiceCIDR ' +
  'objects (Kubernetes < 1.33), so a connection to a Service discovery has not seen yet would ' +
  "reach kube-proxy in plaintext; set serviceCidrs to the API server's --service-cluster-ip-range";

export class ProxyService implements WorkloadObserver {
  readonly pool: HbonePool;
  /** Every live connection of the node's proxies. */
  readonly connections: ConnectionManager;
  readonly #o: ProxyServiceOptions;
  readonly #proxies = new Map<string, PodProxy>();
  readonly #log: Logger;
  /** The workload and Service indexes and the address space, kept in step with discovery. */
  readonly #view: DestinationView;

  constructor(o: ProxyServiceOptions) {
    this.#o = o;
    this.#log = o.log;
    this.pool = new HbonePool({ log: o.log.child({ component: 'hbone-pool' }) });
    this.connections = new ConnectionManager({
      log: o.log.child({ component: 'connections' }),
      onRecord: (r) => this.#record(r),
      ...(o.limits === undefined ? {} : { limits: o.limits }),
      ...(o.relayBufferBytes === undefined
        ? {}
        : {
            budget: new BufferBudget(o.relayBufferBytes, () => {
              o.onBufferBudgetSpent?.();
              this.#budgetSpent(o.relayBufferBytes ?? 0);
            }),
          }),
      ...(o.onLimit === undefined ? {} : { onLimit: o.onLimit }),
    });
    this.#view = new DestinationView(o.discovery, {
      policy: o.policy,
      trustDomain: o.trustDomain,
      ...(o.podCidrs === undefined ? {} : { podCidrs: o.podCidrs }),
      ...(o.serviceCidrs === undefined ? {} : { serviceCidrs: o.serviceCidrs }),
    });
    if (o.discovery.synced) this.#reportAddressSpace(undefined);
    this.#view.onChange((before) => this.#reportAddressSpace(before));
  }

  /**
   * Logs the cluster address space when it is first known or changes; a
   * part nothing gives loudly, since unknown addresses in it then pass
   * through.
   */
  #reportAddressSpace(before: ClusterAddressSpace | undefined): void {
    const now = this.#view.addressSpace;
    if (
      before &&
      before.pods === now.pods &&
      before.services === now.services &&
      before.space.cidrs.join() === now.space.cidrs.join()
    )
      return;
    for (const bad of now.invalid) this.#log.warn({ range: bad }, 'ignoring a malformed CIDR');
    for (const w of this.warnings()) this.#log.error({}, w);
    this.#log.info(
      { cidrs: now.space.cidrs, pods: now.pods, services: now.services },
      'cluster address space: connections to unknown addresses in it wait for discovery, never plaintext',
    );
  }

  /** What an operator must fix although the data plane serves (readiness details). */
  warnings(): string[] {
    return addressSpaceWarnings(this.#view.addressSpace);
  }

  /** The cluster address space in use and where its parts came from. */
  get addressSpace(): {
    readonly cidrs: readonly string[];
    readonly pods: AddressRangeOrigin;
    readonly services: AddressRangeOrigin;
  } {
    const a = this.#view.addressSpace;
    return { cidrs: a.space.cidrs, pods: a.pods, services: a.services };
  }

  /**
   * After a policy change: closes every established inbound connection the
   * policies now deny (as ztunnel's connection manager does); their records
   * say `denied` and name the policy. Returns how many were closed.
   */
  recheckPolicies(): number {
    const policy = this.#o.inboundPolicy;
    if (policy === undefined) return 0;
    let closed = 0;
    for (const c of this.connections.list()) {
      const request = requestOfConnection(c);
      if (request === undefined) continue;
      const verdict = policy(request);
      if (!verdict.allowed && this.connections.deny(c.id, verdict.policy)) closed++;
    }
    if (closed > 0)
      this.#log.info({ closed }, 'policy change: closed established connections it now denies');
    return closed;
  }

  /** The proxies running now, by container ID. */
  get proxies(): ReadonlyMap<string, PodProxy> {
    return this.#proxies;
  }

  async workloadEnrolled(r: Registration): Promise<void> {
    const existing = this.#proxies.get(r.containerId);
    // Idempotent: ADD twice (or re-attach) keeps the one proxy.
    if (existing && existing.registration.netns === r.netns) return;
    if (existing) await this.workloadReleased(existing.registration);
    const sa = r.serviceAccount ?? 'default';
    await this.#o.identity.acquire(r.containerId, r.namespace, sa);
    const proxy = new PodProxy(r, {
      trustDomain: this.#o.trustDomain,
      secureContext: (id) => this.#o.identity.secureContextFor(id),
      trustBundle: () => this.#o.identity.trustBundle,
      index: () => this.#view.workloads,
      pool: this.pool,
      log: this.#log,
      manager: this.connections,
      opened: (direction) => this.#o.onOpen?.(direction),
      handshakeFailed: (side, reason) => this.#o.onHandshakeFailure?.(side, reason),
      streamRefused: (reason) => this.#o.onStreamRefused?.(reason),
      sessionError: (reason) => this.#o.onSessionError?.(reason),
      connectTimeoutMs: this.#o.connectTimeoutMs ?? 10_000,
      podSpace: () => this.#view.addressSpace.space,
      ...(this.#o.inboundPolicy === undefined ? {} : { policy: this.#o.inboundPolicy }),
      services: () => this.#view.services,
      indexChanged: (ms) => this.#view.changed(ms),
      ...(this.#o.discoveryWaitMs === undefined
        ? {}
        : { discoveryWaitMs: this.#o.discoveryWaitMs }),
    });
    try {
      await proxy.start();
    } catch (err) {
      this.#o.identity.release(r.containerId);
      throw err;
    }
    this.#proxies.set(r.containerId, proxy);
  }

  async workloadReleased(r: Registration): Promise<void> {
    const proxy = this.#proxies.get(r.containerId);
    this.#proxies.delete(r.containerId);
    if (proxy) await proxy.stop(this.#o.drainMs);
    this.#o.identity.release(r.containerId);
  }

  #lastBudgetLog = 0;

  /** One log line per 10 s while the relay buffer budget keeps running out. */
  #budgetSpent(limit: number): void {
    const now = Date.now();
    if (now - this.#lastBudgetLog < 10_000) return;
    this.#lastBudgetLog = now;
    this.#log.warn(
      { limit: 'relayBufferBytes', max: limit },
      'relay buffer budget spent; relays holding more than their own 16 KiB stop reading until their receivers catch up (logged once per 10 s)',
    );
  }

  #record(r: ConnectionRecord): void {
    this.#log.info({ connection: r }, 'connection');
    this.#o.onRecord?.(r);
  }

  /** Stops every proxy (draining up to `drainMs`) and the pool. */
  async close(drainMs: number): Promise<void> {
    await Promise.all([...this.#proxies.values()].map((p) => p.stop(drainMs)));
    this.#proxies.clear();
    await this.pool.close();
  }
}
