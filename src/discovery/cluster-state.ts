/**
 * The workload model both discovery sources yield: the namespaces and pods
 * of the cluster as far as meshless cares, built from v1 Namespace and v1
 * Pod objects. Pure parsing; unknown fields are ignored, malformed objects
 * are reported and skipped, never half-read.
 */
import { MeshlessError } from '../errors.js';

export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly nodeName: string | undefined;
  readonly hostNetwork: boolean;
  readonly ips: readonly string[];
}

/** An immutable view of the cluster. */
export interface ClusterSnapshot {
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  /** Keyed by `namespace/name`. */
  readonly pods: ReadonlyMap<string, PodInfo>;
}

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

export const EMPTY_SNAPSHOT: ClusterSnapshot = { namespaces: new Map(), pods: new Map() };

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
  return {
    namespace,
    name,
    uid: typeof meta['uid'] === 'string' ? meta['uid'] : '',
    serviceAccount: typeof sa === 'string' && sa !== '' ? sa : 'default',
    nodeName: typeof spec['nodeName'] === 'string' ? spec['nodeName'] : undefined,
    hostNetwork: spec['hostNetwork'] === true,
    ips,
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
    }
  };
  objects.forEach((o, i) => visit(o, `document ${i}`));
  return { namespaces, pods };
}
