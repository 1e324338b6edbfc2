/**
 * One interface for both discovery sources (file, Kubernetes API): a
 * current snapshot, a promise that resolves once the first full state is
 * known, and a change notification.
 *
 * Invariant: snapshots and their models are never mutated. A new snapshot
 * keeps the previous one's map of every kind that did not change, and the
 * previous model object of every object that did not change, so consumers
 * (the index builders) tell what changed by identity; a source that made
 * everything new would only cost them a full rebuild, never a wrong answer.
 */
import type { ClusterSnapshot } from './cluster-state.js';

export interface DiscoverySource {
  /** Resolves when the first complete snapshot is available. */
  start(): Promise<void>;
  /** True once start() has resolved. */
  readonly synced: boolean;
  snapshot(): ClusterSnapshot;
  /** Called after every accepted change, with the new snapshot. */
  onChange(listener: (snapshot: ClusterSnapshot) => void): void;
  close(): void;
}
