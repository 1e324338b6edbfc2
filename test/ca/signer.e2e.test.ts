/**
 * The cluster signer on the two-node simulated cluster: the signer runs as
 * its own process (node1's netns), each node daemon holds only a join
 * credential and the bundle. A node cannot obtain another node's
 * identities; the signer killed leaves established traffic alone and makes
 * a new enrolled pod wait then fail with CNI 11; the signer back, the pod
 * starts and talks over mTLS. Encryption is judged on a capture of the link.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_SKIP, captureDuring, removeTestDir } from '../support/netns.js';
import { payloadContains } from '../../src/sim/pcap.js';
import {
  connectAsApp,
  exchange,
  startTestServer,
  type TestServer,
} from '../../src/sim/pod-apps.js';
import { defaultBundles } from '../../src/sim/bundles.js';
import { SimCluster } from '../../src/sim/sim-cluster.js';
import { until } from '../support/until.js';

const skip = E2E_SKIP;
const PORT = 8080;

describe('cluster signer on two nodes', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  let server: TestServer;
  let seq = 0;

  /** One marked exchange from `from` to pod b while capturing node1's link. */
  async function probe(
    from: string,
  ): Promise<{ answer: string; tls: boolean; plaintext: boolean }> {
    const marker = `SIGNER-${randomBytes(8).toString('hex')}`;
    const { result: answer, segments } = await captureDuring(
      cluster.node('node1'),
      join(dir, `cap-${++seq}.pcap`),
      () =>
        exchange(
          cluster.pod(from).netns.path,
          cluster.pod('b').ip ?? '',
          PORT,
          'ECHO',
          Buffer.from(marker),
          15_000,
        ).then(
          (b) => b.toString(),
          (e: Error) => `failed: ${e.message}`,
        ),
      150,
    );
    return {
      answer: answer === marker ? 'ok' : answer,
      tls:
        !payloadContains(segments, marker) &&
        segments.filter((s) => s.dstPort === 15008).reduce((n, s) => n + s.payload.length, 0) >
          marker.length,
      plaintext: payloadContains(segments, marker),
    };
  }

  /** `meshless ca request` run inside a node's netns with that node's credential. */
  function askAs(node: string, identity: string): { status: number; out: Record<string, unknown> } {
    const n = cluster.node(node);
    const r = n.netns.exec([
      process.execPath,
      defaultBundles().cli,
      'ca',
      'request',
      '--address',
      cluster.signerAddress,
      '--trust-bundle',
      join(dir, 'ca', 'root.crt'),
      '--join-credential',
      join(n.dir, 'join.json'),
      '--identity',
      identity,
    ]);
    return { status: r.status, out: JSON.parse(r.stdout) as Record<string, unknown> };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-signer-e2e-'));
    cluster = await SimCluster.create({ dir, nodes: 2, namespaces: { secure: true } });
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    await cluster.addPods([
      { name: 'a', namespace: 'secure', node: 'node1' },
      { name: 'b', namespace: 'secure', node: 'node2' },
    ]);
    server = await startTestServer(cluster.pod('b').netns.path, PORT);
  });

  after(async () => {
    await server?.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('no node daemon config names a key that can sign', () => {
    for (const n of cluster.nodes) {
      const config = readFileSync(join(n.dir, 'meshlessd.json'), 'utf8');
      assert.doesNotMatch(config, /unsafeLocalRoot|root\.key|join\.key/);
      assert.match(config, /"signer"/);
    }
  });

  test('enrolled pods on both nodes talk over mTLS with signer-issued SVIDs', async () => {
    assert.deepEqual(await probe('a'), { answer: 'ok', tls: true, plaintext: false });
  });

  test("a node's credential obtains its own pods' identities, never another node's", async () => {
    const own = askAs('node2', 'spiffe://cluster.local/ns/secure/sa/sa-b');
    assert.equal(own.status, 0, JSON.stringify(own.out));
    assert.equal(own.out['issued'], 'spiffe://cluster.local/ns/secure/sa/sa-b');
    const other = askAs('node2', 'spiffe://cluster.local/ns/secure/sa/sa-a');
    assert.equal(other.status, 1);
    assert.match(String(other.out['refused']), /node node2 may not obtain .*sa-a/);
    // The signer logs the refusal with its reason (its output is piped by this process).
    const log = cluster.signer?.logFile ?? '';
    await until('the refusal in the signer log', () =>
      readFileSync(log, 'utf8').includes('"reason":"not_on_node"'),
    );
  });

  test('signer killed: established traffic unaffected, a new enrolled pod waits then gets 11', async () => {
    const s = await connectAsApp(cluster.pod('a').netns.path, cluster.pod('b').ip ?? '', PORT);
    const echoed: Buffer[] = [];
    s.on('data', (c: Buffer) => echoed.push(c));
    s.write('ECHO\nbefore ');
    await cluster.stopSigner('SIGKILL');
    // Existing SVIDs keep serving: the open connection and a new one.
    s.write('after');
    const deadline = Date.now() + 10_000;
    while (Buffer.concat(echoed).toString() !== 'before after' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    assert.equal(Buffer.concat(echoed).toString(), 'before after');
    s.destroy();
    assert.deepEqual(await probe('a'), { answer: 'ok', tls: true, plaintext: false });

    const [c] = await cluster.declarePods([{ name: 'c', namespace: 'secure', node: 'node1' }]);
    assert.ok(c);
    const t0 = Date.now();
    const out = cluster.attachPod(c);
    assert.equal(out.ok, false, 'never an unprotected pod');
    assert.equal(out.output?.['code'], 11, JSON.stringify(out.output));
    assert.ok(Date.now() - t0 >= 1500, 'the ADD waited for the signer first');
  });

  test('signer back: the retried ADD succeeds and the new pod talks over mTLS', async () => {
    await cluster.startSigner();
    const c = cluster.pod('c');
    const out = cluster.attachPod(c);
    assert.equal(out.ok, true, JSON.stringify(out.output));
    cluster.writeDiscovery();
    await cluster.waitForDiscovery();
    assert.deepEqual(await probe('c'), { answer: 'ok', tls: true, plaintext: false });
  });

  test('a daemon restarted while the signer is down fails closed, then recovers when it is back', async () => {
    const node1 = cluster.node('node1');
    await cluster.stopSigner('SIGKILL');
    await node1.daemon?.stop('SIGKILL');
    await cluster.startDaemon(node1, { signer: false });
    const down = await probe('a');
    assert.notEqual(down.answer, 'ok', 'no identity, no listeners: refused');
    assert.equal(down.plaintext, false, 'never plaintext');
    await cluster.startSigner();
    let back = down;
    await until(
      'node1 re-attaches its pods once the signer is back',
      async () => (back = await probe('a')).answer === 'ok',
      30_000,
      500,
    );
    assert.deepEqual(back, { answer: 'ok', tls: true, plaintext: false });
  });
});
