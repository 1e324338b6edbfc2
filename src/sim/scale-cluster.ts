/**
 * A large, deterministic cluster in the file source's format (a v1 List
 * of Namespaces, Nodes, Pods, Services, EndpointSlices and policies), for
 * measuring what every daemon pays to keep the whole cluster in discovery
 * (bench/scale.bench.ts) and for property tests of the indexes.
 *
 * The objects look like what the API server returns, bulk included:
 * managedFields, annotations, owner references, container specs with
 * images, env and probes, status conditions. Discovery must strip them;
 * a generator of bare objects would flatter its memory.
 *
 * Invariants: the same seed and sizes give the same objects; every pod IP
 * lies in its node's `spec.podCIDRs`, every ClusterIP in the ServiceCIDR
 * 10.96.0.0/12; every Service has one EndpointSlice whose endpoints are
 * pods of its namespace carrying its selector.
 */

/** How big a cluster to make. */
export interface ScaleClusterSize {
  readonly nodes: number;
  readonly namespaces: number;
  readonly pods: number;
  readonly services: number;
  /** NetworkPolicies, AuthorizationPolicies and PeerAuthentications, each. */
  readonly policies: number;
}

/** 10,000 pods, 2,000 Services and 500 nodes. */
export const LARGE_CLUSTER: ScaleClusterSize = {
  nodes: 500,
  namespaces: 100,
  pods: 10_000,
  services: 2_000,
  policies: 50,
};

/** The namespace label the generated cluster enrols with (half the namespaces carry it). */
export const SCALE_ENROLMENT_LABEL = { key: 'io.cilium/mtls-enabled', value: 'true' } as const;

/** A small seeded PRNG (mulberry32): deterministic, uniform enough for a workload generator. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Obj = Record<string, unknown>;

const nsName = (i: number): string => `team-${i}`;
const nodeName = (i: number): string => `node-${i}`;
/** Node i owns 10.(64 + i / 256).(i % 256).0/24 (room for 65,536 nodes in 10.64.0.0/10). */
const nodeCidr = (i: number): string => `10.${64 + (i >> 8)}.${i & 255}.0/24`;
const podIp = (node: number, slot: number): string =>
  `10.${64 + (node >> 8)}.${node & 255}.${slot + 2}`;
/** Service k gets 10.96.0.0/12 + k + 10. */
const clusterIp = (k: number): string => {
  const n = k + 10;
  return `10.${96 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
};
const hex = (rand: () => number, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
};
const uid = (rand: () => number): string =>
  `${hex(rand, 8)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 12)}`;
const TIME = '2026-11-30T12:00:00Z';

function managedFields(manager: string): Obj[] {
  return [
    {
      manager,
      operation: 'Update',
      apiVersion: 'v1',
      time: TIME,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} }, 'f:ownerReferences': {} },
        'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {} } } },
        'f:status': { 'f:conditions': {}, 'f:podIP': {}, 'f:podIPs': {} },
      },
    },
  ];
}

/** One pod as the API returns it. */
export function scalePod(opts: {
  readonly namespace: string;
  readonly name: string;
  readonly app: string;
  readonly node: number;
  readonly ip: string;
  readonly rand: () => number;
}): Obj {
  const { namespace, name, app, node, ip, rand } = opts;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      uid: uid(rand),
      resourceVersion: String(1000 + Math.floor(rand() * 1e6)),
      creationTimestamp: TIME,
      generateName: `${app}-${hex(rand, 10)}-`,
      labels: { app, 'pod-template-hash': hex(rand, 10), tier: rand() < 0.5 ? 'web' : 'backend' },
      annotations: {
        'kubectl.kubernetes.io/restartedAt': TIME,
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${app}-${hex(rand, 10)}`,
          uid: uid(rand),
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: managedFields('kube-controller-manager'),
    },
    spec: {
      nodeName: nodeName(node),
      serviceAccountName: app,
      containers: [
        {
          name: 'app',
          image: `registry.example.com/${namespace}/${app}:v1.${Math.floor(rand() * 100)}.0`,
          ports: [
            { name: 'http', containerPort: 8080, protocol: 'TCP' },
            { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
          ],
          env: [
            { name: 'LOG_LEVEL', value: 'info' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
          volumeMounts: [
            {
              name: 'kube-api-access',
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
            },
          ],
        },
      ],
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: {} }] } }],
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
      ],
    },
    status: {
      phase: 'Running',
      hostIP: `192.168.${node >> 8}.${node & 255}`,
      podIP: ip,
      podIPs: [{ ip }],
      startTime: TIME,
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
        type,
        status: 'True',
        lastTransitionTime: TIME,
      })),
      containerStatuses: [
        {
          name: 'app',
          ready: true,
          restartCount: 0,
          image: `registry.example.com/${namespace}/${app}:v1`,
          imageID: `registry.example.com/${namespace}/${app}@sha256:${hex(rand, 64)}`,
          containerID: `containerd://${hex(rand, 64)}`,
          state: { running: { startedAt: TIME } },
        },
      ],
    },
  };
}

/** One ClusterIP Service as the API returns it. */
export function scaleService(namespace: string, name: string, ip: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      uid: `svc-${namespace}-${name}`,
      resourceVersion: '1000',
      creationTimestamp: TIME,
      labels: { app: name },
      annotations: { 'meta.helm.sh/release-name': name },
      managedFields: managedFields('helm'),
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: ip,
      clusterIPs: [ip],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      selector: { app: name },
      sessionAffinity: 'None',
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' },
        { name: 'metrics', port: 9090, protocol: 'TCP', targetPort: 9090 },
      ],
    },
    status: { loadBalancer: {} },
  };
}

/** The EndpointSlice of a Service, one endpoint per backend pod. */
export function scaleEndpointSlice(
  namespace: string,
  service: string,
  backends: readonly { readonly name: string; readonly ip: string; readonly node: number }[],
  suffix = 'a',
): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service}-${suffix}`,
      namespace,
      resourceVersion: '1000',
      labels: {
        'kubernetes.io/service-name': service,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': TIME },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: service, uid: 'x' }],
      managedFields: managedFields('kube-controller-manager'),
    },
    addressType: 'IPv4',
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'metrics', port: 9090, protocol: 'TCP' },
    ],
    endpoints: backends.map((b) => ({
      addresses: [b.ip],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: nodeName(b.node),
      targetRef: { kind: 'Pod', namespace, name: b.name, uid: 'x' },
    })),
  };
}

/** One Node as the API returns it (a pod CIDR, addresses, and the bulk of its status). */
export function scaleNode(i: number): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: nodeName(i),
      resourceVersion: '1000',
      labels: {
        'kubernetes.io/hostname': nodeName(i),
        'kubernetes.io/os': 'linux',
        'topology.kubernetes.io/zone': `zone-${i % 3}`,
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
      managedFields: managedFields('kubelet'),
    },
    spec: { podCIDR: nodeCidr(i), podCIDRs: [nodeCidr(i)], providerID: `sim://${nodeName(i)}` },
    status: {
      addresses: [
        { type: 'InternalIP', address: `192.168.${i >> 8}.${i & 255}` },
        { type: 'Hostname', address: nodeName(i) },
      ],
      capacity: { cpu: '16', memory: '65536Mi', pods: '110' },
      allocatable: { cpu: '15800m', memory: '64000Mi', pods: '110' },
      conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({
        type,
        status: type === 'Ready' ? 'True' : 'False',
        lastHeartbeatTime: TIME,
        lastTransitionTime: TIME,
      })),
      nodeInfo: { kubeletVersion: 'v1.33.0', containerRuntimeVersion: 'containerd://2.0.0' },
      images: Array.from({ length: 10 }, (_, k) => ({
        names: [`registry.example.com/image-${k}@sha256:${'0'.repeat(64)}`],
        sizeBytes: 100_000_000 + k,
      })),
    },
  };
}

/** A generated cluster: the objects, and what the bench needs to make changes to it. */
export interface ScaleCluster {
  readonly objects: readonly Obj[];
  readonly size: ScaleClusterSize;
  /** The address of pod slot `slot` of node `node` (slots beyond the generated pods are free). */
  podIp(node: number, slot: number): string;
  /** The ClusterIP of the k-th Service (k beyond the generated ones is free). */
  clusterIp(k: number): string;
  /** Pods per node: the first free slot on each node. */
  readonly podsPerNode: number;
}

/** A v1 List of the whole generated cluster (the file source's format). */
export function generateScaleCluster(
  size: ScaleClusterSize = LARGE_CLUSTER,
  seed = 17,
): ScaleCluster {
  const rand = seededRandom(seed);
  const objects: Obj[] = [];
  objects.push({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    metadata: { name: 'kubernetes' },
    spec: { cidrs: ['10.96.0.0/12'] },
  });
  for (let i = 0; i < size.namespaces; i++)
    objects.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: nsName(i),
        resourceVersion: '1000',
        labels: {
          'kubernetes.io/metadata.name': nsName(i),
          ...(i % 2 === 0 ? { [SCALE_ENROLMENT_LABEL.key]: SCALE_ENROLMENT_LABEL.value } : {}),
        },
      },
    });
  for (let i = 0; i < size.nodes; i++) objects.push(scaleNode(i));
  const podsPerNode = Math.ceil(size.pods / size.nodes);
  // Each Service's app has pods; pods are spread over the nodes round-robin.
  const appsPerNs = Math.max(1, Math.ceil(size.services / size.namespaces));
  const backends = new Map<string, { name: string; ip: string; node: number }[]>();
  for (let p = 0; p < size.pods; p++) {
    const node = p % size.nodes;
    const slot = Math.floor(p / size.nodes);
    const ns = nsName(p % size.namespaces);
    const app = `app-${Math.floor(p / size.namespaces) % appsPerNs}`;
    const name = `${app}-${p}`;
    const ip = podIp(node, slot);
    objects.push(scalePod({ namespace: ns, name, app, node, ip, rand }));
    const key = `${ns}/${app}`;
    const list = backends.get(key) ?? [];
    list.push({ name, ip, node });
    backends.set(key, list);
  }
  for (let k = 0; k < size.services; k++) {
    const ns = nsName(k % size.namespaces);
    const app = `app-${Math.floor(k / size.namespaces) % appsPerNs}`;
    objects.push(scaleService(ns, app, clusterIp(k)));
    objects.push(scaleEndpointSlice(ns, app, backends.get(`${ns}/${app}`) ?? []));
  }
  for (let i = 0; i < size.policies; i++) {
    const ns = nsName((i * 2) % size.namespaces);
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `np-${i}`, namespace: ns },
      spec: {
        podSelector: { matchLabels: { tier: 'backend' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { tier: 'web' } } }],
            ports: [{ protocol: 'TCP', port: 'http' }],
          },
        ],
      },
    });
    objects.push({
      apiVersion: 'security.meshless.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: `authz-${i}`, namespace: ns },
      spec: {
        selector: { matchLabels: { app: 'app-0' } },
        action: 'ALLOW',
        rules: [
          { from: [{ source: { namespaces: [ns, nsName((i * 2 + 2) % size.namespaces)] } }] },
        ],
      },
    });
    objects.push({
      apiVersion: 'security.meshless.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: `pa-${i}`, namespace: ns },
      spec: { mtls: { mode: 'STRICT' } },
    });
  }
  return {
    objects,
    size,
    podIp,
    clusterIp,
    podsPerNode,
  };
}

/** The generated cluster as the file source reads it: one v1 List, JSON. */
export function scaleClusterDocument(objects: readonly Obj[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}

export { nsName as scaleNamespaceName, nodeName as scaleNodeName };
