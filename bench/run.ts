// The data-plane benchmark (`npm run bench`): meshless against plain TCP and
// a C/OpenSSL TLS tunnel (stunnel4), side by side, on the two-node netns
// topology of the e2e tests (real CNI chain, one meshlessd per node).
//
//   npm run bench [-- --quick] [--only=throughput,latency,connrate,cni,daemon,identity]
//                 [--daemon-node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--no-save]
//
// Needs root, /usr/lib/cni (containernetworking-plugins), iperf3, stunnel4,
// cc and openssl; missing Debian packages are installed with apt-get.
// Writes bench/results/<date>.{json,md,svg}. Not part of `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execPlugin, type PodAttachment } from '../src/sim/cni-chain.js';
import { Netns, canRunE2e } from '../src/sim/netns.js';
import { SimCluster, podNetnsName, type SimPod } from '../src/sim/sim-cluster.js';
import {
  median,
  quantile,
  round1,
  statusMb,
  watchProcesses,
  type ProcessUsage,
  type WatchedProcess,
} from './lib/proc-stats.js';
import { renderMarkdown, renderSvg } from './lib/report.js';
import {
  VARIANTS,
  type BenchResults,
  type CniResult,
  type ConnRateResult,
  type DaemonResult,
  type IdentityResult,
  type LatencyResult,
  type LatencyRun,
  type Percentiles,
  type ThroughputResult,
  type ThroughputRun,
  type Variant,
} from './lib/results.js';
import {
  makeStunnelPki,
  runInNs,
  startInNs,
  waitListening,
  writeStunnelConfig,
  type NsProcess,
} from './lib/topology.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : '';
};
const quick = flag('quick') !== undefined;
const only = new Set(
  (flag('only') ?? 'throughput,latency,connrate,cni,daemon,identity').split(','),
);
const daemonNodeFlags = (flag('daemon-node-flags') ?? '').split(/\s+/).filter(Boolean);
const save = flag('no-save') === undefined;

const REPS = Number(flag('reps') ?? (quick ? 1 : 3));
const IPERF_SECONDS = quick ? 2 : 5;
const PINGPONG_COUNT = quick ? 5000 : 20_000;
const CONNRATE_SECONDS = quick ? 2 : 3;
const CONNRATE_PARALLEL = 4;
const CNI_PODS = quick ? 20 : 100;
const LOAD_RPS = 1000;
const LOAD_SECONDS = quick ? 4 : 10;

const IPERF_PORT = 5201;
const ECHO_PORT = 7000;
const STUNNEL_IPERF = { local: 15201, remote: 9201 };
const STUNNEL_ECHO = { local: 17000, remote: 9700 };

const log = (msg: string): void =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// ---------------------------------------------------------------- set-up

function ensureTools(): void {
  const need: [string, string][] = [
    ['iperf3', 'iperf3'],
    ['stunnel4', 'stunnel4'],
    ['cc', 'gcc'],
    ['openssl', 'openssl'],
  ];
  const missing = need.filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0);
  if (missing.length === 0) return;
  const pkgs = missing.map(([, pkg]) => pkg);
  log(`installing ${pkgs.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env,
  });
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout}${r.stderr}`)?.[0] ?? '?';
}

function machine(): Record<string, string> {
  const cpu = cpus();
  return {
    cpu: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    node: process.version,
    openssl: version('openssl', ['version'], /OpenSSL [\d.]+\w*/),
    stunnel: version('stunnel', ['-version'], /stunnel [\d.]+/),
    iperf3: version('iperf3', ['--version'], /iperf [\d.]+/),
  };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------- main

const t0 = performance.now();
if (!canRunE2e()) {
  console.error('npm run bench needs root and /usr/lib/cni (containernetworking-plugins)');
  process.exit(2);
}
if (!existsSync('dist/meshlessd.js')) {
  console.error('run npm run build first (npm run bench does)');
  process.exit(2);
}
ensureTools();
const dir = mkdtempSync(join(tmpdir(), 'meshless-bench-'));
const netbench = join(dir, 'netbench');
execFileSync('cc', ['-O2', '-pthread', '-o', netbench, 'bench/tools/netbench.c']);

const servers: NsProcess[] = [];
let cluster: SimCluster | undefined;
let exitCode = 0;
const date = new Date()
  .toISOString()
  .replace(/:\d\d\.\d+Z$/, 'Z')
  .replace(':', '');

try {
  log(
    `topology in ${dir}${daemonNodeFlags.length ? `, daemon node flags ${daemonNodeFlags.join(' ')}` : ''}`,
  );
  cluster = await SimCluster.create({
    dir,
    nodes: 2,
    namespaces: { secure: true, plain: false, many: true },
    // As deployed (deploy/20-configmap.yaml): info, one record per connection.
    daemonConfig: { logLevel: 'info' },
    ...(daemonNodeFlags.length ? { daemonNodeFlags } : {}),
  });
  const c = cluster;
  for (const n of c.nodes) await c.startDaemon(n);
  const daemonPid = (i: number): number => {
    const pid = c.nodes[i]?.daemon?.pid;
    if (pid === undefined) throw new Error(`no daemon on node${i + 1}`);
    return pid;
  };
  const daemons: WatchedProcess[] = [
    { name: 'meshlessd node1 (client side)', pid: daemonPid(0) },
    { name: 'meshlessd node2 (server side)', pid: daemonPid(1) },
  ];
  await new Promise((r) => setTimeout(r, 2000));
  const idleRssMb = daemons.map((d) => round1(statusMb(d.pid, 'VmRSS')));
  log(`daemons idle RSS ${idleRssMb.join(' / ')} MB`);

  await c.addPods([
    { name: 'src-secure', namespace: 'secure', node: 'node1' },
    { name: 'src-plain', namespace: 'plain', node: 'node1' },
    { name: 'dst-secure', namespace: 'secure', node: 'node2' },
    { name: 'dst-plain', namespace: 'plain', node: 'node2' },
  ]);
  const pod = (name: string): SimPod => c.pod(name);
  const ipOf = (name: string): string => {
    const ip = pod(name).ip;
    if (!ip) throw new Error(`${name} has no IP`);
    return ip;
  };
  const ns = (name: string): string => pod(name).netns.name;
  for (const p of ['src-secure', 'src-plain'])
    runInNs(ns(p), ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);

  // Servers: iperf3 and the echo server in both destination pods; the stunnel pair.
  for (const p of ['dst-secure', 'dst-plain']) {
    servers.push(
      startInNs(ns(p), ['iperf3', '-s', '-p', String(IPERF_PORT)], join(dir, `${p}-iperf3.log`)),
    );
    servers.push(
      startInNs(ns(p), [netbench, 'serve', String(ECHO_PORT)], join(dir, `${p}-echo.log`)),
    );
  }
  const pki = makeStunnelPki(dir);
  const stunnelServer = startInNs(
    ns('dst-plain'),
    [
      'stunnel4',
      writeStunnelConfig(join(dir, 'stunnel-server.conf'), 'server', pki, [
        {
          name: 'iperf',
          accept: `0.0.0.0:${STUNNEL_IPERF.remote}`,
          connect: `127.0.0.1:${IPERF_PORT}`,
        },
        {
          name: 'echo',
          accept: `0.0.0.0:${STUNNEL_ECHO.remote}`,
          connect: `127.0.0.1:${ECHO_PORT}`,
        },
      ]),
    ],
    join(dir, 'stunnel-server.log'),
  );
  servers.push(stunnelServer);
  const stunnelClient = startInNs(
    ns('src-plain'),
    [
      'stunnel4',
      writeStunnelConfig(join(dir, 'stunnel-client.conf'), 'client', pki, [
        {
          name: 'iperf',
          accept: `127.0.0.1:${STUNNEL_IPERF.local}`,
          connect: `${ipOf('dst-plain')}:${STUNNEL_IPERF.remote}`,
        },
        {
          name: 'echo',
          accept: `127.0.0.1:${STUNNEL_ECHO.local}`,
          connect: `${ipOf('dst-plain')}:${STUNNEL_ECHO.remote}`,
        },
      ]),
    ],
    join(dir, 'stunnel-client.log'),
  );
  servers.push(stunnelClient);
  for (const p of ['dst-secure', 'dst-plain']) {
    await waitListening(ns(p), '127.0.0.1', IPERF_PORT);
    await waitListening(ns(p), '127.0.0.1', ECHO_PORT);
  }
  await waitListening(ns('dst-plain'), '127.0.0.1', STUNNEL_ECHO.remote);
  await waitListening(ns('src-plain'), '127.0.0.1', STUNNEL_ECHO.local);

  /** Where a client of `variant` runs, what it dials, and which proxies carry it. */
  const route = (variant: Variant, app: 'iperf' | 'echo') => {
    const port = app === 'iperf' ? IPERF_PORT : ECHO_PORT;
    if (variant === 'plain')
      return { ns: ns('src-plain'), host: ipOf('dst-plain'), port, proxies: [] };
    if (variant === 'stunnel')
      return {
        ns: ns('src-plain'),
        host: '127.0.0.1',
        port: app === 'iperf' ? STUNNEL_IPERF.local : STUNNEL_ECHO.local,
        proxies: [
          { name: 'stunnel client', pid: stunnelClient.pid },
          { name: 'stunnel server', pid: stunnelServer.pid },
        ],
      };
    return { ns: ns('src-secure'), host: ipOf('dst-secure'), port, proxies: daemons };
  };

  /** Variants in a rotated order per repetition, so no variant always runs first. */
  const rotation = (rep: number): Variant[] =>
    VARIANTS.map((_, i) => VARIANTS[(i + rep) % VARIANTS.length] as Variant);

  const iperf = (
    variant: Variant,
    streams: number,
    reverse: boolean,
    seconds: number,
  ): ThroughputRun => {
    const r = route(variant, 'iperf');
    const stop = watchProcesses(r.proxies);
    const out = runInNs(r.ns, [
      'iperf3',
      '-c',
      r.host,
      '-p',
      String(r.port),
      '-t',
      String(seconds),
      '-P',
      String(streams),
      '-J',
      '--connect-timeout',
      '5000',
      ...(reverse ? ['-R'] : []),
    ]);
    const proxies = stop();
    const json = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } };
    return {
      gbps: Math.round((json.end?.sum_received?.bits_per_second ?? NaN) / 1e7) / 100,
      proxies,
    };
  };

  const pingpong = (
    variant: Variant,
    size: number,
    count: number,
    rate = 0,
  ): { run: LatencyRun; proxies: ProcessUsage[] } => {
    const r = route(variant, 'echo');
    const stop = watchProcesses(r.proxies);
    const out = runInNs(r.ns, [
      netbench,
      'pingpong',
      r.host,
      String(r.port),
      String(size),
      String(count),
      String(rate),
    ]);
    const proxies = stop();
    const j = JSON.parse(out) as {
      p50: number;
      p99: number;
      p999: number;
      count: number;
      rps: number;
    };
    return {
      run: { p50: j.p50, p99: j.p99, p999: j.p999, count: j.count, rps: round1(j.rps), proxies },
      proxies,
    };
  };

  // Warm-up: the first meshless connection opens the pooled HBONE connection.
  for (const v of VARIANTS) {
    pingpong(v, 1, 200);
    iperf(v, 1, false, 1);
  }

  const throughput: ThroughputResult[] = [];
  if (only.has('throughput')) {
    const cases: { streams: number; reverse: boolean }[] = [
      { streams: 1, reverse: false },
      { streams: 4, reverse: false },
      ...(quick ? [] : [{ streams: 1, reverse: true }]),
    ];
    const runs = new Map<string, ThroughputRun[]>();
    for (let rep = 0; rep < REPS; rep++)
      for (const cs of cases)
        for (const v of rotation(rep)) {
          const run = iperf(v, cs.streams, cs.reverse, IPERF_SECONDS);
          const key = `${v}/${cs.streams}/${cs.reverse}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          log(
            `throughput ${v} ${cs.streams} conn${cs.reverse ? ' reverse' : ''}: ${run.gbps} Gbit/s ${fmtProxies(run.proxies)}`,
          );
        }
    for (const cs of cases)
      for (const v of VARIANTS) {
        const rs = runs.get(`${v}/${cs.streams}/${cs.reverse}`) ?? [];
        throughput.push({
          variant: v,
          streams: cs.streams,
          direction: cs.reverse ? 'reverse' : 'forward',
          runs: rs,
          medianGbps: median(rs.map((r) => r.gbps)),
        });
      }
  }

  const latency: LatencyResult[] = [];
  if (only.has('latency')) {
    const runs = new Map<string, LatencyRun[]>();
    for (let rep = 0; rep < REPS; rep++)
      for (const size of [1, 1024])
        for (const v of rotation(rep)) {
          const { run } = pingpong(v, size, PINGPONG_COUNT);
          runs.set(`${v}/${size}`, [...(runs.get(`${v}/${size}`) ?? []), run]);
          log(
            `latency ${v} ${size} B: p50 ${run.p50} p99 ${run.p99} p999 ${run.p999} us ${fmtProxies(run.proxies)}`,
          );
        }
    for (const size of [1, 1024])
      for (const v of VARIANTS) {
        const rs = runs.get(`${v}/${size}`) ?? [];
        latency.push({
          variant: v,
          size,
          runs: rs,
          median: {
            p50: round1(median(rs.map((r) => r.p50))),
            p99: round1(median(rs.map((r) => r.p99))),
            p999: round1(median(rs.map((r) => r.p999))),
          },
        });
      }
  }

  const connRate: ConnRateResult[] = [];
  if (only.has('connrate')) {
    const runs = new Map<Variant, ConnRateResult['runs'][number][]>();
    for (let rep = 0; rep < REPS; rep++)
      for (const v of rotation(rep)) {
        const r = route(v, 'echo');
        const stop = watchProcesses(r.proxies);
        const out = runInNs(r.ns, [
          netbench,
          'connrate',
          r.host,
          String(r.port),
          String(CONNRATE_SECONDS),
          String(CONNRATE_PARALLEL),
        ]);
        const proxies = stop();
        const j = JSON.parse(out) as { cps: number; errors: number };
        runs.set(v, [...(runs.get(v) ?? []), { cps: round1(j.cps), errors: j.errors, proxies }]);
        log(
          `new connections ${v}: ${j.cps.toFixed(0)}/s (${j.errors} errors) ${fmtProxies(proxies)}`,
        );
        // Let TIME_WAIT and the daemons' records settle between variants.
        await new Promise((res) => setTimeout(res, 500));
      }
    for (const v of VARIANTS) {
      const rs = runs.get(v) ?? [];
      connRate.push({ variant: v, runs: rs, medianCps: round1(median(rs.map((r) => r.cps))) });
    }
  }

  let daemon: DaemonResult | undefined;
  let cni: CniResult | undefined;
  if (only.has('daemon') || only.has('cni')) {
    let load: DaemonResult['load'] = { rps: LOAD_RPS, achievedRps: NaN, proxies: [] };
    if (only.has('daemon')) {
      const { run, proxies } = pingpong('meshless', 1024, LOAD_RPS * LOAD_SECONDS, LOAD_RPS);
      load = { rps: LOAD_RPS, achievedRps: run.rps, proxies };
      log(`daemons at ${run.rps} req/s of 1 KiB: ${fmtProxies(proxies)}`);
    }
    const r = await cniBench(c, CNI_PODS, daemons[0]?.pid ?? 0);
    cni = r.cni;
    daemon = { idleRssMb, podsRss: r.podsRss, load };
    log(
      `CNI ADD meshless p50 ${cni.meshlessAdd.p50} p99 ${cni.meshlessAdd.p99} ms, chain p50 ${cni.chainAdd.p50} p99 ${cni.chainAdd.p99} ms; ` +
        `DEL meshless p50 ${cni.meshlessDel.p50} chain p50 ${cni.chainDel.p50} ms; ` +
        `RSS ${r.podsRss.beforeMb} -> ${r.podsRss.afterMb} MB for ${r.podsRss.pods} pods (${r.podsRss.perPodMb} MB/pod)`,
    );
  }

  let identity: IdentityResult | undefined;
  if (only.has('identity')) identity = identityBench(quick ? 100 : 300);

  if (daemonNodeFlags.length) {
    // --cpu-prof and friends write on a clean exit only.
    for (const n of c.nodes) await n.daemon?.stop('SIGTERM');
  }

  const results: BenchResults = {
    meta: {
      date,
      quick,
      reps: REPS,
      machine: machine(),
      commit: commit(),
      daemonNodeFlags,
      seconds: Math.round((performance.now() - t0) / 1000),
    },
    throughput,
    latency,
    connRate,
    ...(cni ? { cni } : {}),
    ...(daemon ? { daemon } : {}),
    ...(identity ? { identity } : {}),
  };
  const md = renderMarkdown(results);
  console.log(`\n${md}`);
  if (save) {
    mkdirSync('bench/results', { recursive: true });
    const base = join('bench/results', date);
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + '\n');
    writeFileSync(`${base}.md`, md);
    writeFileSync(`${base}.svg`, renderSvg(results));
    log(`wrote ${base}.{json,md,svg}`);
  }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  for (const s of servers) await s.stop();
  await cluster?.destroy();
  if (process.env['MESHLESS_KEEP_BENCH_DIR'] === '1') log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

function fmtProxies(ps: readonly ProcessUsage[]): string {
  return ps.length
    ? `[${ps.map((p) => `${p.name.split(' (')[0]} ${p.cpuPercent}% ${p.peakRssMb} MB`).join(', ')}]`
    : '';
}

function percentiles(xs: readonly number[]): Percentiles {
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
async function cniBench(
  c: SimCluster,
  count: number,
  daemonPid: number,
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
  const ltsNode = ltsNodeBinary();
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
  await c.waitForDiscovery();
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
  await c.waitForDiscovery();
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

/** The Node LTS binary scripts/node-lts.mjs cached (the plugin's runtime), if any. */
function ltsNodeBinary(): string | undefined {
  const dir = join('.cache', 'node-lts');
  if (!existsSync(dir)) return undefined;
  const v = readdirSync(dir).find((d) => /^v\d+\.\d+\.\d+$/.test(d));
  const bin = v === undefined ? undefined : join(dir, v, 'bin', 'node');
  return bin !== undefined && existsSync(bin) ? resolve(bin) : undefined;
}

/** VmRSS averaged over a second (GC makes single samples noisy). */
/**
 * The daemon's resident memory once it has settled: the least of samples
 * over 12 s of quiet. V8's memory reducer collects garbage a few seconds
 * after allocation stops, so this is what the daemon holds, not what the
 * last phase left for the collector (which swung a 100-pod difference by
 * tens of MB between runs).
 */
async function rssSettled(pid: number): Promise<number> {
  let least = Infinity;
  const until = Date.now() + 12_000;
  while (Date.now() < until) {
    least = Math.min(least, statusMb(pid, 'VmRSS'));
    await new Promise((r) => setTimeout(r, 250));
  }
  return round1(least);
}

/** bench/identity.bench.ts in its own process; its figures parsed from the output. */
function identityBench(count: number): IdentityResult {
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
