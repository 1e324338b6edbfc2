/**
 * When the node daemon cannot be reached, the plugin asks the Kubernetes API
 * itself whether the pod's namespace is enrolled. The client library is
 * loaded only here, lazily: most invocations never pay for it.
 */
import { matchesLabel, type LabelRequirement } from '../src/config/label.js';
import { errorMessage } from '../src/errors.js';

export type NamespaceVerdict =
  | { readonly kind: 'enrolled' }
  | { readonly kind: 'not-enrolled' }
  | { readonly kind: 'unknown'; readonly reason: string };

/** Reads the namespace's labels through the API named by `kubeconfig`. */
export async function namespaceVerdict(
  kubeconfig: string | undefined,
  namespace: string,
  label: LabelRequirement,
  timeoutMs: number,
): Promise<NamespaceVerdict> {
  if (kubeconfig === undefined)
    return { kind: 'unknown', reason: "no kubeconfig is configured for the plugin's fallback" };
  try {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const api = kc.makeApiClient(k8s.CoreV1Api);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const ns = await Promise.race([api.readNamespace({ name: namespace }), timeout]);
      return matchesLabel(ns.metadata?.labels, label)
        ? { kind: 'enrolled' }
        : { kind: 'not-enrolled' };
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    return { kind: 'unknown', reason: `Kubernetes API: ${errorMessage(err)}` };
  }
}
