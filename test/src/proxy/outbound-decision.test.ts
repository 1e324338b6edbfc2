import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideOutbound, type Endpoint } from '../../../src/proxy/outbound-decision.js';
import type { ServiceIndex } from '../../../src/proxy/service-index.js';
import {
  clusterAddressSpace,
  parseCidr,
  podAddressSpace,
} from '../../../src/proxy/pod-address-space.js';
import type { WorkloadEntry, WorkloadIndex } from '../../../src/proxy/workload-index.js';

const entry = (enrolled: boolean): WorkloadEntry => ({
  namespace: enrolled ? 'secure' : 'plain',
  name: 'p',
  serviceAccount: 'sa',
  nodeName: 'node1',
  enrolled,
  identity: `spiffe://cluster.local/ns/${enrolled ? 'secure' : 'plain'}/sa/sa`,
});

const index: WorkloadIndex = {
  byIp: (ip) => ({ '10.0.1.5': entry(true), '10.0.1.6': entry(false), 'fd00::5': entry(true) })[ip],
  size: 3,
};

describe('decideOutbound', () => {
  const space = podAddressSpace(['10.0.0.0/16', 'fd00::/64']);
  const cases: { name: string; dst: string; port: number; cidrs: boolean; kind: string }[] = [
    { name: 'enrolled pod', dst: '10.0.1.5', port: 80, cidrs: true, kind: 'hbone' },
    { name: 'enrolled pod, IPv6', dst: 'fd00::5', port: 80, cidrs: true, kind: 'hbone' },
    { name: 'plain pod', dst: '10.0.1.6', port: 80, cidrs: true, kind: 'passthrough' },
    {
      name: 'unknown, in pod space',
      dst: '10.0.9.9',
      port: 80,
      cidrs: true,
      kind: 'wait-for-discovery',
    },
    {
      name: 'unknown, in pod space, IPv6',
      dst: 'fd00::99',
      port: 80,
      cidrs: true,
      kind: 'wait-for-discovery',
    },
    {
      name: 'unknown, outside pod space',
      dst: '192.0.2.1',
      port: 80,
      cidrs: true,
      kind: 'passthrough',
    },
    {
      name: 'unknown, no pod space configured',
      dst: '10.0.9.9',
      port: 80,
      cidrs: false,
      kind: 'passthrough',
    },
    { name: 'proxy port, in pod space', dst: '10.0.9.9', port: 15008, cidrs: true, kind: 'refuse' },
    { name: 'proxy port, enrolled pod', dst: '10.0.1.5', port: 15001, cidrs: true, kind: 'refuse' },
  ];
  for (const c of cases)
    it(`${c.name} -> ${c.kind}`, () => {
      const d = decideOutbound(
        { address: c.dst, port: c.port },
        index,
        ...(c.cidrs ? [space] : []),
      );
      assert.equal(d.kind, c.kind);
      if (d.kind === 'wait-for-discovery')
        assert.deepEqual(d.target, { address: c.dst, port: c.port });
    });
});

describe('pod address space', () => {
  it('parses CIDRs and refuses malformed ones', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
    assert.deepEqual(parseCidr('fd00::/48'), { address: 'fd00::', prefix: 48, family: 6 });
    for (const bad of [
      '10.0.0.0',
      '10.0.0.0/33',
      'fd00::/129',
      'x/8',
      '10.0.0.0/-1',
      '10.0.0.0/ 8',
      '',
    ])
      assert.equal(parseCidr(bad), undefined, bad);
  });

  it('matches by range (IPv4-mapped too); an empty space matches nothing', () => {
    const s = podAddressSpace(['10.248.0.0/16']);
    assert.equal(s.contains('10.248.7.1'), true);
    assert.equal(s.contains('10.249.0.1'), false);
    // An IPv4-mapped IPv6 address is the IPv4 address.
    assert.equal(s.contains('::ffff:10.248.7.1'), true);
    assert.equal(s.contains('not-an-ip'), false);
    assert.equal(podAddressSpace([]).contains('10.248.7.1'), false);
    assert.throws(() => podAddressSpace(['10.0.0.0']));
  });
});

describe('decideOutbound to a Service', () => {
  const space = podAddressSpace(['10.0.0.0/16']);
  const frontends: Record<
    string,
    { service: string; backends: { address: string; port: number }[] }
  > = {
    '10.96.0.1|80': {
      service: 'secure/api',
      backends: [
        { address: '10.0.1.5', port: 8080 },
        { address: '10.0.1.6', port: 8080 },
        { address: '10.0.9.9', port: 8080 },
      ],
    },
    '10.96.0.2|80': { service: 'secure/empty', backends: [] },
    '10.96.0.3|80': { service: 'secure/loop', backends: [{ address: '10.0.1.5', port: 15008 }] },
  };
  const services: ServiceIndex = {
    frontend: (ip, port) => {
      const f = frontends[`${ip}|${port}`];
      return f && { ...f, port: { name: '', port, targetPort: 8080, nodePort: undefined } };
    },
    serviceAt: (ip) =>
      ['secure/api', 'secure/empty', 'secure/loop'][
        ['10.96.0.1', '10.96.0.2', '10.96.0.3'].indexOf(ip)
      ],
    size: 3,
  };
  const vip = { address: '10.96.0.1', port: 80 };
  const cases: { name: string; dst: Endpoint; pick: number; want: Record<string, unknown> }[] = [
    {
      name: 'enrolled backend: HBONE to the backend pod, CONNECT to its target port',
      dst: vip,
      pick: 0,
      want: {
        kind: 'hbone',
        service: 'secure/api',
        hbone: { address: '10.0.1.5', port: 15008 },
        target: { address: '10.0.1.5', port: 8080 },
      },
    },
    {
      name: 'plain backend: passthrough to the backend itself, not the ClusterIP',
      dst: vip,
      pick: 1,
      want: {
        kind: 'passthrough',
        service: 'secure/api',
        target: { address: '10.0.1.6', port: 8080 },
      },
    },
    {
      name: 'backend unknown to discovery, in pod space: wait, then decide the Service afresh',
      dst: vip,
      pick: 2,
      want: { kind: 'wait-for-discovery', target: vip },
    },
    {
      name: 'a pick out of range is clamped',
      dst: vip,
      pick: 7,
      want: { kind: 'wait-for-discovery', target: vip },
    },
    {
      name: 'no usable endpoint: refused, naming the Service',
      dst: { address: '10.96.0.2', port: 80 },
      pick: 0,
      want: {
        kind: 'refuse',
        service: 'secure/empty',
        reason: 'Service secure/empty has no ready endpoint',
      },
    },
    {
      name: 'a port the Service does not have: refused',
      dst: { address: '10.96.0.1', port: 81 },
      pick: 0,
      want: { kind: 'refuse', service: 'secure/api', reason: 'Service secure/api has no port 81' },
    },
    {
      name: 'a backend on a proxy port: refused (loop)',
      dst: { address: '10.96.0.3', port: 80 },
      pick: 0,
      want: { kind: 'refuse', service: 'secure/loop' },
    },
    {
      name: 'a pod IP is never taken for a Service',
      dst: { address: '10.0.1.5', port: 80 },
      pick: 1,
      want: { kind: 'hbone', target: { address: '10.0.1.5', port: 80 } },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = decideOutbound(c.dst, index, space, services, () => c.pick);
      for (const [k, v] of Object.entries(c.want))
        assert.deepEqual((d as unknown as Record<string, unknown>)[k], v, k);
      if (d.kind === 'hbone' && c.want['service'] === undefined) assert.equal(d.service, undefined);
    });

  it('picks every backend over many draws (uniform random by default)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const d = decideOutbound(vip, index, space, services);
      seen.add(d.kind === 'wait-for-discovery' ? 'wait' : `${d.kind}`);
    }
    assert.deepEqual([...seen].sort(), ['hbone', 'passthrough', 'wait']);
  });
});

describe('clusterAddressSpace', () => {
  const nodes = [
    { name: 'a', podCidrs: ['10.244.0.0/24', 'fd00:10:244::/64'] },
    { name: 'b', podCidrs: ['10.244.1.0/24', 'not-a-cidr'] },
    { name: 'c', podCidrs: [] },
  ];
  const serviceCidrs = [{ name: 'kubernetes', cidrs: ['10.96.0.0/16'] }];
  const none = { podCidrs: [], serviceCidrs: [] };
  it('config wins over the cluster, for each part', () => {
    const r = clusterAddressSpace(
      { podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'] },
      { nodes, serviceCidrs },
    );
    assert.deepEqual(
      [r.pods, r.services, r.space.cidrs, r.invalid],
      ['config', 'config', ['10.0.0.0/8', '172.20.0.0/16'], []],
    );
  });
  it("else the Nodes' podCIDRs and the ServiceCIDRs; malformed ones reported and left out", () => {
    const r = clusterAddressSpace(none, { nodes, serviceCidrs });
    assert.deepEqual([r.pods, r.services], ['cluster', 'cluster']);
    assert.deepEqual(r.space.cidrs, [
      '10.244.0.0/24',
      '10.244.1.0/24',
      'fd00:10:244::/64',
      '10.96.0.0/16',
    ]);
    assert.deepEqual(r.invalid, ['b: not-a-cidr']);
    assert.equal(r.space.contains('10.244.1.77'), true);
    assert.equal(r.space.contains('10.96.3.4'), true);
    assert.equal(r.space.contains('10.244.2.1'), false);
  });
  it('nothing: both parts none, nothing is in it', () => {
    const r = clusterAddressSpace(none, { nodes: [{ name: 'c', podCidrs: [] }], serviceCidrs: [] });
    assert.deepEqual([r.pods, r.services, r.space.contains('10.244.0.1')], ['none', 'none', false]);
  });
  it('an unknown ClusterIP in the Service range waits for discovery instead of reaching kube-proxy', () => {
    const r = clusterAddressSpace(none, { nodes, serviceCidrs });
    const d = decideOutbound({ address: '10.96.7.7', port: 80 }, index, r.space);
    assert.equal(d.kind, 'wait-for-discovery');
  });
});
