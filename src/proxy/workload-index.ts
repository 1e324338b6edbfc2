/**
 * Who is behind an IP: every pod discovery knows, with its enrolment and
 * SPIFFE ID, indexed by address. Built from each snapshot (pure), so the
 * proxy's lookups are one map access.
 *
 * A {@link WorkloadIndexBuilder} keeps each pod's entry while the pod and
 * its namespace are the same objects (discovery keeps unchanged models), so
 * a change costs one map assembly instead of re-deciding every pod's
 * enrolment; an index it builds equals {@link buildWorkloadIndex} of the
 * same snapshot, i.e. of a builder without history (a property test checks it). When several pods claim one
 * address (a finished pod keeps its IP until deleted), the last in the
 * snapshot's order wins, in both.
 */
import type { ClusterSnapshot, NamespaceInfo, PodInfo } from '../discovery/cluster-state.js';
import { decideEnrolment, type EnrolmentPolicy } from '../discovery/enrolment.js';

export interface WorkloadEntry {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly nodeName: string | undefined;
  readonly enrolled: boolean;
  /** `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  readonly identity: string;
}

export interface WorkloadIndex {
  byIp(ip: string): WorkloadEntry | undefined;
  readonly size: number;
}

export const workloadIdentity = (
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): string => `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;

/** Normalizes an address for lookups (IPv4-mapped IPv6 to IPv4, lower case). */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** What a pod contributed to the last index, valid while the pod and its namespace are the same objects. */
interface PodContribution {
  readonly namespace: NamespaceInfo | undefined;
  readonly entry: WorkloadEntry;
  readonly ips: readonly string[];
}

/** Builds workload indexes from successive snapshots, reusing what did not change. */
export class WorkloadIndexBuilder {
  readonly #policy: EnrolmentPolicy;
  readonly #trustDomain: string;
  #memo = new WeakMap<PodInfo, PodContribution>();
  #last: { snapshot: ClusterSnapshot; index: WorkloadIndex } | undefined;

  constructor(policy: EnrolmentPolicy, trustDomain: string) {
    this.#policy = policy;
    this.#trustDomain = trustDomain;
  }

  build(snapshot: ClusterSnapshot): WorkloadIndex {
    const last = this.#last;
    if (
      last !== undefined &&
      last.snapshot.pods === snapshot.pods &&
      last.snapshot.namespaces === snapshot.namespaces
    )
      return last.index;
    const enrolled = new Map<string, boolean>();
    const enrolledIn = (pod: PodInfo, ns: NamespaceInfo | undefined): boolean => {
      let e = enrolled.get(pod.namespace);
      if (e === undefined) {
        // One decision per namespace: a pod that is not host-network is enrolled by its namespace alone.
        e = decideEnrolment(this.#policy, pod.namespace, ns, undefined).kind === 'enrolled';
        enrolled.set(pod.namespace, e);
      }
      return e;
    };
    const map = new Map<string, WorkloadEntry>();
    for (const pod of snapshot.pods.values()) {
      // Host-network pods share the node's IP: that address is not a workload.
      if (pod.hostNetwork) continue;
      const ns = snapshot.namespaces.get(pod.namespace);
      let c = this.#memo.get(pod);
      if (c === undefined || c.namespace !== ns) {
        c = {
          namespace: ns,
          ips: pod.ips.map(normalizeIp),
          entry: {
            namespace: pod.namespace,
            name: pod.name,
            serviceAccount: pod.serviceAccount,
            nodeName: pod.nodeName,
            enrolled: enrolledIn(pod, ns),
            identity: workloadIdentity(this.#trustDomain, pod.namespace, pod.serviceAccount),
          },
        };
        this.#memo.set(pod, c);
      }
      for (const ip of c.ips) map.set(ip, c.entry);
    }
    const index: WorkloadIndex = { byIp: (ip) => map.get(normalizeIp(ip)), size: map.size };
    this.#last = { snapshot, index };
    return index;
  }
}

/** The workload index of one snapshot (a builder without history). */
export function buildWorkloadIndex(
  snapshot: ClusterSnapshot,
  policy: EnrolmentPolicy,
  trustDomain: string,
): WorkloadIndex {
  return new WorkloadIndexBuilder(policy, trustDomain).build(snapshot);
}
