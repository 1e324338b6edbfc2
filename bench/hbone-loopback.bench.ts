// Throughput of HBONE tunnels over loopback against a plain TCP relay, in
// one run: client app -> the production pod proxy's outbound path (15001)
// -> [HBONE | passthrough] -> [HBONE server (15008 role)] -> sink/source upstream.
//   node --import tsx bench/hbone-loopback.bench.ts [MiB per stream]
// Both directions are measured separately (docs/performance.md: the HTTP/2 receive
// path may be slower than the send path).
import { randomBytes } from 'node:crypto';
import {
  ID_X,
  connectTcp,
  makeTestPki,
  startHbone,
  startUpstream,
} from '../test/src/hbone/hbone-fixtures.js';
import { startPodProxy } from '../test/daemon/proxy/pod-proxy-fixtures.js';

const MiB = 1024 * 1024;
const perStream = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 256) * MiB;
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

async function runClient(port: number, direction: Direction): Promise<void> {
  const c = await connectTcp('127.0.0.3', port);
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
const svidX = await pki.svid('a', 'x');
const ctxY = pki.context(await pki.svid('b', 'y'));
const hbone = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });

/** The source pod's proxy on 127.0.0.3; the destination 127.0.0.1 enrolled or not. */
const front = async (enrolled: boolean) => {
  const node = await startPodProxy({
    pki,
    svids: new Map([[ID_X, svidX]]),
    ip: '127.0.0.3',
    workloads: [
      { ip: '127.0.0.3', namespace: 'a', serviceAccount: 'x', enrolled: true },
      { ip: '127.0.0.1', namespace: 'b', serviceAccount: 'y', enrolled },
    ],
    peerHbonePort: hbone.port,
  });
  node.destination = { address: '127.0.0.1', port: upstream.port };
  return node;
};
// The baseline goes through the same pod proxy and relay, minus HBONE.
const plainFront = await front(false);
const hboneFront = await front(true);

const portOf = (n: { outboundPort: number }): number => n.outboundPort;
console.log(`per stream ${perStream / MiB} MiB, node ${process.version}`);
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
await plainFront.close();
await hboneFront.close();
await hbone.close();
await upstream.close();
