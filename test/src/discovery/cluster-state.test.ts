import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  namespaceFromObject,
  podFromObject,
  snapshotFromObjects,
  type ClusterSnapshot,
} from '../../../src/discovery/cluster-state.js';
import { parseClusterDocument } from '../../../src/discovery/file-source.js';
import { MeshlessError } from '../../../src/errors.js';

/** What `kubectl get ns,pods -A -o yaml` prints (abridged, fields as the API returns them). */
const KUBECTL_LIST = `apiVersion: v1
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    creationTimestamp: "2025-03-03T10:00:00Z"
    labels:
      io.cilium/mtls-enabled: "true"
      kubernetes.io/metadata.name: demo
    name: demo
    resourceVersion: "412"
    uid: 0c1a3e9e-8a43-4d7e-9d0d-3c0f2f1f6b11
  spec:
    finalizers:
    - kubernetes
  status:
    phase: Active
- apiVersion: v1
  kind: Namespace
  metadata:
    labels:
      kubernetes.io/metadata.name: kube-system
    name: kube-system
- apiVersion: v1
  kind: Pod
  metadata:
    labels:
      app: web
    name: web-0
    namespace: demo
    uid: 5b7c2a1e-1111-4f9a-a1c2-6e2d0d4b9a01
  spec:
    containers:
    - image: nginx:1.27
      name: web
    nodeName: node-a
    serviceAccount: web
    serviceAccountName: web
  status:
    phase: Running
    podIP: 10.22.0.5
    podIPs:
    - ip: 10.22.0.5
    - ip: fd00:10:22::5
- apiVersion: v1
  kind: Pod
  metadata:
    name: kube-proxy-x7k2p
    namespace: kube-system
    uid: 9d1e0b7c-2222-4c3b-8f00-1a2b3c4d5e6f
  spec:
    hostNetwork: true
    nodeName: node-a
    serviceAccountName: kube-proxy
  status:
    podIP: 192.168.1.10
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: demo
kind: List
metadata:
  resourceVersion: ""
`;

function summary(s: ClusterSnapshot): unknown {
  return {
    namespaces: Object.fromEntries(s.namespaces),
    pods: Object.fromEntries(s.pods),
  };
}

const EXPECTED = {
  namespaces: {
    demo: {
      name: 'demo',
      labels: { 'io.cilium/mtls-enabled': 'true', 'kubernetes.io/metadata.name': 'demo' },
    },
    'kube-system': {
      name: 'kube-system',
      labels: { 'kubernetes.io/metadata.name': 'kube-system' },
    },
  },
  pods: {
    'demo/web-0': {
      namespace: 'demo',
      name: 'web-0',
      uid: '5b7c2a1e-1111-4f9a-a1c2-6e2d0d4b9a01',
      labels: { app: 'web' },
      serviceAccount: 'web',
      nodeName: 'node-a',
      hostNetwork: false,
      ips: ['10.22.0.5', 'fd00:10:22::5'],
      containerPorts: {},
    },
    'kube-system/kube-proxy-x7k2p': {
      namespace: 'kube-system',
      name: 'kube-proxy-x7k2p',
      uid: '9d1e0b7c-2222-4c3b-8f00-1a2b3c4d5e6f',
      labels: {},
      serviceAccount: 'kube-proxy',
      nodeName: 'node-a',
      hostNetwork: true,
      ips: ['192.168.1.10'],
      containerPorts: {},
    },
  },
};

describe('parseClusterDocument', () => {
  it('reads a kubectl-style YAML List', () => {
    assert.deepEqual(summary(parseClusterDocument(KUBECTL_LIST, 'c.yaml')), EXPECTED);
  });

  it('reads the same List as JSON', () => {
    const asJson = JSON.stringify(listAsObject(), null, 2);
    assert.deepEqual(summary(parseClusterDocument(asJson, 'c.json')), EXPECTED);
  });

  it('reads multi-document YAML (empty documents ignored)', () => {
    const docs = [
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n  labels:\n    io.cilium/mtls-enabled: "true"\n    kubernetes.io/metadata.name: demo\n',
      '',
      '# just a comment\n',
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0\n  namespace: demo\n  uid: u1\nspec:\n  nodeName: node-a\nstatus:\n  podIP: 10.22.0.5\n',
    ].join('---\n');
    const s = parseClusterDocument(docs, 'multi.yaml');
    assert.deepEqual([...s.namespaces.keys()], ['demo']);
    assert.deepEqual(s.pods.get('demo/web-0'), {
      namespace: 'demo',
      name: 'web-0',
      uid: 'u1',
      labels: {},
      serviceAccount: 'default',
      nodeName: 'node-a',
      hostNetwork: false,
      ips: ['10.22.0.5'],
      containerPorts: {},
    });
  });

  it('reads typed lists whose items carry no kind (as the API returns them)', () => {
    const text =
      JSON.stringify({
        kind: 'NamespaceList',
        apiVersion: 'v1',
        items: [{ metadata: { name: 'demo', labels: { a: 'b' } } }],
      }) +
      '\n---\n' +
      JSON.stringify({
        kind: 'PodList',
        apiVersion: 'v1',
        items: [{ metadata: { name: 'p', namespace: 'demo' }, spec: {}, status: {} }],
      });
    const s = parseClusterDocument(text, 'typed.yaml');
    assert.deepEqual([...s.namespaces.keys()], ['demo']);
    assert.deepEqual([...s.pods.keys()], ['demo/p']);
  });

  it('an empty file is an empty snapshot', () => {
    const s = parseClusterDocument('', 'e.yaml');
    assert.equal(s.namespaces.size + s.pods.size, 0);
  });

  const invalid: [string, string, RegExp][] = [
    ['broken YAML', 'items: [\n', /^b\.yaml: /],
    ['a List without items', 'kind: List\n', /List without items/],
    ['items not objects', 'kind: List\nitems: [1]\n', /items\[0\] is not an object/],
    ['a scalar document', 'hello\n', /document 0 is not an object/],
    ['Namespace without metadata', 'kind: Namespace\n', /Namespace without metadata/],
    ['Namespace without name', 'kind: Namespace\nmetadata: {labels: {}}\n', /metadata\.name/],
    ['Pod without name', 'kind: Pod\nmetadata: {namespace: a}\n', /Pod without metadata\.name/],
    [
      'Pod with a numeric namespace',
      'kind: Pod\nmetadata: {name: p, namespace: 3}\n',
      /namespace is not a string/,
    ],
    [
      'malformed object inside a List',
      'kind: List\nitems:\n- kind: Namespace\n  metadata: {name: ok}\n- kind: Pod\n  metadata: {}\n',
      /Pod without metadata\.name/,
    ],
  ];
  for (const [what, text, message] of invalid)
    it(`rejects ${what}`, () => {
      assert.throws(
        () => parseClusterDocument(text, 'b.yaml'),
        (err: unknown) =>
          err instanceof MeshlessError &&
          err.code === 'MESHLESS_E_DISCOVERY_FILE' &&
          err.message.startsWith('b.yaml: ') &&
          message.test(err.message),
      );
    });
});

/** KUBECTL_LIST written by hand as an object, for the JSON form. */
function listAsObject(): unknown {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: 'demo',
          labels: { 'io.cilium/mtls-enabled': 'true', 'kubernetes.io/metadata.name': 'demo' },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'kube-system', labels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'web-0',
          namespace: 'demo',
          uid: '5b7c2a1e-1111-4f9a-a1c2-6e2d0d4b9a01',
          labels: { app: 'web' },
        },
        spec: { nodeName: 'node-a', serviceAccountName: 'web' },
        status: { podIP: '10.22.0.5', podIPs: [{ ip: '10.22.0.5' }, { ip: 'fd00:10:22::5' }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'kube-proxy-x7k2p',
          namespace: 'kube-system',
          uid: '9d1e0b7c-2222-4c3b-8f00-1a2b3c4d5e6f',
        },
        spec: { hostNetwork: true, nodeName: 'node-a', serviceAccount: 'kube-proxy' },
        status: { podIP: '192.168.1.10' },
      },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'demo' } },
    ],
  };
}

describe('podFromObject', () => {
  const cases: [string, unknown, Partial<ReturnType<typeof podFromObject>>][] = [
    ['namespace defaults to "default"', { metadata: { name: 'p' } }, { namespace: 'default' }],
    [
      'service account: serviceAccountName, then serviceAccount, then default',
      { metadata: { name: 'p' }, spec: { serviceAccount: 'legacy' } },
      { serviceAccount: 'legacy' },
    ],
    [
      'empty service account is default',
      { metadata: { name: 'p' }, spec: { serviceAccountName: '' } },
      { serviceAccount: 'default' },
    ],
    ['not scheduled yet', { metadata: { name: 'p' } }, { nodeName: undefined, ips: [], uid: '' }],
    [
      'hostNetwork only when true',
      { metadata: { name: 'p' }, spec: { hostNetwork: 'true' } },
      { hostNetwork: false },
    ],
    [
      'podIPs wins over podIP; malformed entries skipped',
      {
        metadata: { name: 'p' },
        status: { podIP: '1.1.1.1', podIPs: [{ ip: '2.2.2.2' }, 'x', { ip: 3 }] },
      },
      { ips: ['2.2.2.2'] },
    ],
  ];
  for (const [name, obj, want] of cases)
    it(name, () => {
      const pod = podFromObject(obj);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(pod[k as keyof typeof pod], v, k);
    });

  it('keeps only string labels of a namespace', () => {
    assert.deepEqual(
      namespaceFromObject({ metadata: { name: 'n', labels: { a: 'b', c: 1, d: null } } }).labels,
      { a: 'b' },
    );
  });
});

describe('snapshotFromObjects', () => {
  it('ignores other kinds; a later object of the same name wins', () => {
    const s = snapshotFromObjects([
      { kind: 'Namespace', metadata: { name: 'a', labels: { v: '1' } } },
      { kind: 'Secret', metadata: { name: 's' } },
      { kind: 'Namespace', metadata: { name: 'a', labels: { v: '2' } } },
    ]);
    assert.deepEqual(Object.fromEntries(s.namespaces), { a: { name: 'a', labels: { v: '2' } } });
    assert.equal(s.pods.size, 0);
  });
});

describe('snapshotFromObjects: policies', () => {
  const meta = (name: string) => ({ name, namespace: 'app' });
  it('reads meshless AuthorizationPolicies and PeerAuthentications and NetworkPolicies; Istio kinds of the same name are not ours', () => {
    const s = snapshotFromObjects([
      {
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'security.meshless.dev/v1alpha1',
            kind: 'AuthorizationPolicy',
            metadata: meta('a'),
            spec: { action: 'DENY', rules: [{}] },
          },
          {
            apiVersion: 'security.istio.io/v1',
            kind: 'AuthorizationPolicy',
            metadata: meta('istio'),
            spec: {},
          },
          {
            apiVersion: 'security.meshless.dev/v1alpha1',
            kind: 'PeerAuthentication',
            metadata: meta('p'),
            spec: { mtls: { mode: 'STRICT' } },
          },
          {
            apiVersion: 'networking.k8s.io/v1',
            kind: 'NetworkPolicy',
            metadata: meta('n'),
            spec: { podSelector: {} },
          },
        ],
      },
    ]);
    assert.deepEqual([...s.authorizationPolicies.keys()], ['app/a']);
    assert.equal(s.authorizationPolicies.get('app/a')?.action, 'DENY');
    assert.equal(s.peerAuthentications.get('app/p')?.mode, 'STRICT');
    assert.equal(s.networkPolicies.get('app/n')?.ingressIsolation, true);
  });
  it('a policy without a name makes the document invalid, naming where', () => {
    assert.throws(
      () =>
        snapshotFromObjects([
          { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: {} },
        ]),
      /document 0: NetworkPolicy without metadata.name/,
    );
  });
});
