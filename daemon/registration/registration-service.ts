/**
 * What the daemon does with each CNI event: decide enrolment from discovery,
 * keep the registry, and tell the workload observers (identity, proxy) when
 * a workload of this node becomes enrolled or goes away. The HTTP layer
 * (cni-api-server.ts) only parses and answers.
 */
import { MeshlessError, errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { podKey } from '../../src/discovery/cluster-state.js';
import type { DiscoverySource } from '../../src/discovery/discovery-source.js';
import { decideEnrolment, type EnrolmentPolicy } from '../../src/discovery/enrolment.js';
import type {
  AddRequest,
  AddResponse,
  CheckRequest,
  CheckResponse,
  DelRequest,
  GcRequest,
  GcResponse,
  StatusResponse,
} from '../../src/registration/protocol.js';
import type { Registration, Registry } from './registry.js';

/** Told when enrolled workloads of this node come and go (identity, proxy). */
export interface WorkloadObserver {
  /** Must finish before the pod is reported enrolled; a throw fails the ADD. */
  workloadEnrolled(r: Registration): Promise<void>;
  workloadReleased(r: Registration): Promise<void>;
}

export interface RegistrationServiceOptions {
  readonly nodeName: string;
  readonly trustDomain: string;
  readonly policy: EnrolmentPolicy;
  readonly discovery: DiscoverySource;
  readonly registry: Registry;
  readonly log: Logger;
  readonly now?: () => Date;
}

/** "Not now, retry": the plugin turns it into CNI error 11. */
export const notReady = (message: string): MeshlessError =>
  new MeshlessError('MESHLESS_E_NOT_READY', message);

export class RegistrationService {
  readonly #o: RegistrationServiceOptions;
  readonly #observers: WorkloadObserver[] = [];
  /** Serializes events per container so ADD/DEL storms stay ordered. */
  readonly #inflight = new Map<string, Promise<unknown>>();

  constructor(options: RegistrationServiceOptions) {
    this.#o = options;
  }

  addObserver(o: WorkloadObserver): void {
    this.#observers.push(o);
  }

  #serial<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#inflight.get(containerId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.#inflight.set(containerId, next);
    void next
      .finally(() => {
        if (this.#inflight.get(containerId) === next) this.#inflight.delete(containerId);
      })
      .catch(() => undefined);
    return next;
  }

  add(req: AddRequest): Promise<AddResponse> {
    return this.#serial(req.containerId, () => this.#add(req));
  }

  async #add(req: AddRequest): Promise<AddResponse> {
    const { discovery, policy, nodeName, registry, log } = this.#o;
    if (!discovery.synced) throw notReady('discovery has not synced yet');
    const snap = discovery.snapshot();
    const ns = snap.namespaces.get(req.pod.namespace);
    const pod = snap.pods.get(podKey(req.pod.namespace, req.pod.name));
    if (pod?.nodeName !== undefined && pod.nodeName !== nodeName)
      throw new MeshlessError(
        'MESHLESS_E_WRONG_NODE',
        `pod ${req.pod.namespace}/${req.pod.name} is scheduled on node ${pod.nodeName}, not on ${nodeName}`,
      );
    if (pod !== undefined && req.pod.uid !== undefined && pod.uid !== '' && pod.uid !== req.pod.uid)
      throw notReady(
        `pod ${req.pod.namespace}/${req.pod.name} has UID ${req.pod.uid}; discovery still knows ${pod.uid}`,
      );
    const decision = decideEnrolment(policy, req.pod.namespace, ns, pod);
    if (decision.kind === 'unknown') throw notReady(decision.reason);
    const enrolled = decision.kind === 'enrolled';
    if (enrolled && pod === undefined)
      throw notReady(`pod ${req.pod.namespace}/${req.pod.name} is not known to discovery yet`);

    const previous = registry.get(req.containerId);
    const registration: Registration = {
      containerId: req.containerId,
      ifname: req.ifname,
      netns: req.netns,
      network: req.network,
      namespace: req.pod.namespace,
      podName: req.pod.name,
      podUid: req.pod.uid,
      addresses: req.addresses,
      enrolled,
      reason: decision.reason,
      serviceAccount: pod?.serviceAccount,
      registeredAt: previous?.registeredAt ?? (this.#o.now?.() ?? new Date()).toISOString(),
    };
    if (previous?.enrolled && !enrolled) await this.#notifyReleased(previous);
    if (enrolled) {
      try {
        for (const o of this.#observers) await o.workloadEnrolled(registration);
      } catch (err) {
        await this.#notifyReleased(registration);
        // A failed re-ADD leaves no stale enrolled entry behind.
        if (previous) await registry.remove(req.containerId);
        throw new MeshlessError(
          'MESHLESS_E_ENROL',
          `enrolling ${req.pod.namespace}/${req.pod.name} failed: ${errorMessage(err)}`,
          { cause: err },
        );
      }
    }
    await registry.put(registration);
    log.info(
      {
        containerId: req.containerId,
        pod: `${req.pod.namespace}/${req.pod.name}`,
        enrolled,
        reason: decision.reason,
      },
      'pod registered',
    );
    return {
      enrolled,
      reason: decision.reason,
      identity:
        enrolled && pod
          ? `spiffe://${this.#o.trustDomain}/ns/${pod.namespace}/sa/${pod.serviceAccount}`
          : undefined,
    };
  }

  del(req: DelRequest): Promise<void> {
    return this.#serial(req.containerId, async () => {
      const removed = await this.#o.registry.remove(req.containerId);
      if (removed === undefined) return;
      if (removed.enrolled) await this.#notifyReleased(removed);
      this.#o.log.info(
        { containerId: req.containerId, pod: `${removed.namespace}/${removed.podName}` },
        'pod deregistered',
      );
    });
  }

  check(req: CheckRequest): CheckResponse {
    const r = this.#o.registry.get(req.containerId);
    return { registered: r !== undefined, enrolled: r?.enrolled ?? false };
  }

  async gc(req: GcRequest): Promise<GcResponse> {
    const valid = new Set(req.validAttachments.map((a) => `${a.containerId}\0${a.ifname}`));
    const removed: string[] = [];
    for (const r of this.#o.registry.all()) {
      if (r.network !== req.network || valid.has(`${r.containerId}\0${r.ifname}`)) continue;
      await this.del({ apiVersion: req.apiVersion, containerId: r.containerId, ifname: r.ifname });
      removed.push(r.containerId);
    }
    if (removed.length > 0) this.#o.log.info({ removed }, 'garbage collected stale registrations');
    return { removed };
  }

  status(): StatusResponse {
    const snap = this.#o.discovery.snapshot();
    let addresses = 0;
    for (const pod of snap.pods.values()) addresses += pod.ips.length;
    return {
      ready: this.#o.discovery.synced,
      nodeName: this.#o.nodeName,
      workloads: this.#o.registry.size,
      discovery: { namespaces: snap.namespaces.size, pods: snap.pods.size, addresses },
    };
  }

  /** Re-announces every enrolled registration (daemon start). */
  async reattach(): Promise<void> {
    for (const r of this.#o.registry.all()) {
      if (!r.enrolled) continue;
      try {
        for (const o of this.#observers) await o.workloadEnrolled(r);
      } catch (err) {
        this.#o.log.error(
          { containerId: r.containerId, error: errorMessage(err) },
          're-attaching a workload failed',
        );
      }
    }
  }

  async #notifyReleased(r: Registration): Promise<void> {
    for (const o of this.#observers) {
      try {
        await o.workloadReleased(r);
      } catch (err) {
        this.#o.log.warn(
          { containerId: r.containerId, error: errorMessage(err) },
          'releasing a workload failed',
        );
      }
    }
  }
}
