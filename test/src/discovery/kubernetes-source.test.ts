import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SERVICE_ACCOUNT_TOKEN,
  kubeconfigSourceOf,
} from '../../../src/discovery/kubernetes-source.js';
import { MeshlessError } from '../../../src/errors.js';

describe('kubeconfigSourceOf', () => {
  const inPod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const tokenThere = (p: string): boolean => p === SERVICE_ACCOUNT_TOKEN;
  const nothing = (): boolean => false;

  const cases: {
    name: string;
    path: string | undefined;
    env: Record<string, string>;
    exists: (p: string) => boolean;
    want: ReturnType<typeof kubeconfigSourceOf> | RegExp;
  }[] = [
    {
      name: 'a configured path wins, even in a pod',
      path: '/etc/meshless/kubeconfig',
      env: inPod,
      exists: tokenThere,
      want: { kind: 'file', path: '/etc/meshless/kubeconfig' },
    },
    {
      name: 'in a pod with a token',
      path: undefined,
      env: inPod,
      exists: tokenThere,
      want: { kind: 'in-cluster' },
    },
    {
      name: 'in a pod without a token',
      path: undefined,
      env: inPod,
      exists: nothing,
      want: /automountServiceAccountToken/,
    },
    {
      name: 'outside a pod, $KUBECONFIG is not used',
      path: undefined,
      env: { KUBECONFIG: '/root/.kube/config' },
      exists: () => true,
      want: /discovery\.kubernetes\.kubeconfig/,
    },
    {
      name: 'half the service variables',
      path: undefined,
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
      exists: tokenThere,
      want: /KUBERNETES_SERVICE_HOST\/PORT unset/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      if (c.want instanceof RegExp) {
        const want = c.want;
        assert.throws(
          () => kubeconfigSourceOf(c.path, c.env, c.exists),
          (err: unknown) =>
            err instanceof MeshlessError &&
            err.code === 'MESHLESS_E_DISCOVERY_KUBECONFIG' &&
            want.test(err.message),
        );
      } else assert.deepEqual(kubeconfigSourceOf(c.path, c.env, c.exists), c.want);
    });
});
