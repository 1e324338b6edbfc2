// The data plane's memory soak (`npm run soak`): does memory the proxy uses
// under load come back, or does something keep it? In one process, with
// --expose-gc, the production PodProxy of an enrolled pod (in this
// process's netns, as the in-process tests run it) takes rounds of load:
// stalled readers (connections that send 4 MiB into its inbound plaintext
// path and never read the echo) and bursts of short echo connections. After
// each round every client is closed and the heap collected; the series of
// heap, external (Buffer) memory, RSS, open descriptors and live handles
// tells a leak (growth round over round after GC) from allocator retention
// (RSS flat at a high-water mark while heap and external memory are back).
//
//   npm run soak [-- --rounds=10 --stalled=200 --short=2000]
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { ID_Y, makeTestPki, startUpstream } from '../test/src/hbone/hbone-fixtures.js';
import { startPodProxy } from '../test/daemon/proxy/pod-proxy-fixtures.js';

const arg = (name: string, dflt: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? dflt : Number(hit.slice(name.length + 3));
};
const ROUNDS = arg('rounds', 10);
const STALLED = arg('stalled', 200);
const SHORT = arg('short', 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc (npm run soak does)');
  process.exit(2);
}
const MiB = 2 ** 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const handles = (): number =>
  (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
const sample = (): Record<string, number> => {
  const m = process.memoryUsage();
  return {
    rssMb: Math.round(m.rss / MiB),
    heapMb: Math.round(m.heapUsed / MiB),
    externalMb: Math.round(m.external / MiB),
    fds: readdirSync('/proc/self/fd').length,
    handles: handles(),
  };
};

const pki = await makeTestPki();
const app = await startUpstream((s) => s.pipe(s));
const node = await startPodProxy({
  pki,
  svids: new Map([[ID_Y, await pki.svid('b', 'y')]]),
  ip: '127.0.0.1',
  namespace: 'b',
  serviceAccount: 'y',
  workloads: [{ ip: '127.0.0.1', namespace: 'b', serviceAccount: 'y', enrolled: true }],
  peerHbonePort: 1,
  relayBufferBytes: 128 * MiB,
});
node.destination = { address: '127.0.0.1', port: app.port };
const dial = (): net.Socket => {
  const c = net.connect({ host: '127.0.0.1', port: node.plaintextPort, localAddress: '127.0.0.5' });
  c.on('error', () => undefined);
  return c;
};
const shortExchange = (): Promise<void> =>
  new Promise((resolve) => {
    const c = dial();
    c.on('data', () => undefined);
    c.once('close', () => resolve());
    c.end(Buffer.alloc(1024, 0x62));
  });

gc();
await sleep(200);
gc();
const baseline = sample();
console.log(`baseline ${JSON.stringify(baseline)}`);
const rows: string[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const payload = Buffer.alloc(4 * MiB, 0x61);
  const stalled: net.Socket[] = [];
  for (let i = 0; i < STALLED; i++) {
    const c = dial();
    c.pause();
    c.write(payload);
    stalled.push(c);
  }
  for (let done = 0; done < SHORT; done += 50)
    await Promise.all(Array.from({ length: 50 }, shortExchange));
  const loaded = sample();
  for (const c of stalled) c.destroy();
  const deadline = Date.now() + 30_000;
  while (node.manager.size > 0 && Date.now() < deadline) await sleep(50);
  // The test fixture keeps every record; the daemon logs and drops them.
  node.records.length = 0;
  gc();
  await sleep(200);
  gc();
  const after = sample();
  const row = `| ${round} | ${loaded.rssMb} | ${after.rssMb} | ${after.heapMb} | ${after.externalMb} | ${after.fds} | ${after.handles} | ${node.manager.size} |`;
  rows.push(row);
  console.error(row);
}
await node.close();
await app.close();
console.log(
  [
    `soak: ${ROUNDS} rounds of ${STALLED} stalled readers (4 MiB each) + ${SHORT} short echo connections, node ${process.version}`,
    `baseline after GC: RSS ${baseline.rssMb} MB, heap ${baseline.heapMb} MB, external ${baseline.externalMb} MB, ${baseline.fds} fds, ${baseline.handles} handles`,
    '',
    '| round | RSS loaded MB | RSS after GC MB | heap after GC MB | external after GC MB | fds | handles | live connections |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n'),
);
