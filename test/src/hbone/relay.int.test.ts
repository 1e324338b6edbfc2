// The relay and the held-inline rule on loopback TCP.
import assert from 'node:assert/strict';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { proxyOverTunnel } from '../../../src/hbone/held-inline.js';
import { HboneError } from '../../../src/hbone/hbone-error.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import { relay } from '../../../src/hbone/relay.js';
import type { X509Svid } from '../../../src/identity/x509-svid.js';
import {
  connectTcp,
  echo,
  eventually,
  makeTestPki,
  readAll,
  startHbone,
  startUpstream,
  tunnelRequest,
  type RunningHbone,
  type TestPki,
  type Upstream,
} from './hbone-fixtures.js';

const T = { timeout: 20_000 };
const toClose: { close(): Promise<void> }[] = [];

/** A proxy on 127.0.0.1 handing each accepted socket to `onAccept`; returns its port. */
async function startFront(onAccept: (s: net.Socket) => void): Promise<number> {
  const up = await startUpstream(onAccept);
  toClose.push(up);
  return up.port;
}

after(async () => {
  for (const c of toClose.reverse()) await c.close();
});

describe('relay', () => {
  it('copies both ways, propagates half-close, and reports ok', T, async () => {
    let result: Promise<Awaited<ReturnType<typeof relay>>> | undefined;
    const up = await startUpstream((s) => {
      s.on('data', () => undefined);
      s.on('end', () => s.end('reply after FIN'));
    });
    toClose.push(up);
    const front = await startFront((s) => {
      void connectTcp('127.0.0.1', up.port).then((u) => (result = relay(s, u)));
    });
    const c = await connectTcp('127.0.0.1', front);
    c.end('12345');
    assert.equal((await readAll(c)).toString(), 'reply after FIN');
    await eventually(() => result !== undefined);
    const r = await result;
    assert.deepEqual({ a: r?.bytesAtoB, b: r?.bytesBtoA, o: r?.outcome }, { a: 5, b: 15, o: 'ok' });
  });

  it('turns a reset on one side into a reset (RST) on the other', T, async () => {
    let result: Promise<Awaited<ReturnType<typeof relay>>> | undefined;
    const up = await startUpstream((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    toClose.push(up);
    const front = await startFront((s) => {
      void connectTcp('127.0.0.1', up.port).then((u) => (result = relay(s, u)));
    });
    const c = await connectTcp('127.0.0.1', front);
    c.write('trigger');
    const err = await new Promise<Error | undefined>((resolve) => {
      c.on('error', resolve);
      c.on('close', () => resolve(undefined));
    });
    assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
    const r = await result;
    assert.equal(r?.outcome, 'reset');
    assert.equal(r?.failedSide, 'b');
  });
});

describe('held inline (proxyOverTunnel)', () => {
  let pki: TestPki;
  let svidX: X509Svid;
  let server: RunningHbone;
  let echoUp: Upstream;

  before(async () => {
    pki = await makeTestPki();
    svidX = await pki.svid('a', 'x');
    const ctxY = pki.context(await pki.svid('b', 'y'));
    server = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    echoUp = await startUpstream(echo);
    toClose.push(server, echoUp);
  });

  it('holds the bytes the app sent before the tunnel answered, then delivers them', T, async () => {
    const pool = new HbonePool();
    toClose.push(pool);
    let release: (() => void) | undefined;
    const front = await startFront((app) => {
      const tunnel = new Promise<Duplex>((resolve, reject) => {
        release = () =>
          pool
            .openTunnel(tunnelRequest(pki, pki.context(svidX), server.port, echoUp.port))
            .then(resolve, reject);
      });
      void proxyOverTunnel(app, tunnel);
    });
    const c = await connectTcp('127.0.0.1', front);
    c.write('early bytes ');
    await eventually(() => release !== undefined);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(echoUp.accepted, 0, 'nothing reached the upstream before the tunnel');
    release?.();
    c.end('then more');
    assert.equal((await readAll(c)).toString(), 'early bytes then more');
  });

  it('resets the app when the tunnel fails, and no byte leaves', T, async () => {
    let upstreamBytes = 0;
    const guarded = await startUpstream((s) =>
      s.on('data', (d: Buffer) => (upstreamBytes += d.length)),
    );
    toClose.push(guarded);
    const pool = new HbonePool();
    toClose.push(pool);
    let outcome: Promise<Awaited<ReturnType<typeof proxyOverTunnel>>> | undefined;
    const front = await startFront((app) => {
      const tunnel = pool.openTunnel(
        tunnelRequest(pki, pki.context(svidX), server.port, guarded.port, {
          destinationIdentity: 'spiffe://cluster.local/ns/b/sa/impostor',
        }),
      );
      outcome = proxyOverTunnel(app, tunnel);
    });
    const c = await connectTcp('127.0.0.1', front);
    c.write('secret that must not leak');
    const err = await new Promise<Error | undefined>((resolve) => {
      c.on('error', resolve);
      c.on('close', () => resolve(undefined));
    });
    assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
    await eventually(() => outcome !== undefined);
    const r = await outcome;
    assert.equal(r?.outcome, 'denied');
    assert.equal(r?.reason, 'peer-identity');
    assert.ok(r?.error instanceof HboneError);
    assert.equal(guarded.accepted, 0);
    assert.equal(upstreamBytes, 0);
    assert.ok(
      !server.records.some((rec) => rec.destination.port === guarded.port),
      'no CONNECT was sent for the failed tunnel',
    );
  });
});
