/**
 * Kubernetes node attestation (istiod's NodeAuthorizer and SPIRE's
 * k8s_psat, docs/signer.md): the node daemon presents a projected service-account
 * token with an audience of its own; the signer
 * 1. refuses a token whose `exp` has passed (read locally, before asking);
 * 2. asks the API server (TokenReview, with that audience) whether it is
 *    valid, and requires the audience back;
 * 3. requires the user to be one of the node daemon's service accounts;
 * 4. reads the token's bound pod (extra `authentication.kubernetes.io/pod-name`
 *    and `pod-uid`): the Pod must exist with that UID and service account;
 * 5. takes the node from the Pod's spec.nodeName (and, where the API server
 *    sends the `node-name` extra, requires both to agree).
 */
import { MeshlessError, errorMessage } from '../errors.js';
import {
  AttestationError,
  type AttestationRequest,
  type AttestedNode,
  type NodeAttestor,
} from './node-attestation.js';

/** `status` of an authentication.k8s.io/v1 TokenReview. */
export interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly error?: string;
  readonly audiences?: readonly string[];
  readonly user?: {
    readonly username?: string;
    readonly uid?: string;
    readonly extra?: Readonly<Record<string, readonly string[]>>;
  };
}

/** The two API calls attestation makes. */
export interface KubeAttestationApi {
  tokenReview(token: string, audiences: readonly string[]): Promise<TokenReviewStatus>;
  /** A v1 Pod object, or undefined when it does not exist (404). */
  readPod(namespace: string, name: string): Promise<unknown | undefined>;
}

export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';

/** Options of {@link KubernetesAttestor}. */
export interface KubernetesAttestorOptions {
  readonly api: KubeAttestationApi;
  /** The audience daemon tokens are minted for (never the API server's). */
  readonly audience: string;
  /** Trusted node daemon accounts, `namespace/name`. */
  readonly daemonServiceAccounts: readonly string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `exp` of a JWT, seconds, read without checking the signature (TokenReview does). */
function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return isRecord(claims) && typeof claims['exp'] === 'number' ? claims['exp'] : undefined;
  } catch {
    return undefined;
  }
}

function single(extra: Readonly<Record<string, readonly string[]>> | undefined, key: string) {
  const v = extra?.[key];
  return v && v.length === 1 ? v[0] : undefined;
}

/** See the file comment. */
export class KubernetesAttestor implements NodeAttestor {
  readonly method = 'kubernetes-psat' as const;
  readonly #o: KubernetesAttestorOptions;
  readonly #accounts: ReadonlySet<string>;

  constructor(o: KubernetesAttestorOptions) {
    this.#o = o;
    this.#accounts = new Set(
      o.daemonServiceAccounts.map((a) => {
        const [ns, name, ...rest] = a.split('/');
        if (!ns || !name || rest.length > 0)
          throw new MeshlessError(
            'MESHLESS_E_SIGNER_CONFIG',
            `daemon service account "${a}" is not "namespace/name"`,
          );
        return `system:serviceaccount:${ns}:${name}`;
      }),
    );
  }

  accepts(credential: string): boolean {
    // A JWS compact serialization: header.payload.signature, header `{"...`.
    return credential.startsWith('eyJ') && credential.split('.').length === 3;
  }

  async attest(req: AttestationRequest): Promise<AttestedNode> {
    const exp = jwtExpiry(req.credential);
    if (exp === undefined)
      throw new AttestationError(
        'malformed',
        'the token has no exp claim (not a projected token?)',
      );
    if (exp * 1000 <= req.now)
      throw new AttestationError(
        'expired',
        `the service-account token expired at ${new Date(exp * 1000).toISOString()}`,
      );
    const { audience } = this.#o;
    let review: TokenReviewStatus;
    try {
      review = await this.#o.api.tokenReview(req.credential, [audience]);
    } catch (err) {
      throw new AttestationError(
        'api_unavailable',
        `TokenReview failed: ${errorMessage(err)}`,
        err,
      );
    }
    if (review.authenticated !== true)
      throw new AttestationError(
        'unauthenticated',
        `the API server does not accept the token${review.error ? `: ${review.error}` : ''}`,
      );
    if (!(review.audiences ?? []).includes(audience))
      throw new AttestationError(
        'wrong_audience',
        `the token is not for audience "${audience}" (it is for ${JSON.stringify(review.audiences ?? [])})`,
      );
    const username = review.user?.username ?? '';
    if (!this.#accounts.has(username))
      throw new AttestationError(
        'wrong_service_account',
        `"${username}" is not a node daemon service account (${[...this.#accounts].join(', ')})`,
      );
    const [, , namespace = ''] = username.split(':');
    const serviceAccount = username.split(':')[3] ?? '';
    const extra = review.user?.extra;
    const podName = single(extra, EXTRA_POD_NAME);
    const podUid = single(extra, EXTRA_POD_UID);
    if (podName === undefined || podUid === undefined)
      throw new AttestationError(
        'malformed',
        'the token is not bound to a pod (no pod-name/pod-uid extra): use a projected token',
      );
    let pod: unknown;
    try {
      pod = await this.#o.api.readPod(namespace, podName);
    } catch (err) {
      throw new AttestationError(
        'api_unavailable',
        `cannot read pod ${namespace}/${podName}: ${errorMessage(err)}`,
        err,
      );
    }
    if (pod === undefined)
      throw new AttestationError(
        'pod_not_found',
        `the token's pod ${namespace}/${podName} does not exist (deleted?)`,
      );
    const meta = isRecord(pod) && isRecord(pod['metadata']) ? pod['metadata'] : {};
    const spec = isRecord(pod) && isRecord(pod['spec']) ? pod['spec'] : {};
    if (meta['uid'] !== podUid)
      throw new AttestationError(
        'pod_not_found',
        `pod ${namespace}/${podName} has UID ${String(meta['uid'])}, the token was bound to ${podUid} (a deleted pod's token?)`,
      );
    if ((spec['serviceAccountName'] ?? 'default') !== serviceAccount)
      throw new AttestationError(
        'pod_mismatch',
        `pod ${namespace}/${podName} runs as ${String(spec['serviceAccountName'])}, not ${serviceAccount}`,
      );
    const node = spec['nodeName'];
    if (typeof node !== 'string' || node === '')
      throw new AttestationError(
        'no_node',
        `pod ${namespace}/${podName} is not scheduled on a node`,
      );
    const claimedNode = single(extra, EXTRA_NODE_NAME);
    if (claimedNode !== undefined && claimedNode !== node)
      throw new AttestationError(
        'pod_mismatch',
        `the token names node ${claimedNode}; its pod runs on ${node}`,
      );
    return { node, method: this.method, caller: `${namespace}/${serviceAccount} pod ${podName}` };
  }
}
