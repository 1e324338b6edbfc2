/**
 * Whether the destination pod's ingress NetworkPolicies let a tunnelled
 * connection in, as the Kubernetes spec defines: a pod no policy selects
 * for ingress is not isolated (allowed); an isolated pod accepts only what
 * at least one of the policies selecting it allows (the union). Evaluated
 * at the destination daemon for connections arriving over HBONE, against
 * the source pod's address, labels and namespace labels and the inner
 * target port, because the CNI's own enforcement only ever sees port 15008.
 *
 * The source is known by its address: a pod discovery knows (not
 * hostNetwork) matches pod and namespace selectors; any source matches
 * ipBlocks by address. When the request carries the tunnel's verified
 * principal and it is not the identity of the pod at that address (a
 * claimed address, or discovery behind), the source counts as unknown:
 * only ipBlocks can match it (fail safe). Named ports resolve through the destination pod's
 * container ports. Only TCP is tunnelled, so only TCP ports match.
 */
import { blockContains, type IpAddress } from './ip-address.js';
import { selectorMatches, type Labels } from './label-selector.js';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from './network-policy.js';
import { addressKey, type PolicyIndex, type PolicyPod } from './policy-index.js';
import { refOf, type PolicyRef } from './policy-ref.js';

export interface NetworkPolicyRequest {
  /** The destination pod: namespace, labels, named container ports. */
  readonly destination: {
    readonly namespace: string;
    readonly labels: Labels;
    readonly containerPorts: Readonly<Record<string, number>>;
  };
  /** The source pod's address (the HBONE stream's source, not the peer daemon's). */
  readonly sourceIp: IpAddress;
  /** The tunnel's verified peer SPIFFE ID: the source pod must carry it. */
  readonly principal?: string | undefined;
  /** The inner target port. */
  readonly port: number;
}

export interface NetworkPolicyDecision {
  readonly allowed: boolean;
  /** `not_isolated`: no policy selects the pod for ingress. */
  readonly reason: 'not_isolated' | 'allowed_by_policy' | 'not_allowed';
  /** The first policy (by name) that allows it. */
  readonly policy: PolicyRef | undefined;
  /** Every policy that selects the destination for ingress. */
  readonly selecting: readonly PolicyRef[];
}

function peerMatches(
  peer: NetworkPolicyPeer,
  policyNamespace: string,
  source: PolicyPod | undefined,
  sourceIp: IpAddress,
  index: PolicyIndex,
): boolean {
  if (peer.kind === 'ipBlock') {
    if (!blockContains(peer.cidr, sourceIp)) return false;
    for (const e of peer.except) if (blockContains(e, sourceIp)) return false;
    return true;
  }
  if (source === undefined) return false;
  if (peer.namespaceSelector === undefined) {
    if (source.namespace !== policyNamespace) return false;
  } else {
    const nsLabels = index.namespaceLabels.get(source.namespace);
    if (nsLabels === undefined || !selectorMatches(peer.namespaceSelector, nsLabels)) return false;
  }
  return peer.podSelector === undefined || selectorMatches(peer.podSelector, source.labels);
}

function portMatches(
  p: NetworkPolicyPort,
  port: number,
  containerPorts: Readonly<Record<string, number>>,
): boolean {
  if (p.protocol !== 'TCP') return false;
  if (p.port === undefined) return true;
  if (typeof p.port === 'string')
    return Object.hasOwn(containerPorts, p.port) && containerPorts[p.port] === port;
  return p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort;
}

/** Whether `policy` allows the connection (assuming it selects the destination). */
export function networkPolicyAllowsOne(
  policy: NetworkPolicy,
  r: NetworkPolicyRequest,
  source: PolicyPod | undefined,
  index: PolicyIndex,
): boolean {
  for (const rule of policy.ingress) {
    let portOk = rule.ports.length === 0;
    for (const p of rule.ports)
      if (portMatches(p, r.port, r.destination.containerPorts)) {
        portOk = true;
        break;
      }
    if (!portOk) continue;
    if (rule.from.length === 0) return true;
    for (const peer of rule.from)
      if (peerMatches(peer, policy.namespace, source, r.sourceIp, index)) return true;
  }
  return false;
}

/** The pod at the source address, unless the tunnel's principal says it is someone else. */
function sourcePod(r: NetworkPolicyRequest, index: PolicyIndex): PolicyPod | undefined {
  const pod = index.podsByIp.get(addressKey(r.sourceIp));
  if (pod === undefined || r.principal === undefined || pod.serviceAccount === undefined)
    return pod;
  const p = r.principal;
  // spiffe://<td>/ns/<namespace>/sa/<serviceAccount>, compared without building strings.
  const tail = `/ns/${pod.namespace}/sa/${pod.serviceAccount}`;
  return p.endsWith(tail) && p.indexOf('/', 'spiffe://'.length) === p.length - tail.length
    ? pod
    : undefined;
}

const NOT_ISOLATED: NetworkPolicyDecision = {
  allowed: true,
  reason: 'not_isolated',
  policy: undefined,
  selecting: [],
};

/** The decision for one tunnelled connection. */
export function networkPolicyAllows(
  r: NetworkPolicyRequest,
  index: PolicyIndex,
): NetworkPolicyDecision {
  const list = index.networkPolicies.get(r.destination.namespace);
  if (list === undefined) return NOT_ISOLATED;
  let selecting: PolicyRef[] | undefined;
  let allowedBy: NetworkPolicy | undefined;
  let source: PolicyPod | undefined | null = null;
  for (const policy of list) {
    if (!selectorMatches(policy.podSelector, r.destination.labels)) continue;
    (selecting ??= []).push(refOf(policy, 'NetworkPolicy'));
    if (allowedBy !== undefined) continue;
    if (source === null) source = sourcePod(r, index);
    if (networkPolicyAllowsOne(policy, r, source, index)) allowedBy = policy;
  }
  if (selecting === undefined) return NOT_ISOLATED;
  if (allowedBy === undefined)
    return { allowed: false, reason: 'not_allowed', policy: undefined, selecting };
  return {
    allowed: true,
    reason: 'allowed_by_policy',
    policy: refOf(allowedBy, 'NetworkPolicy'),
    selecting,
  };
}
