/**
 * The HBONE data plane end to end, real kernel: two simulated nodes joined
 * by a veth link, pods created through the real CNI chain, one meshlessd per
 * node. Every assertion about encryption is made on a packet capture of the
 * node-to-node link.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import {
  generateRootCa,
  issueNodeCa,
  loadRootCa,
} from '../../../src/identity/certificate-authority.js';
import { parseSpiffeId } from '../../../src/identity/spiffe-id.js';
import { issueX509Svid } from '../../../src/identity/x509-svid.js';
import { connectFromNetns } from '../../../src/netns/socket-in-netns.js';
import { E2E_SKIP, RUN_TAG, captureDuring, removeTestDir } from '../../support/netns.js';
import { payloadContains, tlsHandshakes } from '../../../src/sim/pcap.js';
import {
  exchange,
  patternBytes,
  startTestServer,
  type TestServer,
} from '../../../src/sim/pod-apps.js';
import { SimCluster } from '../../../src/sim/sim-cluster.js';

const skip = E2E_SKIP;
const APP_PORT = 8080;

describe('HBONE data plane across two simulated nodes', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  const servers: TestServer[] = [];
  let capSeq = 0;

  const ip = (pod: string): string => {
    const v = cluster.pod(pod).ip;
    if (!v) throw new Error(`${pod} has no IP`);
    return v;
  };
  const netns = (pod: string): string => cluster.pod(pod).netns.path;

  /** Runs `fn` while capturing the node-to-node link on node1. */
  const captured = <T>(fn: () => Promise<T>) =>
    captureDuring(cluster.node('node1'), join(dir, `cap-${++capSeq}.pcap`), fn);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-dataplane-'));
    cluster = await SimCluster.create({
      dir,
      prefix: RUN_TAG,
      nodes: 2,
      namespaces: { secure: true, plain: false },
    });
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    await cluster.addPods([
      { name: 'a-secure', namespace: 'secure', node: 'node1' },
      { name: 'd-plain', namespace: 'plain', node: 'node1' },
      { name: 'b-secure', namespace: 'secure', node: 'node2' },
      { name: 'c-plain', namespace: 'plain', node: 'node2' },
    ]);
    for (const p of ['b-secure', 'c-plain', 'a-secure', 'd-plain'])
      servers.push(await startTestServer(netns(p), APP_PORT));
  });

  after(async () => {
    for (const s of servers) await s.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('enrolled -> enrolled across nodes: mutual TLS 1.3 on the wire, no plaintext byte, real peer address', async () => {
    const marker = `MARKER-${randomBytes(8).toString('hex')}`;
    const { result, segments } = await captured(() =>
      exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'ECHO', Buffer.from(marker)),
    );
    assert.equal(result.toString(), marker);
    assert.equal(payloadContains(segments, marker), false, 'marker crossed the link in plaintext');
    const tls = tlsHandshakes(segments, 15008);
    assert.ok(tls.clientHellos >= 1, 'a TLS ClientHello to 15008');
    assert.ok(
      tls.serverVersions.includes(0x0304),
      `TLS 1.3 negotiated (${tls.serverVersions.map((v) => v.toString(16))})`,
    );
    assert.ok(tls.alpn.includes('h2'));
    assert.ok(
      segments.every((s) => s.dstPort !== APP_PORT && s.srcPort !== APP_PORT),
      'nothing to the app port directly',
    );
    const who = await exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'WHO');
    assert.equal(
      who.toString().split(':')[0],
      ip('a-secure'),
      'the server sees the client pod as peer',
    );
  });

  test('enrolled -> plain and plain -> enrolled: plaintext, delivered, real peer addresses', async () => {
    const m1 = `PLAIN-OUT-${randomBytes(6).toString('hex')}`;
    const out = await captured(() =>
      exchange(netns('a-secure'), ip('c-plain'), APP_PORT, 'ECHO', Buffer.from(m1)),
    );
    assert.equal(out.result.toString(), m1);
    assert.equal(payloadContains(out.segments, m1), true, 'passthrough is plaintext');
    assert.equal(tlsHandshakes(out.segments, 15008).clientHellos, 0);
    assert.equal(
      (await exchange(netns('a-secure'), ip('c-plain'), APP_PORT, 'WHO')).toString().split(':')[0],
      ip('a-secure'),
    );

    const m2 = `PLAIN-IN-${randomBytes(6).toString('hex')}`;
    const inb = await captured(() =>
      exchange(netns('d-plain'), ip('b-secure'), APP_PORT, 'ECHO', Buffer.from(m2)),
    );
    assert.equal(inb.result.toString(), m2);
    assert.equal(payloadContains(inb.segments, m2), true);
    assert.equal(
      (await exchange(netns('d-plain'), ip('b-secure'), APP_PORT, 'WHO')).toString().split(':')[0],
      ip('d-plain'),
    );
  });

  test('100 MiB each way through the tunnel, checksummed, with half-close', async () => {
    const size = 100 * 1024 * 1024;
    const up = patternBytes(size);
    const sink = (await exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'SINK', up, 120_000))
      .toString()
      .trim();
    assert.equal(sink, `${createHash('sha256').update(up).digest('hex')} ${size}`);
    const down = await exchange(
      netns('a-secure'),
      ip('b-secure'),
      APP_PORT,
      `SOURCE ${size}`,
      Buffer.alloc(0),
      120_000,
    );
    assert.equal(down.length, size);
    assert.equal(
      createHash('sha256').update(down).digest('hex'),
      createHash('sha256').update(up).digest('hex'),
    );
    const half = await exchange(
      netns('a-secure'),
      ip('b-secure'),
      APP_PORT,
      'HALF',
      Buffer.from('x'.repeat(1000)),
    );
    assert.equal(half.toString(), 'got 1000\n');
  });

  test('200 concurrent connections share one pooled HBONE connection', async () => {
    const { result, segments } = await captured(() =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'ECHO', Buffer.from(`conn-${i}`)),
        ),
      ),
    );
    result.forEach((r, i) => assert.equal(r.toString(), `conn-${i}`));
    assert.ok(
      segments.some((s) => s.dstPort === 15008 && s.payload.length > 0),
      'the streams crossed the link on 15008',
    );
    const syns = segments.filter((s) => s.dstPort === 15008 && (s.flags & 0x12) === 0x02);
    assert.ok(
      syns.length <= 1,
      `${syns.length} new TCP connections to 15008 (want the pooled one)`,
    );
  });

  test('a peer with a certificate from another CA is refused by the HBONE server', async () => {
    const rogueRoot = await generateRootCa({ trustDomain: 'cluster.local', now: Date.now() });
    const { authority } = await loadRootCa(rogueRoot, {
      trustDomain: 'cluster.local',
      now: Date.now(),
    });
    const nodeCa = await issueNodeCa(authority, {
      nodeName: 'rogue',
      now: Date.now(),
      ttlMs: 3_600_000,
    });
    const svid = await issueX509Svid(
      nodeCa,
      parseSpiffeId('spiffe://cluster.local/ns/secure/sa/sa-a-secure'),
      { now: Date.now() },
    );
    // From the plain pod (no redirect rules), straight to B's 15008.
    const raw = await connectFromNetns({
      netnsPath: netns('d-plain'),
      host: ip('b-secure'),
      port: 15008,
    });
    const outcome = await new Promise<string>((resolve) => {
      const t = tlsConnect({
        socket: raw,
        cert: svid.chainPem,
        key: svid.privateKeyPem,
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
      });
      t.on('error', (e) => resolve(`error: ${e.message}`));
      t.on('close', () => resolve('closed'));
      t.on('secureConnect', () => t.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      setTimeout(() => resolve('still open'), 5000).unref();
    });
    assert.notEqual(
      outcome,
      'still open',
      'the server must close a connection with an untrusted client certificate',
    );
  });

  test('the HBONE server issues no TLS session ticket (resumption is never used)', async () => {
    // A client with a valid SVID of this cluster, straight to B's 15008 from the plain pod.
    const { authority } = await loadRootCa(
      {
        certPem: readFileSync(join(dir, 'ca', 'root.crt'), 'utf8'),
        keyPem: readFileSync(join(dir, 'ca', 'root.key'), 'utf8'),
        origin: 'the simulated cluster',
      },
      { trustDomain: 'cluster.local', now: Date.now() },
    );
    const nodeCa = await issueNodeCa(authority, {
      nodeName: 'test',
      now: Date.now(),
      ttlMs: 3_600_000,
    });
    const svid = await issueX509Svid(
      nodeCa,
      parseSpiffeId('spiffe://cluster.local/ns/secure/sa/sa-a-secure'),
      { now: Date.now() },
    );
    const raw = await connectFromNetns({
      netnsPath: netns('d-plain'),
      host: ip('b-secure'),
      port: 15008,
    });
    let tickets = 0;
    const t = tlsConnect({
      socket: raw,
      cert: svid.chainPem,
      key: svid.privateKeyPem,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
    });
    t.on('session', () => tickets++);
    t.on('error', () => undefined);
    await new Promise<void>((resolve) => t.once('secureConnect', () => resolve()));
    assert.equal(t.alpnProtocol, 'h2');
    // The HTTP/2 preface and a read: OpenSSL sends its tickets right after the handshake.
    t.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
    await new Promise<void>((resolve) => t.once('data', () => resolve()));
    t.destroy();
    assert.equal(tickets, 0);
  });

  test('destination daemon down: the connection fails and nothing crosses in plaintext', async () => {
    const node2 = cluster.node('node2');
    await node2.daemon?.stop('SIGKILL');
    const marker = `DOWN-${randomBytes(8).toString('hex')}`;
    const { result, segments } = await captured(() =>
      exchange(
        netns('a-secure'),
        ip('b-secure'),
        APP_PORT,
        'ECHO',
        Buffer.from(marker),
        20_000,
      ).then(
        (b) => `answered: ${b.toString()}`,
        (e: Error) => `failed: ${e.message}`,
      ),
    );
    assert.match(result, /^failed: .*(ECONNRESET|ECONNREFUSED)/, result);
    assert.equal(payloadContains(segments, marker), false, 'marker crossed the link');
  });
});
