/**
 * The daemon's composition root: builds every service from the config, in
 * order, and tears them down in reverse. The few decisions that live here
 * are about the daemon as a whole, not about a pod or a connection:
 * - readiness: ready once discovery has synced and every enrolled
 *   registration has its listeners and identity (`readinessProblems`,
 *   served on /healthz/ready and in /status);
 * - the admin routes' answers, and `POST /logging`, which checks the level
 *   against LOG_LEVELS before changing it;
 * - the upgrade take-over: a daemon that finds another one serving the CNI
 *   socket treats the registrations as read-only, serves the data plane at
 *   once, retries the socket and the probe ports until the old daemon has
 *   left, then reloads the registrations and reconciles.
 * Enrolment, identity and proxying are decided in the services it builds.
 */
import { mkdir } from 'node:fs/promises';
import { LOG_LEVELS, type DaemonConfig, type LogLevel } from '../src/config/daemon-config.js';
import { MeshlessError, errorMessage, isErrno } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { DiscoverySource } from '../src/discovery/discovery-source.js';
import { FileDiscoverySource } from '../src/discovery/file-source.js';
import { KubernetesDiscoverySource } from '../src/discovery/kubernetes-source.js';
import { createAdminServer } from './admin/admin-server.js';
import { execaRunner } from '../src/exec/command-runner.js';
import { PodRedirect } from '../src/redirect/pod-redirect.js';
import { NodeProbeSnat } from '../src/redirect/node-probe-snat.js';
import { setProcSysNetPath } from '../src/netns/socket-in-netns.js';
import { IdentityService } from './identity/identity-service.js';
import { createDaemonLogger } from './observability/daemon-logger.js';
import { DaemonMetrics } from './observability/metrics.js';
import { policyCheckRoute } from './policy/policy-check-route.js';
import { PolicyView } from './policy/policy-view.js';
import { startMetricsServer, startReadinessServer } from './observability/probe-servers.js';
import { WorkerDataPlane } from './proxy/workers/worker-data-plane.js';
import { ProbeSnatService } from './probes/probe-snat-service.js';
import { isSocketServed, startCniApiServer } from './registration/cni-api-server.js';
import { RegistrationService } from './registration/registration-service.js';
import { Registry } from './registration/registry.js';

/** The daemon's version, as package.json says (set by the build). */
export const DAEMON_VERSION = process.env['MESHLESS_BUILD_VERSION'] ?? '0.1.0';

export interface RunningDaemon {
  readonly log: Logger;
  readonly registry: Registry;
  readonly service: RegistrationService;
  readonly identity: IdentityService;
  /** The data plane: the pods' proxies on `dataPlane.workers` worker threads. */
  readonly proxy: WorkerDataPlane;
  /** Stops accepting, drains established connections up to the deadline, exits the services; once (a second call gets the first one's promise). */
  stop(): Promise<void>;
}

/** The effective config with nothing secret in it, for the start-up log and /config. */
export function redactedConfig(config: DaemonConfig): Record<string, unknown> {
  return {
    ...config,
    enrolmentLabel: `${config.enrolmentLabel.key}=${config.enrolmentLabel.value}`,
    // Paths are not secrets; key material is never part of the config.
  };
}

function discoveryFor(config: DaemonConfig, log: Logger): DiscoverySource {
  if (config.discovery.source === 'file')
    return new FileDiscoverySource(config.discovery.file, log);
  return new KubernetesDiscoverySource({ kubeconfig: config.discovery.kubeconfig, log });
}

export async function startDaemon(config: DaemonConfig, log?: Logger): Promise<RunningDaemon> {
  const daemonLog = createDaemonLogger(config.logLevel, { node: config.nodeName });
  const setLogLevel = (level: LogLevel): void => {
    daemonLog.setLevel(level);
    proxy.setLogLevel(level);
  };
  const currentLogLevel = (): string => (log ? 'external' : daemonLog.level());
  const logger: Logger = log ?? daemonLog.logger;
  logger.info({ config: redactedConfig(config) }, 'meshlessd starting');
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });

  // Per-pod sysctls go through this mount (a container's /proc/sys is read-only).
  setProcSysNetPath(config.procSysNetPath);
  const discovery = discoveryFor(config, logger);
  // The file source reads synchronously enough to wait for; the Kubernetes
  // source may wait on an API that is down, and the node must keep serving
  // (the CNI API answers 503 for enrolled pods until discovery has synced,
  // and pods of plain namespaces keep starting).
  const synced = discovery.start();
  if (config.discovery.source === 'file') await synced;
  else
    synced.then(
      () => logger.info({}, 'discovery synced'),
      (err: unknown) => {
        logger.error({ error: String(err) }, 'discovery failed for good; exiting');
        process.exit(1);
      },
    );
  const registry = new Registry(config.stateDir, logger);
  // Another daemon serving our socket means an upgrade is under way: its
  // view of the registrations is the one on disk until we take over.
  registry.readOnly = await isSocketServed(config.cniSocket);
  const dropped = await registry.load();
  for (const r of dropped)
    logger.info(
      { containerId: r.containerId, pod: `${r.namespace}/${r.podName}` },
      'dropped registration: netns is gone',
    );

  const metrics = new DaemonMetrics();
  const identity = await IdentityService.create(config, {
    logger: logger.child({ component: 'identity' }),
  });
  const policy = { label: config.enrolmentLabel, excludeNamespaces: config.excludeNamespaces };
  // Authorization, strict mTLS and NetworkPolicy, compiled per snapshot:
  // asked by the data plane for every inbound connection, and by GET
  // /policy/check to explain a decision.
  const policies = new PolicyView(discovery, {
    rootNamespace: config.rootNamespace,
    log: logger.child({ component: 'policy' }),
  });
  // The data plane on worker threads: each evaluates the inbound policy
  // where the connection is, from its own copy of the policies, and
  // re-checks its established connections when they change.
  const proxy = new WorkerDataPlane({
    config,
    discovery,
    identity,
    log: logger.child({ component: 'proxy' }),
    onRecord: (r) => metrics.connection(r),
    onOpen: (direction) => metrics.connectionsOpened.inc({ direction }),
    onHandshakeFailure: (side, reason) => metrics.handshakeFailures.inc({ side, reason }),
    onStreamRefused: (reason) => metrics.streamsRefused.inc({ reason }),
    onSessionError: (reason) => metrics.sessionErrors.inc({ reason }),
    onLimit: (limit, direction) => metrics.limitRefusals.inc({ limit, direction }),
    onBufferBudgetSpent: () => metrics.bufferBudgetExhausted.inc(),
    onWorkerOpen: (worker) => metrics.workerConnectionsOpened.inc({ worker: String(worker) }),
    onWorkerRestart: (worker) => metrics.workerRestarts.inc({ worker: String(worker) }),
  });
  await proxy.start();
  metrics.dataPlaneWorkers.set(config.dataPlane.workers);
  const service = new RegistrationService({
    nodeName: config.nodeName,
    trustDomain: config.trustDomain,
    policy,
    discovery,
    registry,
    log: logger.child({ component: 'registration' }),
    redirect: new PodRedirect(execaRunner()),
    hostProcPath: config.hostProcPath,
    dataPlaneBehind: () => proxy.discoveryBehind,
  });
  service.addObserver(proxy);
  // Kubelet probes SNATed on the node (config probeSnat), kept in step with enrolment.
  const probeSnat = new NodeProbeSnat(execaRunner());
  const probes = config.probeSnat
    ? new ProbeSnatService(probeSnat, logger.child({ component: 'probe-snat' }))
    : undefined;
  if (probes) service.addObserver(probes);
  // Listeners first (a redirected pod without them is refused, never leaks),
  // then, once discovery has synced, rules and enrolment against the labels.
  await service.reattach();
  await (probes ? probes.sync() : probeSnat.remove()).catch((err: unknown) =>
    logger.error({ error: errorMessage(err) }, 'probe SNAT rules on the node could not be set'),
  );
  const stopProbeRepair = probes?.repairEvery(60_000);
  discovery.onChange(() => void service.scheduleReconcile());
  const firstReconcile = synced.then(() => service.scheduleReconcile());
  if (config.discovery.source === 'file') await firstReconcile;
  else firstReconcile.catch(() => undefined); // a failed sync already exits
  function readinessProblems(): string[] {
    const problems: string[] = [];
    if (!discovery.synced) problems.push('discovery has not synced');
    const signer = identity.signerStatus;
    if (signer && !signer.reachable)
      problems.push(
        `the cluster signer ${signer.address} is unreachable (${signer.consecutiveFailures} failed calls: ${signer.lastError ?? ''}); issued SVIDs keep serving, new pods wait`,
      );
    for (const r of registry.all())
      if (r.enrolled && !proxy.has(r.containerId))
        problems.push(`workload ${r.namespace}/${r.podName} has no listeners or identity yet`);
    return problems;
  }
  // An enrolled workload left without identity or listeners (the signer was
  // unreachable when it was re-attached) is retried until it has them.
  const reattachRetry = setInterval(() => {
    if (registry.all().some((r) => r.enrolled && !proxy.has(r.containerId)))
      void service.scheduleReconcile();
  }, 5000);
  reattachRetry.unref();
  const startedAt = new Date().toISOString();
  const admin = createAdminServer({
    address: config.adminAddress,
    logger: logger.child({ component: 'admin' }),
    actions: {
      // POST /logging?level=debug (as ztunnel's admin): the level at run time.
      '/logging': (query) => {
        const level = query.get('level');
        if (level !== null) {
          if (!(LOG_LEVELS as readonly string[]).includes(level))
            throw new MeshlessError(
              'MESHLESS_E_ADMIN_REQUEST',
              `level must be one of ${LOG_LEVELS.join(', ')}`,
            );
          setLogLevel(level as LogLevel);
          logger.info({ level }, 'log level changed');
        }
        return { level: currentLogLevel() };
      },
      // POST /workers/terminate?worker=N: ends a data-plane worker as a
      // crash would; it is replaced and its pods' listeners bound again.
      '/workers/terminate': async (query) => {
        const worker = Number(query.get('worker'));
        if (!Number.isInteger(worker))
          throw new MeshlessError('MESHLESS_E_ADMIN_REQUEST', 'worker=N is required');
        await proxy.terminateWorker(worker);
        return { terminated: worker };
      },
    },
    routes: {
      '/status': async () => {
        const notReady = readinessProblems();
        return {
          nodeName: config.nodeName,
          trustDomain: config.trustDomain,
          version: DAEMON_VERSION,
          startedAt,
          ready: notReady.length === 0,
          notReady,
          warnings: proxy.warnings(),
          addressSpace: proxy.addressSpace,
          discovery: {
            source: config.discovery.source,
            ...service.status().discovery,
            synced: discovery.synced,
          },
          workloads: {
            registered: registry.size,
            enrolled: registry.all().filter((r) => r.enrolled).length,
            proxied: proxy.size,
          },
          identities: identity.report().identities.length,
          signer: identity.signerStatus ?? null,
          hbonePool: proxy.poolStats(),
          connections: (await proxy.connections()).length,
          dataPlaneWorkers: proxy.workers(),
        };
      },
      '/connections': () => proxy.connections(),
      '/workers': () => proxy.report(),
      '/certs': () => identity.report(),
      '/config': () => redactedConfig(config),
      '/policy/check': policyCheckRoute(policies, discovery, config, policy),
      '/workloads': () =>
        registry.all().map((r) => ({
          ...r,
          identity: r.enrolled ? (proxy.identityOf(r.containerId) ?? null) : null,
        })),
    },
  });
  // During an upgrade (DaemonSet maxSurge) the old daemon still holds the
  // CNI socket and the probe ports; this one serves the data plane already
  // (its pod listeners share ports through SO_REUSEPORT) and takes the rest
  // over as soon as the old one has left.
  let stopping = false;
  let stopped: Promise<void> | undefined;
  const closers: (() => Promise<void>)[] = [];
  const whenFree = <T>(
    what: string,
    busy: (err: unknown) => boolean,
    bind: () => Promise<T>,
  ): Promise<T> =>
    (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await bind();
        } catch (err) {
          if (stopping || !busy(err)) throw err;
          if (attempt === 0)
            logger.warn({ what }, 'taken by another daemon (an upgrade?); waiting for it to leave');
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    })();
  const inUse = (err: unknown): boolean =>
    isErrno(err, 'EADDRINUSE') ||
    isErrno((err as { cause?: unknown })?.cause, 'EADDRINUSE') ||
    /EADDRINUSE|in use/.test(String(err));
  const background = (p: Promise<unknown>, what: string): void => {
    p.catch((err: unknown) => {
      if (!stopping) logger.error({ what, error: errorMessage(err) }, 'could not bind');
    });
  };
  background(
    whenFree('admin address', inUse, () => admin.listen()).then(() =>
      closers.push(() => admin.close()),
    ),
    'admin',
  );
  background(
    whenFree('readiness address', inUse, () =>
      startReadinessServer(config.readinessAddress, readinessProblems, () => proxy.warnings()),
    ).then((srv) => closers.push(() => srv.close())),
    'readiness',
  );
  background(
    whenFree('metrics address', inUse, () =>
      startMetricsServer(config.metricsAddress, metrics.registry, () => {
        const pool = proxy.poolStats();
        metrics.poolConnections.set(pool.connections);
        metrics.poolStreams.set(pool.streams);
        metrics.enrolledWorkloads.set(proxy.size);
        for (const w of proxy.workers())
          metrics.workerConnections.set({ worker: String(w.worker) }, w.connections);
        const signer = identity.signerStatus;
        if (signer) {
          metrics.signerReachable.set(signer.reachable ? 1 : 0);
          metrics.signerFailures.set(signer.consecutiveFailures);
        }
        metrics.certificateExpiry.reset();
        const now = Date.now();
        for (const id of identity.report().identities)
          metrics.certificateExpiry.set(
            { identity: id.spiffeId },
            (Date.parse(id.notAfter) - now) / 1000,
          );
      }),
    ).then((srv) => closers.push(() => srv.close())),
    'metrics',
  );
  const socketBusy = (err: unknown): boolean =>
    err instanceof MeshlessError && err.code === 'MESHLESS_E_SOCKET_BUSY';
  let tookOver = false;
  const api = whenFree('CNI socket', socketBusy, async () => {
    try {
      return await startCniApiServer(
        config.cniSocket,
        service,
        logger.child({ component: 'cni-api' }),
        (command, seconds, outcome) => metrics.cniEvent(command, seconds, outcome),
      );
    } catch (err) {
      if (socketBusy(err)) {
        tookOver = true;
        registry.readOnly = true;
      }
      throw err;
    }
  }).then(async (server) => {
    closers.unshift(() => server.close());
    if (tookOver) {
      // The old daemon kept registrations.json up to date until it left.
      await registry.reload();
      await service.reattach();
      await service.scheduleReconcile();
      logger.info({ workloads: registry.size }, 'took over from the previous daemon');
    }
    return server;
  });
  // A fresh start waits for its socket; an upgrade goes on and takes it later.
  await Promise.race([api, new Promise((r) => setTimeout(r, 1000))]);
  background(api, 'CNI socket');
  logger.info({ workloads: registry.size }, 'meshlessd ready');

  return {
    log: logger,
    registry,
    service,
    identity,
    proxy,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        stopProbeRepair?.();
        clearInterval(reattachRetry);
        for (const close of closers) await close();
        await proxy.close(config.drainTimeoutSeconds * 1000);
        identity.close();
        discovery.close();
        await registry.flush();
      })();
      return stopped;
    },
  };
}
