/**
 * What the demo builds: two nodes, an enrolled and a plain namespace with
 * pods on both nodes, a Service in front of `api`, and the traffic rows:
 * the four of the behaviour matrix (docs/reference/behaviour.md) and one
 * through the Service's ClusterIP, all across the node link, so the capture
 * sees them.
 */
import type { SimServiceSpec } from '../sim/sim-cluster.js';

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

/** A Service of the demo: ClusterIP, port, and its backend pods (by name). */
export type DemoService = SimServiceSpec;

/** The Services: `api` in the enrolled namespace (kube-proxy's DNAT simulated on both nodes). */
export const DEMO_SERVICES: readonly DemoService[] = [
  {
    name: 'api',
    namespace: SECURE_NAMESPACE,
    clusterIp: '10.96.0.10',
    port: 80,
    targetPort: POD_PORT,
    backends: ['api'],
  },
];

/**
 * The demo's policy: `cache` refuses `web`'s identity. web -> cache is
 * then denied at cache's node (401 to web's daemon, which resets web's
 * connection): identity-aware authorization, judged like the rest.
 */
export const DEMO_POLICY_NAME = 'cache-denies-web';
export const DEMO_POLICIES: readonly unknown[] = [
  {
    apiVersion: 'security.meshless.dev/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: DEMO_POLICY_NAME, namespace: SECURE_NAMESPACE },
    spec: {
      selector: { matchLabels: { app: 'cache' } },
      action: 'DENY',
      rules: [
        { from: [{ source: { principals: [`cluster.local/ns/${SECURE_NAMESPACE}/sa/sa-web`] } }] },
      ],
    },
  },
];

/**
 * A traffic row: a connection from `source` to `destination` (pod names);
 * with `service`, the source dials that Service's ClusterIP and
 * `destination` is the backend it must reach; with `deniedBy`, the
 * destination's policy (`namespace/name`) must refuse it.
 */
export interface TrafficPair {
  readonly source: string;
  readonly destination: string;
  readonly service?: string;
  readonly deniedBy?: string;
}

/** The rows of the behaviour matrix (docs/reference/behaviour.md), node1 -> node2. */
export const DEMO_TRAFFIC: readonly TrafficPair[] = [
  { source: 'web', destination: 'api' }, // enrolled -> enrolled
  { source: 'web', destination: 'batch' }, // enrolled -> not enrolled
  { source: 'legacy', destination: 'api' }, // not enrolled -> enrolled
  { source: 'legacy', destination: 'batch' }, // not enrolled -> not enrolled
  { source: 'web', destination: 'api', service: 'api' }, // enrolled -> Service ClusterIP -> enrolled
  // enrolled -> enrolled, denied by the destination's AuthorizationPolicy
  { source: 'web', destination: 'cache', deniedBy: `${SECURE_NAMESPACE}/${DEMO_POLICY_NAME}` },
];
