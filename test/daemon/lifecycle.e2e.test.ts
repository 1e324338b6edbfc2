/**
 * The daemon as an operator runs it, on two simulated nodes: namespaces
 * labelled and unlabelled while their pods run, the daemon killed and
 * restarted, rules repaired at start, and SIGTERM draining a transfer in
 * flight. Encryption is always judged on a capture of the node link.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_SKIP, captureDuring, removeTestDir } from '../support/netns.js';
import { payloadContains, tlsHandshakes } from '../../src/sim/pcap.js';
import {
  connectAsApp,
  exchange,
  patternBytes,
  startTestServer,
  type TestServer,
} from '../../src/sim/pod-apps.js';
import { SimCluster } from '../../src/sim/sim-cluster.js';
import { startDaemonProcess } from '../../src/sim/daemon-process.js';
import { callDaemon } from '../../src/registration/client.js';
import { until } from '../support/until.js';

const skip = E2E_SKIP;
const PORT = 8080;

/** Polls every 50 ms (the checks run iptables-save in a pod); 15 s unless told. */
const waitFor = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) =>
  until(what, check, timeoutMs, 50);

describe('daemon lifecycle: live enrolment, restart, drain', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  let server: TestServer;
  let seq = 0;

  const x = () => cluster.pod('x');
  const yIp = (): string => cluster.pod('y').ip ?? '';
  /** The nat jump that captures the pod's outbound traffic is in place. */
  const rulesIn = (pod: string): boolean =>
    cluster
      .pod(pod)
      .netns.exec(['iptables-save', '-t', 'nat'])
      .stdout.includes('-A OUTPUT -j MESHLESS_OUTPUT');

  /** One marked exchange x -> y while capturing node1's link. */
  async function probe(): Promise<{ answer: string; tls: boolean; plaintext: boolean }> {
    const marker = `LIFE-${randomBytes(8).toString('hex')}`;
    const { result: answer, segments } = await captureDuring(
      cluster.node('node1'),
      join(dir, `cap-${++seq}.pcap`),
      () =>
        exchange(x().netns.path, yIp(), PORT, 'ECHO', Buffer.from(marker), 15_000).then(
          (b) => b.toString(),
          (e: Error) => `failed: ${e.message}`,
        ),
      150,
    );
    return {
      answer: answer === marker ? 'ok' : answer,
      // The marker's bytes travelled inside the tunnel (a pooled connection
      // may be reused, so a handshake in this window is not required).
      tls:
        !payloadContains(segments, marker) &&
        segments.filter((s) => s.dstPort === 15008).reduce((n, s) => n + s.payload.length, 0) >
          marker.length + 5 + 9 + 16,
      plaintext: payloadContains(segments, marker),
    };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-lifecycle-'));
    cluster = await SimCluster.create({
      dir,
      nodes: 2,
      namespaces: { late: false },
      daemonConfig: { drainTimeoutSeconds: 8 },
    });
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    await cluster.addPods([
      { name: 'x', namespace: 'late', node: 'node1' },
      { name: 'y', namespace: 'late', node: 'node2' },
    ]);
    server = await startTestServer(cluster.pod('y').netns.path, PORT);
  });

  after(async () => {
    await server?.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('labelling the namespace while its pods run switches them to mTLS, unlabelling back', async () => {
    assert.equal(rulesIn('x'), false);
    const before = await probe();
    assert.deepEqual(before, { answer: 'ok', tls: false, plaintext: true });
    void tlsHandshakes;

    cluster.namespaces['late'] = true;
    cluster.writeDiscovery();
    await waitFor('rules in both pods', () => rulesIn('x') && rulesIn('y'));
    const enrolled = await probe();
    assert.deepEqual(enrolled, { answer: 'ok', tls: true, plaintext: false });

    cluster.namespaces['late'] = false;
    cluster.writeDiscovery();
    await waitFor('rules gone from both pods', () => !rulesIn('x') && !rulesIn('y'));
    const released = await probe();
    assert.equal(released.answer, 'ok');
    assert.equal(released.plaintext, true, 'released pods talk plaintext again');

    cluster.namespaces['late'] = true;
    cluster.writeDiscovery();
    await waitFor('rules back', () => rulesIn('x') && rulesIn('y'));
  });

  test('daemon killed: connections refused, never plaintext; restarted: mTLS again', async () => {
    const node1 = cluster.node('node1');
    await node1.daemon?.stop('SIGKILL');
    const down = await probe();
    assert.match(down.answer, /^failed: .*(ECONNREFUSED|ECONNRESET)/);
    assert.equal(down.plaintext, false);
    await cluster.startDaemon(node1);
    const back = await probe();
    assert.deepEqual(back, { answer: 'ok', tls: true, plaintext: false });
  });

  test('rules removed while the daemon was down are reinstalled at start', async () => {
    const node1 = cluster.node('node1');
    await node1.daemon?.stop('SIGKILL');
    x().netns.exec(['iptables', '-t', 'nat', '-D', 'OUTPUT', '-j', 'MESHLESS_OUTPUT']);
    assert.equal(rulesIn('x'), false);
    await cluster.startDaemon(node1);
    await waitFor('rules repaired', () => rulesIn('x'));
    assert.deepEqual(await probe(), { answer: 'ok', tls: true, plaintext: false });
  });

  test('upgrade: a new daemon starts beside the old one, which leaves; connections keep working', async () => {
    const node1 = cluster.node('node1');
    const old = node1.daemon;
    assert.ok(old);
    const bDir = join(node1.dir, 'upgrade');
    mkdirSync(bDir, { recursive: true });
    // The old daemon still answers on the socket, so this returns at once.
    const next = await startDaemonProcess({
      dir: bDir,
      netns: node1.netns.name,
      config: cluster.daemonConfig(node1),
    });
    const bLog = join(bDir, 'meshlessd.log');
    await waitFor(
      'the new daemon listening in the pod',
      () => existsSync(bLog) && readFileSync(bLog, 'utf8').includes('pod proxy listening'),
    );
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const r = await exchange(
          x().netns.path,
          yIp(),
          PORT,
          'ECHO',
          Buffer.from('during-upgrade'),
          10_000,
        ).then(
          (b) => b.toString(),
          (e: Error) => `failed: ${e.message}`,
        );
        if (r === 'during-upgrade') ok++;
        else failures.push(r);
      }
    })();
    await waitFor('some traffic through both', () => ok > 20);
    assert.equal(await old.stop('SIGTERM'), 0, 'the old daemon drained and exited');
    await waitFor('the new daemon took over the CNI socket', () =>
      readFileSync(bLog, 'utf8').includes('took over from the previous daemon'),
    );
    const atTakeover = ok;
    await waitFor('traffic after the take-over', () => ok > atTakeover + 20);
    running = false;
    await loop;
    node1.daemon = next;
    assert.deepEqual(
      failures,
      [],
      `${failures.length} of ${ok + failures.length} connections failed during the upgrade`,
    );
    // The new daemon owns the socket and the registrations now.
    const status = await callDaemon<{ workloads: number }>(
      next.socket,
      'GET',
      '/v1/status',
      undefined,
      2000,
    );
    assert.equal(status.kind === 'ok' ? status.body.workloads : -1, 1, 'node1 hosts pod x');
    assert.deepEqual(await probe(), { answer: 'ok', tls: true, plaintext: false });
  });

  test('SIGTERM drains an established transfer before exiting', async () => {
    const node1 = cluster.node('node1');
    const size = 40 * 1024 * 1024;
    const s = await connectAsApp(x().netns.path, yIp(), PORT);
    let received = 0;
    const done = new Promise<number>((resolve, reject) => {
      s.on('data', (c: Buffer) => {
        received += c.length;
        // A slow reader: the transfer outlives the SIGTERM.
        s.pause();
        setTimeout(() => s.resume(), 2);
      });
      s.on('end', () => resolve(received));
      s.on('error', reject);
    });
    s.end(`SOURCE ${size}\n`);
    await waitFor('transfer under way', () => received > 1024 * 1024);
    assert.equal(node1.daemon?.child.exitCode, null, 'the daemon is running');
    const exited = node1.daemon?.stop('SIGTERM');
    assert.equal(await done, size, 'the whole transfer arrived');
    const code = await exited;
    assert.equal(
      code,
      0,
      `the daemon exited cleanly (signal ${String(node1.daemon?.child.signalCode)})`,
    );
    void patternBytes;
  });
});
