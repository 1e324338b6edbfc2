/**
 * The one call the destination's data plane makes per inbound connection,
 * and again for every established one when the policies change: identity
 * authorization and STRICT mTLS ({@link authorize}), then, for a connection
 * that arrived over HBONE, the destination pod's NetworkPolicies
 * ({@link networkPolicyAllows}, unless config `enforceNetworkPolicy` is
 * off). Plaintext on 15006 reached the pod's own port through the CNI,
 * which enforced NetworkPolicy on it already.
 *
 * Pure; the caller turns a denial into a 401 (HBONE) or a reset
 * (plaintext), a record with outcome `denied` naming `policy`, and a metric
 * labelled by it.
 */
import { authorize, type AuthorizationDecision } from './authorize.js';
import type { IpAddress } from './ip-address.js';
import type { Labels } from './label-selector.js';
import { networkPolicyAllows } from './network-policy-check.js';
import type { PolicyIndex } from './policy-index.js';
import type { PolicyRef } from './policy-ref.js';

export interface InboundConnection {
  /** HBONE (15008, with the verified peer principal) or plaintext (15006, none). */
  readonly transport: 'hbone' | 'plaintext';
  /** The verified peer SPIFFE ID; undefined for plaintext. */
  readonly principal: string | undefined;
  /** The source pod's address. */
  readonly sourceIp: IpAddress;
  readonly destinationIp: IpAddress;
  /** The port the connection is for (an HBONE stream's inner target port). */
  readonly destinationPort: number;
  /** The destination pod (e.g. `index.pods.get('ns/name')`). */
  readonly destination: {
    readonly namespace: string;
    readonly labels: Labels;
    readonly containerPorts: Readonly<Record<string, number>>;
  };
}

export interface InboundDecision {
  readonly allowed: boolean;
  /** Which check decided a denial (`authorization` when allowed). */
  readonly layer: 'authorization' | 'network_policy';
  /** authorize()'s reason, or `network_policy_denied`. */
  readonly reason: AuthorizationDecision['reason'] | 'network_policy_denied';
  /** The deciding policy; for a NetworkPolicy denial the first that selects the pod. */
  readonly policy: PolicyRef | undefined;
  /** Dry-run AuthorizationPolicies that matched (log them; they never decide). */
  readonly dryRun: AuthorizationDecision['dryRun'];
}

export interface InboundOptions {
  /** Config `enforceNetworkPolicy`. */
  readonly enforceNetworkPolicy: boolean;
}

/** The decision for one inbound connection. */
export function decideInbound(
  c: InboundConnection,
  index: PolicyIndex,
  options: InboundOptions,
): InboundDecision {
  const principal = c.transport === 'hbone' ? c.principal : undefined;
  const a = authorize(
    {
      destination: c.destination,
      principal,
      sourceIp: c.sourceIp,
      destinationIp: c.destinationIp,
      destinationPort: c.destinationPort,
    },
    index,
  );
  if (!a.allowed || c.transport !== 'hbone' || !options.enforceNetworkPolicy)
    return { ...a, layer: 'authorization' };
  const n = networkPolicyAllows(
    { destination: c.destination, sourceIp: c.sourceIp, port: c.destinationPort, principal },
    index,
  );
  if (n.allowed) return { ...a, layer: 'authorization' };
  return {
    allowed: false,
    layer: 'network_policy',
    reason: 'network_policy_denied',
    policy: n.selecting[0],
    dryRun: a.dryRun,
  };
}

/**
 * After a policy change: the established connections the new index denies
 * (close them, as ztunnel's connection manager does), with the decision.
 */
export function deniedAfterChange<T>(
  live: Iterable<T>,
  connectionOf: (item: T) => InboundConnection,
  index: PolicyIndex,
  options: InboundOptions,
): { readonly item: T; readonly decision: InboundDecision }[] {
  const out: { item: T; decision: InboundDecision }[] = [];
  for (const item of live) {
    const decision = decideInbound(connectionOf(item), index, options);
    if (!decision.allowed) out.push({ item, decision });
  }
  return out;
}
