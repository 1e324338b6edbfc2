/**
 * Keeps the node's probe SNAT rule (src/redirect/probe-snat.ts) in step with
 * the enrolled pods of this node: a WorkloadObserver that re-renders the
 * whole set after every enrolment and release, and at start (after the
 * registrations are re-attached, so a restart replaces, never appends).
 *
 * Invariants:
 * - Renders run one at a time, each from the set as it is when it starts;
 *   changes during a render schedule exactly one more (coalesced). An
 *   enrolment that changes nothing (reconciliation confirms every enrolled
 *   pod after each discovery change) runs nothing, and a render touches
 *   only the families whose addresses changed since the last render that
 *   succeeded: each is an iptables-save and -restore on the node, and on
 *   the ADD path they compete with the plugin for the node's CPU.
 *   sync() at start and repair() render every family.
 * - An enrolment never waits for, nor fails on, the rule: until it is in
 *   place, probes go through the pod's proxy as before. A failed render is
 *   logged and retried at the next change.
 * - The daemon stopping leaves the rule as it is: probes must keep working
 *   while the daemon restarts or is upgraded. Removal is for uninstall
 *   (`meshless cni uninstall`) and for `probeSnat: false`.
 * - Someone else flushing the node's nat table (a firewall reload) is
 *   noticed by `repair()`, which the daemon runs every minute.
 */
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { NodeProbeSnat } from '../../src/redirect/node-probe-snat.js';
import { probeSnatRules } from '../../src/redirect/probe-snat.js';
import type { IpFamily } from '../../src/redirect/constants.js';
import type { Registration } from '../registration/registry.js';
import type { WorkloadObserver } from '../registration/registration-service.js';

export class ProbeSnatService implements WorkloadObserver {
  readonly #snat: NodeProbeSnat;
  readonly #log: Logger;
  /** Enrolled pod addresses by container ID. */
  readonly #addresses = new Map<string, readonly string[]>();
  /** The rules the last successful render put in place, per family. */
  readonly #rendered = new Map<IpFamily, string>();
  #running: Promise<void> = Promise.resolve();
  #pending: Promise<void> | undefined;
  /** Off until the first sync(): re-attaching at start records, then renders once. */
  #live = false;
  /** The next render covers every family (start-up, repair, after a failed forced one). */
  #forceNext = false;

  constructor(snat: NodeProbeSnat, log: Logger) {
    this.#snat = snat;
    this.#log = log;
  }

  /** The enrolled pod addresses the rule covers (once the last render is done). */
  addresses(): string[] {
    return [...new Set([...this.#addresses.values()].flat())].sort();
  }

  workloadEnrolled(r: Registration): Promise<void> {
    this.#addresses.set(
      r.containerId,
      r.addresses.map((a) => a.ip),
    );
    // A render that finds every family as last rendered runs nothing.
    this.#background();
    return Promise.resolve();
  }

  workloadReleased(r: Registration): Promise<void> {
    if (this.#addresses.delete(r.containerId)) this.#background();
    return Promise.resolve();
  }

  /**
   * Renders the current set; resolves once it is in the kernel (rejects on
   * failure). The first call (at start, after re-attaching) turns on the
   * renders that follow every change.
   */
  sync(): Promise<void> {
    this.#live = true;
    return this.#render(true);
  }

  #render(everyFamily: boolean): Promise<void> {
    if (everyFamily) this.#forceNext = true;
    if (this.#pending) return this.#pending;
    const next = this.#running.then(async () => {
      this.#pending = undefined;
      const force = this.#forceNext;
      this.#forceNext = false;
      const ips = this.addresses();
      // The rules each family would get: what to compare with the last render.
      const sets = new Map<IpFamily, string>(
        ([4, 6] as const).map((f) => [f, probeSnatRules(f, ips).join('\n')]),
      );
      const changed = ([4, 6] as const).filter(
        (f) => force || this.#rendered.get(f) !== sets.get(f),
      );
      if (changed.length === 0) return;
      for (const f of changed) this.#rendered.delete(f);
      try {
        await this.#snat.apply(ips, changed);
      } catch (err) {
        // The next change renders these families again.
        this.#forceNext ||= force;
        throw err;
      }
      for (const f of changed) this.#rendered.set(f, sets.get(f) ?? '');
      this.#log.debug({ addresses: ips.length, families: changed }, 'probe SNAT rules rendered');
    });
    this.#pending = next;
    this.#running = next.catch(() => undefined);
    return next;
  }

  /**
   * Compares the node's rules with the current set and renders again when
   * they differ (a firewall reload flushed them, someone edited the chain).
   * Resolves true when it had to repair.
   */
  async repair(): Promise<boolean> {
    if (!this.#live) return false;
    await this.settled();
    const problems = await this.#snat.verify(this.addresses());
    if (problems.length === 0) return false;
    this.#log.warn(
      { problems },
      'the probe SNAT rules on the node were not intact; rendering again',
    );
    await this.sync();
    return true;
  }

  /** Runs {@link repair} every `intervalMs` until the returned function is called. */
  repairEvery(intervalMs: number): () => void {
    const timer = setInterval(() => {
      this.repair().catch((err: unknown) =>
        this.#log.error({ error: errorMessage(err) }, 'checking the probe SNAT rules failed'),
      );
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Resolves once every render scheduled so far has run. */
  settled(): Promise<void> {
    return this.#running;
  }

  #background(): void {
    if (!this.#live) return;
    this.#render(false).catch((err: unknown) =>
      this.#log.error(
        { error: errorMessage(err) },
        'rendering the probe SNAT rules failed; kubelet probes of new pods go through their proxy until the next change',
      ),
    );
  }
}
