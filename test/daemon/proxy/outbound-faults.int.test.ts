// Outbound faults in-process on loopback, through the production PodProxy
// (its outbound path holds the application socket inline) -> HbonePool ->
// HBONE server -> upstream, when the destination refuses, the HBONE address
// black-holes, the upstream resets mid-stream, and under a storm of short
// tunnels (no descriptor leak).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { HboneError } from '../../../src/hbone/hbone-error.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import type { X509Svid } from '../../../src/identity/x509-svid.js';
import { resetStream } from '../../../src/hbone/relay.js';
import { until } from '../../support/until.js';
import {
  ID_X,
  closedPort,
  connectTcp,
  echo,
  makeTestPki,
  readAll,
  startHbone,
  startUpstream,
  tunnelRequest,
  type RunningHbone,
  type TestPki,
} from '../../src/hbone/hbone-fixtures.js';
import { startPodProxy, type RunningPodProxy } from './pod-proxy-fixtures.js';

const T = { timeout: 30_000 };

let pki: TestPki;
let svidX: X509Svid;
let ctxX: tls.SecureContext;
let ctxY: tls.SecureContext;
let server: RunningHbone;
const toClose: { close(): Promise<void> }[] = [];

const openFds = (): number => readdirSync('/proc/self/fd').length;

function pool(options: ConstructorParameters<typeof HbonePool>[0] = {}): HbonePool {
  const p = new HbonePool({ connectTimeoutMs: 2000, ...options });
  toClose.push(p);
  return p;
}

/** The source pod (a/x) and the destination (b/y, served by `server` on 127.0.0.1). */
const SRC = '127.0.0.3';
const DST = '127.0.0.1';

/**
 * The source pod's proxy, whose accepted connections' original destination
 * is DST:`targetPort`, with peers' HBONE on `hbonePort`.
 */
async function startFront(
  hbonePort: number,
  targetPort: number,
  poolConnectTimeoutMs = 2000,
): Promise<RunningPodProxy> {
  const node = await startPodProxy({
    pki,
    svids: new Map([[ID_X, svidX]]),
    ip: SRC,
    workloads: [
      { ip: SRC, namespace: 'a', serviceAccount: 'x', enrolled: true },
      { ip: DST, namespace: 'b', serviceAccount: 'y', enrolled: true },
    ],
    peerHbonePort: hbonePort,
    poolConnectTimeoutMs,
  });
  node.destination = { address: DST, port: targetPort };
  toClose.push(node);
  return node;
}

interface AppEnd {
  readonly received: Buffer;
  readonly error: NodeJS.ErrnoException | undefined;
}

/** Everything the application socket receives until it closes, and its error. */
function appEnd(s: net.Socket, onData?: (total: number) => void): Promise<AppEnd> {
  const chunks: Buffer[] = [];
  let total = 0;
  let error: NodeJS.ErrnoException | undefined;
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    total += c.length;
    onData?.(total);
  });
  s.on('error', (e: NodeJS.ErrnoException) => (error = e));
  return new Promise((resolve) =>
    s.once('close', () => resolve({ received: Buffer.concat(chunks), error })),
  );
}

before(async () => {
  pki = await makeTestPki();
  svidX = await pki.svid('a', 'x');
  ctxX = pki.context(svidX);
  ctxY = pki.context(await pki.svid('b', 'y'));
  server = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
  toClose.push(server);
});

after(async () => {
  for (const c of toClose.reverse()) await c.close();
});

describe('outbound faults', () => {
  it('a refusing destination: 503, the application is reset, no byte delivered', T, async () => {
    const port = await closedPort();
    const front = await startFront(server.port, port);
    const app = await connectTcp(SRC, front.outboundPort);
    const ended = appEnd(app);
    app.write('held inline, must go nowhere');
    await until('record', () => front.records.length === 1);
    const [result] = front.records;
    assert.ok(result);
    assert.equal(result.outcome, 'refused');
    assert.equal(result.reason, 'http-status-503');
    assert.equal(result.bytesSent, 0);
    assert.equal(result.bytesReceived, 0);
    const end = await ended;
    assert.equal(end.error?.code, 'ECONNRESET');
    assert.equal(end.received.length, 0);
    await until('server record', () =>
      server.records.some((r) => r.destination.port === port && r.outcome === 'refused'),
    );
    const rec = server.records.find((r) => r.destination.port === port);
    assert.equal(rec?.bytesSent, 0);
    assert.equal(front.pool.stats().streams, 0);
  });

  it(
    'a black-holed HBONE address: connect-timeout with the NetworkPolicy hint, bounded',
    T,
    async () => {
      const held = new Set<net.Socket>();
      const hole = net.createServer((s) => {
        // Accepts and never answers TLS (reads and drops, so it sees the client leave).
        held.add(s);
        s.resume();
        s.on('error', () => undefined);
        s.once('close', () => held.delete(s));
      });
      await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
      const holePort = (hole.address() as net.AddressInfo).port;
      toClose.push({
        close: async () => {
          for (const s of held) s.destroy();
          await new Promise<void>((resolve) => hole.close(() => resolve()));
        },
      });
      const p = pool({ connectTimeoutMs: 300 });
      const req = tunnelRequest(pki, ctxX, holePort, 9);

      const started = Date.now();
      const err = await p.openTunnel(req).then(
        () => assert.fail('expected connect-timeout'),
        (e: unknown) => e,
      );
      const elapsed = Date.now() - started;
      assert.ok(err instanceof HboneError, String(err));
      assert.equal(err.reason, 'connect-timeout', err.message);
      assert.match(err.message, /NetworkPolicy is blocking HBONE port \d+/);
      assert.ok(elapsed >= 250 && elapsed < 2000, `bounded: ${elapsed} ms`);
      assert.deepEqual(p.stats(), { connections: 0, streams: 0, connecting: 0 });
      await until('black-holed socket closed by the client', () => held.size === 0);

      // Held inline: the application is reset, with the timeout outcome.
      const front = await startFront(holePort, 9, 300);
      const app = await connectTcp(SRC, front.outboundPort);
      const ended = appEnd(app);
      app.write('never leaves');
      await until('record', () => front.records.length === 1);
      const result = front.records[0];
      assert.equal(result?.outcome, 'timeout');
      assert.equal(result?.reason, 'connect-timeout');
      const end = await ended;
      assert.equal(end.error?.code, 'ECONNRESET');
      assert.equal(end.received.length, 0);
    },
  );

  it(
    'an upstream reset mid-stream: the application sees ECONNRESET after the bytes',
    T,
    async () => {
      const payload = randomBytes(8 * 1024);
      let resetUpstream: (() => void) | undefined;
      const up = await startUpstream((s) => {
        s.write(payload);
        resetUpstream = () => s.resetAndDestroy();
      });
      toClose.push(up);
      const front = await startFront(server.port, up.port);
      const app = await connectTcp(SRC, front.outboundPort);
      const ended = appEnd(app, (total) => {
        if (total === payload.length) resetUpstream?.();
      });
      app.write('request');
      const end = await ended;
      assert.ok(end.received.equals(payload), `received ${end.received.length} bytes`);
      assert.equal(end.error?.code, 'ECONNRESET');
      await until('record', () => front.records.length === 1);
      const result = front.records[0];
      assert.equal(result?.outcome, 'reset');
      assert.equal(result?.reason, 'upstream-reset');
      assert.equal(result?.bytesReceived, payload.length);
      await until('server record', () =>
        server.records.some((r) => r.destination.port === up.port),
      );
      const rec = server.records.find((r) => r.destination.port === up.port);
      assert.equal(rec?.outcome, 'reset');
      assert.equal(rec?.bytesReceived, payload.length);
      await until('stream released', () => front.pool.stats().streams === 0);
    },
  );

  it('an application reset mid-upload reaches the upstream as a reset, not a FIN', T, async () => {
    const upload = randomBytes(8 * 1024);
    let upstreamEnd: Promise<AppEnd> | undefined;
    let received = 0;
    const control: { resetApp?: () => void } = {};
    const up = await startUpstream((s) => {
      upstreamEnd = appEnd(s, (total) => {
        received = total;
        if (total === upload.length) control.resetApp?.();
      });
    });
    toClose.push(up);
    const front = await startFront(server.port, up.port);
    const app = await connectTcp(SRC, front.outboundPort);
    const appClosed = appEnd(app);
    control.resetApp = () => app.resetAndDestroy();
    app.write(upload);
    await until('upstream accepted', () => upstreamEnd !== undefined);
    const end = await upstreamEnd;
    assert.equal(received, upload.length);
    // Node's Http2Stream.close(code) would send END_STREAM before RST_STREAM
    // and the upstream would see a truncated upload end cleanly.
    assert.equal(end?.error?.code, 'ECONNRESET');
    await appClosed;
    await until('record', () => front.records.length === 1);
    const result = front.records[0];
    assert.equal(result?.outcome, 'reset');
    assert.equal(result?.reason, 'client-reset');
    await until('server record', () => server.records.some((r) => r.destination.port === up.port));
    assert.equal(server.records.find((r) => r.destination.port === up.port)?.outcome, 'reset');
  });

  it('resetting a TCP socket whose FIN is in flight still closes it', T, async () => {
    const up = await startUpstream((s) => s.resume());
    toClose.push(up);
    const s = await connectTcp('127.0.0.1', up.port);
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.end('bye');
    // libuv refuses an RST during shutdown; Node would then leak the handle.
    resetStream(s);
    await closed;
    assert.ok(s.destroyed);
  });

  it('2,000 short tunnels (100 at a time) leak no descriptor', { timeout: 120_000 }, async () => {
    const TOTAL = 2000;
    const CONCURRENCY = 100;
    const before = openFds();
    const up = await startUpstream(echo);
    const front = await startFront(server.port, up.port, 5000);
    toClose.pop();
    const recordsBefore = server.records.length;

    let next = 0;
    let ok = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        next++;
        const data = randomBytes(1024);
        const app = await connectTcp(SRC, front.outboundPort);
        app.end(data);
        const back = await readAll(app);
        assert.ok(back.equals(data), `echo of ${back.length} bytes`);
        ok++;
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const elapsed = Date.now() - started;
    assert.equal(ok, TOTAL);
    await until('records', () => front.records.length === TOTAL, 5000);
    const results = front.records;
    assert.ok(
      results.every((r) => r.outcome === 'ok' && r.bytesSent === 1024 && r.bytesReceived === 1024),
    );
    await until('server records', () => server.records.length - recordsBefore === TOTAL, 5000);
    assert.ok(server.records.slice(recordsBefore).every((r) => r.outcome === 'ok'));
    const stats = front.pool.stats();
    assert.equal(stats.streams, 0);
    assert.ok(stats.connections <= 2, `pooled connections: ${stats.connections}`);

    await front.close();
    await up.close();
    let after = openFds();
    await until(
      'descriptors back to the baseline',
      () => (after = openFds()) <= before + 4,
      5000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${before} before, ${after} after`);
    });
    console.log(`storm: ${TOTAL} tunnels in ${elapsed} ms; fds ${before} -> ${after}`);
  });
});
