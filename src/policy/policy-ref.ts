/**
 * A policy by kind and name, as decisions, records and metrics name it
 * (`namespace/name`). One reference object per policy object, cached, so a
 * per-connection decision does not allocate one.
 */

export interface PolicyRef {
  readonly kind: 'AuthorizationPolicy' | 'PeerAuthentication' | 'NetworkPolicy';
  readonly namespace: string;
  readonly name: string;
}

const cache = new WeakMap<object, PolicyRef>();

/** The reference of `policy` (the same object every time for the same policy). */
export function refOf(
  policy: { readonly namespace: string; readonly name: string },
  kind: PolicyRef['kind'],
): PolicyRef {
  let ref = cache.get(policy);
  if (ref === undefined) {
    ref = { kind, namespace: policy.namespace, name: policy.name };
    cache.set(policy, ref);
  }
  return ref;
}
