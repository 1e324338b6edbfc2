/**
 * `networking.k8s.io/v1` NetworkPolicy, the ingress half, as the
 * Kubernetes API defines it: `podSelector` chooses the pods of the policy's
 * namespace it applies to; it applies to their ingress when `policyTypes`
 * lists Ingress (absent: always Ingress, plus Egress when `egress` is set);
 * `ingress` rules allow traffic when a peer in `from` (none: every source)
 * and a port in `ports` (none: every port) match. A peer is a podSelector
 * (pods of the policy's namespace), a namespaceSelector (every pod of the
 * selected namespaces), both (those pods of those namespaces), or an ipBlock
 * (`cidr` minus `except`). A port is a number, a range with `endPort`, or
 * the name of a container port of the destination pod; protocol TCP by
 * default.
 *
 * Invariant (fail safe): a malformed policy (something the API server would
 * have rejected) still isolates the pods it selects and allows nothing;
 * `invalid` says why. If even its podSelector is unreadable it selects
 * every pod of its namespace.
 */
import { parseIpBlock, type IpBlock } from './ip-address.js';
import { EVERYTHING, parseLabelSelector, type LabelSelector } from './label-selector.js';

export type NetworkPolicyPeer =
  | {
      readonly kind: 'pods';
      /** undefined: every pod (of the namespaces selected, or of the policy's namespace). */
      readonly podSelector: LabelSelector | undefined;
      /** undefined: the policy's own namespace only. */
      readonly namespaceSelector: LabelSelector | undefined;
    }
  | { readonly kind: 'ipBlock'; readonly cidr: IpBlock; readonly except: readonly IpBlock[] };

export interface NetworkPolicyPort {
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** undefined: every port of the protocol; a string: a named container port. */
  readonly port: number | string | undefined;
  /** The last port of a range starting at `port` (a number). */
  readonly endPort: number | undefined;
}

export interface NetworkPolicyIngressRule {
  /** Empty: every source. */
  readonly from: readonly NetworkPolicyPeer[];
  /** Empty: every port. */
  readonly ports: readonly NetworkPolicyPort[];
}

export interface NetworkPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: LabelSelector;
  /** Whether the policy isolates the selected pods for ingress. */
  readonly ingressIsolation: boolean;
  readonly ingress: readonly NetworkPolicyIngressRule[];
  readonly invalid: string | undefined;
}

export const NETWORK_POLICY_API_VERSION = 'networking.k8s.io/v1';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Invalid extends Error {}
const fail = (why: string): never => {
  throw new Invalid(why);
};

const isPort = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

function selectorOf(raw: unknown, where: string): LabelSelector {
  const s = parseLabelSelector(raw, where);
  return typeof s === 'string' ? fail(s) : s;
}

function peerOf(raw: unknown, where: string): NetworkPolicyPeer {
  if (!isRecord(raw)) return fail(`${where} is not an object`);
  const ip = raw['ipBlock'];
  const pod = raw['podSelector'];
  const ns = raw['namespaceSelector'];
  const has = (v: unknown): boolean => v !== undefined && v !== null;
  if (has(ip)) {
    if (has(pod) || has(ns)) return fail(`${where}: ipBlock cannot be combined with selectors`);
    if (!isRecord(ip) || typeof ip['cidr'] !== 'string')
      return fail(`${where}.ipBlock.cidr is missing`);
    const cidr = parseIpBlock(ip['cidr']);
    if (cidr === undefined || !ip['cidr'].includes('/'))
      return fail(`${where}.ipBlock.cidr "${ip['cidr']}" is not a CIDR`);
    const rawExcept = ip['except'] ?? [];
    if (!Array.isArray(rawExcept)) return fail(`${where}.ipBlock.except is not a list`);
    const except = rawExcept.map((e: unknown, i: number) =>
      typeof e === 'string'
        ? (parseIpBlock(e) ?? fail(`${where}.ipBlock.except[${i}] is not a CIDR`))
        : fail(`${where}.ipBlock.except[${i}] is not a CIDR`),
    );
    return { kind: 'ipBlock', cidr, except };
  }
  if (!has(pod) && !has(ns))
    return fail(`${where} has no podSelector, namespaceSelector or ipBlock`);
  return {
    kind: 'pods',
    podSelector: has(pod) ? selectorOf(pod, `${where}.podSelector`) : undefined,
    namespaceSelector: has(ns) ? selectorOf(ns, `${where}.namespaceSelector`) : undefined,
  };
}

function portOf(raw: unknown, where: string): NetworkPolicyPort {
  if (!isRecord(raw)) return fail(`${where} is not an object`);
  const protocol = raw['protocol'] ?? 'TCP';
  if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
    return fail(`${where}.protocol "${String(protocol)}" is not TCP, UDP or SCTP`);
  const p = raw['port'];
  let port: number | string | undefined;
  if (p === undefined || p === null) port = undefined;
  else if (isPort(p)) port = p;
  else if (typeof p === 'string' && /^[0-9]+$/.test(p) && isPort(Number(p))) port = Number(p);
  else if (typeof p === 'string' && p !== '') port = p;
  else return fail(`${where}.port is neither a port nor a name`);
  const e = raw['endPort'];
  let endPort: number | undefined;
  if (e !== undefined && e !== null) {
    if (!isPort(e)) return fail(`${where}.endPort is not a port`);
    if (typeof port !== 'number') return fail(`${where}.endPort needs a numeric port`);
    if (e < port) return fail(`${where}.endPort is below port`);
    endPort = e;
  }
  return { protocol, port, endPort };
}

function listOf(raw: unknown, where: string): unknown[] {
  if (raw === undefined || raw === null) return [];
  return Array.isArray(raw) ? raw : fail(`${where} is not a list`);
}

/** A NetworkPolicy object to the model; throws only without usable metadata. */
export function networkPolicyFromObject(obj: unknown): NetworkPolicy {
  if (!isRecord(obj) || !isRecord(obj['metadata']))
    throw new TypeError('NetworkPolicy without metadata');
  const meta = obj['metadata'];
  const name = meta['name'];
  const namespace = meta['namespace'] ?? 'default';
  if (typeof name !== 'string' || name === '')
    throw new TypeError('NetworkPolicy without metadata.name');
  if (typeof namespace !== 'string')
    throw new TypeError(`NetworkPolicy ${name}: metadata.namespace is not a string`);
  const spec = isRecord(obj['spec']) ? obj['spec'] : {};
  const sel = parseLabelSelector(spec['podSelector'] ?? {}, 'spec.podSelector');
  const podSelector = typeof sel === 'string' ? EVERYTHING : sel;
  try {
    if (typeof sel === 'string') return fail(sel);
    const types = spec['policyTypes'];
    let ingressIsolation = true;
    if (types !== undefined && types !== null) {
      if (!Array.isArray(types)) return fail('spec.policyTypes is not a list');
      for (const [i, t] of types.entries())
        if (t !== 'Ingress' && t !== 'Egress')
          fail(`spec.policyTypes[${i}] "${String(t)}" is not Ingress or Egress`);
      ingressIsolation = types.includes('Ingress');
    }
    const ingress = listOf(spec['ingress'], 'spec.ingress').map(
      (r, i): NetworkPolicyIngressRule => {
        const at = `spec.ingress[${i}]`;
        if (!isRecord(r)) return fail(`${at} is not an object`);
        return {
          from: listOf(r['from'], `${at}.from`).map((p, j) => peerOf(p, `${at}.from[${j}]`)),
          ports: listOf(r['ports'], `${at}.ports`).map((p, j) => portOf(p, `${at}.ports[${j}]`)),
        };
      },
    );
    return { namespace, name, podSelector, ingressIsolation, ingress, invalid: undefined };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return {
      namespace,
      name,
      podSelector,
      ingressIsolation: true,
      ingress: [],
      invalid: err.message,
    };
  }
}
