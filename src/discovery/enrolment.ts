/**
 * Who is enrolled: one rule, shared by the daemon (at ADD and when labels
 * change) and the plugin's fallback. Enrolment is per namespace, by label;
 * excluded namespaces and host-network pods never are.
 */
import { matchesLabel, formatLabel, type LabelRequirement } from '../config/label.js';
import type { NamespaceInfo, PodInfo } from './cluster-state.js';

export interface EnrolmentPolicy {
  readonly label: LabelRequirement;
  readonly excludeNamespaces: readonly string[];
}

export type EnrolmentDecision =
  | { readonly kind: 'enrolled'; readonly reason: string }
  | { readonly kind: 'not-enrolled'; readonly reason: string }
  | { readonly kind: 'unknown'; readonly reason: string };

export function decideEnrolment(
  policy: EnrolmentPolicy,
  namespaceName: string,
  namespace: NamespaceInfo | undefined,
  pod: PodInfo | undefined,
): EnrolmentDecision {
  if (policy.excludeNamespaces.includes(namespaceName))
    return { kind: 'not-enrolled', reason: `namespace ${namespaceName} is excluded` };
  if (pod?.hostNetwork)
    return { kind: 'not-enrolled', reason: 'host-network pods are never enrolled' };
  if (namespace === undefined)
    return { kind: 'unknown', reason: `namespace ${namespaceName} is not known to discovery yet` };
  if (!matchesLabel(namespace.labels, policy.label))
    return {
      kind: 'not-enrolled',
      reason: `namespace ${namespaceName} lacks ${formatLabel(policy.label)}`,
    };
  return {
    kind: 'enrolled',
    reason: `namespace ${namespaceName} has ${formatLabel(policy.label)}`,
  };
}
