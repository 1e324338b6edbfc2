// The victim benchmark (`npm run bench:victim`): can one pod starve the
// node's data plane for the others? On the two-node netns topology of the
// e2e tests (real CNI chain, one meshlessd per node, default limits):
//
//   flood    an enrolled pod on node1 opens FLOOD connections to an enrolled
//            pod's echo port on node2, sends 1 KiB on each and never reads;
//   stalled  a plain (not enrolled) pod on node1 opens STALLED connections
//            into the enrolled pod's echo port on node2 (node2's inbound
//            plaintext path), sends 4 MiB on each and never reads the echo;
//
// while a victim (another enrolled pod on node1) keeps pinging the same
// echo server over mTLS. Reports the victim's round-trip latency (netbench
// pingpong, 1 byte) idle and under each attack, the daemons' peak RSS, and
// the limits that were hit (the daemons' own counters).
//
//   npm run bench:victim [-- --flood=3000 --stalled=200]
//
// Needs root and /usr/lib/cni; not part of `npm test`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectFromNetns } from '../src/netns/socket-in-netns.js';
import { canRunE2e } from '../src/sim/netns.js';
import { SimCluster } from '../src/sim/sim-cluster.js';
import { resetPeakRss, round1, statusMb } from './lib/proc-stats.js';
import { runInNs, startInNs, waitListening, type NsProcess } from './lib/topology.js';

const arg = (name: string, dflt: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? dflt : Number(hit.slice(name.length + 3));
};
const FLOOD = arg('flood', 3000);
const STALLED = arg('stalled', 200);
const ECHO_PORT = 7000;
const PINGS = 2000;
const log = (msg: string): void => console.error(`[victim] ${msg}`);

if (!canRunE2e()) {
  console.error('npm run bench:victim needs root and /usr/lib/cni (containernetworking-plugins)');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'meshless-victim-'));
const netbench = join(dir, 'netbench');
execFileSync('cc', ['-O2', '-pthread', '-o', netbench, 'bench/tools/netbench.c']);

let cluster: SimCluster | undefined;
const servers: NsProcess[] = [];
const attackers: net.Socket[] = [];
try {
  cluster = await SimCluster.create({
    dir,
    nodes: 2,
    namespaces: { secure: true, plain: false },
    daemonConfig: { logLevel: 'warn' },
  });
  const c = cluster;
  for (const n of c.nodes) await c.startDaemon(n);
  await c.addPods([
    { name: 'flooder', namespace: 'secure', node: 'node1' },
    { name: 'victim', namespace: 'secure', node: 'node1' },
    { name: 'stranger', namespace: 'plain', node: 'node1' },
    { name: 'dst', namespace: 'secure', node: 'node2' },
  ]);
  const dst = c.pod('dst');
  const dstIp = dst.ip ?? '';
  servers.push(
    startInNs(dst.netns.name, [netbench, 'serve', String(ECHO_PORT)], join(dir, 'echo.log')),
  );
  await waitListening(dst.netns.name, '127.0.0.1', ECHO_PORT);
  const pids = c.nodes.map((n) => n.daemon?.pid ?? 0);

  const ping = (): { p50: number; p99: number; p999: number; errors?: number } => {
    const out = runInNs(c.pod('victim').netns.name, [
      netbench,
      'pingpong',
      dstIp,
      String(ECHO_PORT),
      '1',
      String(PINGS),
    ]);
    return JSON.parse(out) as { p50: number; p99: number; p999: number };
  };
  const metric = async (nodeIndex: number, name: string): Promise<number> => {
    const node = c.nodes[nodeIndex];
    if (!node) return NaN;
    const s = await connectFromNetns({
      netnsPath: node.netns.path,
      host: '127.0.0.1',
      port: 15020,
    });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.end('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    const text = Buffer.concat(chunks).toString();
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  };
  const rss = (): number[] => pids.map((p) => round1(statusMb(p, 'VmRSS')));
  const peak = (): number[] => pids.map((p) => round1(statusMb(p, 'VmHWM')));

  ping(); // warm-up: the pooled HBONE connection
  const rows: string[] = [];
  const row = (phase: string, lat: { p50: number; p99: number }, extra: string): void => {
    const line = `| ${phase} | ${round1(lat.p50)} | ${round1(lat.p99)} | ${extra} |`;
    rows.push(line);
    log(line);
  };
  await new Promise((r) => setTimeout(r, 1000));
  const idle = rss();
  row('idle', ping(), `RSS ${idle.join(' / ')} MB`);

  /** Opens `n` connections from `pod` to dst's echo, sending `bytes` on each and never reading. */
  const attack = async (
    pod: string,
    n: number,
    bytes: number,
  ): Promise<{ open: number; reset: number }> => {
    const payload = Buffer.alloc(bytes, 0x61);
    let reset = 0;
    const netnsPath = c.pod(pod).netns.path;
    for (let i = 0; i < n; i++) {
      try {
        const s = await connectFromNetns({
          netnsPath,
          host: dstIp,
          port: ECHO_PORT,
          timeoutMs: 5000,
        });
        s.on('error', () => undefined);
        s.once('close', () => reset++);
        s.pause();
        s.write(payload);
        attackers.push(s);
      } catch {
        reset++;
      }
    }
    await new Promise((r) => setTimeout(r, 3000));
    return { open: attackers.filter((s) => !s.destroyed).length, reset };
  };
  const drop = async (): Promise<void> => {
    for (const s of attackers.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 3000));
  };

  for (const p of pids) resetPeakRss(p);
  const flood = await attack('flooder', FLOOD, 1024);
  const floodLat = ping();
  row(
    `flood: ${FLOOD} idle connections from one enrolled pod`,
    floodLat,
    `${flood.open} stayed open, ${flood.reset} reset; limit refusals node1 ${await metric(0, 'meshless_connection_limit_refusals_total')}; peak RSS ${peak().join(' / ')} MB`,
  );
  await drop();

  for (const p of pids) resetPeakRss(p);
  const stalled = await attack('stranger', STALLED, 4 * 1024 * 1024);
  const stalledLat = ping();
  row(
    `stalled readers: ${STALLED} x 4 MiB from a plain pod, echo never read`,
    stalledLat,
    `${stalled.open} open; budget exhausted node2 ${await metric(1, 'meshless_relay_buffer_budget_exhausted_total')}x; peak RSS ${peak().join(' / ')} MB`,
  );
  await drop();
  // What holds node2's memory now: V8's heap, Buffers outside it, or neither (allocator).
  const mb = async (name: string): Promise<number> => round1((await metric(1, name)) / 2 ** 20);
  row(
    'after',
    ping(),
    `RSS ${rss().join(' / ')} MB; node2 heap used ${await mb('meshless_nodejs_heap_size_used_bytes')} of ${await mb('meshless_nodejs_heap_size_total_bytes')} MB, external ${await mb('meshless_nodejs_external_memory_bytes')} MB`,
  );

  console.log(
    [
      `victim round trip (us) and daemons node1 / node2, ${new Date().toISOString()}, node ${process.version}`,
      '',
      '| phase | victim p50 us | victim p99 us | daemons |',
      '| --- | --- | --- | --- |',
      ...rows,
    ].join('\n'),
  );
} finally {
  for (const s of attackers) s.destroy();
  for (const s of servers) await s.stop();
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
}
