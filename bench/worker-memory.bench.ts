// The daemon's RSS by data-plane worker count: one simulated node, 3
// enrolled pods, a daemon per count in turn, RSS 5 s after start (idle).
//   node --import tsx bench/worker-memory.bench.ts [--workers=1,2,4]
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimCluster } from '../src/sim/sim-cluster.js';

const arg = process.argv.find((a) => a.startsWith('--workers='));
const counts = (arg?.split('=')[1] ?? '1,2,4').split(',').map(Number);
const rssMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

for (const workers of counts) {
  const dir = mkdtempSync(join(tmpdir(), 'meshless-wmem-'));
  const cluster = await SimCluster.create({
    dir,
    prefix: `wm${process.pid % 1000}`,
    nodes: 1,
    namespaces: { secure: true },
    daemonConfig: { logLevel: 'info', dataPlane: { workers } },
  });
  try {
    await cluster.startDaemon(cluster.node('node1'));
    await cluster.addPods(
      ['a', 'b', 'c'].map((n) => ({ name: `${n}-secure`, namespace: 'secure', node: 'node1' })),
    );
    await new Promise((r) => setTimeout(r, 5000));
    const pid = cluster.node('node1').daemon?.pid ?? 0;
    console.log(`workers=${workers} idle RSS ${rssMb(pid).toFixed(1)} MB`);
  } finally {
    await cluster.destroy();
  }
}
