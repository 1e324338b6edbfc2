/**
 * Service traffic end to end, real kernel: two simulated nodes whose netns
 * carry a kube-proxy-style DNAT for each Service ClusterIP, pods made
 * through the real CNI chain, one meshlessd per node on file discovery
 * listing Nodes, Services and EndpointSlices. Judged on captures of the
 * node-to-node link: an enrolled pod's connection to a ClusterIP whose
 * backend is enrolled is tunnelled (never DNATed into plaintext); the
 * control row, a plain pod through the same DNAT, shows the plaintext the
 * tunnel prevents.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payloadContains, tlsHandshakes } from '../../../src/sim/pcap.js';
import { exchange, startTestServer, type TestServer } from '../../../src/sim/pod-apps.js';
import { SimCluster } from '../../../src/sim/sim-cluster.js';
import { E2E_SKIP, RUN_TAG, captureDuring, removeTestDir } from '../../support/netns.js';
import { until } from '../../support/until.js';

const APP_PORT = 8080;
const VIP = { enrolled: '10.96.0.10', plain: '10.96.0.11', empty: '10.96.0.12' } as const;

describe(
  'Services: an enrolled pod dialling a ClusterIP',
  { skip: E2E_SKIP, concurrency: false },
  () => {
    let dir: string;
    let cluster: SimCluster;
    const servers: TestServer[] = [];
    let capSeq = 0;
    const ip = (pod: string): string => cluster.pod(pod).ip ?? assert.fail(`${pod} has no IP`);
    const netns = (pod: string): string => cluster.pod(pod).netns.path;
    const captured = <T>(fn: () => Promise<T>) =>
      captureDuring(cluster.node('node1'), join(dir, `cap-${++capSeq}.pcap`), fn);
    /** The connection records node1's daemon logged so far. */
    const records = (): { outcome: string; reason?: string; service?: { name: string } }[] =>
      readFileSync(cluster.node('node1').daemon?.logFile ?? '', 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"connection"'))
        .map(
          (l) => (JSON.parse(l) as { connection: { outcome: string; reason?: string } }).connection,
        );

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'meshless-services-'));
      cluster = await SimCluster.create({
        dir,
        prefix: RUN_TAG,
        nodes: 2,
        namespaces: { secure: true, plain: false },
      });
      for (const n of cluster.nodes) await cluster.startDaemon(n);
      await cluster.addPods([
        { name: 'client', namespace: 'secure', node: 'node1' },
        { name: 'legacy', namespace: 'plain', node: 'node1' },
        { name: 'api', namespace: 'secure', node: 'node2' },
        { name: 'batch', namespace: 'plain', node: 'node2' },
      ]);
      const svc = (name: string, namespace: string, clusterIp: string, backends: string[]) =>
        cluster.addService({
          name,
          namespace,
          clusterIp,
          port: 80,
          targetPort: APP_PORT,
          backends,
        });
      await svc('api', 'secure', VIP.enrolled, ['api']);
      await svc('batch', 'plain', VIP.plain, ['batch']);
      await svc('nothing', 'secure', VIP.empty, []);
      for (const p of ['api', 'batch']) servers.push(await startTestServer(netns(p), APP_PORT));
    });

    after(async () => {
      for (const s of servers) await s.close();
      await cluster?.destroy();
      removeTestDir(dir);
    });

    test('control: a plain pod through kube-proxy DNAT reaches the enrolled backend in plaintext', async () => {
      const marker = `DNAT-${randomBytes(8).toString('hex')}`;
      const { result, segments } = await captured(() =>
        exchange(netns('legacy'), VIP.enrolled, 80, 'ECHO', Buffer.from(marker)),
      );
      assert.equal(result.toString(), marker);
      assert.equal(payloadContains(segments, marker), true, 'the DNAT path is plaintext');
      assert.ok(
        segments.some((s) => s.dstPort === APP_PORT),
        'DNATed to the pod port',
      );
    });

    test('enrolled -> ClusterIP -> enrolled backend: mTLS to the backend pod, no plaintext byte, real peer address', async () => {
      const marker = `SVC-${randomBytes(8).toString('hex')}`;
      const { result, segments } = await captured(() =>
        exchange(netns('client'), VIP.enrolled, 80, 'ECHO', Buffer.from(marker)),
      );
      assert.equal(result.toString(), marker);
      assert.equal(
        payloadContains(segments, marker),
        false,
        'marker crossed the link in plaintext',
      );
      const data = segments.filter((s) => s.payload.length > 0);
      assert.ok(data.length > 0, 'something crossed the link');
      assert.ok(
        data.every((s) => s.dstPort === 15008 || s.srcPort === 15008),
        'every byte on the link is HBONE on 15008',
      );
      assert.ok(
        segments.every((s) => s.dst !== VIP.enrolled),
        'nothing left the node addressed to the ClusterIP',
      );
      const who = await exchange(netns('client'), VIP.enrolled, 80, 'WHO');
      assert.equal(who.toString().split(':')[0], ip('client'), 'the backend sees the client pod');
      await until('the outbound record names the Service', () =>
        records().some((r) => r.service?.name === 'secure/api' && r.outcome === 'ok'),
      );
    });

    test('enrolled -> ClusterIP -> plain backend: plaintext passthrough to the backend itself', async () => {
      const marker = `SVC-PLAIN-${randomBytes(8).toString('hex')}`;
      const { result, segments } = await captured(() =>
        exchange(netns('client'), VIP.plain, 80, 'ECHO', Buffer.from(marker)),
      );
      assert.equal(result.toString(), marker);
      assert.equal(payloadContains(segments, marker), true, 'a plain backend gets plaintext');
      assert.equal(tlsHandshakes(segments, 15008).clientHellos, 0);
      assert.ok(
        segments.some((s) => s.dst === ip('batch') && s.dstPort === APP_PORT),
        'dialled the backend pod directly',
      );
    });

    test('enrolled -> ClusterIP without a ready endpoint: reset at once, recorded with the reason', async () => {
      const t0 = Date.now();
      await assert.rejects(
        exchange(netns('client'), VIP.empty, 80, 'ECHO', Buffer.from('x'), 10_000),
        /ECONNRESET|EPIPE|closed/,
      );
      assert.ok(Date.now() - t0 < 5000, 'not held until a timeout');
      await until('a refused record naming the Service', () =>
        records().some(
          (r) =>
            r.outcome === 'refused' &&
            r.reason === 'no-ready-endpoint' &&
            r.service?.name === 'secure/nothing',
        ),
      );
    });
  },
);
