import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseConfigReport,
  parseConnectionsReport,
  parseNodeInfo,
  parseStatusReport,
  parseWorkloadsReport,
} from '../../cli/admin-reports.js';
import { adminAnswer } from './admin-fixtures.js';

function withEntry(list: unknown, index: number, patch: Record<string, unknown>): unknown[] {
  return (list as Record<string, unknown>[]).map((e, i) => (i === index ? { ...e, ...patch } : e));
}

const status = adminAnswer('status') as Record<string, unknown>;
const workloads = adminAnswer('workloads');
const connections = adminAnswer('connections');

describe('admin answers', () => {
  it('reads the recorded answers of every route', () => {
    const s = parseStatusReport(status);
    assert.equal(s.ready, true);
    assert.equal(s.discovery.pods, 140);
    assert.deepEqual(parseNodeInfo(status), { nodeName: 'node-a', trustDomain: 'cluster.local' });
    const w = parseWorkloadsReport(workloads);
    assert.equal(w.length, 4);
    assert.equal(w[2]?.identity, null);
    assert.deepEqual(w[0]?.addresses[1], { family: 6, ip: 'fd00:10:244:1::5' });
    const c = parseConnectionsReport(connections);
    assert.equal(c[1]?.destination.identity, undefined);
    assert.equal(parseConfigReport(adminAnswer('config'))['logLevel'], 'info');
  });

  it('tolerates fields it does not know and optional ones missing', () => {
    assert.equal(parseStatusReport({ ...status, future: { x: 1 } }).nodeName, 'node-a');
    const [first] = parseWorkloadsReport([
      { ...(workloads as Record<string, unknown>[])[0], identity: undefined, podUid: undefined },
    ]);
    assert.equal(first?.identity, null);
  });

  const broken: readonly [string, () => unknown, RegExp][] = [
    [
      '/status that is not an object',
      () => parseStatusReport('ok'),
      /\/status .*status should be an object/,
    ],
    [
      '/status without readiness',
      () => parseStatusReport({ ...status, ready: 'yes' }),
      /status\.ready should be true or false/,
    ],
    [
      '/status with a discovery of another shape',
      () => parseStatusReport({ ...status, discovery: { source: 'file', synced: true } }),
      /status\.discovery\.namespaces should be a number/,
    ],
    [
      '/status with reasons that are not text',
      () => parseStatusReport({ ...status, notReady: [{ why: 1 }] }),
      /status\.notReady\[0\] should be a string/,
    ],
    [
      '/workloads wrapped in an object (another version)',
      () => parseWorkloadsReport({ items: workloads }),
      /\/workloads .*workloads should be an array/,
    ],
    [
      '/workloads with a bad address',
      () => parseWorkloadsReport(withEntry(workloads, 1, { addresses: [{ ip: 7 }] })),
      /workloads\[1\]\.addresses\[0\]\.family should be a number/,
    ],
    [
      '/workloads with an identity that is not text',
      () => parseWorkloadsReport(withEntry(workloads, 0, { identity: 42 })),
      /workloads\[0\]\.identity should be a string/,
    ],
    [
      '/connections without a destination',
      () => parseConnectionsReport(withEntry(connections, 2, { destination: null })),
      /connections\[2\]\.destination should be an object/,
    ],
    [
      '/connections with a port that is not a number',
      () =>
        parseConnectionsReport(
          withEntry(connections, 0, { source: { address: '10.0.0.1', port: '80' } }),
        ),
      /connections\[0\]\.source\.port should be a number/,
    ],
    [
      '/config that is a list',
      () => parseConfigReport([]),
      /\/config .*config should be an object/,
    ],
  ];
  for (const [name, parse, message] of broken) {
    it(`refuses ${name}, naming the field`, () => {
      assert.throws(parse, (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MESHLESS_E_ADMIN_RESPONSE');
        assert.match(err.message, message);
        assert.match(err.message, /is the CLI the same version as the daemon\?/);
        return true;
      });
    });
  }
});
