/**
 * What changed between two cluster snapshots, as data that crosses a
 * thread boundary cheaply: the daemon's main thread sends data-plane
 * workers a {@link SnapshotDelta} per discovery change instead of the whole
 * snapshot (10,000 pods cloned per change per worker would cost more than
 * everything else a change does).
 *
 * Invariants:
 *  - `applySnapshotDelta(prev, diffSnapshots(prev, next))` holds the same
 *    keys and values as `next` (values structurally; they are copies once
 *    they crossed a thread).
 *  - Objects a delta does not name stay the very objects of `prev`, and a
 *    kind with no change keeps `prev`'s Map itself: index builders that
 *    reuse work for unchanged inputs (by identity) keep doing so in workers.
 *  - Changes are found by identity: discovery keeps unchanged objects
 *    identical from one snapshot to the next, so a diff is one pointer
 *    comparison per object, never a deep compare.
 *  - Neither function mutates its arguments.
 */
import type { ClusterSnapshot } from './cluster-state.js';

/** The kinds of object a snapshot holds (its Map-valued fields). */
export const SNAPSHOT_KINDS = [
  'namespaces',
  'pods',
  'nodes',
  'services',
  'endpointSlices',
  'serviceCidrs',
  'authorizationPolicies',
  'peerAuthentications',
  'networkPolicies',
] as const satisfies readonly (keyof ClusterSnapshot)[];

export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

/** The changes to one kind: entries added or replaced, keys removed. */
export interface KindDelta<V> {
  readonly set: readonly (readonly [string, V])[];
  readonly deleted: readonly string[];
}

/** The changes per kind; a kind that did not change is absent. */
export type SnapshotDelta = {
  readonly [K in SnapshotKind]?: KindDelta<
    ClusterSnapshot[K] extends ReadonlyMap<string, infer V> ? V : never
  >;
};

function diffMap<V>(
  prev: ReadonlyMap<string, V>,
  next: ReadonlyMap<string, V>,
): KindDelta<V> | undefined {
  if (prev === next) return undefined;
  const set: [string, V][] = [];
  const deleted: string[] = [];
  for (const [k, v] of next) if (prev.get(k) !== v || !prev.has(k)) set.push([k, v]);
  for (const k of prev.keys()) if (!next.has(k)) deleted.push(k);
  return set.length === 0 && deleted.length === 0 ? undefined : { set, deleted };
}

/** What changed from `prev` to `next`, by object identity. */
export function diffSnapshots(prev: ClusterSnapshot, next: ClusterSnapshot): SnapshotDelta {
  const out: Record<string, KindDelta<unknown>> = {};
  for (const kind of SNAPSHOT_KINDS) {
    const d = diffMap<unknown>(prev[kind], next[kind]);
    if (d) out[kind] = d;
  }
  return out as SnapshotDelta;
}

/** True when a delta changes nothing. */
export function isEmptyDelta(delta: SnapshotDelta): boolean {
  return SNAPSHOT_KINDS.every((k) => delta[k] === undefined);
}

function applyMap<V>(
  prev: ReadonlyMap<string, V>,
  d: KindDelta<V> | undefined,
): ReadonlyMap<string, V> {
  if (d === undefined) return prev;
  const out = new Map(prev);
  for (const k of d.deleted) out.delete(k);
  for (const [k, v] of d.set) out.set(k, v);
  return out;
}

/** `prev` with `delta` applied: a new snapshot; see the invariants. */
export function applySnapshotDelta(prev: ClusterSnapshot, delta: SnapshotDelta): ClusterSnapshot {
  return {
    namespaces: applyMap(prev.namespaces, delta.namespaces),
    pods: applyMap(prev.pods, delta.pods),
    nodes: applyMap(prev.nodes, delta.nodes),
    services: applyMap(prev.services, delta.services),
    endpointSlices: applyMap(prev.endpointSlices, delta.endpointSlices),
    serviceCidrs: applyMap(prev.serviceCidrs, delta.serviceCidrs),
    authorizationPolicies: applyMap(prev.authorizationPolicies, delta.authorizationPolicies),
    peerAuthentications: applyMap(prev.peerAuthentications, delta.peerAuthentications),
    networkPolicies: applyMap(prev.networkPolicies, delta.networkPolicies),
  };
}
