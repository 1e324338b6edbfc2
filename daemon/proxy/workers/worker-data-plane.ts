/**
 * The node's data plane on N worker threads (ztunnel's model: the data
 * plane on a thread pool, the control plane on one thread). The main thread
 * keeps discovery, identities, policies' explanations, registration and the
 * admin and metrics servers; each worker (data-plane-worker.ts) runs its
 * own ProxyService with its own listeners in every enrolled pod's netns
 * (SO_REUSEPORT: the kernel spreads accepted connections across workers),
 * its own HBONE pool and its own connection manager, with the node's
 * limits split between workers (protocol.ts, limitsPerWorker).
 *
 * Invariants:
 *  - A pod is reported enrolled only when every worker has bound its
 *    listeners; if any worker fails, every worker releases it (none stays
 *    bound) and the enrolment fails.
 *  - Workers hold the SVID of a pod before they are asked to serve it, and
 *    every SVID the identity service issues or rotates is posted to every
 *    worker at once (rotation happens long before expiry).
 *  - A worker that dies is replaced at the same index, counted and logged;
 *    the new one gets the snapshot the others hold, the bundle and SVIDs, and binds
 *    every enrolled pod again. Meanwhile the other workers' listeners in
 *    the same SO_REUSEPORT groups serve the pods (the kernel moves a closed
 *    listener's queued connections to them: net.ipv4.tcp_migrate_req, set
 *    per pod), so nothing is ever served in plaintext.
 *  - Discovery reaches workers coalesced, as deltas: at most one per
 *    event-loop turn, what changed since the last one (by identity: a few
 *    objects per change, whatever the cluster's size). A worker starts from
 *    the snapshot the others hold, so the next delta applies to it too.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import { diffSnapshots, isEmptyDelta } from '../../../src/discovery/snapshot-delta.js';
import type { DiscoverySource } from '../../../src/discovery/discovery-source.js';
import type { DaemonConfig, LogLevel } from '../../../src/config/daemon-config.js';
import { MeshlessError, errorMessage } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import type { HbonePoolStats } from '../../../src/hbone/pool.js';
import type { ConnectionInfo } from '../../../src/proxy/connection-manager.js';
import { workloadIdentity } from '../../../src/proxy/workload-index.js';
import type { ClusterAddressSpace } from '../../../src/proxy/pod-address-space.js';
import { callerModuleFile } from '../../../src/module-file.js';
import type { IdentityService, Svid } from '../../identity/identity-service.js';
import type { Registration } from '../../registration/registry.js';
import type { WorkloadObserver } from '../../registration/registration-service.js';
import {
  addressSpaceOf,
  addressSpaceWarnings,
  type ProxyServiceOptions,
} from '../proxy-service.js';
import {
  limitPerWorker,
  limitsPerWorker,
  type DataPlaneEvent,
  type FromWorker,
  type SvidMaterial,
  type ToWorker,
  type WorkerInit,
  type WorkerReportValue,
  type WorkerStats,
} from './protocol.js';

/**
 * How to start a worker: the bundle beside the daemon's (dist/), or, when
 * the daemon runs from its TypeScript sources (tests under tsx, which does
 * not reach worker threads by itself), a bootstrap that registers tsx in
 * the worker first.
 */
const HERE = callerModuleFile();
function workerEntry(): { readonly script: string; readonly eval: boolean } {
  if (HERE === undefined)
    throw new MeshlessError(
      'MESHLESS_E_DATA_PLANE_WORKER',
      'cannot locate the data-plane worker script',
    );
  if (!HERE.endsWith('.ts'))
    return { script: join(dirname(HERE), 'meshlessd-worker.js'), eval: false };
  const tsx = createRequire(HERE).resolve('tsx/cjs/api');
  const source = join(dirname(HERE), 'data-plane-worker.ts');
  return {
    script: `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(source)});`,
    eval: true,
  };
}

/** Callbacks for metrics, as the single-thread ProxyService takes them, plus the workers'. */
export type DataPlaneCallbacks = Pick<
  ProxyServiceOptions,
  | 'onRecord'
  | 'onOpen'
  | 'onHandshakeFailure'
  | 'onStreamRefused'
  | 'onSessionError'
  | 'onLimit'
  | 'onBufferBudgetSpent'
> & {
  /** A connection accepted by worker `worker`. */
  readonly onWorkerOpen?: (worker: number) => void;
  /** A worker died and was replaced. */
  readonly onWorkerRestart?: (worker: number) => void;
};

export interface WorkerDataPlaneOptions extends DataPlaneCallbacks {
  readonly config: DaemonConfig;
  readonly discovery: DiscoverySource;
  readonly identity: IdentityService;
  readonly log: Logger;
  /** How long to wait for a worker's answer before counting it failed, ms; default 30 s. */
  readonly requestTimeoutMs?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** One worker slot: the thread now in it and what it owes. */
interface Slot {
  readonly index: number;
  worker: Worker;
  readonly pending: Map<number, Pending>;
  stats: WorkerStats;
  ready: Promise<void>;
  restarts: number;
  readonly startedAt: number;
  /** Dead and not yet replaced (restart back-off): requests to it fail at once. */
  down: boolean;
}

/** A worker that dies within this long of its start is replaced after a back-off. */
const QUICK_DEATH_MS = 5000;

const NO_STATS: WorkerStats = {
  connections: 0,
  pool: { connections: 0, streams: 0, connecting: 0 },
  pods: 0,
  discoveryVersion: 0,
};

function materialOf(svid: Svid): SvidMaterial {
  return {
    spiffeId: svid.spiffeId.toString(),
    serialNumber: svid.serialNumber,
    chainPem: svid.chainPem,
    privateKeyPem: svid.privateKeyPem,
  };
}

/**
 * The young generation of each worker's V8 heap, MB: a bound, so that a
 * burst cannot grow a worker's young generation to V8's default of
 * 3 x 16 MiB. At the bench's connection-rate load, 4, 8 and 48 MB gave the
 * same peak RSS within noise (the peak is the old generation and native
 * buffers; see DAEMON_NODE_FLAGS for what lowered it).
 */
export const WORKER_YOUNG_GENERATION_MB = 8;

export class WorkerDataPlane implements WorkloadObserver {
  readonly #o: WorkerDataPlaneOptions;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  /** Enrolled pods every worker serves, by container ID. */
  readonly #proxied = new Map<string, { registration: Registration; identity: string }>();
  /** The SVIDs workers hold, by SPIFFE ID (sent to a replacement worker). */
  readonly #svids = new Map<string, SvidMaterial>();
  #nextId = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #snapshotQueued = false;
  /** The snapshot every worker holds once it has read what was sent (deltas apply to it). */
  #sent: ClusterSnapshot;
  #sentSynced: boolean;
  /** Deltas sent so far: the version of `#sent`. */
  #sentVersion = 0;
  #addressSpace: ClusterAddressSpace;
  #logLevel: LogLevel;

  constructor(o: WorkerDataPlaneOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#logLevel = o.config.logLevel;
    this.#addressSpace = this.#spaceOf(o.discovery.snapshot());
    this.#sent = o.discovery.snapshot();
    this.#sentSynced = o.discovery.synced;
    o.discovery.onChange((s) => {
      this.#addressSpace = this.#spaceOf(s);
      if (this.#snapshotQueued) return;
      this.#snapshotQueued = true;
      setImmediate(() => {
        this.#snapshotQueued = false;
        const now = o.discovery.snapshot();
        const delta = diffSnapshots(this.#sent, now);
        const synced = o.discovery.synced;
        if (isEmptyDelta(delta) && synced === this.#sentSynced) return;
        this.#sent = now;
        this.#sentSynced = synced;
        this.#broadcast({ type: 'delta', delta, synced, version: ++this.#sentVersion });
      });
    });
    const sendSvid = (svid: Svid): void => {
      const m = materialOf(svid);
      this.#svids.set(m.spiffeId, m);
      this.#broadcast({ type: 'svid', svid: m });
    };
    o.identity.on('issued', sendSvid);
    o.identity.on('rotated', sendSvid);
    o.identity.on('released', (id) => {
      this.#svids.delete(id.toString());
      this.#broadcast({ type: 'svid-dropped', spiffeId: id.toString() });
    });
    o.identity.on('trust-bundle-changed', (b) =>
      this.#broadcast({ type: 'trust-bundle', pem: b.pem }),
    );
  }

  /** Starts the workers; resolves once each has loaded (the native addon included). */
  async start(): Promise<void> {
    for (let i = 0; i < this.#o.config.dataPlane.workers; i++) this.#slots.push(this.#spawn(i));
    await Promise.all(this.#slots.map((s) => s.ready));
    this.#log.info({ workers: this.#slots.length }, 'data-plane workers started');
  }

  #spaceOf(s: ClusterSnapshot): ClusterAddressSpace {
    return addressSpaceOf(s, this.#o.config.podCidrs, this.#o.config.serviceCidrs);
  }

  #init(index: number): WorkerInit {
    const c = this.#o.config;
    const n = c.dataPlane.workers;
    return {
      index,
      nodeName: c.nodeName,
      trustDomain: c.trustDomain,
      logLevel: this.#logLevel,
      enrolmentLabel: c.enrolmentLabel,
      excludeNamespaces: c.excludeNamespaces,
      rootNamespace: c.rootNamespace,
      enforceNetworkPolicy: c.enforceNetworkPolicy,
      podCidrs: c.podCidrs,
      serviceCidrs: c.serviceCidrs,
      procSysNetPath: c.procSysNetPath,
      drainMs: c.drainTimeoutSeconds * 1000,
      limits: limitsPerWorker(
        {
          perPodOutbound: c.limits.connectionsPerPodOutbound,
          perPodInbound: c.limits.connectionsPerPodInbound,
          perNode: c.limits.connectionsPerNode,
        },
        n,
      ),
      relayBufferBytes: limitPerWorker(c.limits.relayBufferBytes, n),
      trustBundlePem: this.#o.identity.trustBundle.pem,
      // What the others hold: a delta queued meanwhile applies to it.
      snapshot: this.#sent,
      synced: this.#sentSynced,
      discoveryVersion: this.#sentVersion,
    };
  }

  #spawn(index: number, restarts = 0): Slot {
    const entry = workerEntry();
    const init = this.#init(index);
    const worker = new Worker(entry.script, {
      eval: entry.eval,
      workerData: init,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    let ready!: () => void;
    let failed!: (err: Error) => void;
    const slot: Slot = {
      index,
      worker,
      pending: new Map(),
      // It will hold the snapshot of its init before it reads anything else.
      stats: { ...NO_STATS, discoveryVersion: init.discoveryVersion },
      ready: new Promise<void>((res, rej) => {
        ready = res;
        failed = rej;
      }),
      restarts,
      startedAt: Date.now(),
      down: false,
    };
    // Before 'ready' the SVIDs it must hold are queued behind its init.
    for (const svid of this.#svids.values()) worker.postMessage({ type: 'svid', svid } as ToWorker);
    worker.on('message', (m: FromWorker) => {
      if (slot.worker !== worker) return;
      if (m.type === 'ready') ready();
      else if (m.type === 'reply') {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else
          p.reject(
            new MeshlessError('MESHLESS_E_DATA_PLANE_WORKER', m.error ?? 'worker request failed'),
          );
      } else {
        slot.stats = m.stats;
        this.#events(index, m.events);
      }
    });
    worker.on('error', (err) => {
      this.#log.error({ worker: index, error: errorMessage(err) }, 'data-plane worker failed');
      failed(err);
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return;
      const gone = new MeshlessError(
        'MESHLESS_E_DATA_PLANE_WORKER',
        `data-plane worker ${index} exited (code ${code})`,
      );
      failed(gone);
      for (const p of slot.pending.values()) p.reject(gone);
      slot.pending.clear();
      slot.stats = NO_STATS;
      if (!this.#closing) this.#restart(slot, code);
    });
    return slot;
  }

  /** Replaces a dead worker at its index and binds every enrolled pod in it again. */
  #restart(old: Slot, code: number): void {
    // A worker that keeps dying at start (it cannot load, or a pod always
    // fails it) is retried with back-off, 1 s doubling to 30 s, not in a loop.
    const quick = Date.now() - old.startedAt < QUICK_DEATH_MS;
    const delayMs = quick ? Math.min(30_000, 1000 * 2 ** Math.min(old.restarts, 5)) : 0;
    this.#log.error(
      { worker: old.index, code, pods: this.#proxied.size, restartInMs: delayMs },
      'data-plane worker died; replacing it (the other workers serve its pods meanwhile)',
    );
    this.#o.onWorkerRestart?.(old.index);
    old.down = true;
    if (delayMs === 0) this.#replace(old);
    else
      setTimeout(() => {
        if (!this.#closing) this.#replace(old);
      }, delayMs).unref();
  }

  #replace(old: Slot): void {
    const slot = this.#spawn(old.index, old.restarts + 1);
    this.#slots[old.index] = slot;
    slot.ready.then(
      async () => {
        const results = await Promise.allSettled(
          [...this.#proxied.values()].map((p) =>
            this.#ask(slot, (id) => ({ type: 'enrol', id, registration: p.registration })),
          ),
        );
        const failed = results.filter((r) => r.status === 'rejected').length;
        if (failed > 0)
          this.#log.error(
            { worker: old.index, failed },
            'replacement data-plane worker could not bind some pods; the other workers serve them',
          );
        else
          this.#log.info(
            { worker: old.index, pods: results.length },
            'replacement data-plane worker serves every enrolled pod',
          );
      },
      (err: unknown) =>
        this.#log.error(
          { worker: old.index, error: errorMessage(err) },
          'replacement data-plane worker did not start',
        ),
    );
  }

  #events(worker: number, events: readonly DataPlaneEvent[]): void {
    const o = this.#o;
    for (const e of events) {
      switch (e.kind) {
        case 'record':
          o.onRecord?.(e.record);
          break;
        case 'open':
          o.onOpen?.(e.direction);
          o.onWorkerOpen?.(worker);
          break;
        case 'handshake-failure':
          o.onHandshakeFailure?.(e.side, e.reason);
          break;
        case 'stream-refused':
          o.onStreamRefused?.(e.reason);
          break;
        case 'session-error':
          o.onSessionError?.(e.reason);
          break;
        case 'limit':
          o.onLimit?.(e.limit, e.direction);
          break;
        case 'budget-spent':
          o.onBufferBudgetSpent?.();
          break;
      }
    }
  }

  #broadcast(m: ToWorker): void {
    for (const s of this.#slots) s.worker.postMessage(m);
  }

  #ask(slot: Slot, make: (id: number) => ToWorker, timeoutMs?: number): Promise<unknown> {
    const id = ++this.#nextId;
    const ms = timeoutMs ?? this.#o.requestTimeoutMs ?? 30_000;
    if (slot.down)
      return Promise.reject(
        new MeshlessError(
          'MESHLESS_E_DATA_PLANE_WORKER',
          `data-plane worker ${slot.index} is down, waiting to be replaced`,
        ),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        slot.pending.delete(id);
        reject(
          new MeshlessError(
            'MESHLESS_E_DATA_PLANE_WORKER',
            `data-plane worker ${slot.index} did not answer`,
          ),
        );
      }, ms);
      slot.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      slot.worker.postMessage(make(id));
    });
  }

  #askAll(
    make: (id: number) => ToWorker,
    timeoutMs?: number,
  ): Promise<PromiseSettledResult<unknown>[]> {
    return Promise.allSettled(this.#slots.map((s) => this.#ask(s, make, timeoutMs)));
  }

  /**
   * Issues the pod's identity, hands it to every worker, and has every
   * worker bind the pod's listeners; all or none.
   */
  async workloadEnrolled(r: Registration): Promise<void> {
    const existing = this.#proxied.get(r.containerId);
    // Idempotent: ADD twice (or re-attach) keeps the one set of listeners.
    if (existing && existing.registration.netns === r.netns) return;
    if (existing) await this.workloadReleased(existing.registration);
    const sa = r.serviceAccount ?? 'default';
    const svid = await this.#o.identity.acquire(r.containerId, r.namespace, sa);
    const m = materialOf(svid);
    if (this.#svids.get(m.spiffeId)?.serialNumber !== m.serialNumber) {
      this.#svids.set(m.spiffeId, m);
      this.#broadcast({ type: 'svid', svid: m });
    }
    const results = await this.#askAll((id) => ({ type: 'enrol', id, registration: r }));
    const failure = results.find((x) => x.status === 'rejected');
    if (failure) {
      // None stays bound: the workers that did bind let go at once.
      await this.#askAll((id) => ({ type: 'release', id, registration: r }));
      this.#o.identity.release(r.containerId);
      throw failure.reason;
    }
    this.#proxied.set(r.containerId, {
      registration: r,
      identity: workloadIdentity(this.#o.config.trustDomain, r.namespace, sa),
    });
  }

  /** Every worker stops accepting for the pod and drains its connections. */
  async workloadReleased(r: Registration): Promise<void> {
    this.#proxied.delete(r.containerId);
    const results = await this.#askAll(
      (id) => ({ type: 'release', id, registration: r }),
      this.#o.config.drainTimeoutSeconds * 1000 + 30_000,
    );
    for (const x of results)
      if (x.status === 'rejected')
        this.#log.warn(
          { pod: `${r.namespace}/${r.podName}`, error: errorMessage(x.reason) },
          'a data-plane worker could not release a pod',
        );
    this.#o.identity.release(r.containerId);
  }

  /** Whether every worker serves this container's pod. */
  has(containerId: string): boolean {
    return this.#proxied.has(containerId);
  }

  /** The identity a proxied workload presents. */
  identityOf(containerId: string): string | undefined {
    return this.#proxied.get(containerId)?.identity;
  }

  /** Pods every worker serves. */
  get size(): number {
    return this.#proxied.size;
  }

  /** Live connections, every worker, as each last reported (within ~1 s). */
  get connectionCount(): number {
    return this.#slots.reduce((n, s) => n + s.stats.connections, 0);
  }

  /** HBONE pools of every worker, summed. */
  poolStats(): HbonePoolStats {
    const sum = { connections: 0, streams: 0, connecting: 0 };
    for (const s of this.#slots) {
      sum.connections += s.stats.pool.connections;
      sum.streams += s.stats.pool.streams;
      sum.connecting += s.stats.pool.connecting;
    }
    return sum;
  }

  /**
   * Discovery changes the main thread holds that a running worker has not
   * reported applying yet: 0 once every worker decides on what the main
   * thread's discovery shows (workers report within a turn of a delta).
   */
  get discoveryBehind(): number {
    let behind = 0;
    for (const s of this.#slots) if (!s.down) behind = Math.max(behind, this.#behind(s));
    return behind;
  }

  /** Deltas sent that `slot`'s worker has not reported applying. */
  #behind(slot: Slot): number {
    return this.#sentVersion - slot.stats.discoveryVersion;
  }

  /** Per worker: live connections, pods bound, restarts, thread ID, discovery version. */
  workers(): {
    worker: number;
    threadId: number;
    connections: number;
    pods: number;
    restarts: number;
    discoveryVersion: number;
    discoveryBehind: number;
  }[] {
    return this.#slots.map((s) => ({
      worker: s.index,
      threadId: s.worker.threadId,
      connections: s.stats.connections,
      pods: s.stats.pods,
      restarts: s.restarts,
      discoveryVersion: s.stats.discoveryVersion,
      discoveryBehind: this.#behind(s),
    }));
  }

  /**
   * Every worker now: its counts, the serial number of each SVID it holds
   * (to see a rotation reach every worker) and the discovery version it
   * decides on. A worker reads its messages in order, so its answer comes
   * after everything sent before the request: a worker that answers has
   * applied every change the main thread held then. One that does not
   * answer within 5 s shows `svids: null` and its last reported version.
   */
  async report(): Promise<
    (ReturnType<WorkerDataPlane['workers']>[number] & { svids: Record<string, string> | null })[]
  > {
    const asked = this.#sentVersion;
    return Promise.all(
      this.workers().map(async (w) => {
        const slot = this.#slots[w.worker];
        const value = slot
          ? ((await this.#ask(slot, (id) => ({ type: 'report', id }), 5000).catch(
              () => null,
            )) as WorkerReportValue | null)
          : null;
        if (!value) return { ...w, svids: null };
        return {
          ...w,
          svids: value.svids,
          discoveryVersion: value.discoveryVersion,
          discoveryBehind: asked - value.discoveryVersion,
        };
      }),
    );
  }

  /**
   * Ends worker `index` as a crash would (its listeners close, its
   * connections are cut) so that it is replaced: for operators and tests.
   */
  async terminateWorker(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (!slot)
      throw new MeshlessError(
        'MESHLESS_E_ADMIN_REQUEST',
        `worker must be 0..${this.#slots.length - 1}`,
      );
    await slot.worker.terminate();
  }

  /** Every worker's live connections, each with its worker's index. */
  async connections(): Promise<(ConnectionInfo & { worker: number })[]> {
    const lists = await Promise.all(
      this.#slots.map((s) =>
        this.#ask(s, (id) => ({ type: 'connections', id }), 5000).then(
          (v) => (v as ConnectionInfo[]).map((c) => ({ ...c, worker: s.index })),
          () => [],
        ),
      ),
    );
    return lists.flat();
  }

  /** What an operator must fix although the data plane serves (readiness details). */
  warnings(): string[] {
    return addressSpaceWarnings(this.#addressSpace);
  }

  get addressSpace(): {
    readonly cidrs: readonly string[];
    readonly pods: ClusterAddressSpace['pods'];
    readonly services: ClusterAddressSpace['services'];
  } {
    const a = this.#addressSpace;
    return { cidrs: a.space.cidrs, pods: a.pods, services: a.services };
  }

  setLogLevel(level: LogLevel): void {
    this.#logLevel = level;
    this.#broadcast({ type: 'log-level', level });
  }

  /** Stops every worker's proxies (draining up to `drainMs`), then the threads. */
  close(drainMs: number): Promise<void> {
    // Once: a terminated worker drops what is posted to it, so a second
    // close would wait out the request timeout.
    this.#closed ??= (async () => {
      this.#closing = true;
      await this.#askAll((id) => ({ type: 'close', id, drainMs }), drainMs + 10_000);
      await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    })();
    return this.#closed;
  }
}
