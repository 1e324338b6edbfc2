/**
 * A worker's copy of the node's identities: the SVIDs (chain and key, PEM)
 * and the trust bundle the main thread's identity service hands over, and
 * one TLS context per SVID, built on first use and reused by every
 * connection of this worker until the SVID is replaced.
 *
 * Invariants:
 *  - Only the main thread issues, rotates and releases identities; this
 *    class holds what it was last sent. A rotated SVID replaces the
 *    previous one at once (new handshakes present it; established
 *    connections keep the context they were built with).
 *  - A new trust bundle drops every built context (rebuilt on next use
 *    with the new roots).
 *  - `acquire` never issues: the main thread sends an SVID before it asks
 *    the worker to serve a pod with it, so an unknown identity is an error.
 */
import type { SecureContext } from 'node:tls';
import { MeshlessError } from '../../../src/errors.js';
import { buildSecureContext } from '../../../src/identity/secure-context.js';
import { TrustBundle } from '../../../src/identity/trust-bundle.js';
import { workloadSpiffeId } from '../../../src/identity/spiffe-id.js';
import type { ProxyIdentities } from '../proxy-service.js';
import type { SvidMaterial } from './protocol.js';

interface Held {
  readonly material: SvidMaterial;
  context: SecureContext | undefined;
}

export class WorkerIdentities implements ProxyIdentities {
  readonly #trustDomain: string;
  #bundle: TrustBundle;
  readonly #held = new Map<string, Held>();

  constructor(trustDomain: string, trustBundlePem: string) {
    this.#trustDomain = trustDomain;
    this.#bundle = TrustBundle.fromPem(trustDomain, trustBundlePem, 'main thread');
  }

  get trustBundle(): TrustBundle {
    return this.#bundle;
  }

  /** The SVIDs held, by SPIFFE ID -> serial number (for tests and the status). */
  serials(): Map<string, string> {
    return new Map([...this.#held].map(([id, h]) => [id, h.material.serialNumber]));
  }

  /** A new or rotated SVID. */
  install(svid: SvidMaterial): void {
    const held = this.#held.get(svid.spiffeId);
    if (held?.material.serialNumber === svid.serialNumber) return;
    this.#held.set(svid.spiffeId, { material: svid, context: undefined });
  }

  /** The last workload of an identity left the node. */
  drop(spiffeId: string): void {
    this.#held.delete(spiffeId);
  }

  setTrustBundle(pem: string): void {
    if (pem === this.#bundle.pem) return;
    this.#bundle = TrustBundle.fromPem(this.#trustDomain, pem, 'main thread');
    for (const h of this.#held.values()) h.context = undefined;
  }

  acquire(_workloadKey: string, namespace: string, serviceAccount: string): Promise<void> {
    const id = workloadSpiffeId(this.#trustDomain, namespace, serviceAccount).toString();
    if (!this.#held.has(id))
      return Promise.reject(
        new MeshlessError(
          'MESHLESS_E_IDENTITY_NOT_ON_NODE',
          `data-plane worker holds no SVID for ${id}: the main thread sends it before the pod`,
        ),
      );
    return Promise.resolve();
  }

  /** The main thread releases identities; a worker only forgets them when told. */
  release(_workloadKey: string): boolean {
    return true;
  }

  secureContextFor(id: string): SecureContext {
    const held = this.#held.get(id);
    if (!held)
      throw new MeshlessError(
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
        `no SVID for ${id} in this data-plane worker; a node only holds the identities of its own pods`,
      );
    held.context ??= buildSecureContext(held.material, this.#bundle);
    return held.context;
  }
}
