// The relay on loopback TCP. (The held-inline rule is tested on the
// production outbound path: test/daemon/proxy/outbound-held.int.test.ts.)
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { relay } from '../../../src/hbone/relay.js';
import { connectTcp, eventually, readAll, startUpstream } from './hbone-fixtures.js';

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
