/**
 * The workload model both discovery sources yield: the namespaces, pods,
 * nodes, Services, EndpointSlices and ServiceCIDRs of the cluster as far as meshless
 * cares, built from the API's objects (Services, EndpointSlices and Nodes
 * are parsed in service-model.ts), and the policies: meshless's
 * AuthorizationPolicies and PeerAuthentications and the NetworkPolicies
 * (parsed in src/policy/). Pure parsing; unknown fields are
 * ignored, malformed objects are reported and skipped, never half-read;
 * a policy with a field meshless cannot honour is kept, fail safe (see
 * src/policy/), never dropped.
 */
import { MeshlessError } from '../errors.js';
import {
  SECURITY_API_VERSION,
  authorizationPolicyFromObject,
  type AuthorizationPolicy,
} from '../policy/authorization-policy.js';
import {
  NETWORK_POLICY_API_VERSION,
  networkPolicyFromObject,
  type NetworkPolicy,
} from '../policy/network-policy.js';
import {
  peerAuthenticationFromObject,
  type PeerAuthentication,
} from '../policy/peer-authentication.js';
import {
  endpointSliceFromObject,
  nodeFromObject,
  serviceCidrFromObject,
  serviceFromObject,
  type EndpointSliceInfo,
  type NodeInfo,
  type ServiceCidrInfo,
  type ServiceInfo,
} from './service-model.js';

export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** `metadata.labels` (policy selectors match them). */
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly nodeName: string | undefined;
  readonly hostNetwork: boolean;
  readonly ips: readonly string[];
  /** Named TCP container ports (a Service's named targetPort resolves through them). */
  readonly containerPorts: Readonly<Record<string, number>>;
}

/** An immutable view of the cluster. */
export interface ClusterSnapshot {
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  /** Keyed by `namespace/name`. */
  readonly pods: ReadonlyMap<string, PodInfo>;
  /** Keyed by name. */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  /** Keyed by `namespace/name`. */
  readonly services: ReadonlyMap<string, ServiceInfo>;
  /** Keyed by `namespace/name` of the slice. */
  readonly endpointSlices: ReadonlyMap<string, EndpointSliceInfo>;
  /** ServiceCIDR objects (Kubernetes 1.33+), keyed by name. */
  readonly serviceCidrs: ReadonlyMap<string, ServiceCidrInfo>;
  /** `security.meshless.dev/v1alpha1` AuthorizationPolicies, keyed by `namespace/name`. */
  readonly authorizationPolicies: ReadonlyMap<string, AuthorizationPolicy>;
  /** `security.meshless.dev/v1alpha1` PeerAuthentications, keyed by `namespace/name`. */
  readonly peerAuthentications: ReadonlyMap<string, PeerAuthentication>;
  /** `networking.k8s.io/v1` NetworkPolicies, keyed by `namespace/name`. */
  readonly networkPolicies: ReadonlyMap<string, NetworkPolicy>;
}

/** The key of a namespaced object in a snapshot's maps. */
export const objectKey = (namespace: string, name: string): string => `${namespace}/${name}`;
export const podKey = objectKey;

export const EMPTY_SNAPSHOT: ClusterSnapshot = {
  namespaces: new Map(),
  pods: new Map(),
  nodes: new Map(),
  services: new Map(),
  endpointSlices: new Map(),
  serviceCidrs: new Map(),
  authorizationPolicies: new Map(),
  peerAuthentications: new Map(),
  networkPolicies: new Map(),
};

/** How many objects of each kind a snapshot holds (for logs). */
export function snapshotCounts(s: ClusterSnapshot): Record<string, number> {
  return {
    namespaces: s.namespaces.size,
    pods: s.pods.size,
    nodes: s.nodes.size,
    services: s.services.size,
    endpointSlices: s.endpointSlices.size,
    serviceCidrs: s.serviceCidrs.size,
    authorizationPolicies: s.authorizationPolicies.size,
    peerAuthentications: s.peerAuthentications.size,
    networkPolicies: s.networkPolicies.size,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function labelsOf(meta: Record<string, unknown>): Record<string, string> {
  const raw = meta['labels'];
  const out: Record<string, string> = {};
  if (!isRecord(raw)) return out;
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') out[k] = v;
  return out;
}

function bad(what: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_DISCOVERY_OBJECT', what);
}

/** A v1 Namespace object to NamespaceInfo. */
export function namespaceFromObject(obj: unknown): NamespaceInfo {
  if (!isRecord(obj) || !isRecord(obj['metadata'])) throw bad('Namespace without metadata');
  const name = obj['metadata']['name'];
  if (typeof name !== 'string' || name === '') throw bad('Namespace without metadata.name');
  return { name, labels: labelsOf(obj['metadata']) };
}

/** A v1 Pod object to PodInfo. */
export function podFromObject(obj: unknown): PodInfo {
  if (!isRecord(obj) || !isRecord(obj['metadata'])) throw bad('Pod without metadata');
  const meta = obj['metadata'];
  const name = meta['name'];
  const namespace = meta['namespace'] ?? 'default';
  if (typeof name !== 'string' || name === '') throw bad('Pod without metadata.name');
  if (typeof namespace !== 'string') throw bad(`Pod ${name}: metadata.namespace is not a string`);
  const spec = isRecord(obj['spec']) ? obj['spec'] : {};
  const status = isRecord(obj['status']) ? obj['status'] : {};
  const sa = spec['serviceAccountName'] ?? spec['serviceAccount'] ?? 'default';
  const ips: string[] = [];
  if (Array.isArray(status['podIPs'])) {
    for (const entry of status['podIPs'])
      if (isRecord(entry) && typeof entry['ip'] === 'string') ips.push(entry['ip']);
  } else if (typeof status['podIP'] === 'string') ips.push(status['podIP']);
  const containerPorts: Record<string, number> = {};
  for (const c of Array.isArray(spec['containers']) ? spec['containers'] : []) {
    if (!isRecord(c) || !Array.isArray(c['ports'])) continue;
    for (const p of c['ports'])
      if (
        isRecord(p) &&
        typeof p['name'] === 'string' &&
        typeof p['containerPort'] === 'number' &&
        (p['protocol'] ?? 'TCP') === 'TCP'
      )
        containerPorts[p['name']] = p['containerPort'];
  }
  return {
    namespace,
    name,
    uid: typeof meta['uid'] === 'string' ? meta['uid'] : '',
    labels: labelsOf(meta),
    serviceAccount: typeof sa === 'string' && sa !== '' ? sa : 'default',
    nodeName: typeof spec['nodeName'] === 'string' ? spec['nodeName'] : undefined,
    hostNetwork: spec['hostNetwork'] === true,
    ips,
    containerPorts,
  };
}

/**
 * A snapshot from a list of objects (a v1 List's items, or the documents of
 * a multi-document YAML). Objects of other kinds are ignored; malformed ones
 * make the whole document invalid (the caller keeps its last good state).
 */
export function snapshotFromObjects(objects: readonly unknown[]): ClusterSnapshot {
  const namespaces = new Map<string, NamespaceInfo>();
  const pods = new Map<string, PodInfo>();
  const nodes = new Map<string, NodeInfo>();
  const services = new Map<string, ServiceInfo>();
  const endpointSlices = new Map<string, EndpointSliceInfo>();
  const serviceCidrs = new Map<string, ServiceCidrInfo>();
  const authorizationPolicies = new Map<string, AuthorizationPolicy>();
  const peerAuthentications = new Map<string, PeerAuthentication>();
  const networkPolicies = new Map<string, NetworkPolicy>();
  // A List of another API's kinds of the same name (Istio's) is not ours; no apiVersion: the item of a typed list.
  const apiIs = (obj: Record<string, unknown>, apiVersion: string): boolean =>
    obj['apiVersion'] === undefined || obj['apiVersion'] === apiVersion;
  const named = <T>(where: string, parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      throw bad(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const visit = (obj: unknown, where: string, itemKind?: string): void => {
    if (!isRecord(obj)) throw bad(`${where} is not an object`);
    // Items of a typed list (PodList, NamespaceList) come without a kind from the API.
    const kind = obj['kind'] ?? itemKind;
    if (kind === 'List' || (typeof kind === 'string' && kind.endsWith('List'))) {
      const items = obj['items'];
      if (!Array.isArray(items)) throw bad(`${where}: a List without items`);
      const of = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
      items.forEach((item, i) => visit(item, `${where}.items[${i}]`, of));
    } else if (kind === 'Namespace') {
      const ns = namespaceFromObject(obj);
      namespaces.set(ns.name, ns);
    } else if (kind === 'Pod') {
      const pod = podFromObject(obj);
      pods.set(podKey(pod.namespace, pod.name), pod);
    } else if (kind === 'Node') {
      const node = nodeFromObject(obj);
      nodes.set(node.name, node);
    } else if (kind === 'Service') {
      const svc = serviceFromObject(obj);
      services.set(objectKey(svc.namespace, svc.name), svc);
    } else if (kind === 'EndpointSlice') {
      const slice = endpointSliceFromObject(obj);
      endpointSlices.set(objectKey(slice.namespace, slice.name), slice);
    } else if (kind === 'ServiceCIDR') {
      const range = serviceCidrFromObject(obj);
      serviceCidrs.set(range.name, range);
    } else if (kind === 'AuthorizationPolicy' && apiIs(obj, SECURITY_API_VERSION)) {
      const p = named(where, () => authorizationPolicyFromObject(obj));
      authorizationPolicies.set(objectKey(p.namespace, p.name), p);
    } else if (kind === 'PeerAuthentication' && apiIs(obj, SECURITY_API_VERSION)) {
      const p = named(where, () => peerAuthenticationFromObject(obj));
      peerAuthentications.set(objectKey(p.namespace, p.name), p);
    } else if (kind === 'NetworkPolicy' && apiIs(obj, NETWORK_POLICY_API_VERSION)) {
      const p = named(where, () => networkPolicyFromObject(obj));
      networkPolicies.set(objectKey(p.namespace, p.name), p);
    }
  };
  objects.forEach((o, i) => visit(o, `document ${i}`));
  return {
    namespaces,
    pods,
    nodes,
    services,
    endpointSlices,
    serviceCidrs,
    authorizationPolicies,
    peerAuthentications,
    networkPolicies,
  };
}

/**
 * Structural equality of two parsed models: plain objects, arrays, Maps
 * and primitives compared deeply; anything else (a RegExp) only by
 * identity, so it never counts as unchanged by mistake.
 */
export function sameModel(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameModel(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !sameModel(v, b.get(k))) return false;
    return true;
  }
  const protoA: unknown = Object.getPrototypeOf(a);
  if (protoA !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  if (keys.length !== Object.keys(rb).length) return false;
  for (const k of keys) if (!Object.hasOwn(rb, k) || !sameModel(ra[k], rb[k])) return false;
  return true;
}

/** `next`'s map with `prev`'s models where they are equal; `prev` itself when nothing changed. */
function keepUnchangedMap<V>(
  prev: ReadonlyMap<string, V>,
  next: ReadonlyMap<string, V>,
): ReadonlyMap<string, V> {
  const out = new Map<string, V>();
  let changed = prev.size !== next.size;
  for (const [k, v] of next) {
    const old = prev.get(k);
    if (old !== undefined && sameModel(old, v)) out.set(k, old);
    else {
      out.set(k, v);
      changed = true;
    }
  }
  return changed ? out : prev;
}

/**
 * `next` with every model equal to `prev`'s replaced by `prev`'s object, and
 * every map without a change replaced by `prev`'s map: consumers then tell
 * what changed by identity (`===`), as they do for the Kubernetes source,
 * whose informers keep unchanged models.
 */
export function keepUnchanged(prev: ClusterSnapshot, next: ClusterSnapshot): ClusterSnapshot {
  return {
    namespaces: keepUnchangedMap(prev.namespaces, next.namespaces),
    pods: keepUnchangedMap(prev.pods, next.pods),
    nodes: keepUnchangedMap(prev.nodes, next.nodes),
    services: keepUnchangedMap(prev.services, next.services),
    endpointSlices: keepUnchangedMap(prev.endpointSlices, next.endpointSlices),
    serviceCidrs: keepUnchangedMap(prev.serviceCidrs, next.serviceCidrs),
    authorizationPolicies: keepUnchangedMap(prev.authorizationPolicies, next.authorizationPolicies),
    peerAuthentications: keepUnchangedMap(prev.peerAuthentications, next.peerAuthentications),
    networkPolicies: keepUnchangedMap(prev.networkPolicies, next.networkPolicies),
  };
}
