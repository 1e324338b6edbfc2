import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseClusterDocument } from '../../../src/discovery/file-source.js';
import { buildServiceIndex } from '../../../src/proxy/service-index.js';

const path = new URL('testdata/services.yaml', import.meta.url).pathname;
const snapshot = parseClusterDocument(readFileSync(path, 'utf8'), path);
const services = buildServiceIndex(snapshot);

describe('buildServiceIndex', () => {
  const cases: {
    name: string;
    ip: string;
    port: number;
    service?: string;
    backends?: string[];
  }[] = [
    {
      name: 'ClusterIP, named targetPort resolved by the slice; not-ready endpoints left out',
      ip: '10.96.0.10',
      port: 80,
      service: 'secure/api',
      backends: ['10.22.0.5:8080'],
    },
    {
      name: 'second port of the same Service',
      ip: '10.96.0.10',
      port: 9090,
      service: 'secure/api',
      backends: ['10.22.0.5:9090'],
    },
    {
      name: 'IPv6 ClusterIP: IPv6 slice only; slice port without a number -> pod container port',
      ip: 'fd00:96::10',
      port: 80,
      service: 'secure/api',
      backends: ['fd00:10:22::5:8080'],
    },
    {
      name: 'external IP',
      ip: '203.0.113.7',
      port: 80,
      service: 'secure/api',
      backends: ['10.22.0.5:8080'],
    },
    {
      name: 'load-balancer ingress IP',
      ip: '198.51.100.9',
      port: 80,
      service: 'secure/api',
      backends: ['10.22.0.5:8080'],
    },
    {
      name: 'node port on a node InternalIP',
      ip: '192.168.5.10',
      port: 30080,
      service: 'secure/api',
      backends: ['10.22.0.5:8080'],
    },
    { name: 'UDP service port is not ours', ip: '10.96.0.10', port: 53 },
    { name: 'port the Service does not have', ip: '10.96.0.10', port: 81 },
    {
      name: 'none ready: serving and terminating ones drain',
      ip: '10.96.0.11',
      port: 80,
      service: 'secure/draining',
      backends: ['10.22.0.8:8080'],
    },
    {
      name: 'no EndpointSlice: a frontend without backends',
      ip: '10.96.0.12',
      port: 80,
      service: 'secure/empty',
      backends: [],
    },
    { name: 'unknown address', ip: '10.96.0.99', port: 80 },
    { name: 'node address without a node port', ip: '192.168.5.10', port: 80 },
  ];
  for (const c of cases)
    it(c.name, () => {
      const f = services.frontend(c.ip, c.port);
      assert.equal(f?.service, c.service);
      if (c.backends)
        assert.deepEqual(
          f?.backends.map((b) => `${b.address}:${b.port}`),
          c.backends,
        );
    });

  it('headless and ExternalName Services have no frontend', () => {
    assert.equal(services.serviceAt('None'), undefined);
    assert.equal(services.size, 2 + 2 + 2 + 2 + 1 + 1 + 1);
  });

  it('serviceAt names the Service of an address whatever the port', () => {
    assert.equal(services.serviceAt('10.96.0.10'), 'secure/api');
    assert.equal(services.serviceAt('::ffff:10.96.0.10'), 'secure/api');
    assert.equal(services.serviceAt('192.168.5.10'), undefined);
  });

  it('node pod CIDRs, ServiceCIDRs and named container ports are parsed', () => {
    assert.deepEqual(snapshot.serviceCidrs.get('kubernetes')?.cidrs, [
      '10.96.0.0/16',
      'fd00:96::/112',
    ]);
    assert.deepEqual(snapshot.nodes.get('node-a')?.podCidrs, ['10.22.0.0/24', 'fd00:10:22::/64']);
    assert.deepEqual(snapshot.nodes.get('node-a')?.addresses, ['192.168.5.10']);
    assert.deepEqual(snapshot.pods.get('secure/api-0')?.containerPorts, {
      http: 8080,
      metrics: 9090,
    });
  });
});
