/**
 * istiod's NodeAuthorizer rule (docs/signer.md), as a pure decision: an attested
 * node may obtain the SVID of `spiffe://<td>/ns/<ns>/sa/<sa>` only while the
 * signer's own discovery shows a pod of that namespace and service account
 * whose spec.nodeName is that node. A pending pod (no nodeName) grants
 * nothing, nor does a host-network pod (it is never enrolled). A
 * compromised node therefore obtains only the identities of pods scheduled
 * on it.
 */
import type { ClusterSnapshot, PodInfo } from '../discovery/cluster-state.js';
import { parseSpiffeId } from '../identity/spiffe-id.js';

/** What the authorizer decided. */
export type NodeAuthorization =
  | {
      readonly allowed: true;
      readonly namespace: string;
      readonly serviceAccount: string;
      readonly pod: string;
    }
  | { readonly allowed: false; readonly reason: NodeRefusal; readonly message: string };

export type NodeRefusal = 'bad_identity' | 'foreign_trust_domain' | 'not_on_node';

const WORKLOAD_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Decides whether `node` may obtain `identity`; see the file comment. */
export function authorizeNode(
  snapshot: ClusterSnapshot,
  trustDomain: string,
  node: string,
  identity: string,
): NodeAuthorization {
  let path: string;
  let td: string;
  try {
    const id = parseSpiffeId(identity);
    path = id.path;
    td = id.trustDomain;
  } catch (err) {
    return {
      allowed: false,
      reason: 'bad_identity',
      message: `"${identity}" is not a SPIFFE ID: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  if (td !== trustDomain)
    return {
      allowed: false,
      reason: 'foreign_trust_domain',
      message: `${identity} is not in trust domain ${trustDomain}`,
    };
  const m = WORKLOAD_PATH.exec(path);
  if (!m)
    return {
      allowed: false,
      reason: 'bad_identity',
      message: `${identity} is not a workload identity (/ns/<namespace>/sa/<service account>)`,
    };
  const [, namespace = '', serviceAccount = ''] = m;
  let match: PodInfo | undefined;
  for (const pod of snapshot.pods.values()) {
    if (
      pod.namespace === namespace &&
      pod.serviceAccount === serviceAccount &&
      pod.nodeName === node &&
      !pod.hostNetwork
    ) {
      match = pod;
      break;
    }
  }
  if (!match)
    return {
      allowed: false,
      reason: 'not_on_node',
      message: `no pod of ${namespace} with service account ${serviceAccount} is scheduled on node ${node}`,
    };
  return { allowed: true, namespace, serviceAccount, pod: `${match.namespace}/${match.name}` };
}
