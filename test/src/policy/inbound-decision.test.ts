// decideInbound: authorization and STRICT first, NetworkPolicy only for
// HBONE and only when enabled; deniedAfterChange: which established
// connections a new index closes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { snapshotFromObjects } from '../../../src/discovery/cluster-state.js';
import {
  decideInbound,
  deniedAfterChange,
  type InboundConnection,
} from '../../../src/policy/inbound-decision.js';
import { parseIpAddress, type IpAddress } from '../../../src/policy/ip-address.js';
import { buildPolicyIndex } from '../../../src/policy/policy-index.js';

const ip = (t: string): IpAddress => parseIpAddress(t) ?? assert.fail(t);
const BASE = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app', labels: { team: 'a' } } },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'app', labels: { app: 'web' } },
    spec: {
      serviceAccountName: 'web',
      containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
    status: { podIP: '10.0.0.1' },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: 'app', labels: { app: 'client' } },
    spec: { serviceAccountName: 'client' },
    status: { podIP: '10.0.0.2' },
  },
];
const ONLY_CLIENTS_ON_HTTP = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'web', namespace: 'app' },
  spec: {
    podSelector: { matchLabels: { app: 'web' } },
    ingress: [
      { ports: [{ port: 15008 }] },
      { from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'http' }] },
    ],
  },
};
const DENY_CLIENT = {
  apiVersion: 'security.meshless.dev/v1alpha1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'no-client', namespace: 'app' },
  spec: {
    action: 'DENY',
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/app/sa/client'] } }] }],
  },
};
const STRICT = {
  apiVersion: 'security.meshless.dev/v1alpha1',
  kind: 'PeerAuthentication',
  metadata: { name: 'strict', namespace: 'app' },
  spec: { mtls: { mode: 'STRICT' } },
};

const indexOf = (...extra: unknown[]) => buildPolicyIndex(snapshotFromObjects([...BASE, ...extra]));
const web = indexOf().pods.get('app/web') ?? assert.fail();
const conn = (
  transport: 'hbone' | 'plaintext',
  source: string,
  port: number,
): InboundConnection => ({
  transport,
  principal: transport === 'hbone' ? 'spiffe://cluster.local/ns/app/sa/client' : undefined,
  sourceIp: ip(source),
  destinationIp: ip('10.0.0.1'),
  destinationPort: port,
  destination: web,
});
const ON = { enforceNetworkPolicy: true };

describe('decideInbound', () => {
  const cases: {
    name: string;
    index: unknown[];
    c: InboundConnection;
    opts?: { enforceNetworkPolicy: boolean };
    expect: [boolean, string, string, string | undefined];
  }[] = [
    {
      name: 'no policy: allowed',
      index: [],
      c: conn('hbone', '10.0.0.2', 9090),
      expect: [true, 'authorization', 'no_allow_policies', undefined],
    },
    {
      name: 'NetworkPolicy allows the client on http',
      index: [ONLY_CLIENTS_ON_HTTP],
      c: conn('hbone', '10.0.0.2', 8080),
      expect: [true, 'authorization', 'no_allow_policies', undefined],
    },
    {
      name: 'NetworkPolicy denies another port of a tunnelled connection',
      index: [ONLY_CLIENTS_ON_HTTP],
      c: conn('hbone', '10.0.0.2', 9090),
      expect: [false, 'network_policy', 'network_policy_denied', 'app/web'],
    },
    {
      name: 'NetworkPolicy not enforced when off',
      index: [ONLY_CLIENTS_ON_HTTP],
      c: conn('hbone', '10.0.0.2', 9090),
      opts: { enforceNetworkPolicy: false },
      expect: [true, 'authorization', 'no_allow_policies', undefined],
    },
    {
      name: "plaintext: NetworkPolicy is the CNI's",
      index: [ONLY_CLIENTS_ON_HTTP],
      c: conn('plaintext', '10.0.0.2', 9090),
      expect: [true, 'authorization', 'no_allow_policies', undefined],
    },
    {
      name: 'a tunnel whose identity is not that of the pod at its source address: an unknown source',
      index: [ONLY_CLIENTS_ON_HTTP],
      c: { ...conn('hbone', '10.0.0.2', 8080), principal: 'spiffe://cluster.local/ns/app/sa/web' },
      expect: [false, 'network_policy', 'network_policy_denied', 'app/web'],
    },
    {
      name: 'authorization decides first',
      index: [ONLY_CLIENTS_ON_HTTP, DENY_CLIENT],
      c: conn('hbone', '10.0.0.2', 9090),
      expect: [false, 'authorization', 'deny_policy_matched', 'app/no-client'],
    },
    {
      name: 'STRICT refuses plaintext',
      index: [STRICT],
      c: conn('plaintext', '10.0.0.2', 8080),
      expect: [false, 'authorization', 'strict_mtls', 'app/strict'],
    },
    {
      name: 'a principal on a plaintext connection is ignored',
      index: [STRICT],
      c: {
        ...conn('plaintext', '10.0.0.2', 8080),
        principal: 'spiffe://cluster.local/ns/app/sa/client',
      },
      expect: [false, 'authorization', 'strict_mtls', 'app/strict'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = decideInbound(c.c, indexOf(...c.index), c.opts ?? ON);
      assert.deepEqual(
        [
          d.allowed,
          d.layer,
          d.reason,
          d.policy ? `${d.policy.namespace}/${d.policy.name}` : undefined,
        ],
        c.expect,
      );
    });
});

describe('deniedAfterChange', () => {
  it('names the established connections the new policies deny', () => {
    const live = [
      { id: 1, c: conn('hbone', '10.0.0.2', 8080) },
      { id: 2, c: conn('hbone', '10.0.0.2', 9090) },
      { id: 3, c: conn('plaintext', '10.0.0.2', 9090) },
    ];
    assert.deepEqual(
      deniedAfterChange(live, (l) => l.c, indexOf(), ON),
      [],
    );
    const denied = deniedAfterChange(live, (l) => l.c, indexOf(ONLY_CLIENTS_ON_HTTP), ON);
    assert.deepEqual(
      denied.map((d) => [d.item.id, d.decision.reason]),
      [[2, 'network_policy_denied']],
    );
    const strict = deniedAfterChange(live, (l) => l.c, indexOf(ONLY_CLIENTS_ON_HTTP, STRICT), ON);
    assert.deepEqual(
      strict.map((d) => [d.item.id, d.decision.reason]),
      [
        [2, 'network_policy_denied'],
        [3, 'strict_mtls'],
      ],
    );
  });
});
