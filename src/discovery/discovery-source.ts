/**
 * One interface for both discovery sources (file, Kubernetes API): a
 * current snapshot, a promise that resolves once the first full state is
 * known, and a change notification.
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
