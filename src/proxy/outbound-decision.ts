/**
 * Where an enrolled pod's captured outbound connection goes (ztunnel's
 * `build_request`): decided from the original destination and the workload
 * index alone, never touching a socket.
 */
import { PROXY_PORTS } from '../redirect/constants.js';
import { NO_POD_ADDRESS_SPACE, type PodAddressSpace } from './pod-address-space.js';
import type { WorkloadEntry, WorkloadIndex } from './workload-index.js';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export type OutboundDecision =
  /** Never proxy: a connection to our own ports would loop. */
  | { readonly kind: 'refuse'; readonly code: 'self-call-loop'; readonly reason: string }
  /** Enrolled destination: mutual TLS over HBONE to its pod, or nothing. */
  | {
      readonly kind: 'hbone';
      readonly destination: WorkloadEntry;
      readonly hbone: Endpoint;
      readonly target: Endpoint;
    }
  /**
   * An address of the pod address space discovery does not know (yet): a
   * new pod discovery lags behind. Hold the connection, decide again when
   * discovery changes, and reset it when the wait runs out: never plaintext.
   */
  | { readonly kind: 'wait-for-discovery'; readonly target: Endpoint }
  /** Anything else: plaintext, untouched, from inside the pod. */
  | {
      readonly kind: 'passthrough';
      readonly target: Endpoint;
      readonly destination: WorkloadEntry | undefined;
    };

const OWN_PORTS: readonly number[] = Object.values(PROXY_PORTS);

/**
 * The decision for one captured connection. `podSpace` is the cluster's
 * pod address space (config `podCidrs`); without one, an unknown address
 * is treated as outside the cluster (passthrough).
 */
export function decideOutbound(
  originalDst: Endpoint,
  index: WorkloadIndex,
  podSpace: PodAddressSpace = NO_POD_ADDRESS_SPACE,
): OutboundDecision {
  if (OWN_PORTS.includes(originalDst.port))
    return {
      kind: 'refuse',
      code: 'self-call-loop',
      reason: `destination port ${originalDst.port} is a meshless proxy port (self-call loop)`,
    };
  const destination = index.byIp(originalDst.address);
  if (destination?.enrolled)
    return {
      kind: 'hbone',
      destination,
      hbone: { address: originalDst.address, port: PROXY_PORTS.inboundHbone },
      target: originalDst,
    };
  if (destination === undefined && podSpace.contains(originalDst.address))
    return { kind: 'wait-for-discovery', target: originalDst };
  return { kind: 'passthrough', target: originalDst, destination };
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
