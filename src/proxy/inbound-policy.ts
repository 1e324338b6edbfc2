/**
 * Policy at the destination, as the data plane asks it: one call per
 * inbound connection (an HBONE stream before it is answered, a plaintext
 * connection before it is delivered) and again for every established one
 * when the policies change. It turns what a path knows (addresses as text,
 * the pod by `namespace/name`, the verified principal) into the pure
 * evaluator's request ({@link decideInbound}) and its answer into what a
 * record and a metric carry (`policy`: `Kind namespace/name`).
 *
 * Invariants:
 * - An address that does not parse, or a destination pod the policy index
 *   does not know, is decided with what is known (the registration's
 *   namespace, no labels): never silently allowed past a namespace-wide or
 *   root-namespace DENY.
 * - Plaintext never carries a principal, whatever the caller passes.
 */
import type { ConnectionInfo } from './connection-manager.js';
import { decideInbound, type InboundDecision } from '../policy/inbound-decision.js';
import { parseIpAddress, type IpAddress } from '../policy/ip-address.js';
import type { PolicyIndex } from '../policy/policy-index.js';
import type { PolicyRef } from '../policy/policy-ref.js';
import { parseAuthority } from '../hbone/hbone-protocol.js';

/** One inbound connection, as a path knows it. */
export interface InboundPolicyRequest {
  readonly transport: 'hbone' | 'plaintext';
  /** The verified peer SPIFFE ID (HBONE). */
  readonly principal?: string | undefined;
  /** The source pod's address (HBONE: the `forwarded` client, else the TCP peer). */
  readonly sourceIp: string;
  readonly destinationIp: string;
  /** The port the connection is for (an HBONE stream's inner target port). */
  readonly destinationPort: number;
  /** The destination pod, `namespace/name`. */
  readonly pod: string;
}

export interface InboundPolicyVerdict {
  readonly allowed: boolean;
  /** `Kind namespace/name` of the deciding policy, when one decided. */
  readonly policy: string | undefined;
  readonly layer: InboundDecision['layer'];
  readonly reason: InboundDecision['reason'];
}

/** What the data plane calls; see the file comment. */
export type InboundPolicy = (request: InboundPolicyRequest) => InboundPolicyVerdict;

/** `Kind namespace/name`. */
export const policyName = (ref: PolicyRef): string => `${ref.kind} ${ref.namespace}/${ref.name}`;

const UNSPECIFIED: Record<4 | 6, IpAddress> = {
  4: parseIpAddress('0.0.0.0') as IpAddress,
  6: parseIpAddress('::') as IpAddress,
};

function ip(text: string): IpAddress {
  return parseIpAddress(text) ?? UNSPECIFIED[text.includes(':') ? 6 : 4];
}

/** The data plane's policy over the index of the moment (`index()` is read per call). */
export function inboundPolicy(
  index: () => PolicyIndex,
  options: { readonly enforceNetworkPolicy: boolean },
): InboundPolicy {
  return (r) => {
    const idx = index();
    const slash = r.pod.indexOf('/');
    const destination = idx.pods.get(r.pod) ?? {
      namespace: slash > 0 ? r.pod.slice(0, slash) : r.pod,
      labels: {},
      containerPorts: {},
    };
    const d = decideInbound(
      {
        transport: r.transport,
        principal: r.transport === 'hbone' ? r.principal : undefined,
        sourceIp: ip(r.sourceIp),
        destinationIp: ip(r.destinationIp),
        destinationPort: r.destinationPort,
        destination,
      },
      idx,
      options,
    );
    return {
      allowed: d.allowed,
      policy: d.policy === undefined ? undefined : policyName(d.policy),
      layer: d.layer,
      reason: d.reason,
    };
  };
}

/**
 * The request of an established connection, for the re-check after a
 * policy change; undefined for a connection that is not inbound.
 */
export function requestOfConnection(c: ConnectionInfo): InboundPolicyRequest | undefined {
  if (c.direction === 'inbound') {
    const forwarded = c.forwarded === undefined ? undefined : parseAuthority(c.forwarded);
    return {
      transport: 'hbone',
      principal: c.source.identity,
      sourceIp: forwarded?.host ?? c.source.address,
      destinationIp: c.destination.address,
      destinationPort: c.destination.port,
      pod: c.pod,
    };
  }
  if (c.direction === 'inbound-plaintext')
    return {
      transport: 'plaintext',
      sourceIp: c.source.address,
      destinationIp: c.destination.address,
      destinationPort: c.destination.port,
      pod: c.pod,
    };
  return undefined;
}
