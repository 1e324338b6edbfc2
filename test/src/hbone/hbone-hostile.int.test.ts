// Hostile peers against the HBONE server, in-process on loopback. Each
// attack must get the right rejection, a counted reason in stats(), a
// bounded cost (CPU and memory of this process, which holds both the
// attacker and the server, so the bounds are generous: they catch hangs and
// leaks, not slowness) and must not stop a legitimate tunnel opened during it.
// (TLS 1.2, no client certificate, another CA, another trust domain,
// non-CONNECT and another IP are in hbone.int.test.ts.)
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import type net from 'node:net';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { generateP256Key, privateKeyPem } from '../../../src/identity/keys.js';
import { x509 } from '../identity/pkix.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import { makeLeaf, pemOf } from '../identity/pki-fixtures.js';
import {
  TD,
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
import { connectRawH2, headersFrame, pingFrame, rstFrame, settingsFrame } from './raw-h2.js';

const T = { timeout: 60_000 };
/** CPU an attack may cost (attacker and server together): a hang or a loop blows it. */
const CPU_BOUND_MS = 8_000;
/** Heap an attack may leave behind after a GC-friendly pause. */
const HEAP_BOUND_BYTES = 64 * 1024 * 1024;

let pki: TestPki;
let ctxX: tls.SecureContext;
let ctxY: tls.SecureContext;
let svidX: { chainPem: string; privateKeyPem: string };
let up: Upstream;
const toClose: { close(): Promise<void> }[] = [];

before(async () => {
  pki = await makeTestPki();
  const x = await pki.svid('a', 'x');
  svidX = x;
  ctxX = pki.context(x);
  ctxY = pki.context(await pki.svid('b', 'y'));
  up = await startUpstream(echo);
  toClose.push(up);
});

after(async () => {
  for (const c of toClose.reverse()) await c.close();
});

async function server(opts: { handshakeTimeoutMs?: number } = {}): Promise<RunningHbone> {
  const s = await startHbone({
    secureContext: () => ctxY,
    trustBundle: () => pki.bundle,
    sessionIdleTimeoutMs: 1000,
    ...opts,
  });
  toClose.push(s);
  return s;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A legitimate tunnel through `srv` carries bytes. */
async function legitimateTunnel(srv: RunningHbone): Promise<void> {
  const pool = new HbonePool({ connectTimeoutMs: 10_000 });
  try {
    const tunnel = await pool.openTunnel(tunnelRequest(pki, ctxX, srv.port, up.port));
    tunnel.end('still served');
    assert.equal((await readAll(tunnel)).toString(), 'still served');
  } finally {
    await pool.close();
  }
}

/**
 * Runs `attack` and, while it runs, a legitimate tunnel; returns the CPU the
 * process spent. Asserts the cost bounds and that the fds come back.
 */
async function underAttack(srv: RunningHbone, attack: () => Promise<void>): Promise<void> {
  const fds = openFds();
  const heap = process.memoryUsage().heapUsed;
  const cpu = process.cpuUsage();
  const running = attack();
  await legitimateTunnel(srv);
  await running;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  assert.ok(cpuMs < CPU_BOUND_MS, `the attack cost ${cpuMs} ms of CPU`);
  await eventually(() => srv.hbone.stats().connections === 0, 10_000, 'server connections closed');
  await eventually(() => openFds() <= fds + 2, 10_000, `fds back to ${fds} (now ${openFds()})`);
  await new Promise((r) => setTimeout(r, 50));
  const grown = process.memoryUsage().heapUsed - heap;
  assert.ok(grown < HEAP_BOUND_BYTES, `heap grew by ${grown} bytes`);
}

/** Opens `n` raw TCP connections to `port`, runs `each`, and waits until all closed. */
async function rawStorm(
  port: number,
  n: number,
  each: (s: net.Socket) => void,
  closeWithin = 15_000,
): Promise<void> {
  const closed: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connectTcp('127.0.0.1', port);
    s.allowHalfOpen = false;
    s.on('error', () => undefined);
    closed.push(new Promise((r) => s.once('close', () => r())));
    each(s);
  }
  const all = Promise.all(closed).then(() => true);
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), closeWithin).unref());
  assert.ok(await Promise.race([all, timeout]), 'the server closed every hostile connection');
}

describe('HBONE server: hostile handshakes', () => {
  it('non-TLS bytes: 300 connections, each closed and counted', T, async () => {
    const srv = await server();
    await underAttack(srv, () =>
      rawStorm(srv.port, 300, (s, i = Math.random()) =>
        s.write(i < 0.5 ? 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' : Buffer.alloc(64, 0x16)),
      ),
    );
    assert.equal(srv.hbone.stats().rejectedHandshakes['tls-handshake'], 300);
    assert.equal(srv.hbone.stats().handshakes, 1, 'only the legitimate one');
  });

  it(
    'slowloris: silent and trickling connections are cut at the handshake deadline',
    T,
    async () => {
      const srv = await server({ handshakeTimeoutMs: 500 });
      const timers: NodeJS.Timeout[] = [];
      await underAttack(srv, () =>
        rawStorm(srv.port, 100, (s) => {
          if (s.localPort !== undefined && s.localPort % 2 === 0) return; // silent
          // One byte of a TLS record header every 100 ms: never a whole ClientHello.
          let n = 0;
          const t = setInterval(() => {
            if (s.destroyed || n >= 4) return;
            s.write(Buffer.from([[0x16, 0x03, 0x01, 0x40][n++] ?? 0]));
          }, 100);
          timers.push(t);
          s.once('close', () => clearInterval(t));
        }),
      );
      for (const t of timers) clearInterval(t);
      assert.equal(srv.hbone.stats().rejectedHandshakes['handshake-timeout'], 100);
    },
  );

  const badLeaves: {
    name: string;
    reason: string;
    spec: (now: number) => Parameters<typeof makeLeaf>[1];
  }[] = [
    {
      name: 'a leaf with two URI SANs',
      reason: 'multiple_uri_sans',
      spec: () => ({
        uris: [`spiffe://${TD}/ns/a/sa/x`, `spiffe://${TD}/ns/kube-system/sa/admin`],
      }),
    },
    {
      name: 'an expired leaf',
      reason: 'expired',
      spec: (now) => ({
        uris: [`spiffe://${TD}/ns/a/sa/x`],
        notBefore: now - 7_200_000,
        notAfter: now - 60_000,
      }),
    },
    {
      name: 'a CA certificate as leaf',
      reason: 'ca_leaf',
      spec: () => ({
        uris: [`spiffe://${TD}/ns/a/sa/x`],
        ca: true,
        keyUsage: x509.KeyUsageFlags.digitalSignature,
      }),
    },
  ];
  for (const c of badLeaves)
    it(`${c.name}: refused (${c.reason}), nothing delivered`, T, async () => {
      const srv = await server();
      const key = generateP256Key();
      const now = Date.now();
      const leaf = await makeLeaf(pki.nodeCa, {
        notBefore: now - 60_000,
        notAfter: now + 3_600_000,
        ...c.spec(now),
        key,
      });
      const before = up.accepted;
      const attempt = connectRawH2(
        await connectTcp('127.0.0.1', srv.port),
        pemOf(leaf) + pemOf(pki.nodeCa.certificate.raw),
        privateKeyPem(key.privateKey),
      ).then(
        async (raw) => {
          raw.write(
            headersFrame(1, [
              [':method', 'CONNECT'],
              [':authority', `127.0.0.1:${up.port}`],
            ]),
          );
          return raw.closed(5000);
        },
        () => true,
      );
      assert.equal(await attempt, true, 'the server closed the connection');
      await eventually(() => srv.hbone.stats().rejectedHandshakes[c.reason as 'expired'] === 1);
      assert.equal(srv.hbone.stats().handshakes, 0);
      assert.equal(up.accepted, before, 'nothing delivered upstream');
    });
});

describe('HBONE server: hostile requests', () => {
  const cases: { name: string; authority: (port: number) => string; problem: string }[] = [
    {
      name: 'the outbound capture port 15001',
      authority: () => '127.0.0.1:15001',
      problem: 'forbidden-port',
    },
    {
      name: 'the inbound plaintext port 15006',
      authority: () => '127.0.0.1:15006',
      problem: 'forbidden-port',
    },
    { name: 'the HBONE port 15008', authority: () => '127.0.0.1:15008', problem: 'forbidden-port' },
    { name: 'another IP', authority: (p) => `10.1.2.3:${p}`, problem: 'not-local-address' },
    { name: 'a host name', authority: (p) => `localhost:${p}`, problem: 'bad-authority' },
    { name: 'port 0', authority: () => '127.0.0.1:0', problem: 'bad-authority' },
  ];
  for (const c of cases)
    it(`a CONNECT to ${c.name}: 400, counted as ${c.problem}, nothing dialled`, T, async () => {
      const srv = await server();
      const before = up.accepted;
      const raw = await connectRawH2(
        await connectTcp('127.0.0.1', srv.port),
        svidX.chainPem,
        svidX.privateKeyPem,
      );
      raw.write(
        headersFrame(1, [
          [':method', 'CONNECT'],
          [':authority', c.authority(up.port)],
        ]),
      );
      await eventually(() => srv.hbone.stats().refusedStreams[c.problem as 'forbidden-port'] === 1);
      await eventually(() => (raw.view.frames.get(1) ?? 0) === 1, 3000, 'a response');
      assert.equal(up.accepted, before);
      raw.socket.destroy();
    });

  it(
    'invalid pseudo-headers: streams reset; a flood of them cuts the session (counted)',
    T,
    async () => {
      const srv = await server();
      await underAttack(srv, async () => {
        const raw = await connectRawH2(
          await connectTcp('127.0.0.1', srv.port),
          svidX.chainPem,
          svidX.privateKeyPem,
        );
        for (let i = 0; i < 1000 && !raw.view.closed; i++)
          raw.write(
            headersFrame(1 + 2 * i, [
              [':method', 'CONNECT'],
              [':authority', `127.0.0.1:${up.port}`],
              [':evil', 'x'],
            ]),
          );
        assert.equal(await raw.closed(10_000), true, 'session cut');
      });
      assert.equal(srv.hbone.stats().sessionErrors['protocol-error'], 1);
      assert.equal(srv.hbone.stats().streams, 0);
    },
  );

  it(
    'a header list beyond 64 KiB: the session is cut (COMPRESSION_ERROR), nothing dialled',
    T,
    async () => {
      const srv = await server();
      const before = up.accepted;
      await underAttack(srv, async () => {
        const raw = await connectRawH2(
          await connectTcp('127.0.0.1', srv.port),
          svidX.chainPem,
          svidX.privateKeyPem,
        );
        raw.write(
          headersFrame(1, [
            [':method', 'CONNECT'],
            [':authority', `127.0.0.1:${up.port}`],
            ['x-big', 'a'.repeat(100_000)],
          ]),
        );
        await eventually(() => raw.view.goawayCode !== undefined, 5000, 'GOAWAY');
        assert.equal(raw.view.goawayCode, 9);
        raw.socket.destroy();
      });
      assert.equal(up.accepted, before + 1, 'only the legitimate tunnel');
    },
  );

  it('2000 headers in one request: the stream is refused, nothing dialled', T, async () => {
    const srv = await server();
    const before = up.accepted;
    const raw = await connectRawH2(
      await connectTcp('127.0.0.1', srv.port),
      svidX.chainPem,
      svidX.privateKeyPem,
    );
    const many = Array.from({ length: 2000 }, (_, i) => [`x-h${i}`, 'v'] as const);
    raw.write(
      headersFrame(1, [[':method', 'CONNECT'], [':authority', `127.0.0.1:${up.port}`], ...many]),
    );
    await eventually(
      () => raw.view.resets.size === 1 || raw.view.goawayCode !== undefined,
      5000,
      'refusal',
    );
    assert.equal(up.accepted, before);
    raw.socket.destroy();
  });
});

describe('HBONE server: HTTP/2 floods', () => {
  it(
    'rapid reset: 5000 HEADERS+RST_STREAM pairs dial no upstream and end the session',
    T,
    async () => {
      const srv = await server();
      const before = up.accepted;
      await underAttack(srv, async () => {
        const raw = await connectRawH2(
          await connectTcp('127.0.0.1', srv.port),
          svidX.chainPem,
          svidX.privateKeyPem,
        );
        const connect = (id: number): Buffer =>
          headersFrame(id, [
            [':method', 'CONNECT'],
            [':authority', `127.0.0.1:${up.port}`],
          ]);
        for (let i = 0; i < 5000 && !raw.view.closed; i++)
          raw.write(Buffer.concat([connect(1 + 2 * i), rstFrame(1 + 2 * i)]));
        // Node 20 sends GOAWAY; Node 24's nghttp2 ends the session as a
        // protocol error and the socket closes before a GOAWAY is read.
        await eventually(
          () => raw.view.goawayCode !== undefined || raw.view.closed,
          10_000,
          'GOAWAY or close',
        );
        raw.socket.destroy();
      });
      // Before the fix every reset stream cost an upstream dial (1222 of 5000 here).
      assert.ok(up.accepted - before <= 10, `${up.accepted - before} upstream dials`);
      assert.ok((srv.hbone.stats().refusedStreams.cancelled ?? 0) >= 1);
    },
  );

  it('a SETTINGS flood cuts the session (counted as flood)', T, async () => {
    const srv = await server();
    await underAttack(srv, async () => {
      const raw = await connectRawH2(
        await connectTcp('127.0.0.1', srv.port),
        svidX.chainPem,
        svidX.privateKeyPem,
      );
      for (let i = 0; i < 20_000 && !raw.view.closed; i++) raw.write(settingsFrame([[4, 65_535]]));
      assert.equal(await raw.closed(10_000), true);
    });
    assert.equal(srv.hbone.stats().sessionErrors.flood, 1);
  });

  it('a PING flood costs bounded work and leaves others served', T, async () => {
    const srv = await server();
    await underAttack(srv, async () => {
      const raw = await connectRawH2(
        await connectTcp('127.0.0.1', srv.port),
        svidX.chainPem,
        svidX.privateKeyPem,
      );
      for (let i = 0; i < 20_000 && !raw.view.closed; i++) raw.write(pingFrame(i));
      await raw.closed(2000);
      raw.socket.destroy();
    });
  });

  it(
    'streams beyond maxConcurrentStreams (200), after SETTINGS were acknowledged: the session is cut (counted), at most 200 dials',
    T,
    async () => {
      const silent = await startUpstream(() => undefined);
      toClose.push(silent);
      const srv = await server();
      await underAttack(srv, async () => {
        const raw = await connectRawH2(
          await connectTcp('127.0.0.1', srv.port),
          svidX.chainPem,
          svidX.privateKeyPem,
        );
        for (let i = 0; i < 250; i++)
          raw.write(
            headersFrame(1 + 2 * i, [
              [':method', 'CONNECT'],
              [':authority', `127.0.0.1:${silent.port}`],
            ]),
          );
        assert.equal(await raw.closed(10_000), true, 'session cut');
        raw.socket.destroy();
      });
      assert.ok(silent.accepted <= 200, `${silent.accepted} dials`);
      assert.equal(srv.hbone.stats().sessionErrors['protocol-error'], 1);
      await eventually(() => srv.hbone.stats().streams === 0, 10_000, 'streams closed');
    },
  );
});
