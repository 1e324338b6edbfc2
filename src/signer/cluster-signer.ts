/**
 * The cluster signer's decision and signing, without I/O: one
 * CreateCertificate request in, a certificate chain or a refusal out.
 *
 * Order (each step refuses with a stable reason):
 * 1. attest the caller's node (node-attestation.ts): UNAUTHENTICATED;
 * 2. the identity asked for (`ImpersonatedIdentity`) must belong to a pod
 *    scheduled on that node by the signer's own discovery
 *    (node-authorizer.ts): PERMISSION_DENIED;
 * 3. the CSR must prove possession of an EC P-256 key (identity/csr.ts):
 *    INVALID_ARGUMENT;
 * 4. sign an X509-SVID of today's profile over that key alone.
 *
 * Invariants: nothing of the CSR but its public key reaches the
 * certificate; the identity comes from the metadata and is authorized
 * against discovery, never from the CSR; discovery not synced refuses
 * (UNAVAILABLE), never allows.
 */
import type { KeyObject } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';
import type { DiscoverySource } from '../discovery/discovery-source.js';
import type { SigningAuthority } from '../identity/certificate-authority.js';
import { CsrError, checkCsr, csrFromPem } from '../identity/csr.js';
import { parseSpiffeId } from '../identity/spiffe-id.js';
import { derToPem, type TrustBundle } from '../identity/trust-bundle.js';
import {
  DEFAULT_SVID_TTL_MS,
  MIN_SVID_TTL_MS,
  signX509Svid,
  type SignedSvid,
} from '../identity/x509-svid.js';
import {
  GRPC_STATUS,
  IMPERSONATED_IDENTITY,
  type IstioCertificateRequest,
} from './istio-ca-protocol.js';
import {
  AttestationError,
  attestNode,
  type AttestedNode,
  type NodeAttestor,
} from './node-attestation.js';
import { authorizeNode } from './node-authorizer.js';

/** A refused request: the gRPC status and a reason for logs and metrics. */
export class SignerRefusal extends MeshlessError {
  readonly grpcStatus: number;
  readonly reason: string;
  constructor(grpcStatus: number, reason: string, message: string, cause?: unknown) {
    super('MESHLESS_E_SIGNER_REFUSED', message, { cause, details: { reason, grpcStatus } });
    this.grpcStatus = grpcStatus;
    this.reason = reason;
  }
}

/** The signing root and the bundle the signer publishes. */
export interface SignerRoot {
  readonly authority: SigningAuthority;
  readonly bundle: TrustBundle;
}

export interface ClusterSignerOptions {
  readonly trustDomain: string;
  readonly root: SignerRoot;
  readonly attestors: readonly NodeAttestor[];
  readonly discovery: DiscoverySource;
  /** Longest SVID lifetime granted, ms; default 1 h. */
  readonly maxTtlMs?: number;
  readonly clock?: () => number;
}

/** A granted request. */
export interface SignerAnswer {
  /** Leaf, then the signing root (istiod's order), PEM each. */
  readonly certChain: readonly string[];
  /** Every root of the trust bundle, PEM. */
  readonly trustBundlePem: string;
  readonly node: string;
  readonly spiffeId: string;
  readonly serialNumber: string;
  readonly notAfter: number;
}

export class ClusterSigner {
  readonly #o: ClusterSignerOptions;
  #root: SignerRoot;

  constructor(o: ClusterSignerOptions) {
    this.#o = o;
    this.#root = o.root;
  }

  get root(): SignerRoot {
    return this.#root;
  }

  /** Swaps in a new root and bundle (root rotation; the Secret changed). */
  setRoot(root: SignerRoot): void {
    this.#root = root;
  }

  async createCertificate(credential: string, req: IstioCertificateRequest): Promise<SignerAnswer> {
    const now = (this.#o.clock ?? Date.now)();
    let attested: AttestedNode;
    try {
      attested = await attestNode(this.#o.attestors, { credential, csr: req.csr, now });
    } catch (err) {
      if (err instanceof AttestationError)
        throw new SignerRefusal(
          err.reason === 'api_unavailable' ? GRPC_STATUS.unavailable : GRPC_STATUS.unauthenticated,
          `attestation_${err.reason}`,
          `node attestation failed: ${err.message}`,
          err,
        );
      throw err;
    }
    const identity = req.metadata[IMPERSONATED_IDENTITY];
    if (identity === undefined || identity === '')
      throw new SignerRefusal(
        GRPC_STATUS.invalidArgument,
        'no_identity',
        `the request names no identity (metadata ${IMPERSONATED_IDENTITY})`,
      );
    if (!this.#o.discovery.synced)
      throw new SignerRefusal(
        GRPC_STATUS.unavailable,
        'discovery_not_synced',
        'the signer has not synced discovery yet; retry',
      );
    const decision = authorizeNode(
      this.#o.discovery.snapshot(),
      this.#o.trustDomain,
      attested.node,
      identity,
    );
    if (!decision.allowed)
      throw new SignerRefusal(
        GRPC_STATUS.permissionDenied,
        decision.reason,
        `node ${attested.node} may not obtain ${identity}: ${decision.message}`,
      );
    let publicKey: KeyObject;
    try {
      publicKey = checkCsr(csrFromPem(req.csr));
    } catch (err) {
      if (err instanceof CsrError)
        throw new SignerRefusal(GRPC_STATUS.invalidArgument, `csr_${err.reason}`, err.message, err);
      throw err;
    }
    const maxTtl = this.#o.maxTtlMs ?? DEFAULT_SVID_TTL_MS;
    const asked = req.validityDurationSeconds * 1000;
    const ttlMs = asked >= MIN_SVID_TTL_MS ? Math.min(asked, maxTtl) : maxTtl;
    const root = this.#root;
    let svid: SignedSvid;
    try {
      svid = signX509Svid(root.authority, parseSpiffeId(identity), publicKey, { now, ttlMs });
    } catch (err) {
      throw new SignerRefusal(GRPC_STATUS.internal, 'sign_failed', errorMessage(err), err);
    }
    return {
      certChain: [
        derToPem(svid.certificate.raw),
        ...svid.chainDer.slice(1).map(derToPem),
        root.authority.pem,
      ],
      trustBundlePem: root.bundle.pem,
      node: attested.node,
      spiffeId: identity,
      serialNumber: svid.serialNumber,
      notAfter: svid.notAfter,
    };
  }
}
