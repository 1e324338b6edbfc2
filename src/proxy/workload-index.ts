/**
 * Who is behind an IP: every pod discovery knows, with its enrolment and
 * SPIFFE ID, indexed by address. Rebuilt from each snapshot (pure), so the
 * proxy's lookups are one map access.
 */
import type { ClusterSnapshot, PodInfo } from '../discovery/cluster-state.js';
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

export function buildWorkloadIndex(
  snapshot: ClusterSnapshot,
  policy: EnrolmentPolicy,
  trustDomain: string,
): WorkloadIndex {
  const map = new Map<string, WorkloadEntry>();
  const entryOf = (pod: PodInfo): WorkloadEntry => ({
    namespace: pod.namespace,
    name: pod.name,
    serviceAccount: pod.serviceAccount,
    nodeName: pod.nodeName,
    enrolled:
      decideEnrolment(policy, pod.namespace, snapshot.namespaces.get(pod.namespace), pod).kind ===
      'enrolled',
    identity: workloadIdentity(trustDomain, pod.namespace, pod.serviceAccount),
  });
  for (const pod of snapshot.pods.values()) {
    // Host-network pods share the node's IP: that address is not a workload.
    if (pod.hostNetwork) continue;
    const entry = entryOf(pod);
    for (const ip of pod.ips) map.set(normalizeIp(ip), entry);
  }
  return { byIp: (ip) => map.get(normalizeIp(ip)), size: map.size };
}
