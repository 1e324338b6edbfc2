// Throughput of HBONE tunnels over loopback against a plain TCP relay, in
// one run: client app -> front proxy (15001 role) -> [HBONE | TCP] ->
// [HBONE server (15008 role)] -> sink/source upstream.
//   node --import tsx bench/hbone-loopback.bench.ts [MiB per stream] [--no-coalesce]
// Both directions are measured separately (docs/performance.md: the HTTP/2 receive
// path may be slower than the send path).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { proxyOverTunnel } from '../src/hbone/held-inline.js';
import { HbonePool } from '../src/hbone/pool.js';
import {
  connectTcp,
  makeTestPki,
  startHbone,
  startUpstream,
  tunnelRequest,
} from '../test/src/hbone/hbone-fixtures.js';

const MiB = 1024 * 1024;
const perStream = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 256) * MiB;
const coalesceWrites = !process.argv.includes('--no-coalesce');
const block = randomBytes(MiB);

type Direction = 'up' | 'down';

/** Upstream: 'up' streams sink everything; 'down' streams send `perStream` bytes. */
const upstream = await startUpstream((s) => {
  s.once('data', (first: Buffer) => {
    if (first[0] === 0x64 /* 'd' */) {
      let sent = 0;
      const pump = (): void => {
        while (sent < perStream) {
          sent += block.length;
          if (!s.write(block)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    } else s.on('end', () => s.end());
    s.on('data', () => undefined);
  });
});

async function frontProxy(open: (app: net.Socket) => Promise<Duplex>): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (app) => {
    app.setNoDelay(true);
    void proxyOverTunnel(app, open(app), { coalesceWrites });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

async function runClient(port: number, direction: Direction): Promise<void> {
  const c = await connectTcp('127.0.0.1', port);
  if (direction === 'up') {
    c.write('u');
    let sent = 0;
    while (sent < perStream) {
      sent += block.length;
      if (!c.write(block)) await new Promise((r) => c.once('drain', r));
    }
    c.end();
    c.resume();
    await new Promise((r) => c.once('close', r));
  } else {
    c.end('d');
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    await new Promise((r) => c.once('close', r));
    if (got !== perStream) throw new Error(`received ${got} of ${perStream} bytes`);
  }
}

async function measure(port: number, streams: number, direction: Direction): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: streams }, () => runClient(port, direction)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (streams * perStream * 8) / seconds / 1e9; // Gbit/s
}

const pki = await makeTestPki();
const ctxX = pki.context(await pki.svid('a', 'x'));
const ctxY = pki.context(await pki.svid('b', 'y'));
const hbone = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
const pool = new HbonePool();

// The baseline goes through the same front proxy and relay, minus HBONE.
const plainFront = await frontProxy(async () => connectTcp('127.0.0.1', upstream.port));
const hboneFront = await frontProxy((app) =>
  pool.openTunnel(
    tunnelRequest(pki, ctxX, hbone.port, upstream.port, {
      forwardedFor: { ip: app.remoteAddress ?? '127.0.0.1', port: app.remotePort ?? 0 },
    }),
  ),
);

const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;
console.log(
  `per stream ${perStream / MiB} MiB, coalesceWrites=${coalesceWrites}, node ${process.version}`,
);
// Warm-up: handshakes, JIT.
await measure(portOf(hboneFront), 1, 'up');
await measure(portOf(plainFront), 1, 'up');
for (const streams of [1, 4]) {
  for (const direction of ['up', 'down'] as const) {
    const plain = await measure(portOf(plainFront), streams, direction);
    const tunnel = await measure(portOf(hboneFront), streams, direction);
    console.log(
      `${streams} tunnel(s) ${direction.padEnd(4)}: TCP relay ${plain.toFixed(2)} Gbit/s, ` +
        `HBONE ${tunnel.toFixed(2)} Gbit/s, ratio ${(tunnel / plain).toFixed(2)}`,
    );
  }
}
await pool.close();
await hbone.close();
plainFront.close();
hboneFront.close();
await upstream.close();
