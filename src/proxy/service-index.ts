/**
 * Which Service answers on an address and port, and its usable backends:
 * what kube-proxy would DNAT a connection to, computed from a discovery
 * snapshot (pure), so an enrolled pod's connection to a Service is tunnelled
 * to the backend pod itself instead of crossing the node in plaintext after
 * kube-proxy's rewrite.
 *
 * - Frontends: every ClusterIP and external / load-balancer IP with each
 *   TCP service port, and every node address (InternalIP, ExternalIP) with
 *   each node port. A headless Service (clusterIP None) has none: its
 *   clients dial pod IPs, which the workload index covers.
 * - Backends: the addresses of the Service's EndpointSlices of the
 *   frontend's family, with the slice port of the same name as the service
 *   port (the controller has resolved named target ports per pod); a slice
 *   port without a number falls back to the service's targetPort, a name
 *   resolved through the backend pod's container ports.
 * - Usable: ready endpoints; when none is ready, those serving while
 *   terminating (kube-proxy's rule, so connections drain during a rollout).
 *
 * Invariant: a backend list never holds an endpoint of the other IP family
 * than its frontend.
 */
import { isIP } from 'node:net';
import { objectKey, type ClusterSnapshot, type PodInfo } from '../discovery/cluster-state.js';
import type {
  EndpointInfo,
  EndpointSliceInfo,
  ServiceInfo,
  ServicePortInfo,
} from '../discovery/service-model.js';
import { normalizeIp } from './workload-index.js';

export interface ServiceBackend {
  readonly address: string;
  readonly port: number;
}

/** One address:port a Service answers on. */
export interface ServiceFrontend {
  /** `namespace/name` of the Service. */
  readonly service: string;
  readonly port: ServicePortInfo;
  /** Usable backends (see the file header); may be empty. */
  readonly backends: readonly ServiceBackend[];
}

export interface ServiceIndex {
  /** The Service answering on `ip:port`, if any. */
  frontend(ip: string, port: number): ServiceFrontend | undefined;
  /** The Service whose ClusterIP or external IP `ip` is, whatever the port. */
  serviceAt(ip: string): string | undefined;
  readonly size: number;
}

const key = (ip: string, port: number): string => `${normalizeIp(ip)}|${port}`;

/** A pod by `namespace/name`. */
type PodLookup = (key: string) => PodInfo | undefined;

function backendPort(
  sp: ServicePortInfo,
  slicePort: number | undefined,
  endpoint: EndpointInfo,
  pods: PodLookup,
): number | undefined {
  if (slicePort !== undefined) return slicePort;
  if (typeof sp.targetPort === 'number') return sp.targetPort;
  const pod = endpoint.pod && pods(objectKey(endpoint.pod.namespace, endpoint.pod.name));
  return pod?.containerPorts[sp.targetPort];
}

/** The usable backends of one service port, for one IP family. */
function backendsOf(
  slices: readonly EndpointSliceInfo[],
  sp: ServicePortInfo,
  family: 4 | 6,
  pods: PodLookup,
): ServiceBackend[] {
  const ready: ServiceBackend[] = [];
  const terminating: ServiceBackend[] = [];
  for (const slice of slices) {
    if (slice.addressType !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
    const slicePort = slice.ports.find((p) => p.name === sp.name);
    // A slice that lists ports but not this one does not serve it.
    if (slicePort === undefined && slice.ports.length > 0) continue;
    for (const e of slice.endpoints) {
      const into = e.ready ? ready : e.serving && e.terminating ? terminating : undefined;
      if (into === undefined) continue;
      const port = backendPort(sp, slicePort?.port, e, pods);
      if (port === undefined) continue;
      for (const address of e.addresses)
        if (isIP(address) === family) into.push({ address: normalizeIp(address), port });
    }
  }
  return ready.length > 0 ? ready : terminating;
}

/** What one Service contributed to the last index, and what it was computed from. */
interface ServiceContribution {
  readonly service: ServiceInfo;
  readonly slices: readonly EndpointSliceInfo[];
  readonly nodes: ClusterSnapshot['nodes'];
  /** The pods a named targetPort was resolved through, and what was found. */
  readonly podsRead: ReadonlyMap<string, PodInfo | undefined>;
  readonly frontends: readonly (readonly [string, ServiceFrontend])[];
  readonly ips: readonly string[];
}

const sameList = <T>(a: readonly T[], b: readonly T[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Builds Service indexes from successive snapshots, recomputing only the
 * Services whose object, EndpointSlices, pods read for a named targetPort,
 * or the Nodes (node ports) changed: discovery keeps unchanged models, so
 * identity tells. An index it builds equals {@link buildServiceIndex} of
 * the same snapshot (a property test checks it): the map is assembled in
 * the same order, so a frontend two Services claim goes to the same one.
 */
export class ServiceIndexBuilder {
  #memo = new Map<string, ServiceContribution>();
  #last: { snapshot: ClusterSnapshot; index: ServiceIndex } | undefined;

  build(snapshot: ClusterSnapshot): ServiceIndex {
    const last = this.#last;
    if (
      last !== undefined &&
      last.snapshot.services === snapshot.services &&
      last.snapshot.endpointSlices === snapshot.endpointSlices &&
      last.snapshot.nodes === snapshot.nodes &&
      (last.snapshot.pods === snapshot.pods || this.#podsUnchanged(snapshot))
    ) {
      this.#last = { snapshot, index: last.index };
      return last.index;
    }
    let nodeAddresses: string[] | undefined;
    const slicesOf = new Map<string, EndpointSliceInfo[]>();
    for (const slice of snapshot.endpointSlices.values()) {
      if (slice.serviceName === undefined) continue;
      const k = objectKey(slice.namespace, slice.serviceName);
      const list = slicesOf.get(k);
      if (list) list.push(slice);
      else slicesOf.set(k, [slice]);
    }
    const memo = new Map<string, ServiceContribution>();
    const frontends = new Map<string, ServiceFrontend>();
    const serviceIps = new Map<string, string>();
    for (const svc of snapshot.services.values()) {
      const name = objectKey(svc.namespace, svc.name);
      const slices = slicesOf.get(name) ?? [];
      let c = this.#memo.get(name);
      if (
        c === undefined ||
        c.service !== svc ||
        c.nodes !== snapshot.nodes ||
        !sameList(c.slices, slices) ||
        ![...c.podsRead].every(([k, pod]) => snapshot.pods.get(k) === pod)
      ) {
        nodeAddresses ??= [...snapshot.nodes.values()].flatMap((n) => n.addresses);
        c = contributionOf(svc, name, slices, snapshot, nodeAddresses);
      }
      memo.set(name, c);
      for (const ip of c.ips) serviceIps.set(ip, name);
      for (const [k, f] of c.frontends) frontends.set(k, f);
    }
    this.#memo = memo;
    const index: ServiceIndex = {
      frontend: (ip, port) => frontends.get(key(ip, port)),
      serviceAt: (ip) => serviceIps.get(normalizeIp(ip)),
      size: frontends.size,
    };
    this.#last = { snapshot, index };
    return index;
  }

  #podsUnchanged(snapshot: ClusterSnapshot): boolean {
    for (const c of this.#memo.values())
      for (const [k, pod] of c.podsRead) if (snapshot.pods.get(k) !== pod) return false;
    return true;
  }
}

/** The frontends of one Service and the pods read to resolve its named target ports. */
function contributionOf(
  svc: ServiceInfo,
  name: string,
  slices: readonly EndpointSliceInfo[],
  snapshot: ClusterSnapshot,
  nodeAddresses: readonly string[],
): ServiceContribution {
  const podsRead = new Map<string, PodInfo | undefined>();
  const pods: PodLookup = (k) => {
    const pod = snapshot.pods.get(k);
    podsRead.set(k, pod);
    return pod;
  };
  const memo = new Map<string, ServiceBackend[]>();
  const backends = (sp: ServicePortInfo, family: 4 | 6): ServiceBackend[] => {
    const k = `${sp.name}|${family}`;
    let b = memo.get(k);
    if (b === undefined) memo.set(k, (b = backendsOf(slices, sp, family, pods)));
    return b;
  };
  const frontends: [string, ServiceFrontend][] = [];
  const add = (ip: string, port: number, sp: ServicePortInfo): void => {
    const family = isIP(ip);
    if (family !== 4 && family !== 6) return;
    frontends.push([key(ip, port), { service: name, port: sp, backends: backends(sp, family) }]);
  };
  const ips: string[] = [];
  for (const ip of [...svc.clusterIps, ...svc.externalIps]) {
    ips.push(normalizeIp(ip));
    for (const sp of svc.ports) add(ip, sp.port, sp);
  }
  for (const sp of svc.ports)
    if (sp.nodePort !== undefined) for (const ip of nodeAddresses) add(ip, sp.nodePort, sp);
  return { service: svc, slices, nodes: snapshot.nodes, podsRead, frontends, ips };
}

/** Builds the index from a snapshot (a builder without history). */
export function buildServiceIndex(snapshot: ClusterSnapshot): ServiceIndex {
  return new ServiceIndexBuilder().build(snapshot);
}

/** No Services known. */
export const NO_SERVICES: ServiceIndex = {
  frontend: () => undefined,
  serviceAt: () => undefined,
  size: 0,
};
