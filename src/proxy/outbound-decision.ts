/**
 * Where an enrolled pod's captured outbound connection goes (ztunnel's
 * `build_request`): decided from the original destination, the workload
 * index, the Service index and the pod address space alone, never touching
 * a socket.
 *
 * Order: a proxy port is refused; a known pod IP is decided by its
 * enrolment; a Service address (ClusterIP, external or load-balancer IP,
 * node port) picks one usable backend and is decided as that backend (so
 * kube-proxy never rewrites it into plaintext to an enrolled pod), or is
 * refused when it has none; an unknown address of the pod address space
 * waits for discovery; anything else passes through.
 *
 * Backend choice: uniformly random among the usable backends, as ztunnel
 * and kube-proxy's iptables mode do. It needs no shared state between the
 * daemons of a cluster and spreads short connections evenly; least-request
 * would need each daemon's view of every backend's load, which it has not.
 */
import { PROXY_PORTS } from '../redirect/constants.js';
import { NO_POD_ADDRESS_SPACE, type PodAddressSpace } from './pod-address-space.js';
import { NO_SERVICES, type ServiceIndex } from './service-index.js';
import type { WorkloadEntry, WorkloadIndex } from './workload-index.js';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * Why an outbound connection is refused, a stable label: a proxy port (a
 * loop), a Service with no usable backend, a Service address without that
 * port.
 */
export type RefuseCode = 'self-call-loop' | 'no-ready-endpoint' | 'no-service-port';

export type OutboundDecision =
  /**
   * Never proxy: a connection to our own ports would loop, or a Service
   * without a usable backend or without that port (`service` names it).
   */
  | {
      readonly kind: 'refuse';
      readonly code: RefuseCode;
      readonly reason: string;
      readonly service?: string;
    }
  /**
   * Enrolled destination: mutual TLS over HBONE to its pod, or nothing.
   * `target` is the pod's address and port (a Service's backend when
   * `service` is set: `namespace/name`).
   */
  | {
      readonly kind: 'hbone';
      readonly destination: WorkloadEntry;
      readonly hbone: Endpoint;
      readonly target: Endpoint;
      readonly service?: string;
    }
  /**
   * An address of the pod address space discovery does not know (yet): a
   * new pod discovery lags behind. Hold the connection, decide again when
   * discovery changes, and reset it when the wait runs out: never plaintext.
   */
  | { readonly kind: 'wait-for-discovery'; readonly target: Endpoint }
  /**
   * Anything else: plaintext, untouched, from inside the pod; to the chosen
   * backend itself when `service` is set (never back to the Service
   * address, where kube-proxy could pick an enrolled backend).
   */
  | {
      readonly kind: 'passthrough';
      readonly target: Endpoint;
      readonly destination: WorkloadEntry | undefined;
      readonly service?: string;
    };

const OWN_PORTS: readonly number[] = Object.values(PROXY_PORTS);

/** A uniformly random index below `n`. */
export const randomPick = (n: number): number => Math.floor(Math.random() * n);

/**
 * The decision for one captured connection. `podSpace` is the cluster's
 * pod address space (config `podCidrs`, else the nodes' pod CIDRs); without
 * one, an unknown address is treated as outside the cluster (passthrough).
 * `pick(n)` chooses a Service backend (default {@link randomPick}).
 */
export function decideOutbound(
  originalDst: Endpoint,
  index: WorkloadIndex,
  podSpace: PodAddressSpace = NO_POD_ADDRESS_SPACE,
  services: ServiceIndex = NO_SERVICES,
  pick: (n: number) => number = randomPick,
): OutboundDecision {
  if (OWN_PORTS.includes(originalDst.port))
    return {
      kind: 'refuse',
      code: 'self-call-loop',
      reason: `destination port ${originalDst.port} is a meshless proxy port (self-call loop)`,
    };
  const destination = index.byIp(originalDst.address);
  if (destination === undefined) {
    const frontend = services.frontend(originalDst.address, originalDst.port);
    if (frontend !== undefined) {
      const service = frontend.service;
      const n = frontend.backends.length;
      const backend = n > 0 ? frontend.backends[Math.min(n - 1, Math.max(0, pick(n)))] : undefined;
      if (backend === undefined)
        return {
          kind: 'refuse',
          code: 'no-ready-endpoint',
          service,
          reason: `Service ${service} has no ready endpoint`,
        };
      if (OWN_PORTS.includes(backend.port))
        return {
          kind: 'refuse',
          service,
          code: 'self-call-loop',
          reason: `Service ${service} targets meshless proxy port ${backend.port}`,
        };
      const decision = decidePod(originalDst, backend, index.byIp(backend.address), podSpace);
      return decision.kind === 'wait-for-discovery' ? decision : { ...decision, service };
    }
    const service = services.serviceAt(originalDst.address);
    if (service !== undefined)
      return {
        kind: 'refuse',
        service,
        code: 'no-service-port',
        reason: `Service ${service} has no port ${originalDst.port}`,
      };
  }
  return decidePod(originalDst, originalDst, destination, podSpace);
}

/**
 * The decision for a connection to `target` (a pod address, or anything
 * else), whose workload entry is `destination`. A wait keeps `originalDst`,
 * so the connection is decided afresh (Service included) when discovery
 * changes.
 */
function decidePod(
  originalDst: Endpoint,
  target: Endpoint,
  destination: WorkloadEntry | undefined,
  podSpace: PodAddressSpace,
): OutboundDecision {
  if (destination?.enrolled)
    return {
      kind: 'hbone',
      destination,
      hbone: { address: target.address, port: PROXY_PORTS.inboundHbone },
      target,
    };
  if (destination === undefined && podSpace.contains(target.address))
    return { kind: 'wait-for-discovery', target: originalDst };
  return { kind: 'passthrough', target, destination };
}

/**
 * Whether a connection captured on the inbound plaintext port may be
 * delivered: to one of the pod's own addresses, never to a proxy port.
 */
export function decideInboundPlaintext(
  originalDst: Endpoint,
  podAddresses: readonly string[],
):
  | { readonly deliver: true }
  | {
      readonly deliver: false;
      readonly code: 'self-call-loop' | 'not-local-address';
      readonly reason: string;
    } {
  if (OWN_PORTS.includes(originalDst.port))
    return {
      deliver: false,
      code: 'self-call-loop',
      reason: `port ${originalDst.port} is a meshless proxy port`,
    };
  if (!podAddresses.includes(originalDst.address))
    return {
      deliver: false,
      code: 'not-local-address',
      reason: `${originalDst.address} is not an address of this pod`,
    };
  return { deliver: true };
}
