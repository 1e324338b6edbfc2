/**
 * The messages between the daemon's main thread and its data-plane workers
 * (worker_threads, structured clone). One direction each:
 * - main -> worker: the state a worker's ProxyService needs (discovery
 *   deltas, SVIDs and the trust bundle), the pods to serve, requests
 *   (connections listing, close) and the log level;
 * - worker -> main: replies to requests, and batches of data-plane events
 *   (records, counters) with the worker's live counts.
 *
 * Invariants: every request carries an `id` answered by exactly one reply
 * (or by the worker's death); messages of one direction arrive in order, so
 * an SVID posted before an enrolment is held when the enrolment runs.
 */
import type { ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import type { SnapshotDelta } from '../../../src/discovery/snapshot-delta.js';
import type { ConnectionRecord } from '../../../src/hbone/connection-record.js';
import type { ConnectionLimits, LimitKind } from '../../../src/proxy/connection-manager.js';
import type { HbonePoolStats } from '../../../src/hbone/pool.js';
import type { LabelRequirement } from '../../../src/config/label.js';
import type { LogLevel } from '../../../src/config/daemon-config.js';
import type { Registration } from '../../registration/registry.js';

/** What a worker is started with (`workerData`). */
export interface WorkerInit {
  /** 0-based; stays the same when a dead worker is replaced. */
  readonly index: number;
  readonly nodeName: string;
  readonly trustDomain: string;
  readonly logLevel: LogLevel;
  readonly enrolmentLabel: LabelRequirement;
  readonly excludeNamespaces: readonly string[];
  readonly rootNamespace: string;
  readonly enforceNetworkPolicy: boolean;
  readonly podCidrs: readonly string[];
  readonly serviceCidrs: readonly string[];
  readonly procSysNetPath: string;
  readonly drainMs: number;
  /** This worker's share of the node's limits (see limitsPerWorker). */
  readonly limits: ConnectionLimits;
  readonly relayBufferBytes: number | undefined;
  readonly trustBundlePem: string;
  readonly snapshot: ClusterSnapshot;
  readonly synced: boolean;
  /** The discovery version `snapshot` is (see the delta message's `version`). */
  readonly discoveryVersion: number;
}

/** An SVID as handed to workers: PEM only (the key stays in this process). */
export interface SvidMaterial {
  readonly spiffeId: string;
  readonly serialNumber: string;
  /** Leaf then intermediates. */
  readonly chainPem: string;
  /** PKCS#8. Secret: never logged. */
  readonly privateKeyPem: string;
}

export type ToWorker =
  | {
      readonly type: 'delta';
      /**
       * What discovery changed since the last delta (or the worker's initial
       * snapshot): a few objects per change, not the cluster. The worker
       * applies it to its own copy; unchanged objects stay its own
       * (src/discovery/snapshot-delta.ts).
       */
      readonly delta: SnapshotDelta;
      readonly synced: boolean;
      /**
       * Counts the deltas the main thread has sent: a worker that applied
       * version V decides on everything discovery held when V was sent.
       */
      readonly version: number;
    }
  | { readonly type: 'svid'; readonly svid: SvidMaterial }
  | { readonly type: 'svid-dropped'; readonly spiffeId: string }
  | { readonly type: 'trust-bundle'; readonly pem: string }
  | { readonly type: 'log-level'; readonly level: LogLevel }
  | { readonly type: 'enrol'; readonly id: number; readonly registration: Registration }
  | { readonly type: 'release'; readonly id: number; readonly registration: Registration }
  | { readonly type: 'connections'; readonly id: number }
  | { readonly type: 'report'; readonly id: number }
  | { readonly type: 'close'; readonly id: number; readonly drainMs: number };

/** One thing the data plane did, for metrics (records are logged in the worker). */
export type DataPlaneEvent =
  | { readonly kind: 'record'; readonly record: ConnectionRecord }
  | { readonly kind: 'open'; readonly direction: ConnectionRecord['direction'] }
  | {
      readonly kind: 'handshake-failure';
      readonly side: 'client' | 'server';
      readonly reason: string;
    }
  | { readonly kind: 'stream-refused'; readonly reason: string }
  | { readonly kind: 'session-error'; readonly reason: string }
  | {
      readonly kind: 'limit';
      readonly limit: LimitKind;
      readonly direction: ConnectionRecord['direction'];
    }
  | { readonly kind: 'budget-spent' };

/** A worker's live counts, sent with every batch and every second. */
export interface WorkerStats {
  readonly connections: number;
  readonly pool: HbonePoolStats;
  readonly pods: number;
  /** The last discovery version this worker applied (sent soon after each delta). */
  readonly discoveryVersion: number;
}

/** A worker's answer to a 'report' request. */
export interface WorkerReportValue {
  /** Serial number of each SVID held, by SPIFFE ID. */
  readonly svids: Record<string, string>;
  readonly discoveryVersion: number;
}

export type FromWorker =
  | { readonly type: 'ready' }
  | {
      readonly type: 'reply';
      readonly id: number;
      readonly ok: boolean;
      readonly error?: string;
      readonly value?: unknown;
    }
  | {
      readonly type: 'events';
      readonly events: readonly DataPlaneEvent[];
      readonly stats: WorkerStats;
    };

/**
 * A worker's share of a node-wide limit: the limit divided evenly, rounded
 * down so that the workers together never admit more than the limit, and
 * at least 1 (a limit below the worker count then admits up to one per
 * worker). 0 or absent (unlimited) stays so.
 */
export function limitPerWorker(limit: number | undefined, workers: number): number | undefined {
  if (limit === undefined || limit <= 0) return limit;
  return Math.max(1, Math.floor(limit / workers));
}

/** {@link limitPerWorker} of every limit. */
export function limitsPerWorker(limits: ConnectionLimits, workers: number): ConnectionLimits {
  const out: { -readonly [K in keyof ConnectionLimits]: ConnectionLimits[K] } = {};
  for (const key of ['perPodOutbound', 'perPodInbound', 'perNode'] as const) {
    const v = limitPerWorker(limits[key], workers);
    if (v !== undefined) out[key] = v;
  }
  return out;
}
