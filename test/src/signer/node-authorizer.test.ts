import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EMPTY_SNAPSHOT,
  type ClusterSnapshot,
  type PodInfo,
} from '../../../src/discovery/cluster-state.js';
import { authorizeNode } from '../../../src/signer/node-authorizer.js';

function pod(p: Partial<PodInfo> & { name: string }): PodInfo {
  return {
    namespace: 'shop',
    uid: `uid-${p.name}`,
    serviceAccount: 'web',
    nodeName: 'node-a',
    hostNetwork: false,
    ips: [],
    containerPorts: {},
    labels: {},
    ...p,
  };
}

const snapshot: ClusterSnapshot = {
  ...EMPTY_SNAPSHOT,
  pods: new Map(
    [
      pod({ name: 'web-1' }),
      pod({ name: 'db-1', serviceAccount: 'db', nodeName: 'node-b' }),
      pod({ name: 'pending', serviceAccount: 'batch', nodeName: undefined }),
      pod({ name: 'host', serviceAccount: 'agent', hostNetwork: true }),
    ].map((p) => [`${p.namespace}/${p.name}`, p]),
  ),
};

describe('authorizeNode (istiod NodeAuthorizer rules)', () => {
  const cases: [string, string, string, string | true][] = [
    ['a pod of that identity on the node', 'node-a', 'spiffe://cluster.local/ns/shop/sa/web', true],
    [
      'the identity only runs on another node',
      'node-a',
      'spiffe://cluster.local/ns/shop/sa/db',
      'not_on_node',
    ],
    [
      'no pod with that identity at all',
      'node-a',
      'spiffe://cluster.local/ns/shop/sa/ghost',
      'not_on_node',
    ],
    [
      'a pending pod (no nodeName) grants nothing',
      'node-a',
      'spiffe://cluster.local/ns/shop/sa/batch',
      'not_on_node',
    ],
    [
      'a host-network pod grants nothing',
      'node-a',
      'spiffe://cluster.local/ns/shop/sa/agent',
      'not_on_node',
    ],
    ['another trust domain', 'node-a', 'spiffe://evil.org/ns/shop/sa/web', 'foreign_trust_domain'],
    [
      'not a workload path',
      'node-a',
      'spiffe://cluster.local/meshless/node/node-a',
      'bad_identity',
    ],
    ['not a SPIFFE ID', 'node-a', 'https://x', 'bad_identity'],
  ];
  for (const [name, node, id, want] of cases)
    it(name, () => {
      const d = authorizeNode(snapshot, 'cluster.local', node, id);
      if (want === true) assert.equal(d.allowed, true);
      else {
        assert.equal(d.allowed, false);
        if (!d.allowed) assert.equal(d.reason, want);
      }
    });
});
