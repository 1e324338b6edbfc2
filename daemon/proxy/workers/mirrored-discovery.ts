/**
 * A worker's view of discovery: the snapshots the main thread's discovery
 * source publishes, handed over by message. It is a DiscoverySource, so the
 * worker's ProxyService and PolicyView build their indexes from it exactly
 * as they do from the real source on one thread.
 *
 * Invariant: `snapshot()` is always the latest snapshot received, and every
 * listener hears every snapshot in the order received.
 */
import type { ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import type { DiscoverySource } from '../../../src/discovery/discovery-source.js';

export class MirroredDiscovery implements DiscoverySource {
  #snapshot: ClusterSnapshot;
  #synced: boolean;
  readonly #listeners: ((s: ClusterSnapshot) => void)[] = [];

  constructor(first: ClusterSnapshot, synced: boolean) {
    this.#snapshot = first;
    this.#synced = synced;
  }

  /** The main thread's source has started; nothing to wait for here. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  get synced(): boolean {
    return this.#synced;
  }

  snapshot(): ClusterSnapshot {
    return this.#snapshot;
  }

  onChange(listener: (snapshot: ClusterSnapshot) => void): void {
    this.#listeners.push(listener);
  }

  /** A snapshot from the main thread. */
  apply(snapshot: ClusterSnapshot, synced: boolean): void {
    this.#snapshot = snapshot;
    this.#synced = synced;
    for (const l of this.#listeners) l(snapshot);
  }

  close(): void {
    this.#listeners.length = 0;
  }
}
