/**
 * What the daemon does with each CNI event: decide enrolment from discovery,
 * keep the registry, and tell the workload observers (identity, proxy) when
 * a workload of this node becomes enrolled or goes away. The HTTP layer
 * (cni-api-server.ts) only parses and answers.
 */
import { existsSync } from 'node:fs';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import { daemonNetnsPath } from '../../src/netns/netns-path.js';
import type { Logger } from '../../src/logger.js';
import { podKey, type PodInfo } from '../../src/discovery/cluster-state.js';
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
import type { PodRedirect } from '../../src/redirect/pod-redirect.js';
import type { IpFamily } from '../../src/redirect/constants.js';
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
  /** Where the host's /proc is mounted in the daemon's view (config `hostProcPath`). */
  readonly hostProcPath?: string | undefined;
  /**
   * The in-pod redirect rules, for enrolment changes the daemon makes
   * itself (labels changed while pods run, reconciliation at start). The
   * CNI plugin installs them at ADD.
   */
  readonly redirect?: Pick<PodRedirect, 'install' | 'repair' | 'remove' | 'verify' | 'present'>;
  /** Whether a netns path exists (default fs.existsSync); tests pass a fake. */
  readonly netnsExists?: (path: string) => boolean;
  /** Discovery changes the data plane has not applied yet (status); default none. */
  readonly dataPlaneBehind?: () => number;
}

/** "Not now, retry": the plugin turns it into CNI error 11. */
export const notReady = (message: string): MeshlessError =>
  new MeshlessError('MESHLESS_E_NOT_READY', message);

export class RegistrationService {
  readonly #o: RegistrationServiceOptions;
  readonly #observers: WorkloadObserver[] = [];
  /** Serializes events per container so ADD/DEL storms stay ordered. */
  readonly #inflight = new Map<string, Promise<unknown>>();

  #reconciling: Promise<void> | undefined;
  #reconcileAgain = false;

  constructor(options: RegistrationServiceOptions) {
    this.#o = options;
  }

  /**
   * Reconciles now, or once more after the run in progress: a burst of
   * discovery changes costs at most two runs.
   */
  scheduleReconcile(): Promise<void> {
    if (this.#reconciling) {
      this.#reconcileAgain = true;
      return this.#reconciling;
    }
    const run = async (): Promise<void> => {
      do {
        this.#reconcileAgain = false;
        await this.reconcile();
      } while (this.#reconcileAgain);
    };
    this.#reconciling = run().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
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
    // Node scoping: an identity only for a pod discovery says runs here.
    if (enrolled && pod?.nodeName !== nodeName)
      throw notReady(
        `pod ${req.pod.namespace}/${req.pod.name} is not scheduled on ${nodeName} as far as discovery knows yet`,
      );
    this.#checkClaims(req, enrolled ? pod : undefined);
    // Refused here, clearly, rather than failing later when binding the
    // pod's listeners inside it (and never retried: the runtime's netns is gone).
    const netns = daemonNetnsPath(req.netns, this.#o.hostProcPath);
    if (enrolled && !(this.#o.netnsExists ?? existsSync)(netns))
      throw new MeshlessError(
        'MESHLESS_E_NETNS_MISSING',
        `netns ${netns} of pod ${req.pod.namespace}/${req.pod.name} does not exist on this ` +
          'node (as the daemon sees it: is /var/run/netns mounted into the daemon?)',
      );

    const previous = registry.get(req.containerId);
    const registration: Registration = {
      containerId: req.containerId,
      ifname: req.ifname,
      netns,
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
        // The signer unreachable (or discovery lagging): try again (CNI 11).
        if (err instanceof MeshlessError && err.code === 'MESHLESS_E_NOT_READY')
          throw notReady(
            `enrolling ${req.pod.namespace}/${req.pod.name} must wait: ${errorMessage(err)}`,
          );
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

  /**
   * Refuses a registration that would take over another pod's state: a
   * container ID already registered as another pod, a netns registered to
   * another pod, or (for an enrolled pod) addresses discovery gives to
   * another pod, or that are not this pod's once discovery knows its IPs.
   */
  #checkClaims(req: AddRequest, pod: PodInfo | undefined): void {
    const who = `${req.pod.namespace}/${req.pod.name}`;
    const conflict = (message: string): MeshlessError =>
      new MeshlessError('MESHLESS_E_REGISTRATION_CONFLICT', message);
    const previous = this.#o.registry.get(req.containerId);
    if (previous && (previous.namespace !== req.pod.namespace || previous.podName !== req.pod.name))
      throw conflict(
        `container ${req.containerId} is registered as pod ${previous.namespace}/${previous.podName}, not ${who}`,
      );
    const netns = daemonNetnsPath(req.netns, this.#o.hostProcPath);
    for (const r of this.#o.registry.all())
      if (
        r.containerId !== req.containerId &&
        r.netns === netns &&
        (r.namespace !== req.pod.namespace || r.podName !== req.pod.name)
      )
        throw conflict(
          `netns ${netns} is registered to pod ${r.namespace}/${r.podName}, not ${who}`,
        );
    if (!pod) return;
    const owners = new Map<string, string>();
    for (const p of this.#o.discovery.snapshot().pods.values())
      for (const ip of p.ips) owners.set(ip, `${p.namespace}/${p.name}`);
    for (const a of req.addresses) {
      const owner = owners.get(a.ip);
      if (owner !== undefined && owner !== who)
        throw conflict(`address ${a.ip} belongs to pod ${owner}, not ${who}`);
      if (pod.ips.length > 0 && !pod.ips.includes(a.ip))
        throw conflict(`address ${a.ip} is not one of ${who}'s (${pod.ips.join(', ')})`);
    }
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
      discovery: {
        namespaces: snap.namespaces.size,
        pods: snap.pods.size,
        addresses,
        dataPlaneBehind: this.#o.dataPlaneBehind?.() ?? 0,
      },
    };
  }

  /**
   * Daemon start: brings every enrolled registration's listeners and
   * identity back at once (while they are missing, the pod's redirected
   * connections are refused: fail closed), before discovery may have synced.
   */
  async reattach(): Promise<void> {
    // All at once: with the signer unreachable each waits up to
    // signer.enrolWaitSeconds, and the node must not wait for their sum.
    await Promise.all(
      this.#o.registry.all().map(async (r) => {
        if (!r.enrolled) return;
        try {
          for (const o of this.#observers) await o.workloadEnrolled(r);
        } catch (err) {
          this.#o.log.error(
            { containerId: r.containerId, error: errorMessage(err) },
            're-attaching a workload failed; reconciliation retries it',
          );
        }
      }),
    );
  }

  /**
   * Brings every registration in line with discovery and the kernel:
   * enrols pods whose namespace gained the label (listeners and identity
   * first, then the rules), releases those that lost it (rules removed
   * first, so new connections go direct, then listeners drained), and
   * repairs rules that are missing for an enrolled pod or left behind for
   * a pod that is not. Runs at start once discovery has synced and after
   * every discovery change. Idempotent.
   */
  async reconcile(): Promise<void> {
    if (!this.#o.discovery.synced) return;
    const snap = this.#o.discovery.snapshot();
    await Promise.all(
      this.#o.registry.all().map((r) =>
        this.#serial(r.containerId, async () => {
          const current = this.#o.registry.get(r.containerId);
          if (current === undefined) return;
          const pod = snap.pods.get(podKey(current.namespace, current.podName));
          const decision = decideEnrolment(
            this.#o.policy,
            current.namespace,
            snap.namespaces.get(current.namespace),
            pod,
          );
          if (decision.kind === 'unknown') return;
          const enrolled = decision.kind === 'enrolled';
          try {
            if (enrolled && !current.enrolled)
              await this.#enrolLive(current, decision.reason, pod?.serviceAccount);
            else if (!enrolled && current.enrolled)
              await this.#releaseLive(current, decision.reason);
            else {
              // An enrolled pod whose identity or listeners could not be
              // brought back (the signer was unreachable at re-attach) gets
              // them now; observers make this a no-op when they are in place.
              if (enrolled) for (const o of this.#observers) await o.workloadEnrolled(current);
              await this.#repairRules(current);
            }
          } catch (err) {
            this.#o.log.error(
              {
                containerId: current.containerId,
                pod: `${current.namespace}/${current.podName}`,
                error: errorMessage(err),
              },
              'reconciling a workload failed; will retry on the next change',
            );
          }
        }),
      ),
    );
  }

  #families(r: Registration): IpFamily[] {
    const f = [...new Set(r.addresses.map((a) => a.family))].sort();
    return f.length > 0 ? f : [4];
  }

  async #enrolLive(
    r: Registration,
    reason: string,
    serviceAccount: string | undefined,
  ): Promise<void> {
    if (serviceAccount === undefined) return; // the pod is not known yet: next change
    const next: Registration = { ...r, enrolled: true, reason, serviceAccount };
    for (const o of this.#observers) await o.workloadEnrolled(next);
    try {
      await this.#o.redirect?.install(next.netns, this.#families(next));
    } catch (err) {
      await this.#notifyReleased(next);
      throw err;
    }
    await this.#o.registry.put(next);
    this.#o.log.info(
      { containerId: r.containerId, pod: `${r.namespace}/${r.podName}`, reason },
      'pod enrolled live',
    );
  }

  async #releaseLive(r: Registration, reason: string): Promise<void> {
    await this.#o.redirect?.remove(r.netns);
    await this.#o.registry.put({ ...r, enrolled: false, reason });
    await this.#notifyReleased(r);
    this.#o.log.info(
      { containerId: r.containerId, pod: `${r.namespace}/${r.podName}`, reason },
      'pod released live',
    );
  }

  /** Enrolled without its rules, or rules without enrolment: put it right. */
  async #repairRules(r: Registration): Promise<void> {
    const redirect = this.#o.redirect;
    if (redirect === undefined) return;
    if (r.enrolled) {
      const problems = await redirect.verify(r.netns, this.#families(r));
      if (problems.length === 0) return;
      this.#o.log.warn(
        { containerId: r.containerId, problems },
        'redirect rules of an enrolled pod were not intact; reinstalling',
      );
      await redirect.repair(r.netns, this.#families(r));
    } else if (await redirect.present(r.netns)) {
      this.#o.log.warn(
        { containerId: r.containerId },
        'a pod that is not enrolled had redirect rules; removing them',
      );
      await redirect.remove(r.netns);
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
