/**
 * The daemon's current policies: a {@link PolicyIndex} rebuilt from each
 * discovery snapshot (so a per-connection check reads one immutable
 * index), each policy that cannot be honoured as written logged once per
 * change, and a change notification for whoever re-checks established
 * connections.
 */
import type { DiscoverySource } from '../../src/discovery/discovery-source.js';
import type { Logger } from '../../src/logger.js';
import {
  PolicyIndexBuilder,
  type PolicyIndex,
  type PolicySource,
} from '../../src/policy/policy-index.js';

export interface PolicyViewOptions {
  readonly rootNamespace: string;
  readonly log: Logger;
}

export class PolicyView {
  #index: PolicyIndex;
  #logged = new Set<string>();
  readonly #listeners: ((index: PolicyIndex) => void)[] = [];
  readonly #o: PolicyViewOptions;
  readonly #builder: PolicyIndexBuilder;

  constructor(
    discovery: Pick<DiscoverySource, 'snapshot' | 'onChange'>,
    options: PolicyViewOptions,
  ) {
    this.#o = options;
    this.#builder = new PolicyIndexBuilder({ rootNamespace: options.rootNamespace });
    let last = discovery.snapshot();
    this.#index = this.#build(last);
    discovery.onChange((snapshot) => {
      // Discovery keeps the maps of kinds that did not change: nothing the policies read changed.
      const same =
        snapshot.namespaces === last.namespaces &&
        snapshot.pods === last.pods &&
        snapshot.authorizationPolicies === last.authorizationPolicies &&
        snapshot.peerAuthentications === last.peerAuthentications &&
        snapshot.networkPolicies === last.networkPolicies;
      last = snapshot;
      if (same) return;
      this.#index = this.#build(snapshot);
      for (const l of this.#listeners) l(this.#index);
    });
  }

  /** The index of the latest snapshot. */
  get index(): PolicyIndex {
    return this.#index;
  }

  /** Called with the new index after every discovery change (re-check established connections). */
  onChange(listener: (index: PolicyIndex) => void): void {
    this.#listeners.push(listener);
  }

  #build(snapshot: PolicySource): PolicyIndex {
    const index = this.#builder.build(snapshot);
    const now = new Set<string>();
    for (const p of index.problems) {
      const key = `${p.kind} ${p.namespace}/${p.name}: ${p.problem}`;
      now.add(key);
      if (!this.#logged.has(key))
        this.#o.log.warn(
          { kind: p.kind, policy: `${p.namespace}/${p.name}`, problem: p.problem },
          'policy cannot be honoured as written',
        );
    }
    this.#logged = now;
    return index;
  }
}
