/**
 * What an outbound decision reads, kept in step with discovery: the
 * workload index, the Service index and the cluster address space of the
 * latest snapshot, and a wait for the next change (a connection to an
 * address discovery does not know yet waits on it).
 *
 * Each update costs what changed, not the cluster: the builders keep what
 * unchanged pods and Services contributed (discovery keeps unchanged
 * models and maps, so identity tells), and the address space is recomputed
 * only when the Nodes or ServiceCIDRs changed.
 *
 * Invariants: the indexes are updated synchronously inside discovery's
 * change notification, before any listener or waiter runs, so a decision
 * made after a change is seen never reads an older index; each index a
 * reader holds is immutable.
 */
import type { ClusterSnapshot } from '../discovery/cluster-state.js';
import type { DiscoverySource } from '../discovery/discovery-source.js';
import type { EnrolmentPolicy } from '../discovery/enrolment.js';
import { clusterAddressSpace, type ClusterAddressSpace } from './pod-address-space.js';
import { ServiceIndexBuilder, type ServiceIndex } from './service-index.js';
import { WorkloadIndexBuilder, type WorkloadIndex } from './workload-index.js';

/** Options of {@link DestinationView}. */
export interface DestinationViewOptions {
  readonly policy: EnrolmentPolicy;
  readonly trustDomain: string;
  /** Config `podCidrs`; empty: the Nodes' pod CIDRs. */
  readonly podCidrs?: readonly string[];
  /** Config `serviceCidrs`; empty: the ServiceCIDR objects. */
  readonly serviceCidrs?: readonly string[];
}

export class DestinationView {
  readonly #o: DestinationViewOptions;
  readonly #listeners: ((before: ClusterAddressSpace) => void)[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #workloadBuilder: WorkloadIndexBuilder;
  readonly #serviceBuilder = new ServiceIndexBuilder();
  #last: ClusterSnapshot;
  #workloads: WorkloadIndex;
  #services: ServiceIndex;
  #addressSpace: ClusterAddressSpace;

  constructor(
    discovery: Pick<DiscoverySource, 'snapshot' | 'onChange'>,
    o: DestinationViewOptions,
  ) {
    this.#o = o;
    const first = discovery.snapshot();
    this.#last = first;
    this.#workloadBuilder = new WorkloadIndexBuilder(o.policy, o.trustDomain);
    this.#workloads = this.#workloadBuilder.build(first);
    this.#services = this.#serviceBuilder.build(first);
    this.#addressSpace = this.#spaceOf(first);
    discovery.onChange((s) => this.#update(s));
  }

  /** Who is behind a pod IP. */
  get workloads(): WorkloadIndex {
    return this.#workloads;
  }

  /** Which Service answers on an address and port. */
  get services(): ServiceIndex {
    return this.#services;
  }

  /** The cluster's pod and Service ranges. */
  get addressSpace(): ClusterAddressSpace {
    return this.#addressSpace;
  }

  /** Called after every update with the address space before it (to log changes). */
  onChange(listener: (before: ClusterAddressSpace) => void): void {
    this.#listeners.push(listener);
  }

  /** Resolves after the next update, or after `ms` without one. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#waiters.add(wake);
    });
  }

  #update(s: ClusterSnapshot): void {
    this.#workloads = this.#workloadBuilder.build(s);
    this.#services = this.#serviceBuilder.build(s);
    const before = this.#addressSpace;
    if (s.nodes !== this.#last.nodes || s.serviceCidrs !== this.#last.serviceCidrs)
      this.#addressSpace = this.#spaceOf(s);
    this.#last = s;
    for (const l of this.#listeners) l(before);
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  #spaceOf(s: ClusterSnapshot): ClusterAddressSpace {
    return clusterAddressSpace(
      { podCidrs: this.#o.podCidrs ?? [], serviceCidrs: this.#o.serviceCidrs ?? [] },
      { nodes: s.nodes.values(), serviceCidrs: s.serviceCidrs.values() },
    );
  }
}
