/**
 * IPv6 link-local addresses of IPv4-only pods, real kernel.
 * The simulated cluster is IPv4-only (prevResult lists IPv4 addresses
 * only), yet every pod's eth0 has an fe80:: address and the node's bridge
 * carries IPv6 between pods. Enrolled pods get the IPv6 "refuse" rules:
 * TCP over fe80:: to or from them is reset, never carried in plaintext.
 * Judged on a capture of the destination pod's eth0, with a control pair
 * of plain pods proving the path does carry fe80:: TCP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_SKIP, RUN_TAG, removeTestDir } from '../../support/netns.js';
import { until } from '../../support/until.js';
import { Capture } from '../../../src/sim/capture.js';
import { payloadContains, type TcpSegment } from '../../../src/sim/pcap.js';
import { exchange, startTestServer, type TestServer } from '../../../src/sim/pod-apps.js';
import { SimCluster } from '../../../src/sim/sim-cluster.js';
import { listenInNetns } from '../../../src/netns/socket-in-netns.js';

const skip = E2E_SKIP;
const PORT = 8080;

/**
 * A client run inside the pod's netns (a scoped address like
 * fe80::1%eth0 names the interface of the netns that resolves it): sends
 * the marker, half-closes, prints {data} or {error}.
 */
const CLIENT = `
const net = require('node:net');
const [host, port, marker] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), timeout: 5000 });
let data = '';
s.on('connect', () => s.end(marker));
s.on('data', (c) => (data += c));
s.on('timeout', () => { console.log(JSON.stringify({ error: 'ETIMEDOUT' })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
s.on('close', () => { console.log(JSON.stringify({ data })); process.exit(0); });
`;

function clientIn(
  ns: string,
  host: string,
  marker: string,
): Promise<{ data?: string; error?: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, '-e', CLIENT, host, String(PORT), marker],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`client in ${ns}: ${err.message} ${stderr}`));
        else resolve(JSON.parse(stdout.trim()) as { data?: string; error?: string });
      },
    );
  });
}

describe('IPv6 link-local between IPv4-only pods on one node', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let v4: TestServer | undefined;
  let seq = 0;

  const netnsName = (pod: string): string => cluster.pod(pod).netns.name;
  /** The pod's eth0 link-local address, once duplicate address detection is over. */
  const linkLocal = (pod: string): string => {
    const out = cluster.pod(pod).netns.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0']);
    const line = out.stdout.split('\n').find((l) => /inet6 fe80::/.test(l));
    if (!line || /tentative/.test(line)) return '';
    return /inet6 (fe80::[0-9a-f:]+)\//.exec(line)?.[1] ?? '';
  };

  /** Runs `fn` while capturing TCP on `pod`'s eth0. */
  const capturedAt = async <T>(
    pod: string,
    fn: () => Promise<T>,
  ): Promise<{ result: T; segments: TcpSegment[] }> => {
    const cap = await Capture.start(netnsName(pod), 'eth0', join(dir, `cap-${++seq}.pcap`));
    try {
      const result = await fn();
      await new Promise((r) => setTimeout(r, 200));
      return { result, segments: await cap.stop() };
    } catch (err) {
      await cap.stop();
      throw err;
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-linklocal-'));
    cluster = await SimCluster.create({
      dir,
      prefix: RUN_TAG,
      nodes: 1,
      namespaces: { secure: true, plain: false },
    });
    await cluster.startDaemon(cluster.node('node1'));
    await cluster.addPods([
      { name: 'a-secure', namespace: 'secure', node: 'node1' },
      { name: 'b-secure', namespace: 'secure', node: 'node1' },
      { name: 'c-plain', namespace: 'plain', node: 'node1' },
      { name: 'd-plain', namespace: 'plain', node: 'node1' },
    ]);
    for (const pod of ['b-secure', 'd-plain']) {
      // An app listening on every IPv6 address of the pod: it echoes.
      const server = await listenInNetns({
        netnsPath: cluster.pod(pod).netns.path,
        host: '::',
        port: PORT,
        v6Only: true,
      });
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
        s.pipe(s);
      });
      servers.push(server);
    }
    v4 = await startTestServer(cluster.pod('b-secure').netns.path, PORT);
    for (const pod of ['a-secure', 'b-secure', 'c-plain', 'd-plain'])
      await until(`${pod} has a usable fe80:: address`, () => linkLocal(pod) !== '', 15_000, 100);
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    for (const s of servers) await new Promise((r) => s.close(r));
    await v4?.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('the prevResult of every pod is IPv4 only, and enrolled pods refuse TCP over IPv6', () => {
    for (const pod of ['a-secure', 'b-secure', 'c-plain', 'd-plain'])
      assert.match(cluster.pod(pod).ip ?? '', /^10\.248\.1\.\d+$/);
    const v6 = cluster.pod('b-secure').netns.exec(['ip6tables-save', '-t', 'filter']).stdout;
    assert.match(v6, /^-A MESHLESS_OUTPUT .*-j REJECT --reject-with tcp-reset$/m);
    assert.doesNotMatch(
      cluster.pod('d-plain').netns.exec(['ip6tables-save']).stdout,
      /MESHLESS/,
      'plain pods are untouched',
    );
  });

  test('control: plain -> plain over fe80:: carries TCP (in plaintext, not ours)', async () => {
    const marker = `LL-PLAIN-${randomBytes(6).toString('hex')}`;
    const { result, segments } = await capturedAt('d-plain', () =>
      clientIn(netnsName('c-plain'), `${linkLocal('d-plain')}%eth0`, marker),
    );
    assert.deepEqual(result, { data: marker });
    assert.equal(payloadContains(segments, marker), true, 'the path carries fe80:: TCP');
  });

  test('enrolled -> enrolled over fe80::: refused in the source pod, nothing reaches the destination', async () => {
    const marker = `LL-SECURE-${randomBytes(6).toString('hex')}`;
    const { result, segments } = await capturedAt('b-secure', () =>
      clientIn(netnsName('a-secure'), `${linkLocal('b-secure')}%eth0`, marker),
    );
    assert.deepEqual(result, { error: 'ECONNREFUSED' });
    assert.equal(payloadContains(segments, marker), false);
    assert.deepEqual(
      segments.filter((s) => s.dstPort === PORT || s.srcPort === PORT),
      [],
      'not even a SYN left the source pod',
    );
  });

  test('plain -> enrolled over fe80::: reset by the destination, no byte delivered', async () => {
    const marker = `LL-IN-${randomBytes(6).toString('hex')}`;
    const { result, segments } = await capturedAt('b-secure', () =>
      clientIn(netnsName('c-plain'), `${linkLocal('b-secure')}%eth0`, marker),
    );
    assert.deepEqual(result, { error: 'ECONNREFUSED' });
    assert.equal(payloadContains(segments, marker), false);
    const toApp = segments.filter((s) => s.dstPort === PORT);
    const fromApp = segments.filter((s) => s.srcPort === PORT);
    assert.ok(toApp.length >= 1 && toApp.every((s) => s.payload.length === 0), 'only the SYN');
    assert.ok(
      fromApp.length >= 1 && fromApp.every((s) => (s.flags & 0x04) !== 0),
      'answered with a reset',
    );
  });

  test('enrolled -> plain over fe80::: refused in the source pod', async () => {
    const marker = `LL-OUT-${randomBytes(6).toString('hex')}`;
    const { result, segments } = await capturedAt('d-plain', () =>
      clientIn(netnsName('a-secure'), `${linkLocal('d-plain')}%eth0`, marker),
    );
    assert.deepEqual(result, { error: 'ECONNREFUSED' });
    assert.equal(payloadContains(segments, marker), false);
  });

  test('IPv4 between the enrolled pods and IPv6 loopback inside one still work', async () => {
    const who = await exchange(
      cluster.pod('a-secure').netns.path,
      cluster.pod('b-secure').ip ?? '',
      PORT,
      'WHO',
    );
    assert.equal(who.toString().split(':')[0], cluster.pod('a-secure').ip);
    const marker = `LOOP-${randomBytes(4).toString('hex')}`;
    assert.deepEqual(await clientIn(netnsName('b-secure'), '::1', marker), { data: marker });
  });

  test('CHECK reports a tampered IPv6 refuse chain (102); DEL removes both families exactly', () => {
    const pod = cluster.pod('a-secure');
    const { runtime, conflist } = pod.node;
    assert.equal(runtime.check(conflist, pod.attachment).ok, true, 'intact after ADD');
    pod.netns.exec(['ip6tables', '-F', 'MESHLESS_OUTPUT']);
    const check = runtime.check(conflist, pod.attachment);
    assert.equal(check.ok, false);
    assert.equal(check.output?.['code'], 102);
    assert.match(String(check.output?.['msg']), /IPv6 filter MESHLESS_OUTPUT: rules differ/);
    runtime.del(conflist, pod.attachment);
    for (const save of ['iptables-save', 'ip6tables-save'])
      assert.doesNotMatch(pod.netns.exec([save]).stdout, /MESHLESS/, save);
  });
});
