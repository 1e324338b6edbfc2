/**
 * Services and their backends as meshless needs them, parsed from v1
 * Service, discovery.k8s.io/v1 EndpointSlice, networking.k8s.io/v1
 * ServiceCIDR and v1 Node objects: the
 * addresses a Service answers on (ClusterIPs, external and load-balancer
 * IPs, node ports) and its endpoints with their readiness. Pure parsing;
 * unknown fields are ignored, malformed objects are reported and skipped,
 * never half-read.
 *
 * Invariant: only TCP ports are kept (meshless never touches UDP or SCTP).
 */
import { isIP } from 'node:net';
import { MeshlessError } from '../errors.js';

/** One TCP port of a Service. */
export interface ServicePortInfo {
  /** The port's name; '' when the Service has a single unnamed port. */
  readonly name: string;
  readonly port: number;
  /** A number, or the name of a container port of the backend pods. */
  readonly targetPort: number | string;
  /** The node port (NodePort and LoadBalancer Services), if any. */
  readonly nodePort: number | undefined;
}

export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** The ClusterIPs (IPv4 and/or IPv6); empty for a headless Service (clusterIP None). */
  readonly clusterIps: readonly string[];
  /** `spec.externalIPs` and `status.loadBalancer.ingress[].ip`: kube-proxy answers on them too. */
  readonly externalIps: readonly string[];
  readonly ports: readonly ServicePortInfo[];
}

export interface EndpointInfo {
  readonly addresses: readonly string[];
  /** `conditions.ready` (absent means ready, as the API defines it). */
  readonly ready: boolean;
  /** `conditions.serving` (absent: same as ready). */
  readonly serving: boolean;
  readonly terminating: boolean;
  /** The pod behind the endpoint, from `targetRef` (kind Pod). */
  readonly pod: { readonly namespace: string; readonly name: string } | undefined;
}

export interface EndpointSliceInfo {
  readonly namespace: string;
  readonly name: string;
  /** The `kubernetes.io/service-name` label: the Service it belongs to. */
  readonly serviceName: string | undefined;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  /** TCP ports: name -> port (the target port, resolved per slice by the controller). */
  readonly ports: readonly { readonly name: string; readonly port: number | undefined }[];
  readonly endpoints: readonly EndpointInfo[];
}

export interface NodeInfo {
  readonly name: string;
  /** `spec.podCIDRs` (or `spec.podCIDR`): where this node's pod IPs come from. */
  readonly podCidrs: readonly string[];
  /** `status.addresses` of type InternalIP and ExternalIP (node ports answer on them). */
  readonly addresses: readonly string[];
}

/** The label an EndpointSlice names its Service with. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(what: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_DISCOVERY_OBJECT', what);
}

function metaOf(
  obj: unknown,
  kind: string,
  namespaced: boolean,
): { name: string; namespace: string; labels: Record<string, string> } {
  if (!isRecord(obj) || !isRecord(obj['metadata'])) throw bad(`${kind} without metadata`);
  const meta = obj['metadata'];
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') throw bad(`${kind} without metadata.name`);
  const namespace = namespaced ? (meta['namespace'] ?? 'default') : '';
  if (typeof namespace !== 'string')
    throw bad(`${kind} ${name}: metadata.namespace is not a string`);
  const labels: Record<string, string> = {};
  if (isRecord(meta['labels']))
    for (const [k, v] of Object.entries(meta['labels'])) if (typeof v === 'string') labels[k] = v;
  return { name, namespace, labels };
}

const isPort = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

const ips = (values: unknown): string[] =>
  Array.isArray(values)
    ? values.filter((v): v is string => typeof v === 'string' && isIP(v) !== 0)
    : [];

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

/** A v1 Service object to ServiceInfo. */
export function serviceFromObject(obj: unknown): ServiceInfo {
  const { name, namespace } = metaOf(obj, 'Service', true);
  const o = obj as Record<string, unknown>;
  const spec = isRecord(o['spec']) ? o['spec'] : {};
  const status = isRecord(o['status']) ? o['status'] : {};
  const typeText = spec['type'] ?? 'ClusterIP';
  const type = SERVICE_TYPES.find((t) => t === typeText);
  if (type === undefined)
    throw bad(`Service ${namespace}/${name}: unknown spec.type "${String(typeText)}"`);
  const clusterIps = ips(
    Array.isArray(spec['clusterIPs']) ? spec['clusterIPs'] : [spec['clusterIP']],
  );
  const lb = isRecord(status['loadBalancer']) ? status['loadBalancer'] : {};
  const ingress = Array.isArray(lb['ingress'])
    ? lb['ingress'].map((i) => (isRecord(i) ? i['ip'] : undefined))
    : [];
  const ports: ServicePortInfo[] = [];
  const rawPorts = Array.isArray(spec['ports']) ? spec['ports'] : [];
  rawPorts.forEach((p, i) => {
    if (!isRecord(p)) throw bad(`Service ${namespace}/${name}: spec.ports[${i}] is not an object`);
    if ((p['protocol'] ?? 'TCP') !== 'TCP') return;
    const port = p['port'];
    if (!isPort(port))
      throw bad(`Service ${namespace}/${name}: spec.ports[${i}].port is not a port`);
    const target = p['targetPort'] ?? port;
    const targetPort =
      isPort(target) || (typeof target === 'string' && target !== '' && !/^[0-9]+$/.test(target))
        ? target
        : typeof target === 'string' && isPort(Number(target))
          ? Number(target)
          : undefined;
    if (targetPort === undefined)
      throw bad(
        `Service ${namespace}/${name}: spec.ports[${i}].targetPort is neither a port nor a name`,
      );
    ports.push({
      name: typeof p['name'] === 'string' ? p['name'] : '',
      port,
      targetPort,
      nodePort: isPort(p['nodePort']) ? p['nodePort'] : undefined,
    });
  });
  return {
    namespace,
    name,
    type,
    clusterIps: type === 'ExternalName' ? [] : clusterIps,
    externalIps: [...ips(spec['externalIPs']), ...ips(ingress)],
    ports,
  };
}

/** A discovery.k8s.io/v1 EndpointSlice object to EndpointSliceInfo. */
export function endpointSliceFromObject(obj: unknown): EndpointSliceInfo {
  const { name, namespace, labels } = metaOf(obj, 'EndpointSlice', true);
  const o = obj as Record<string, unknown>;
  const addressType = o['addressType'];
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN')
    throw bad(`EndpointSlice ${namespace}/${name}: addressType must be IPv4, IPv6 or FQDN`);
  const ports: { name: string; port: number | undefined }[] = [];
  for (const p of Array.isArray(o['ports']) ? o['ports'] : []) {
    if (!isRecord(p) || (p['protocol'] ?? 'TCP') !== 'TCP') continue;
    ports.push({
      name: typeof p['name'] === 'string' ? p['name'] : '',
      port: isPort(p['port']) ? p['port'] : undefined,
    });
  }
  const endpoints: EndpointInfo[] = [];
  for (const e of Array.isArray(o['endpoints']) ? o['endpoints'] : []) {
    if (!isRecord(e)) continue;
    const c = isRecord(e['conditions']) ? e['conditions'] : {};
    const ready = c['ready'] !== false;
    const ref = isRecord(e['targetRef']) ? e['targetRef'] : undefined;
    endpoints.push({
      addresses: addressType === 'FQDN' ? [] : ips(e['addresses']),
      ready,
      serving: typeof c['serving'] === 'boolean' ? c['serving'] : ready,
      terminating: c['terminating'] === true,
      pod:
        ref !== undefined && ref['kind'] === 'Pod' && typeof ref['name'] === 'string'
          ? {
              namespace: typeof ref['namespace'] === 'string' ? ref['namespace'] : namespace,
              name: ref['name'],
            }
          : undefined,
    });
  }
  return {
    namespace,
    name,
    serviceName: labels[SERVICE_NAME_LABEL],
    addressType,
    ports,
    endpoints,
  };
}

/** A v1 Node object to NodeInfo. */
export function nodeFromObject(obj: unknown): NodeInfo {
  const { name } = metaOf(obj, 'Node', false);
  const o = obj as Record<string, unknown>;
  const spec = isRecord(o['spec']) ? o['spec'] : {};
  const status = isRecord(o['status']) ? o['status'] : {};
  const cidrs = Array.isArray(spec['podCIDRs'])
    ? spec['podCIDRs'].filter((c): c is string => typeof c === 'string')
    : typeof spec['podCIDR'] === 'string'
      ? [spec['podCIDR']]
      : [];
  const addresses: string[] = [];
  for (const a of Array.isArray(status['addresses']) ? status['addresses'] : [])
    if (
      isRecord(a) &&
      (a['type'] === 'InternalIP' || a['type'] === 'ExternalIP') &&
      typeof a['address'] === 'string' &&
      isIP(a['address']) !== 0
    )
      addresses.push(a['address']);
  return { name, podCidrs: cidrs, addresses };
}

/** A networking.k8s.io/v1 ServiceCIDR: ranges ClusterIPs are allocated from. */
export interface ServiceCidrInfo {
  readonly name: string;
  readonly cidrs: readonly string[];
}

/** A networking.k8s.io/v1 ServiceCIDR object to ServiceCidrInfo. */
export function serviceCidrFromObject(obj: unknown): ServiceCidrInfo {
  const { name } = metaOf(obj, 'ServiceCIDR', false);
  const o = obj as Record<string, unknown>;
  const spec = isRecord(o['spec']) ? o['spec'] : {};
  const cidrs = Array.isArray(spec['cidrs'])
    ? spec['cidrs'].filter((c): c is string => typeof c === 'string')
    : [];
  return { name, cidrs };
}
