import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideOutbound } from '../../../src/proxy/outbound-decision.js';
import { parseCidr, podAddressSpace } from '../../../src/proxy/pod-address-space.js';
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
