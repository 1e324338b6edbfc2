import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseNodeInfo, parseWorkloadsReport } from '../../cli/admin-reports.js';
import { renderWorkloads } from '../../cli/commands/workloads.js';
import { NOW, adminAnswer } from './admin-fixtures.js';

const NODE = parseNodeInfo(adminAnswer('status'));
const WORKLOADS = parseWorkloadsReport(adminAnswer('workloads'));
const FOOTER = [
  '',
  'Not enrolled:',
  '  namespace monitoring lacks io.cilium/mtls-enabled=true (1 pod)',
  '',
  'pending: enrolled, but its listeners or identity are not ready yet',
  '',
];

describe('meshless workloads', () => {
  it('renders every column on a wide terminal', () => {
    assert.equal(
      renderWorkloads(NODE, WORKLOADS, { now: NOW, width: 200, color: false }),
      [
        'POD                        ENROLLED  IDENTITY        IPS                          NETNS                                     REGISTERED',
        'monitoring/prometheus-0    no        -               10.244.1.9                   cni-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9  2h00m ago',
        'shop/cart-5c8f7b9d6-q7w2e  pending   -               10.244.1.7                   cni-9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9  2s ago',
        'shop/db-0                  yes       ns/shop/sa/db   10.244.1.6                   pid 4242                                  1d03h ago',
        'shop/web-7d9c5b6f4-x2x9p   yes       ns/shop/sa/web  10.244.1.5,fd00:10:244:1::5  cni-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901  3m12s ago',
        ...FOOTER,
      ].join('\n'),
    );
  });

  it('fits 80 columns: netns and pod names cut, extra addresses counted', () => {
    const text = renderWorkloads(NODE, WORKLOADS, { now: NOW, width: 80, color: false });
    assert.equal(
      text,
      [
        'POD                ENROLLED  IDENTITY        IPS            NETNS     REGISTERED',
        'monitori…etheus-0  no        -               10.244.1.9     cni-0a1…  2h00m ago',
        'shop/car…d6-q7w2e  pending   -               10.244.1.7     cni-9e8…  2s ago',
        'shop/db-0          yes       ns/shop/sa/db   10.244.1.6     pid 4242  1d03h ago',
        'shop/web…f4-x2x9p  yes       ns/shop/sa/web  10.244.1.5 +1  cni-1b2…  3m12s ago',
        ...FOOTER,
      ].join('\n'),
    );
    for (const line of text.split('\n')) assert.ok(line.length <= 80, line);
  });

  it('keeps identities of another trust domain whole', () => {
    const foreign = { ...NODE, trustDomain: 'other.example' };
    assert.match(
      renderWorkloads(foreign, WORKLOADS, { now: NOW, width: 200, color: false }),
      / spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db /,
    );
  });

  it('says so when no workload is registered', () => {
    assert.equal(
      renderWorkloads(NODE, [], { now: NOW, width: 80, color: false }),
      'No workloads registered on node node-a.\n',
    );
  });
});
