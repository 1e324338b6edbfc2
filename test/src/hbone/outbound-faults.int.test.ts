// Outbound faults in-process on loopback: an application socket held inline
// (proxyOverTunnel) -> HbonePool -> HBONE server -> upstream, when the
// destination refuses, the HBONE address black-holes, the upstream resets
// mid-stream, and under a storm of short tunnels (no descriptor leak).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { TunnelRequest } from '../../../src/hbone/hbone-client.js';
import { HboneError } from '../../../src/hbone/hbone-error.js';
import { proxyOverTunnel, type TunnelProxyResult } from '../../../src/hbone/held-inline.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import { resetStream } from '../../../src/hbone/relay.js';
import { until } from '../../support/until.js';
import {
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
} from './hbone-fixtures.js';

const T = { timeout: 30_000 };

let pki: TestPki;
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

interface Front {
  readonly port: number;
  /** One per accepted application connection, in accept order. */
  readonly results: Promise<TunnelProxyResult>[];
  close(): Promise<void>;
}

/**
 * The outbound listener's part: each accepted application socket is held
 * inline until a tunnel for `req` opens, then relayed (or reset).
 */
async function startFront(p: HbonePool, req: TunnelRequest): Promise<Front> {
  const results: Promise<TunnelProxyResult>[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (app) => {
    sockets.add(app);
    app.once('close', () => sockets.delete(app));
    results.push(proxyOverTunnel(app, p.openTunnel(req)));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    results,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
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
  ctxX = pki.context(await pki.svid('a', 'x'));
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
    const p = pool();
    const front = await startFront(p, tunnelRequest(pki, ctxX, server.port, port));
    toClose.push(front);
    const app = await connectTcp('127.0.0.1', front.port);
    const ended = appEnd(app);
    app.write('held inline, must go nowhere');
    const [result] = await (async () => {
      await until('front accepted', () => front.results.length === 1);
      return Promise.all(front.results);
    })();
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
    assert.equal(p.stats().streams, 0);
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
      const front = await startFront(p, req);
      toClose.push(front);
      const app = await connectTcp('127.0.0.1', front.port);
      const ended = appEnd(app);
      app.write('never leaves');
      await until('front accepted', () => front.results.length === 1);
      const result = await front.results[0];
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
      const p = pool();
      const front = await startFront(p, tunnelRequest(pki, ctxX, server.port, up.port));
      toClose.push(front);
      const app = await connectTcp('127.0.0.1', front.port);
      const ended = appEnd(app, (total) => {
        if (total === payload.length) resetUpstream?.();
      });
      app.write('request');
      const end = await ended;
      assert.ok(end.received.equals(payload), `received ${end.received.length} bytes`);
      assert.equal(end.error?.code, 'ECONNRESET');
      await until('front accepted', () => front.results.length === 1);
      const result = await front.results[0];
      assert.equal(result?.outcome, 'reset');
      assert.equal(result?.reason, 'reset-by-tunnel');
      assert.equal(result?.bytesReceived, payload.length);
      await until('server record', () =>
        server.records.some((r) => r.destination.port === up.port),
      );
      const rec = server.records.find((r) => r.destination.port === up.port);
      assert.equal(rec?.outcome, 'reset');
      assert.equal(rec?.bytesReceived, payload.length);
      await until('stream released', () => p.stats().streams === 0);
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
    const p = pool();
    const front = await startFront(p, tunnelRequest(pki, ctxX, server.port, up.port));
    toClose.push(front);
    const app = await connectTcp('127.0.0.1', front.port);
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
    await until('front accepted', () => front.results.length === 1);
    const result = await front.results[0];
    assert.equal(result?.outcome, 'reset');
    assert.equal(result?.reason, 'reset-by-client');
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
    const p = new HbonePool({ connectTimeoutMs: 5000 });
    const front = await startFront(p, tunnelRequest(pki, ctxX, server.port, up.port));
    const recordsBefore = server.records.length;

    let next = 0;
    let ok = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        next++;
        const data = randomBytes(1024);
        const app = await connectTcp('127.0.0.1', front.port);
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
    const results = await Promise.all(front.results);
    assert.equal(results.length, TOTAL);
    assert.ok(
      results.every((r) => r.outcome === 'ok' && r.bytesSent === 1024 && r.bytesReceived === 1024),
    );
    await until('server records', () => server.records.length - recordsBefore === TOTAL, 5000);
    assert.ok(server.records.slice(recordsBefore).every((r) => r.outcome === 'ok'));
    const stats = p.stats();
    assert.equal(stats.streams, 0);
    assert.ok(stats.connections <= 2, `pooled connections: ${stats.connections}`);

    await p.close();
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
