/**
 * What the demo builds: two nodes, an enrolled and a plain namespace with
 * pods on both nodes, and the four traffic rows of the behaviour matrix
 * (docs/reference/behaviour.md; all
 * across the node link, so the capture sees them).
 */

/** The enrolled namespace (labelled `io.cilium/mtls-enabled=true`). */
export const SECURE_NAMESPACE = 'secure';
/** The namespace without the label. */
export const PLAIN_NAMESPACE = 'plain';

/** The echo server's port in every pod. */
export const POD_PORT = 8080;

/** Namespace -> enrolled at start. */
export const DEMO_NAMESPACES: Readonly<Record<string, boolean>> = {
  [SECURE_NAMESPACE]: true,
  [PLAIN_NAMESPACE]: false,
};

/** One demo pod. */
export interface DemoPodSpec {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
}

/** The pods: three per namespace, spread over both nodes. Names are unique across namespaces. */
export const DEMO_PODS: readonly DemoPodSpec[] = [
  { name: 'web', namespace: SECURE_NAMESPACE, node: 'node1' },
  { name: 'api', namespace: SECURE_NAMESPACE, node: 'node2' },
  { name: 'cache', namespace: SECURE_NAMESPACE, node: 'node2' },
  { name: 'legacy', namespace: PLAIN_NAMESPACE, node: 'node1' },
  { name: 'batch', namespace: PLAIN_NAMESPACE, node: 'node2' },
  { name: 'report', namespace: PLAIN_NAMESPACE, node: 'node1' },
];

/** A traffic row: a connection from `source` to `destination` (pod names). */
export interface TrafficPair {
  readonly source: string;
  readonly destination: string;
}

/** The rows of the behaviour matrix (docs/reference/behaviour.md), node1 -> node2. */
export const DEMO_TRAFFIC: readonly TrafficPair[] = [
  { source: 'web', destination: 'api' }, // enrolled -> enrolled
  { source: 'web', destination: 'batch' }, // enrolled -> not enrolled
  { source: 'legacy', destination: 'api' }, // not enrolled -> enrolled
  { source: 'legacy', destination: 'batch' }, // not enrolled -> not enrolled
];
