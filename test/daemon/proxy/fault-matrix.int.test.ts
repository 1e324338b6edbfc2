// The data plane's fault matrix, in-process against the production classes:
// each path (outbound over HBONE, which crosses the peer's inbound HBONE;
// passthrough; inbound plaintext) x each stage a connection can be in (held
// while the tunnel is set up, connecting upstream, relaying, half-closed) x
// what either peer does (FIN, RST, stop reading, upstream refused). In every
// case: nothing is thrown out of the event loop (the daemon lives), the other
// side sees what it must (RST or FIN), each node involved writes exactly one
// record with the right outcome and reason, and nothing is left behind (no
// live connection, no pooled stream, no buffer budget held, no descriptor).
// Then a model test (fast-check): random interleavings of those actions on
// an established connection, against the same invariants.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ConnectionRecord } from '../../../src/hbone/connection-record.js';
import { until } from '../../support/until.js';
import {
  ID_X,
  ID_Y,
  closedPort,
  makeTestPki,
  startUpstream,
  type TestPki,
  type Upstream,
} from '../../src/hbone/hbone-fixtures.js';
import { startPodProxy, type KnownWorkload, type RunningPodProxy } from './pod-proxy-fixtures.js';

const T = { timeout: 30_000 };
/** The source pod (a/x) and the destination pod (b/y). */
const SRC = '127.0.0.3';
const DST = '127.0.0.1';
/** A plain (not enrolled) client of the destination pod. */
const PLAIN_CLIENT = '127.0.0.5';

/** What one TCP end saw. */
interface Seen {
  data: Buffer;
  ended: boolean;
  error: string | undefined;
  closed: boolean;
}

function observe(s: net.Socket, onData?: (seen: Seen) => void): Seen {
  const seen: Seen = { data: Buffer.alloc(0), ended: false, error: undefined, closed: false };
  s.on('data', (d: Buffer) => {
    seen.data = Buffer.concat([seen.data, d]);
    onData?.(seen);
  });
  s.on('end', () => (seen.ended = true));
  s.on('error', (e: NodeJS.ErrnoException) => (seen.error ??= e.code ?? e.message));
  s.once('close', () => (seen.closed = true));
  return seen;
}

type PathName = 'outbound-hbone' | 'passthrough' | 'inbound-plaintext';

interface World {
  pki: TestPki;
  app: Upstream;
  /** Application-side sockets the app server accepted, in order. */
  appSockets: net.Socket[];
  /** The destination pod's node (b/y): inbound HBONE and inbound plaintext. */
  nodeB: RunningPodProxy;
  /** The source pod's node, with b/y enrolled (HBONE) ... */
  nodeA: RunningPodProxy;
  /** ... with b/y not enrolled (passthrough) ... */
  nodeAPlain: RunningPodProxy;
  /** ... and with the peer's HBONE port silent (TCP accepted, TLS never answered). */
  nodeASilent: RunningPodProxy;
  silentPeer: net.Server;
  silentSockets: Set<net.Socket>;
}

let w: World;
const uncaught: unknown[] = [];
const monitor = (err: unknown): void => void uncaught.push(err);
let fdsBefore = 0;
const openFds = (): number => readdirSync('/proc/self/fd').length;

const workloads = (dstEnrolled: boolean): KnownWorkload[] => [
  { ip: SRC, namespace: 'a', serviceAccount: 'x', enrolled: true },
  { ip: DST, namespace: 'b', serviceAccount: 'y', enrolled: dstEnrolled },
];

before(async () => {
  process.on('uncaughtExceptionMonitor', monitor);
  fdsBefore = openFds();
  const pki = await makeTestPki();
  const svidX = await pki.svid('a', 'x');
  const svidY = await pki.svid('b', 'y');
  const appSockets: net.Socket[] = [];
  const app = await startUpstream((s) => appSockets.push(s));
  const silentSockets = new Set<net.Socket>();
  const silentPeer = net.createServer((s) => {
    silentSockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => silentSockets.delete(s));
  });
  await new Promise<void>((resolve) => silentPeer.listen(0, DST, resolve));
  const nodeB = await startPodProxy({
    pki,
    svids: new Map([[ID_Y, svidY]]),
    ip: DST,
    namespace: 'b',
    serviceAccount: 'y',
    workloads: workloads(true),
    peerHbonePort: 1,
    // A small budget, so relays of a stalled reader run into it.
    relayBufferBytes: 1024 * 1024,
  });
  const source = (dstEnrolled: boolean, peerHbonePort: number) =>
    startPodProxy({
      pki,
      svids: new Map([[ID_X, svidX]]),
      ip: SRC,
      workloads: workloads(dstEnrolled),
      peerHbonePort,
      poolConnectTimeoutMs: 300,
      relayBufferBytes: 1024 * 1024,
    });
  w = {
    pki,
    app,
    appSockets,
    nodeB,
    nodeA: await source(true, nodeB.hbonePort),
    nodeAPlain: await source(false, nodeB.hbonePort),
    nodeASilent: await source(true, (silentPeer.address() as net.AddressInfo).port),
    silentPeer,
    silentSockets,
  };
});

after(async () => {
  for (const n of [w.nodeA, w.nodeAPlain, w.nodeASilent, w.nodeB]) await n.close();
  for (const s of w.silentSockets) s.destroy();
  await new Promise<void>((resolve) => w.silentPeer.close(() => resolve()));
  await w.app.close();
  process.off('uncaughtExceptionMonitor', monitor);
  let fds = openFds();
  await until(
    'descriptors back to the baseline',
    () => (fds = openFds()) <= fdsBefore + 4,
    5000,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}: ${fdsBefore} before, ${fds} after`);
  });
  assert.deepEqual(uncaught, [], 'nothing thrown out of the event loop');
});

/** The nodes a path crosses, with the record direction each must write. */
function nodesOf(
  path: PathName,
  silent = false,
): [RunningPodProxy, ConnectionRecord['direction']][] {
  switch (path) {
    case 'outbound-hbone':
      return silent
        ? [[w.nodeASilent, 'outbound']]
        : [
            [w.nodeA, 'outbound'],
            [w.nodeB, 'inbound'],
          ];
    case 'passthrough':
      return [[w.nodeAPlain, 'passthrough']];
    case 'inbound-plaintext':
      return [[w.nodeB, 'inbound-plaintext']];
  }
}

/** Opens the client end of `path` to DST:`port`. */
function dial(path: PathName, port: number, silent = false): net.Socket {
  const [[first]] = nodesOf(path, silent) as [[RunningPodProxy, string]];
  first.destination = { address: DST, port };
  const client =
    path === 'inbound-plaintext'
      ? net.connect({
          host: DST,
          port: first.plaintextPort,
          localAddress: PLAIN_CLIENT,
          allowHalfOpen: true,
        })
      : net.connect({ host: SRC, port: first.outboundPort, allowHalfOpen: true });
  return client;
}

/** The next application socket the app server accepts. */
async function nextAppSocket(): Promise<net.Socket> {
  const n = w.appSockets.length;
  await until('the app accepted', () => w.appSockets.length > n, 10_000);
  const s = w.appSockets[n];
  if (!s) throw new Error('no app socket');
  return s;
}

/**
 * Runs `act` and then checks every node of the path wrote exactly one new
 * record matching `want` (per direction), and that nothing is left live.
 */
async function expectRecords(
  path: PathName,
  want: Partial<Record<ConnectionRecord['direction'], Partial<ConnectionRecord>>>,
  act: () => Promise<void>,
  silent = false,
): Promise<void> {
  const nodes = nodesOf(path, silent);
  const before = nodes.map(([n]) => n.records.length);
  await act();
  await until(
    'one record per node',
    () => nodes.every(([n], i) => n.records.length >= (before[i] ?? 0) + 1),
    10_000,
  );
  // A second record, if there were one, is written in the same turn as the first or soon after.
  await new Promise((r) => setTimeout(r, 50));
  for (const [i, [node, direction]] of nodes.entries()) {
    const fresh = node.records.slice(before[i]);
    assert.equal(fresh.length, 1, `${direction}: exactly one record, got ${JSON.stringify(fresh)}`);
    const [rec] = fresh;
    assert.equal(rec?.direction, direction);
    const expected = want[direction];
    if (expected)
      for (const [k, v] of Object.entries(expected))
        assert.deepEqual(rec?.[k as keyof ConnectionRecord], v, `${direction} ${k}`);
  }
  for (const [node] of nodes) {
    await until('no live connection', () => node.manager.size === 0, 10_000);
    await until('no pooled stream', () => node.pool.stats().streams === 0, 10_000);
    await until('buffer budget released', () => (node.manager.budget?.used ?? 0) === 0, 10_000);
  }
}

const PATHS: PathName[] = ['outbound-hbone', 'passthrough', 'inbound-plaintext'];

/** Refusal reasons by path and node direction. */
const REFUSED: Record<
  PathName,
  Partial<Record<ConnectionRecord['direction'], Partial<ConnectionRecord>>>
> = {
  'outbound-hbone': {
    outbound: { outcome: 'refused', reason: 'http-status-503' },
    inbound: { outcome: 'refused', reason: 'upstream-refused' },
  },
  passthrough: { passthrough: { outcome: 'refused', reason: 'connect-refused' } },
  'inbound-plaintext': { 'inbound-plaintext': { outcome: 'refused', reason: 'connect-refused' } },
};

const all = (path: PathName, rec: Partial<ConnectionRecord>) =>
  Object.fromEntries(nodesOf(path).map(([, d]) => [d, rec]));

describe('fault matrix', () => {
  for (const path of PATHS) {
    describe(path, () => {
      it('connecting: upstream refused -> the client is reset', T, async () => {
        const port = await closedPort();
        let client: Seen | undefined;
        await expectRecords(path, REFUSED[path], async () => {
          const c = dial(path, port);
          client = observe(c);
          c.write('never delivered');
          await until('client closed', () => client?.closed === true, 10_000);
        });
        assert.equal(client?.error, 'ECONNRESET');
      });

      it('relaying: client RST -> the app is reset', T, async () => {
        let app: Seen | undefined;
        await expectRecords(
          path,
          all(path, { outcome: 'reset', reason: 'client-reset' }),
          async () => {
            const c = dial(path, w.app.port);
            c.on('error', () => undefined);
            c.write('ping');
            const s = await nextAppSocket();
            app = observe(s);
            await until('app got ping', () => app?.data.length === 4);
            c.resetAndDestroy();
            await until('app closed', () => app?.closed === true, 10_000);
          },
        );
        assert.equal(app?.error, 'ECONNRESET');
        assert.equal(app?.ended, false);
      });

      it('relaying: app RST -> the client is reset, after the bytes', T, async () => {
        let client: Seen | undefined;
        await expectRecords(
          path,
          all(path, { outcome: 'reset', reason: 'upstream-reset', bytesReceived: 4 }),
          async () => {
            const c = dial(path, w.app.port);
            client = observe(c);
            c.write('ping');
            const s = await nextAppSocket();
            s.write('pong');
            await until('client got pong', () => client?.data.length === 4);
            s.resetAndDestroy();
            await until('client closed', () => client?.closed === true, 10_000);
          },
        );
        assert.equal(client?.error, 'ECONNRESET');
        assert.equal(client?.data.toString(), 'pong');
      });

      it('half-closed: FIN each way -> ok, both ends see FIN', T, async () => {
        let client: Seen | undefined;
        let app: Seen | undefined;
        await expectRecords(
          path,
          all(path, { outcome: 'ok', bytesSent: 4, bytesReceived: 4 }),
          async () => {
            const c = dial(path, w.app.port);
            client = observe(c);
            c.end('ping');
            const s = await nextAppSocket();
            app = observe(s);
            await until('app saw FIN', () => app?.ended === true, 10_000);
            s.end('pong');
            await until('client closed', () => client?.closed === true, 10_000);
          },
        );
        assert.equal(client?.error, undefined);
        assert.equal(client?.ended, true);
        assert.equal(client?.data.toString(), 'pong');
        assert.equal(app?.data.toString(), 'ping');
      });

      it('half-closed: client FIN, then app RST -> the client is reset', T, async () => {
        let client: Seen | undefined;
        await expectRecords(
          path,
          all(path, { outcome: 'reset', reason: 'upstream-reset' }),
          async () => {
            const c = dial(path, w.app.port);
            client = observe(c);
            c.end('ping');
            const s = await nextAppSocket();
            const app = observe(s);
            await until('app saw FIN', () => app.ended, 10_000);
            s.resetAndDestroy();
            await until('client closed', () => client?.closed === true, 10_000);
          },
        );
        assert.equal(client?.error, 'ECONNRESET');
      });

      it('relaying: the client stops reading, then resets -> nothing held', T, async () => {
        await expectRecords(
          path,
          all(path, { outcome: 'reset', reason: 'client-reset' }),
          async () => {
            const c = dial(path, w.app.port);
            c.on('error', () => undefined);
            c.write('ping');
            c.pause();
            const s = await nextAppSocket();
            s.on('error', () => undefined);
            // The app writes until the kernel and the daemon stop taking bytes.
            const chunk = Buffer.alloc(256 * 1024, 7);
            let written = 0;
            await new Promise<void>((resolve) => {
              const pump = (): void => {
                while (written < 64 * 1024 * 1024) {
                  written += chunk.length;
                  if (!s.write(chunk)) {
                    const t = setTimeout(resolve, 300);
                    s.once('drain', () => {
                      clearTimeout(t);
                      pump();
                    });
                    return;
                  }
                }
                resolve();
              };
              pump();
            });
            assert.ok(written < 64 * 1024 * 1024, 'backpressure reached the app');
            c.resetAndDestroy();
            await until('app closed', () => s.destroyed, 10_000);
          },
        );
      });

      it(
        'relaying: the manager closes it (a policy change) -> both ends reset, recorded denied by policy',
        T,
        async () => {
          let client: Seen | undefined;
          let app: Seen | undefined;
          await expectRecords(
            path,
            all(path, { outcome: 'denied', reason: 'policy' }),
            async () => {
              const c = dial(path, w.app.port);
              client = observe(c);
              c.write('ping');
              const s = await nextAppSocket();
              app = observe(s);
              await until('app got ping', () => app?.data.length === 4);
              // What the policy re-check does: close what a policy now denies.
              for (const [node] of nodesOf(path))
                assert.equal(
                  node.manager.closeWhere((conn) => conn.destination.port === w.app.port, 'policy'),
                  1,
                );
              await until(
                'both ends closed',
                () => client?.closed === true && app?.closed === true,
                10_000,
              );
            },
          );
          assert.equal(client?.error, 'ECONNRESET');
          assert.equal(app?.error, 'ECONNRESET');
        },
      );

      it(
        'a stalled receiver that spent the buffer budget does not stop another connection',
        T,
        async () => {
          const nodes = nodesOf(path).map(([n]) => n);
          const before = nodes.map((n) => n.records.length);
          const stalled = dial(path, w.app.port);
          stalled.on('error', () => undefined);
          stalled.write('ping');
          stalled.pause();
          const s = await nextAppSocket();
          s.on('error', () => undefined);
          const chunk = Buffer.alloc(256 * 1024, 7);
          const flood = (): void => {
            while (!s.destroyed && s.write(chunk));
            if (!s.destroyed) s.once('drain', flood);
          };
          flood();
          await until(
            'the budget is spent',
            () => nodes.some((n) => n.manager.budget?.spent === true),
            10_000,
          );
          // Another connection on the same path keeps its round trips going.
          const c = dial(path, w.app.port);
          const client = observe(c);
          c.write('ping 0 ');
          const s2 = await nextAppSocket();
          s2.on('data', (d: Buffer) => s2.write(d));
          s2.on('end', () => s2.end());
          let expected = 'ping 0 ';
          for (let i = 1; i <= 5; i++) {
            const want = expected;
            await until(`round trip ${i}`, () => client.data.toString() === want, 10_000);
            c.write(`ping ${i} `);
            expected += `ping ${i} `;
          }
          c.end();
          await until('client closed', () => client.closed, 10_000);
          assert.equal(client.data.toString(), expected);
          assert.equal(client.error, undefined);
          stalled.resetAndDestroy();
          await until(
            'two records per node',
            () => nodes.every((n, i) => n.records.length === (before[i] ?? 0) + 2),
            10_000,
          );
          for (const n of nodes) {
            await until('no live connection', () => n.manager.size === 0, 10_000);
            await until('budget released', () => (n.manager.budget?.used ?? 0) === 0, 10_000);
          }
        },
      );
    });
  }

  describe('outbound-hbone, the peer silent (held while the tunnel is set up)', () => {
    it('client RST while held -> one record, client-reset', T, async () => {
      await expectRecords(
        'outbound-hbone',
        { outbound: { outcome: 'reset', reason: 'client-reset', bytesSent: 0 } },
        async () => {
          const c = dial('outbound-hbone', w.app.port, true);
          c.on('error', () => undefined);
          // (resetAndDestroy before 'connect' would wait for it, racing the tunnel's timeout.)
          await new Promise((resolve) => c.once('connect', resolve));
          c.write('a few bytes');
          const n = w.silentSockets.size;
          await until('the dial reached the peer', () => w.silentSockets.size > n);
          c.resetAndDestroy();
        },
        true,
      );
    });

    it('client FIN while held -> the tunnel times out, the client is reset', T, async () => {
      let client: Seen | undefined;
      await expectRecords(
        'outbound-hbone',
        { outbound: { outcome: 'timeout', reason: 'connect-timeout' } },
        async () => {
          const c = dial('outbound-hbone', w.app.port, true);
          client = observe(c);
          c.end('a few bytes');
          await until('client closed', () => client?.closed === true, 10_000);
        },
        true,
      );
      assert.equal(client?.error, 'ECONNRESET');
    });
  });

  describe("model: random interleavings of both peers' actions", () => {
    type Action =
      'c-write' | 'c-fin' | 'c-rst' | 'c-pause' | 'c-resume' | 'a-write' | 'a-fin' | 'a-rst';
    const ACTIONS: Action[] = [
      'c-write',
      'c-fin',
      'c-rst',
      'c-pause',
      'c-resume',
      'a-write',
      'a-fin',
      'a-rst',
    ];

    it(
      'one record per node, reset when a peer reset, bytes intact otherwise, nothing left',
      { timeout: 120_000 },
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...PATHS),
            fc.array(fc.constantFrom(...ACTIONS), { maxLength: 8 }),
            async (path, actions) => {
              /** A side reset before its FIN: the proxy reading it must see it. */
              let mustReset = false;
              /** A side reset after its FIN: seen only if the proxy writes to it again (TCP). */
              let mayReset = false;
              let clientWrote = 'hi';
              let appWrote = '';
              await expectRecords(path, {}, async () => {
                const c = dial(path, w.app.port);
                const client = observe(c);
                c.write('hi');
                const s = await nextAppSocket();
                const app = observe(s);
                await until('app got hi', () => app.data.length >= 2, 10_000);
                /** Each end: its socket, what it wrote, whether it sent its FIN. */
                const ends = {
                  c: { socket: c, wrote: 'hi', ended: false },
                  a: { socket: s, wrote: '', ended: false },
                };
                for (const action of actions) {
                  if (c.destroyed || s.destroyed) break;
                  const [who, what] = action.split('-') as ['c' | 'a', string];
                  const end = ends[who];
                  if (what === 'write' && !end.ended) {
                    end.socket.write(who + who);
                    end.wrote += who + who;
                  } else if (what === 'fin') {
                    if (!end.ended) end.socket.end();
                    end.ended = true;
                  } else if (what === 'rst') {
                    if (end.ended) mayReset = true;
                    else mustReset = true;
                    end.socket.resetAndDestroy();
                  } else if (what === 'pause') end.socket.pause();
                  else if (what === 'resume') end.socket.resume();
                  await new Promise((r) => setImmediate(r));
                }
                clientWrote = ends.c.wrote;
                appWrote = ends.a.wrote;
                const cEnded = ends.c.ended;
                const aEnded = ends.a.ended;
                // Whoever is still open finishes gracefully.
                if (!c.destroyed) {
                  c.resume();
                  if (!cEnded) c.end();
                }
                if (!s.destroyed && !aEnded) s.end();
                await until('both ends closed', () => client.closed && app.closed, 10_000);
                if (!mustReset && !mayReset) {
                  assert.equal(app.data.toString(), clientWrote, 'app got every client byte');
                  assert.equal(client.data.toString(), appWrote, 'client got every app byte');
                  assert.equal(client.error, undefined);
                  assert.equal(app.error, undefined);
                }
              });
              for (const [node] of nodesOf(path)) {
                const rec = node.records.at(-1);
                const what = JSON.stringify({ actions, rec });
                if (mustReset) assert.equal(rec?.outcome, 'reset', what);
                else if (mayReset)
                  assert.ok(rec?.outcome === 'reset' || rec?.outcome === 'ok', what);
                else {
                  assert.equal(rec?.outcome, 'ok', what);
                  assert.equal(rec?.bytesSent, clientWrote.length);
                  assert.equal(rec?.bytesReceived, appWrote.length);
                }
              }
            },
          ),
          { numRuns: 40 },
        );
      },
    );
  });
});
