/**
 * The cluster root from a Kubernetes Secret (`ca.secret: namespace/name`),
 * keys `ca.crt` and `ca.key`, base64 as in every Secret's `data`.
 *
 * @kubernetes/client-node is imported lazily, on the first load, so neither
 * the CNI plugin bundle nor the daemon's hot path pays for it.
 */
import { MeshlessError, errorMessage } from '../errors.js';
import type { RootMaterial } from './certificate-authority.js';
import type { RootSource } from './root-source.js';

/** Secret keys holding the root certificate(s) and its private key. */
export const SECRET_CERT_KEY = 'ca.crt';
export const SECRET_KEY_KEY = 'ca.key';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function secretError(ref: string, message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_CA', `Secret ${ref}: ${message}`, {
    cause,
    details: { secret: ref },
  });
}

function decodeEntry(
  data: Record<string, unknown>,
  key: string,
  ref: string,
  marker: RegExp,
): string {
  const value = data[key];
  if (value === undefined) throw secretError(ref, `has no "${key}" key`);
  if (typeof value !== 'string') throw secretError(ref, `"${key}" is not a base64 string`);
  const compact = value.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact))
    throw secretError(ref, `"${key}" is not valid base64`);
  const text = Buffer.from(compact, 'base64').toString('utf8');
  if (!marker.test(text))
    throw secretError(ref, `"${key}" does not decode to the expected PEM block`);
  return text;
}

/**
 * Decodes the `data` of a root CA Secret (pure; no cluster needed).
 * `ref` is `namespace/name`, for messages.
 */
export function decodeRootSecret(data: unknown, ref: string): RootMaterial {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw secretError(
      ref,
      `has no data (expected keys "${SECRET_CERT_KEY}" and "${SECRET_KEY_KEY}")`,
    );
  const record = data as Record<string, unknown>;
  return {
    certPem: decodeEntry(record, SECRET_CERT_KEY, ref, /-----BEGIN CERTIFICATE-----/),
    keyPem: decodeEntry(record, SECRET_KEY_KEY, ref, /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
    origin: `Secret ${ref}`,
  };
}

/** Reads a Secret's `data`, or undefined when the Secret does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<unknown | undefined>;

/** Options for {@link KubernetesSecretRootSource}. */
export interface KubernetesSecretRootSourceOptions {
  /** Kubeconfig path; default in-cluster credentials or ~/.kube/config. */
  readonly kubeconfig?: string | undefined;
  /** Replaces the API call (tests). */
  readonly readSecret?: SecretReader;
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** Reads the Secret through the Kubernetes API, loading the client on first use. */
function apiSecretReader(kubeconfig: string | undefined): SecretReader {
  return async (namespace, name) => {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
    const api = kc.makeApiClient(k8s.CoreV1Api);
    try {
      const secret = await api.readNamespacedSecret({ name, namespace });
      return secret.data ?? {};
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  };
}

/** The root from a Kubernetes Secret. */
export class KubernetesSecretRootSource implements RootSource {
  readonly namespace: string;
  readonly name: string;
  readonly description: string;
  readonly #read: SecretReader;

  /** `ref` is `namespace/name`, as in the `ca.secret` config key. */
  constructor(ref: string, options: KubernetesSecretRootSourceOptions = {}) {
    const [namespace, name, ...rest] = ref.split('/');
    if (!namespace || !name || rest.length > 0)
      throw new MeshlessError('MESHLESS_E_CA', `ca.secret "${ref}" is not "namespace/name"`);
    this.namespace = namespace;
    this.name = name;
    this.description = `Secret ${ref}`;
    this.#read = options.readSecret ?? apiSecretReader(options.kubeconfig);
  }

  async load(): Promise<RootMaterial | undefined> {
    const ref = `${this.namespace}/${this.name}`;
    let data: unknown;
    try {
      data = await this.#read(this.namespace, this.name);
    } catch (err) {
      const status = statusOf(err);
      const hint =
        status === 403
          ? ` (may the daemon's ServiceAccount "get" Secrets in namespace ${this.namespace}?)`
          : '';
      throw secretError(ref, `cannot be read: ${errorMessage(err)}${hint}`, err);
    }
    if (data === undefined) return undefined;
    return decodeRootSecret(data, ref);
  }
}
