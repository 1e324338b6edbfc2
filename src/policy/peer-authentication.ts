/**
 * `PeerAuthentication` of `security.meshless.dev/v1alpha1`: Istio's
 * `security.istio.io/v1` kind as ztunnel honours it. `mtls.mode` STRICT
 * refuses plaintext (a connection without a verified peer principal) to the
 * selected workloads; PERMISSIVE accepts it; UNSET inherits; DISABLE cannot
 * be honoured under a node proxy and is ignored (as in Istio ambient).
 * `portLevelMtls` (keyed by the workload's port, only with a selector)
 * overrides the mode per port.
 *
 * Which policy applies (Istio): one with a selector matching the workload
 * in its namespace, else the namespace's one without a selector, else the
 * root namespace's one without a selector; the oldest wins a tie. Default
 * PERMISSIVE.
 *
 * Invariant (fail safe): a policy with a field or value meshless cannot
 * honour counts as STRICT, and `unsupported` names the field.
 */
import { parseLabelSelector, type LabelSelector } from './label-selector.js';

export type MtlsMode = 'UNSET' | 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthentication {
  readonly namespace: string;
  readonly name: string;
  /** RFC 3339 creation time ('' when unknown): the oldest of two rivals wins. */
  readonly created: string;
  /** `spec.selector.matchLabels`; undefined: namespace-wide (mesh-wide in the root namespace). */
  readonly selector: LabelSelector | undefined;
  readonly mode: MtlsMode;
  /** Port -> mode. */
  readonly portLevelMtls: ReadonlyMap<number, MtlsMode>;
  readonly unsupported: string | undefined;
}

const MODES: readonly MtlsMode[] = ['UNSET', 'STRICT', 'PERMISSIVE', 'DISABLE'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function modeOf(raw: unknown, where: string): MtlsMode | string {
  if (raw === undefined || raw === null) return 'UNSET';
  if (!isRecord(raw)) return where;
  for (const k of Object.keys(raw)) if (k !== 'mode') return `${where}.${k}`;
  const mode = raw['mode'] ?? 'UNSET';
  return MODES.find((m) => m === mode) ?? `${where}.mode "${String(mode)}"`;
}

/** A PeerAuthentication object to the model; throws only without usable metadata. */
export function peerAuthenticationFromObject(obj: unknown): PeerAuthentication {
  if (!isRecord(obj) || !isRecord(obj['metadata']))
    throw new TypeError('PeerAuthentication without metadata');
  const meta = obj['metadata'];
  const name = meta['name'];
  const namespace = meta['namespace'] ?? 'default';
  if (typeof name !== 'string' || name === '')
    throw new TypeError('PeerAuthentication without metadata.name');
  if (typeof namespace !== 'string')
    throw new TypeError(`PeerAuthentication ${name}: metadata.namespace is not a string`);
  const created = typeof meta['creationTimestamp'] === 'string' ? meta['creationTimestamp'] : '';
  const spec = isRecord(obj['spec']) ? obj['spec'] : {};
  const base = { namespace, name, created };
  const unsupported = (field: string, selector?: LabelSelector): PeerAuthentication => ({
    ...base,
    selector,
    mode: 'STRICT',
    portLevelMtls: new Map(),
    unsupported: field,
  });
  let selector: LabelSelector | undefined;
  if (spec['selector'] !== undefined && spec['selector'] !== null) {
    const sel = spec['selector'];
    const parsed =
      isRecord(sel) && Object.keys(sel).every((k) => k === 'matchLabels')
        ? parseLabelSelector(sel, 'spec.selector')
        : 'spec.selector';
    if (typeof parsed === 'string') return unsupported(parsed);
    selector = parsed;
  }
  if (obj['spec'] !== undefined && !isRecord(obj['spec'])) return unsupported('spec', selector);
  for (const k of Object.keys(spec))
    if (k !== 'selector' && k !== 'mtls' && k !== 'portLevelMtls')
      return unsupported(`spec.${k}`, selector);
  const mode = modeOf(spec['mtls'], 'spec.mtls');
  if (!MODES.includes(mode as MtlsMode)) return unsupported(mode, selector);
  const portLevelMtls = new Map<number, MtlsMode>();
  const pl = spec['portLevelMtls'];
  if (pl !== undefined && pl !== null) {
    if (!isRecord(pl)) return unsupported('spec.portLevelMtls', selector);
    // Istio honours port-level settings only on a policy with a selector.
    if (selector === undefined)
      return unsupported('spec.portLevelMtls (needs spec.selector)', selector);
    for (const [key, value] of Object.entries(pl)) {
      const n = Number(key);
      if (!/^[0-9]{1,5}$/.test(key) || n < 1 || n > 65535)
        return unsupported(`spec.portLevelMtls.${key}`, selector);
      const m = modeOf(value, `spec.portLevelMtls.${key}`);
      if (!MODES.includes(m as MtlsMode)) return unsupported(m, selector);
      portLevelMtls.set(n, m as MtlsMode);
    }
  }
  return { ...base, selector, mode: mode as MtlsMode, portLevelMtls, unsupported: undefined };
}
