/**
 * The measurements of meshless alone: the CNI plugin's ADD and DEL (timed
 * as a runtime runs them) with the daemon's RSS per enrolled pod, and the
 * identity bench (bench/identity.bench.ts, in its own process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { execPlugin, type PodAttachment } from '../../src/sim/cni-chain.js';
import { Netns } from '../../src/sim/netns.js';
import { podNetnsName, type SimCluster, type SimPod } from '../../src/sim/sim-cluster.js';
import { quantile, round1, statusMb } from './proc-stats.js';
import type { CniResult, DaemonResult, IdentityResult, Percentiles } from './results.js';

/**
 * How long the daemons may take to see the enrolled pods: 100 pods at once
 * on a loaded 2-core machine took over the sim's default 10 s.
 */
const DISCOVERY_TIMEOUT_MS = 60_000;

export function percentiles(xs: readonly number[]): Percentiles {
  return {
    p50: round1(quantile(xs, 0.5)),
    p99: round1(quantile(xs, 0.99)),
    max: round1(Math.max(...xs)),
  };
}

/**
 * CNI ADD then DEL of `count` enrolled pods on node1, each plugin timed as a
 * runtime runs it (bare environment, `ip netns exec` into the node); the
 * node1 daemon's RSS before and after enrolling them.
 */
export async function cniBench(
  c: SimCluster,
  count: number,
  daemonPid: number,
  ltsNode: string | undefined,
): Promise<{ cni: CniResult; podsRss: DaemonResult['podsRss'] }> {
  const node = c.node('node1');
  // As installed (no debug log): the plugin's default level.
  const plugins = node.conflist.plugins.map((p) =>
    p['type'] === 'meshless-cni' ? { ...p, logLevel: 'info' } : p,
  );
  const overhead: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    spawnSync('ip', ['netns', 'exec', node.netns.name, '/bin/true'], { env: {} });
    overhead.push(performance.now() - s);
  }
  // The unit ADD is reported in: a bare node start-up, run the same way.
  const nodeStart = (bin: string): Percentiles => {
    const xs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      const r = spawnSync('ip', ['netns', 'exec', node.netns.name, 'env', '-i', bin, '-e', '0'], {
        env: {},
      });
      if (r.status !== 0) throw new Error(`${bin} -e 0 failed: ${String(r.stderr)}`);
      xs.push(performance.now() - s);
    }
    return percentiles(xs);
  };
  const nodeStartResult = {
    node: nodeStart(process.execPath),
    ...(ltsNode ? { lts: nodeStart(ltsNode) } : {}),
  };
  const pods: { pod: SimPod; att: PodAttachment; result?: Record<string, unknown> }[] = [];
  for (let i = 0; i < count; i++) {
    const name = `m${String(i).padStart(3, '0')}`;
    const netns = Netns.create(podNetnsName(c.prefix, name));
    const containerId = `ctr-${c.prefix}-${name}`;
    const att: PodAttachment = {
      containerId,
      netns: netns.path,
      ifname: 'eth0',
      args: {
        IgnoreUnknown: '1',
        K8S_POD_NAMESPACE: 'many',
        K8S_POD_NAME: name,
        K8S_POD_UID: `uid-${name}`,
        K8S_POD_INFRA_CONTAINER_ID: containerId,
      },
    };
    const pod: SimPod = {
      name,
      namespace: 'many',
      serviceAccount: `sa-${name}`,
      node,
      netns,
      ip: undefined,
      attachment: att,
    };
    c.pods.push(pod);
    pods.push({ pod, att });
  }
  c.writeDiscovery();
  await c.waitForDiscovery(DISCOVERY_TIMEOUT_MS);
  const beforeMb = await rssSettled(daemonPid);
  const meshAdd: number[] = [];
  const chainAdd: number[] = [];
  for (const p of pods) {
    let prev: Record<string, unknown> | undefined;
    const start = performance.now();
    for (const plugin of plugins) {
      const config = {
        ...plugin,
        name: node.conflist.name,
        cniVersion: node.conflist.cniVersion,
        ...(prev ? { prevResult: prev } : {}),
      };
      const s = performance.now();
      const run = execPlugin(node.netns.name, 'ADD', p.att, config);
      if (plugin['type'] === 'meshless-cni') meshAdd.push(performance.now() - s);
      if (run.status !== 0)
        throw new Error(`ADD ${p.pod.name} (${run.type}) failed: ${run.stdout} ${run.stderr}`);
      prev = run.json;
    }
    chainAdd.push(performance.now() - start);
    p.result = prev;
    const ips = (prev?.['ips'] ?? []) as { address: string }[];
    p.pod.ip = ips[0]?.address.split('/')[0];
  }
  // Publish the IPs (a real cluster's pods get them in their status).
  c.writeDiscovery();
  await c.waitForDiscovery(DISCOVERY_TIMEOUT_MS);
  const afterMb = await rssSettled(daemonPid);
  const meshDel: number[] = [];
  const chainDel: number[] = [];
  for (const p of pods) {
    const start = performance.now();
    for (const plugin of [...plugins].reverse()) {
      const config = {
        ...plugin,
        name: node.conflist.name,
        cniVersion: node.conflist.cniVersion,
        ...(p.result ? { prevResult: p.result } : {}),
      };
      const s = performance.now();
      const run = execPlugin(node.netns.name, 'DEL', p.att, config);
      if (plugin['type'] === 'meshless-cni') meshDel.push(performance.now() - s);
      if (run.status !== 0)
        throw new Error(`DEL ${p.pod.name} (${run.type}) failed: ${run.stdout} ${run.stderr}`);
    }
    chainDel.push(performance.now() - start);
    p.pod.netns.destroy();
    c.pods.splice(c.pods.indexOf(p.pod), 1);
  }
  c.writeDiscovery();
  return {
    cni: {
      pods: count,
      meshlessAdd: percentiles(meshAdd),
      meshlessDel: percentiles(meshDel),
      chainAdd: percentiles(chainAdd),
      chainDel: percentiles(chainDel),
      netnsExecOverhead: percentiles(overhead),
      nodeStart: nodeStartResult,
    },
    podsRss: {
      pods: count,
      beforeMb,
      afterMb,
      perPodMb: Math.round(((afterMb - beforeMb) / count) * 1000) / 1000,
    },
  };
}

/**
 * The daemon's resident memory once it has settled: the least of samples
 * over 12 s of quiet. V8's memory reducer collects garbage a few seconds
 * after allocation stops, so this is what the daemon holds, not what the
 * last phase left for the collector (which swung a 100-pod difference by
 * tens of MB between runs).
 */
export async function rssSettled(pid: number): Promise<number> {
  let least = Infinity;
  const until = Date.now() + 12_000;
  while (Date.now() < until) {
    least = Math.min(least, statusMb(pid, 'VmRSS'));
    await new Promise((r) => setTimeout(r, 250));
  }
  return round1(least);
}

/** bench/identity.bench.ts in its own process; its figures parsed from the output. */
export function identityBench(count: number, log: (msg: string) => void): IdentityResult {
  log(`identity bench (${count} identities)`);
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', 'bench/identity.bench.ts', String(count)],
    {
      encoding: 'utf8',
    },
  );
  const first =
    /first SVID for a new pod \(acquire\):\s+p50 ([\d.]+) ms, p95 [\d.]+ ms, p99 ([\d.]+) ms/.exec(
      out,
    );
  const rate = /SVIDs issued per second \(acquire\):\s+(\d+) sequential, (\d+) concurrent/.exec(
    out,
  );
  return {
    firstSvidP50Ms: Number(first?.[1]),
    firstSvidP99Ms: Number(first?.[2]),
    issuedPerSecondSequential: Number(rate?.[1]),
    issuedPerSecondConcurrent: Number(rate?.[2]),
    raw: out.trim(),
  };
}
