/**
 * The signer's Kubernetes API calls, with its own credentials (its service
 * account, or a kubeconfig): POST a TokenReview and GET a Pod (attestation),
 * and read/write the trust bundle ConfigMap (bundle-publisher.ts).
 * @kubernetes/client-node is loaded on first use and only for its
 * KubeConfig (credentials and TLS options); requests go through node:http(s).
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { MeshlessError, errorMessage } from '../errors.js';
import { kubeconfigSourceOf } from '../discovery/kubernetes-source.js';
import type { KubeAttestationApi, TokenReviewStatus } from './kubernetes-attestor.js';

const TIMEOUT_MS = 10_000;

function apiError(what: string, message: string, statusCode?: number): MeshlessError {
  return new MeshlessError('MESHLESS_E_SIGNER_KUBE_API', `${what}: ${message}`, {
    details: { statusCode },
  });
}

async function loadKubeConfig(path: string | undefined): Promise<KubeConfig> {
  const source = kubeconfigSourceOf(path);
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (source.kind === 'file') kc.loadFromFile(source.path);
  else kc.loadFromCluster();
  return kc;
}

/** One JSON request to the API server: status and parsed body. */
export class KubeRequester {
  readonly #kc: Promise<KubeConfig>;

  /** `kubeconfig` undefined: in-cluster credentials. */
  constructor(kubeconfig: string | undefined) {
    this.#kc = loadKubeConfig(kubeconfig);
    this.#kc.catch(() => undefined);
  }

  async send(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    const kc = await this.#kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw apiError(path, 'the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = {
      ...(typeof opts.headers === 'object' && opts.headers !== null && !Array.isArray(opts.headers)
        ? opts.headers
        : {}),
      accept: 'application/json',
      ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
    };
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...opts, method, headers, timeout: TIMEOUT_MS });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(apiError(`${method} ${path}`, errorMessage(err))));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += String(c)));
        res.on('error', (err) => reject(apiError(`${method} ${path}`, errorMessage(err))));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      });
      req.end(payload);
    });
  }
}

/** See the file comment. */
export class KubeAttestationClient implements KubeAttestationApi {
  readonly #api: KubeRequester;

  constructor(api: KubeRequester) {
    this.#api = api;
  }

  async tokenReview(token: string, audiences: readonly string[]): Promise<TokenReviewStatus> {
    const path = '/apis/authentication.k8s.io/v1/tokenreviews';
    const { status, json } = await this.#api.send('POST', path, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences },
    });
    if (status !== 201 && status !== 200)
      throw apiError(
        `POST ${path}`,
        `HTTP ${status} (may the signer create TokenReviews?)`,
        status,
      );
    const s = (json as { status?: unknown } | undefined)?.status;
    return typeof s === 'object' && s !== null ? (s as TokenReviewStatus) : {};
  }

  async readPod(namespace: string, name: string): Promise<unknown | undefined> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
    const { status, json } = await this.#api.send('GET', path);
    if (status === 404) return undefined;
    if (status !== 200)
      throw apiError(`GET ${path}`, `HTTP ${status} (may the signer get Pods?)`, status);
    return json;
  }
}
