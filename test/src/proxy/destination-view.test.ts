import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileDiscoverySource } from '../../../src/discovery/file-source.js';
import { DestinationView } from '../../../src/proxy/destination-view.js';
import { decideOutbound } from '../../../src/proxy/outbound-decision.js';
import {
  SCALE_ENROLMENT_LABEL,
  generateScaleCluster,
  scaleClusterDocument,
  scaleNode,
  scalePod,
  seededRandom,
} from '../../../src/sim/scale-cluster.js';

describe('DestinationView', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshless-destination-view-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cluster.json');
  const cluster = generateScaleCluster({
    nodes: 2,
    namespaces: 2,
    pods: 4,
    services: 2,
    policies: 1,
  });

  it('a decision after the change sees it; the address space follows the Nodes only', async () => {
    writeFileSync(file, scaleClusterDocument(cluster.objects));
    const discovery = new FileDiscoverySource(file);
    await discovery.start();
    try {
      const view = new DestinationView(discovery, {
        policy: { label: SCALE_ENROLMENT_LABEL, excludeNamespaces: [] },
        trustDomain: 'cluster.local',
      });
      const ip = cluster.podIp(0, 9);
      const decide = (): string =>
        decideOutbound(
          { address: ip, port: 8080 },
          view.workloads,
          view.addressSpace.space,
          view.services,
        ).kind;
      assert.equal(decide(), 'wait-for-discovery');
      const space = view.addressSpace;
      const changed = view.changed(5000);
      const pod = scalePod({
        namespace: 'team-0',
        name: 'new',
        app: 'x',
        node: 0,
        ip,
        rand: seededRandom(1),
      });
      writeFileSync(file, scaleClusterDocument([...cluster.objects, pod]));
      await discovery.reload();
      await changed;
      assert.equal(decide(), 'hbone');
      assert.equal(view.addressSpace, space, 'no Node changed: the same address space');
      writeFileSync(file, scaleClusterDocument([...cluster.objects, pod, scaleNode(7)]));
      await discovery.reload();
      assert.notEqual(view.addressSpace, space);
      assert.ok(view.addressSpace.space.contains(cluster.podIp(7, 0)));
    } finally {
      discovery.close();
    }
  });
});
