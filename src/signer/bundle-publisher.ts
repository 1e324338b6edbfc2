/**
 * Publishes the signer's trust bundle (every root, PEM) as a ConfigMap
 * (`ca.crt`), which the node daemons mount and watch: a root added or
 * removed reaches every node without waiting for its next issuance.
 *
 * Idempotent and safe with several replicas: the ConfigMap is written only
 * when its `ca.crt` differs, with the resourceVersion read (a replica that
 * lost the race reads again).
 */
import { MeshlessError } from '../errors.js';
import type { KubeRequester } from './kube-attestation-client.js';

export const BUNDLE_KEY = 'ca.crt';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function publishError(ref: string, message: string, statusCode?: number): MeshlessError {
  return new MeshlessError('MESHLESS_E_SIGNER_KUBE_API', `ConfigMap ${ref}: ${message}`, {
    details: { statusCode },
  });
}

/**
 * Makes ConfigMap `namespace/name` hold `pem` under `ca.crt`. Resolves with
 * what it did. Throws MESHLESS_E_SIGNER_KUBE_API.
 */
export async function publishTrustBundle(
  api: KubeRequester,
  ref: string,
  pem: string,
): Promise<'unchanged' | 'created' | 'updated'> {
  const [namespace = '', name = ''] = ref.split('/');
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  const path = `${collection}/${encodeURIComponent(name)}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const got = await api.send('GET', path);
    if (got.status === 404) {
      const created = await api.send('POST', collection, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace,
          labels: { 'meshless.dev/part-of': 'meshless', 'meshless.dev/component': 'signer' },
        },
        data: { [BUNDLE_KEY]: pem },
      });
      if (created.status === 201 || created.status === 200) return 'created';
      if (created.status === 409) continue; // another replica created it
      throw publishError(ref, `create answered HTTP ${created.status}`, created.status);
    }
    if (got.status !== 200 || !isRecord(got.json))
      throw publishError(ref, `read answered HTTP ${got.status}`, got.status);
    const current = got.json;
    const data = isRecord(current['data']) ? current['data'] : {};
    if (data[BUNDLE_KEY] === pem) return 'unchanged';
    const updated = await api.send('PUT', path, {
      ...current,
      data: { ...data, [BUNDLE_KEY]: pem },
    });
    if (updated.status === 200) return 'updated';
    if (updated.status === 409) continue; // changed meanwhile: read again
    throw publishError(ref, `update answered HTTP ${updated.status}`, updated.status);
  }
  throw publishError(ref, 'kept changing while being written (3 attempts)');
}
