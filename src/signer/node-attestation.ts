/**
 * Node attestation: how the signer learns which node is asking. One
 * interface, two methods (docs/signer.md):
 * - `kubernetes-psat`: a projected service-account token of the node
 *   daemon, checked with TokenReview (kubernetes-attestor.ts);
 * - `join-credential`: a per-node credential an operator issued with
 *   `meshless ca join-token` (join-credential.ts), for file discovery.
 *
 * Invariant: an attestor answers with exactly one node name or throws
 * AttestationError; the signer never takes a node name from the request.
 */
import { MeshlessError } from '../errors.js';

/** What a request proved about its sender. */
export interface AttestedNode {
  /** The node the caller runs on. */
  readonly node: string;
  readonly method: 'kubernetes-psat' | 'join-credential';
  /** Who the caller is, for the log (service account, or the credential's ID). */
  readonly caller: string;
}

/** One request to attest. */
export interface AttestationRequest {
  /** The bearer credential from the `authorization` header, without `Bearer `. */
  readonly credential: string;
  /** The CSR exactly as sent (PEM): a join proof is bound to it. */
  readonly csr: string;
  /** Current time, ms. */
  readonly now: number;
}

/** Stable reasons of a refused attestation (log field and metric label). */
export type AttestationRefusal =
  | 'no_credential'
  | 'unsupported_credential'
  | 'malformed'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'replayed'
  | 'unauthenticated'
  | 'wrong_audience'
  | 'wrong_service_account'
  | 'pod_not_found'
  | 'pod_mismatch'
  | 'no_node'
  | 'api_unavailable';

export class AttestationError extends MeshlessError {
  readonly reason: AttestationRefusal;
  constructor(reason: AttestationRefusal, message: string, cause?: unknown) {
    super('MESHLESS_E_ATTESTATION', message, { cause, details: { reason } });
    this.reason = reason;
  }
}

export interface NodeAttestor {
  readonly method: AttestedNode['method'];
  /** Whether the credential is of this attestor's kind (by its form alone). */
  accepts(credential: string): boolean;
  /** The attested node; throws AttestationError. */
  attest(request: AttestationRequest): Promise<AttestedNode>;
}

/** Attests with the first attestor that accepts the credential's form. */
export async function attestNode(
  attestors: readonly NodeAttestor[],
  request: AttestationRequest,
): Promise<AttestedNode> {
  if (request.credential === '')
    throw new AttestationError('no_credential', 'no bearer credential in the request');
  const attestor = attestors.find((a) => a.accepts(request.credential));
  if (!attestor)
    throw new AttestationError(
      'unsupported_credential',
      `the credential is of no enabled kind (enabled: ${attestors.map((a) => a.method).join(', ') || 'none'})`,
    );
  return attestor.attest(request);
}
