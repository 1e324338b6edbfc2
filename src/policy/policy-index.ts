/**
 * The policies of one cluster snapshot, compiled once per snapshot for the
 * data plane's per-connection checks: AuthorizationPolicies,
 * PeerAuthentications and ingress NetworkPolicies grouped by namespace
 * (sorted by name, so explanations and the deciding policy are stable),
 * namespace labels, and pods by IP (the source of a tunnelled connection).
 *
 * Invariant: the index is immutable; a new snapshot builds a new index, so
 * a check never sees half of an update ({@link PolicyIndexBuilder} reuses
 * the unchanged parts of the last one, never changes them).
 */
import type { AuthorizationPolicy } from './authorization-policy.js';
import { parseIpAddress, type IpAddress } from './ip-address.js';
import type { Labels } from './label-selector.js';
import type { NetworkPolicy } from './network-policy.js';
import type { PeerAuthentication } from './peer-authentication.js';

export const DEFAULT_ROOT_NAMESPACE = 'meshless-system';

/** A pod as the policies see it. */
export interface PolicyPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** Its service account (the identity a tunnel from it must carry); absent: not checked. */
  readonly serviceAccount?: string;
  readonly ips: readonly string[];
  readonly hostNetwork: boolean;
  /** Named TCP container ports (NetworkPolicy named ports resolve through them). */
  readonly containerPorts: Readonly<Record<string, number>>;
}

/** What the index is built from (a ClusterSnapshot is one). */
export interface PolicySource {
  readonly namespaces: ReadonlyMap<string, { readonly labels: Labels }>;
  readonly pods: ReadonlyMap<string, PolicyPod>;
  readonly authorizationPolicies: ReadonlyMap<string, AuthorizationPolicy>;
  readonly peerAuthentications: ReadonlyMap<string, PeerAuthentication>;
  readonly networkPolicies: ReadonlyMap<string, NetworkPolicy>;
}

export interface PolicyIndexOptions {
  /** Whose policies apply to every workload (config `rootNamespace`). */
  readonly rootNamespace?: string;
}

/** A policy that could not be honoured as written (log it once per change). */
export interface PolicyProblem {
  readonly kind: 'AuthorizationPolicy' | 'PeerAuthentication' | 'NetworkPolicy';
  readonly namespace: string;
  readonly name: string;
  /** The field at fault, and what meshless does instead. */
  readonly problem: string;
}

/** The AuthorizationPolicies that may apply in one destination namespace, split by action. */
export interface ApplicablePolicies {
  /** The namespace's own policies, then the root namespace's; selectors still to be matched. */
  readonly deny: readonly AuthorizationPolicy[];
  readonly allow: readonly AuthorizationPolicy[];
}

export interface PolicyIndex {
  readonly rootNamespace: string;
  /** AuthorizationPolicies by their own namespace, sorted by name. */
  readonly authorization: ReadonlyMap<string, readonly AuthorizationPolicy[]>;
  /** By destination namespace (one lookup per connection): own policies, then the root namespace's. */
  readonly applicable: ReadonlyMap<string, ApplicablePolicies>;
  /** What applies in a namespace without policies of its own: the root namespace's. */
  readonly rootApplicable: ApplicablePolicies;
  readonly peerAuthentication: ReadonlyMap<string, readonly PeerAuthentication[]>;
  /** Only policies that isolate pods for ingress. */
  readonly networkPolicies: ReadonlyMap<string, readonly NetworkPolicy[]>;
  readonly namespaceLabels: ReadonlyMap<string, Labels>;
  /** Pods by `namespace/name` (a destination's labels and named ports). */
  readonly pods: ReadonlyMap<string, PolicyPod>;
  /** Pods (not hostNetwork) by address key, see {@link addressKey}. */
  readonly podsByIp: ReadonlyMap<number | string, PolicyPod>;
  readonly problems: readonly PolicyProblem[];
}

/** The key of an address in {@link PolicyIndex.podsByIp}: the IPv4 word, or the IPv6 words. */
export function addressKey(ip: IpAddress): number | string {
  return ip.family === 4 ? ip.w3 : `${ip.w0}:${ip.w1}:${ip.w2}:${ip.w3}`;
}

function group<T extends { readonly namespace: string; readonly name: string }>(
  items: Iterable<T>,
  keep: (t: T) => boolean = () => true,
): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    if (!keep(item)) continue;
    const list = out.get(item.namespace);
    if (list === undefined) out.set(item.namespace, [item]);
    else list.push(item);
  }
  for (const list of out.values())
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

/** Compiles the policies of `source` (a builder without history). */
export function buildPolicyIndex(
  source: PolicySource,
  options: PolicyIndexOptions = {},
): PolicyIndex {
  return new PolicyIndexBuilder(options).build(source);
}

/**
 * Builds policy indexes from successive sources, reusing what did not
 * change: each pod's parsed address keys while it is the same object, and
 * the compiled policies while the policy maps and namespaces are the same
 * maps (discovery keeps unchanged models and maps). An index it builds
 * equals a build from scratch of the same source.
 */
export class PolicyIndexBuilder {
  readonly #options: PolicyIndexOptions;
  #addressKeys = new WeakMap<PolicyPod, readonly (number | string)[]>();
  #last: { source: PolicySource; index: PolicyIndex } | undefined;

  constructor(options: PolicyIndexOptions = {}) {
    this.#options = options;
  }

  build(source: PolicySource): PolicyIndex {
    const last = this.#last;
    const policiesSame =
      last !== undefined &&
      last.source.namespaces === source.namespaces &&
      last.source.authorizationPolicies === source.authorizationPolicies &&
      last.source.peerAuthentications === source.peerAuthentications &&
      last.source.networkPolicies === source.networkPolicies;
    if (policiesSame && last.source.pods === source.pods) return last.index;
    const podsByIp = new Map<number | string, PolicyPod>();
    for (const pod of source.pods.values()) {
      if (pod.hostNetwork) continue;
      let keys = this.#addressKeys.get(pod);
      if (keys === undefined) {
        keys = pod.ips.flatMap((text) => {
          const ip = parseIpAddress(text);
          return ip === undefined ? [] : [addressKey(ip)];
        });
        this.#addressKeys.set(pod, keys);
      }
      for (const k of keys) podsByIp.set(k, pod);
    }
    const index: PolicyIndex = {
      ...(policiesSame ? last.index : compilePolicies(source, this.#options)),
      pods: source.pods,
      podsByIp,
    };
    this.#last = { source, index };
    return index;
  }
}

/** Everything of the index but the pods. */
function compilePolicies(
  source: PolicySource,
  options: PolicyIndexOptions,
): Omit<PolicyIndex, 'pods' | 'podsByIp'> {
  const problems: PolicyProblem[] = [];
  for (const p of source.authorizationPolicies.values())
    if (p.unsupported !== undefined)
      problems.push({
        kind: 'AuthorizationPolicy',
        namespace: p.namespace,
        name: p.name,
        problem: `${p.unsupported} is outside the L4 subset: ${p.dryRun ? 'dry-run, reported as a DENY' : 'enforced as DENY'} of every connection to the workloads it selects`,
      });
  for (const p of source.peerAuthentications.values())
    if (p.unsupported !== undefined)
      problems.push({
        kind: 'PeerAuthentication',
        namespace: p.namespace,
        name: p.name,
        problem: `${p.unsupported} cannot be honoured: enforced as STRICT`,
      });
  for (const p of source.networkPolicies.values())
    if (p.invalid !== undefined)
      problems.push({
        kind: 'NetworkPolicy',
        namespace: p.namespace,
        name: p.name,
        problem: `${p.invalid}: isolates the pods it selects and allows nothing`,
      });
  const namespaceLabels = new Map<string, Labels>();
  for (const [name, ns] of source.namespaces) namespaceLabels.set(name, ns.labels);
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const authorization = group(source.authorizationPolicies.values());
  const split = (list: readonly AuthorizationPolicy[]): ApplicablePolicies => ({
    deny: list.filter((p) => p.action === 'DENY'),
    allow: list.filter((p) => p.action === 'ALLOW'),
  });
  const root = authorization.get(rootNamespace) ?? [];
  const applicable = new Map<string, ApplicablePolicies>();
  for (const [ns, own] of authorization)
    applicable.set(ns, split(ns === rootNamespace ? own : [...own, ...root]));
  return {
    rootNamespace,
    authorization,
    applicable,
    rootApplicable: split(root),
    peerAuthentication: group(source.peerAuthentications.values()),
    networkPolicies: group(source.networkPolicies.values(), (p) => p.ingressIsolation),
    namespaceLabels,
    problems,
  };
}

export const EMPTY_POLICY_INDEX: PolicyIndex = buildPolicyIndex({
  namespaces: new Map(),
  pods: new Map(),
  authorizationPolicies: new Map(),
  peerAuthentications: new Map(),
  networkPolicies: new Map(),
});
