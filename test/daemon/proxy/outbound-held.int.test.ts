// The outbound "held inline" rule (docs/reference/behaviour.md) on the production path
// (PodProxy's outbound listener, in this process's netns): the application's
// bytes stay held until the tunnel answered 200; a failed tunnel resets the
// application and no byte leaves; and (the crash the connection manager fixed) an application
// that sends a few bytes and resets while the tunnel is being set up leaves
// the daemon alive with exactly one record.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { X509Svid } from '../../../src/identity/x509-svid.js';
import { until } from '../../support/until.js';
import {
  ID_X,
  connectTcp,
  echo,
  makeTestPki,
  readAll,
  startHbone,
  startUpstream,
  type RunningHbone,
  type TestPki,
  type Upstream,
} from '../../src/hbone/hbone-fixtures.js';
import { startPodProxy, type KnownWorkload } from './pod-proxy-fixtures.js';

const T = { timeout: 30_000 };
const SRC = '127.0.0.3';
/** The destination pod, served by the HBONE server on 127.0.0.1. */
const DST = '127.0.0.1';

let pki: TestPki;
let svidX: X509Svid;
let server: RunningHbone;
let echoUp: Upstream;
const toClose: { close(): Promise<void> }[] = [];

const workloads = (dstServiceAccount = 'y'): KnownWorkload[] => [
  { ip: SRC, namespace: 'a', serviceAccount: 'x', enrolled: true },
  { ip: DST, namespace: 'b', serviceAccount: dstServiceAccount, enrolled: true },
];

async function front(peerHbonePort: number, targetPort: number, dstServiceAccount?: string) {
  const node = await startPodProxy({
    pki,
    svids: new Map([[ID_X, svidX]]),
    ip: SRC,
    workloads: workloads(dstServiceAccount),
    peerHbonePort,
    poolConnectTimeoutMs: 500,
  });
  node.destination = { address: DST, port: targetPort };
  toClose.push(node);
  return node;
}

/**
 * A TCP server in front of `port` that accepts at once and connects through
 * only when `open()` is called (a peer daemon slow to answer), or never.
 */
async function gate(port: number | undefined) {
  const held = new Set<net.Socket>();
  let opened = false;
  const waiting: (() => void)[] = [];
  const srv = net.createServer((s) => {
    held.add(s);
    s.on('error', () => undefined);
    s.once('close', () => held.delete(s));
    const through = (): void => {
      if (port === undefined || s.destroyed) return;
      const u = net.connect(port, '127.0.0.1');
      u.on('error', () => s.destroy());
      s.on('error', () => u.destroy());
      s.pipe(u).pipe(s);
      held.add(u);
      u.once('close', () => held.delete(u));
    };
    if (opened) through();
    else waiting.push(through);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const g = {
    port: (srv.address() as net.AddressInfo).port,
    accepted: () => held.size > 0,
    open: () => {
      opened = true;
      for (const w of waiting.splice(0)) w();
    },
    close: async () => {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
  toClose.push(g);
  return g;
}

before(async () => {
  pki = await makeTestPki();
  svidX = await pki.svid('a', 'x');
  const ctxY = pki.context(await pki.svid('b', 'y'));
  server = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
  echoUp = await startUpstream(echo);
  toClose.push(server, echoUp);
});

after(async () => {
  for (const c of toClose.reverse()) await c.close();
});

describe('outbound, held inline', () => {
  it('holds the bytes the app sent before the tunnel answered, then delivers them', T, async () => {
    const slow = await gate(server.port);
    const node = await front(slow.port, echoUp.port);
    const c = await connectTcp(SRC, node.outboundPort);
    c.write('early bytes ');
    await until('the tunnel dial reached the peer', slow.accepted);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(echoUp.accepted, 0, 'nothing reached the upstream before the tunnel');
    slow.open();
    c.end('then more');
    assert.equal((await readAll(c)).toString(), 'early bytes then more');
    await until('record', () => node.records.length === 1);
    assert.equal(node.records[0]?.outcome, 'ok');
  });

  it('resets the app when the tunnel fails, and no byte leaves', T, async () => {
    let upstreamBytes = 0;
    const guarded = await startUpstream((s) =>
      s.on('data', (d: Buffer) => (upstreamBytes += d.length)),
    );
    toClose.push(guarded);
    // The index names another identity than the one the peer presents.
    const node = await front(server.port, guarded.port, 'impostor');
    const c = await connectTcp(SRC, node.outboundPort);
    c.write('secret that must not leak');
    const err = await new Promise<Error | undefined>((resolve) => {
      c.on('error', resolve);
      c.on('close', () => resolve(undefined));
    });
    assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
    await until('record', () => node.records.length === 1);
    assert.equal(node.records[0]?.outcome, 'denied');
    assert.equal(node.records[0]?.reason, 'peer-identity');
    assert.equal(guarded.accepted, 0);
    assert.equal(upstreamBytes, 0);
    assert.ok(
      !server.records.some((rec) => rec.destination.port === guarded.port),
      'no CONNECT was sent for the failed tunnel',
    );
  });

  it(
    'an app that sends a few bytes and resets while the tunnel is being set up: the daemon lives, one record',
    T,
    async () => {
      const uncaught: unknown[] = [];
      const monitor = (err: unknown): void => void uncaught.push(err);
      process.on('uncaughtExceptionMonitor', monitor);
      try {
        // The destination's daemon accepts TCP and never answers the handshake.
        const silent = await gate(undefined);
        const node = await front(silent.port, 8080);
        const app = await connectTcp(SRC, node.outboundPort);
        app.on('error', () => undefined);
        app.write(Buffer.alloc(512, 1));
        await until('the tunnel dial reached the peer', silent.accepted);
        app.resetAndDestroy();
        await until('one record', () => node.records.length >= 1, 10_000);
        // Give a second record (or an unhandled error) the chance to appear.
        await new Promise((r) => setTimeout(r, 700));
        assert.deepEqual(uncaught, [], 'nothing thrown out of the event loop');
        assert.equal(node.records.length, 1);
        const [rec] = node.records;
        assert.equal(rec?.direction, 'outbound');
        assert.equal(rec?.outcome, 'reset');
        assert.equal(rec?.reason, 'client-reset');
        assert.equal(rec?.bytesSent, 0);
        assert.deepEqual(node.proxy.connections(), []);
      } finally {
        process.off('uncaughtExceptionMonitor', monitor);
      }
    },
  );

  it(
    'a pod over its connection limit: the extra connection is reset and recorded, the others held',
    T,
    async () => {
      const silent = await gate(undefined);
      const node = await startPodProxy({
        pki,
        svids: new Map([[ID_X, svidX]]),
        ip: SRC,
        workloads: workloads(),
        peerHbonePort: silent.port,
        limits: { perPodOutbound: 2 },
      });
      toClose.push(node);
      node.destination = { address: DST, port: 8080 };
      const apps: net.Socket[] = [];
      for (let i = 0; i < 2; i++) {
        const a = await connectTcp(SRC, node.outboundPort);
        a.on('error', () => undefined);
        apps.push(a);
      }
      await until('two held', () => node.proxy.connections().length === 2);
      // Reset at accept: the RST may even beat the connect callback.
      const extra = net.connect(node.outboundPort, SRC);
      const err = await new Promise<Error | undefined>((resolve) => {
        extra.on('error', resolve);
        extra.on('close', () => resolve(undefined));
      });
      assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
      await until('record', () => node.records.length === 1);
      assert.equal(node.records[0]?.outcome, 'refused');
      assert.equal(node.records[0]?.reason, 'limit-pod-outbound');
      assert.deepEqual(node.manager.refusedByLimit(), { 'pod-outbound': 1 });
      assert.equal(node.proxy.connections().length, 2);
      for (const a of apps) a.destroy();
      await until('all three recorded', () => node.records.length === 3, 10_000);
      assert.equal(node.manager.size, 0);
    },
  );
});
