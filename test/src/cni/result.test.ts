import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CNI_CODES, CniError } from '../../../src/cni/cni-error.js';
import { convertResult, podAddresses } from '../../../src/cni/result.js';
import { SUPPORTED_VERSIONS, compareVersions, type CniVersion } from '../../../src/cni/versions.js';

/** A dual-stack bridge result as the primary plugin prints it in `version`. */
function bridgeResult(version: string): Record<string, unknown> {
  const legacy = compareVersions(version, '1.0.0') < 0;
  const ip = (address: string, gateway: string, family: '4' | '6'): Record<string, unknown> => ({
    ...(legacy ? { version: family } : {}),
    interface: 2,
    address,
    gateway,
  });
  return {
    cniVersion: version,
    interfaces: [
      { name: 'cni0', mac: '0a:58:0a:16:00:01' },
      { name: 'veth1234', mac: '3e:9f:aa:bb:cc:dd' },
      { name: 'eth0', mac: '0a:58:0a:16:00:05', sandbox: '/var/run/netns/cni-1' },
    ],
    ips: [ip('10.22.0.5/16', '10.22.0.1', '4'), ip('fd00:10:22::5/64', 'fd00:10:22::1', '6')],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  };
}

const ipsOf = (r: Record<string, unknown>): Record<string, unknown>[] =>
  r['ips'] as Record<string, unknown>[];

describe('convertResult between every pair of supported versions', () => {
  for (const from of SUPPORTED_VERSIONS) {
    for (const to of SUPPORTED_VERSIONS) {
      it(`${from} -> ${to}`, () => {
        const prev = bridgeResult(from);
        const before = structuredClone(prev);
        const out = convertResult(prev, to);
        assert.deepEqual(prev, before, 'the input is not modified');
        assert.equal(out['cniVersion'], to);
        const legacy = compareVersions(to, '1.0.0') < 0;
        const ips = ipsOf(out);
        assert.equal(ips.length, 2);
        if (legacy)
          assert.deepEqual(
            ips.map((i) => i['version']),
            ['4', '6'],
          );
        else for (const i of ips) assert.ok(!('version' in i), `no "version" in ${to}`);
        // Everything else is carried over unchanged.
        const strip = (r: Record<string, unknown>): unknown => ({
          ...r,
          cniVersion: undefined,
          ips: ipsOf(r).map(({ version: _v, ...rest }) => rest),
        });
        assert.deepEqual(strip(out), strip(prev));
      });
    }
  }

  for (const to of SUPPORTED_VERSIONS) {
    it(`a prevResult without cniVersion is expressed in ${to}`, () => {
      for (const source of ['0.4.0', '1.0.0'] as const) {
        const prev = bridgeResult(source);
        delete prev['cniVersion'];
        const out = convertResult(prev, to);
        assert.equal(out['cniVersion'], to);
        const versions = ipsOf(out).map((i) => i['version']);
        if (compareVersions(to, '1.0.0') < 0) assert.deepEqual(versions, ['4', '6']);
        else assert.deepEqual(versions, [undefined, undefined]);
      }
    });
  }

  it('keeps non-object ips entries and results without ips', () => {
    const out = convertResult({ cniVersion: '1.0.0', ips: ['odd'] }, '0.4.0');
    assert.deepEqual(out['ips'], ['odd']);
    assert.deepEqual(convertResult({ cniVersion: '1.0.0' }, '0.3.1'), { cniVersion: '0.3.1' });
  });

  for (const from of ['0.2.0', '2.0.0', 3]) {
    it(`refuses a prevResult of version ${JSON.stringify(from)} with code 1`, () => {
      assert.throws(
        () => convertResult({ cniVersion: from, ips: [] }, '1.0.0'),
        (err: unknown) => err instanceof CniError && err.cniCode === CNI_CODES.incompatibleVersion,
      );
    });
  }
});

describe('podAddresses', () => {
  const cases: [string, Record<string, unknown> | undefined, string[]][] = [
    ['no prevResult', undefined, []],
    ['no ips', { cniVersion: '1.0.0' }, []],
    [
      'bridge result: sandbox interface only',
      bridgeResult('1.0.0'),
      ['10.22.0.5/16', 'fd00:10:22::5/64'],
    ],
    [
      'IPs on host-side interfaces are skipped',
      {
        interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/n' }, { name: 'x', sandbox: '' }],
        ips: [
          { address: '10.22.0.1/16', interface: 0 },
          { address: '10.22.0.5/16', interface: 1 },
          { address: '10.23.0.5/16', interface: 2 },
        ],
      },
      ['10.22.0.5/16'],
    ],
    [
      'no interfaces described: every IP',
      { ips: [{ address: '10.0.0.1/24' }, { address: '10.0.0.2/24', interface: 0 }] },
      ['10.0.0.1/24', '10.0.0.2/24'],
    ],
    [
      'malformed entries are skipped',
      {
        ips: [
          null,
          'x',
          { address: 5 },
          { address: '' },
          { address: '/24' },
          { address: 'banana/24' },
          { address: '10.1.1.1' },
        ],
      },
      ['10.1.1.1'],
    ],
  ];
  for (const [name, prev, want] of cases)
    it(name, () => {
      assert.deepEqual(
        podAddresses(prev).map((a) => a.cidr),
        want,
      );
    });

  it('reports family and bare IP', () => {
    assert.deepEqual(podAddresses(bridgeResult('0.4.0')), [
      { family: 4, ip: '10.22.0.5', cidr: '10.22.0.5/16' },
      { family: 6, ip: 'fd00:10:22::5', cidr: 'fd00:10:22::5/64' },
    ]);
  });

  for (const v of SUPPORTED_VERSIONS)
    it(`same addresses from a ${v} result`, () => {
      assert.equal(podAddresses(convertResult(bridgeResult('1.1.0'), v as CniVersion)).length, 2);
    });
});
