/**
 * A data-plane worker thread (the entry of dist/meshlessd-worker.js): it
 * runs the daemon's ProxyService, unchanged, with what the main thread
 * hands it: discovery deltas (MirroredDiscovery), SVIDs and the trust
 * bundle (WorkerIdentities), and the pods to serve. Its listeners share
 * every pod's ports with the other workers' through SO_REUSEPORT, so the
 * kernel spreads accepted connections across workers; the inbound policy
 * is evaluated here, where the connection is, from this worker's own
 * PolicyView, which also re-checks this worker's established connections
 * when the policies change.
 *
 * Invariants:
 *  - Every request from the main thread gets exactly one reply.
 *  - Events for metrics leave in one message per event-loop turn at most
 *    (a batch), with this worker's live counts; connection records are
 *    logged here, by the ProxyService, as on one thread.
 *  - setns() happens on this thread only (the addon enters a pod's netns
 *    in the calling thread and comes back before returning).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../../src/errors.js';
import { setProcSysNetPath } from '../../../src/netns/socket-in-netns.js';
import { inboundPolicy } from '../../../src/proxy/inbound-policy.js';
import { createDaemonLogger } from '../../observability/daemon-logger.js';
import { PolicyView } from '../../policy/policy-view.js';
import { ProxyService } from '../proxy-service.js';
import { applySnapshotDelta } from '../../../src/discovery/snapshot-delta.js';
import { MirroredDiscovery } from './mirrored-discovery.js';
import {
  type DataPlaneEvent,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerReportValue,
  type WorkerStats,
} from './protocol.js';
import { WorkerIdentities } from './worker-identities.js';

function run(port: NonNullable<typeof parentPort>, init: WorkerInit): void {
  const post = (m: FromWorker): void => port.postMessage(m);
  const logs = createDaemonLogger(init.logLevel, { node: init.nodeName, worker: init.index });
  const log = logs.logger;
  setProcSysNetPath(init.procSysNetPath);
  const discovery = new MirroredDiscovery(init.snapshot, init.synced);
  const identities = new WorkerIdentities(init.trustDomain, init.trustBundlePem);
  const policies = new PolicyView(discovery, {
    rootNamespace: init.rootNamespace,
    log: log.child({ component: 'policy' }),
  });

  let pending: DataPlaneEvent[] = [];
  let flushing = false;
  let discoveryVersion = init.discoveryVersion;
  const stats = (): WorkerStats => ({
    connections: proxy.connections.size,
    pool: proxy.pool.stats(),
    pods: proxy.proxies.size,
    discoveryVersion,
  });
  const flush = (): void => {
    flushing = false;
    const events = pending;
    pending = [];
    post({ type: 'events', events, stats: stats() });
  };
  /** Events and counts go out once per event-loop turn, batched. */
  const scheduleFlush = (): void => {
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  };
  const emit = (e: DataPlaneEvent): void => {
    pending.push(e);
    scheduleFlush();
  };

  const proxy = new ProxyService({
    trustDomain: init.trustDomain,
    policy: { label: init.enrolmentLabel, excludeNamespaces: init.excludeNamespaces },
    discovery,
    identity: identities,
    log: log.child({ component: 'proxy' }),
    drainMs: init.drainMs,
    onRecord: (record) => emit({ kind: 'record', record }),
    onOpen: (direction) => emit({ kind: 'open', direction }),
    onHandshakeFailure: (side, reason) => emit({ kind: 'handshake-failure', side, reason }),
    onStreamRefused: (reason) => emit({ kind: 'stream-refused', reason }),
    onSessionError: (reason) => emit({ kind: 'session-error', reason }),
    podCidrs: init.podCidrs,
    serviceCidrs: init.serviceCidrs,
    inboundPolicy: inboundPolicy(() => policies.index, {
      enforceNetworkPolicy: init.enforceNetworkPolicy,
    }),
    limits: init.limits,
    ...(init.relayBufferBytes === undefined ? {} : { relayBufferBytes: init.relayBufferBytes }),
    onLimit: (limit, direction) => emit({ kind: 'limit', limit, direction }),
    onBufferBudgetSpent: () => emit({ kind: 'budget-spent' }),
  });
  policies.onChange(() => proxy.recheckPolicies());
  // Counts reach the main thread even when nothing happens (gauges, status).
  setInterval(() => {
    if (!flushing) flush();
  }, 1000).unref();

  const answer = (id: number, work: () => unknown): void => {
    Promise.resolve()
      .then(work)
      .then(
        (value) => post({ type: 'reply', id, ok: true, value }),
        (err: unknown) => post({ type: 'reply', id, ok: false, error: errorMessage(err) }),
      );
  };
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'delta':
        discovery.apply(applySnapshotDelta(discovery.snapshot(), m.delta), m.synced);
        discoveryVersion = m.version;
        // The main thread learns soon that this worker decides on it.
        scheduleFlush();
        return;
      case 'svid':
        identities.install(m.svid);
        return;
      case 'svid-dropped':
        identities.drop(m.spiffeId);
        return;
      case 'trust-bundle':
        identities.setTrustBundle(m.pem);
        return;
      case 'log-level':
        logs.setLevel(m.level);
        return;
      case 'enrol':
        answer(m.id, () => proxy.workloadEnrolled(m.registration));
        return;
      case 'release':
        answer(m.id, () => proxy.workloadReleased(m.registration));
        return;
      case 'connections':
        answer(m.id, () => proxy.connections.list());
        return;
      case 'report':
        answer(m.id, (): WorkerReportValue => ({
          svids: Object.fromEntries(identities.serials()),
          discoveryVersion,
        }));
        return;
      case 'close':
        answer(m.id, async () => {
          await proxy.close(m.drainMs);
          discovery.close();
          flush();
          // The main thread terminates this thread next: the drained
          // connections' records must be out first.
          logs.flush();
        });
        return;
    }
  });
  post({ type: 'ready' });
}

if (parentPort) run(parentPort, workerData as WorkerInit);
