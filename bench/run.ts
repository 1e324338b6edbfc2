// The data-plane benchmark (`npm run bench`): meshless against plain TCP and
// a C/OpenSSL TLS tunnel (stunnel4), side by side, on the two-node netns
// topology of the e2e tests (real CNI chain, one meshlessd per node), with
// independent C clients (ApacheBench, wrk, sockperf, iperf3) beside the
// bench's own (bench/tools/netbench.c).
//
//   npm run bench [-- --quick] [--only=<measurements>] [--reps=N]
//                 [--runtimes=machine,lts] [--workers=1,2] [--idle-wait=S]
//                 [--daemon-node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--no-save]
//
//   --quick       one repetition, shorter runs (a few minutes); idle wait 20 s
//   --only=       any of throughput (iperf3 1 and 4 conn), latency (netbench
//                 ping-pong), sockperf (ping-pong 64 B), connrate (netbench
//                 connect/echo/close), http (ab and wrk against bench/tools/httpd.c,
//                 CPU per connection), memory (daemon RSS idle, peak, idle after),
//                 daemon (CPU at 1000 req/s), cni, identity; default all
//   --reps=N      repetitions (default 3, quick 1); each runs every variant once,
//                 in a rotated order; the report gives medians
//   --runtimes=   the daemons' node: machine (this node), lts (scripts/node-lts.mjs,
//                 fetched into .cache/node-lts/); default machine,lts. The first is
//                 the `meshless` variant the targets judge; the second runs as
//                 meshless-<runtime> on a cluster of its own
//   --workers=    dataPlane.workers values to compare, each as meshless-w<N> on a
//                 cluster of its own (default 1,2; empty to skip); skipped with a
//                 note when the daemon's configuration does not know the key
//   --idle-wait=S seconds after the load before sampling idle RSS (default 60, quick 20)
//
// Needs root, /usr/lib/cni (containernetworking-plugins), iperf3, stunnel4,
// apache2-utils (ab), wrk, sockperf, cc and openssl; missing Debian packages
// are installed with apt-get. Writes bench/results/<date>.{json,md,svg}
// unless --no-save. Not part of `npm test`.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { canRunE2e } from '../src/sim/netns.js';
import { abArgv, parseAb, type HttpLoadFigures } from './lib/ab.js';
import { cniBench, identityBench } from './lib/cni-bench.js';
import { parseBenchFlags, type BenchFlags, type Measurement } from './lib/flags.js';
import { iperf3Argv, parseIperf3 } from './lib/iperf3.js';
import {
  cpuMicrosPer,
  median,
  round1,
  statusMb,
  watchProcesses,
  type ProcessUsage,
  type WatchedProcess,
} from './lib/proc-stats.js';
import { renderMarkdown, renderSvg } from './lib/report.js';
import {
  type BenchResults,
  type CniResult,
  type ConnRateResult,
  type DaemonMemory,
  type DaemonResult,
  type HttpLoadResult,
  type HttpLoadRun,
  type IdentityResult,
  type LatencyResult,
  type LatencyRun,
  type MemoryResult,
  type MeshlessConfig,
  type SockperfResult,
  type SockperfRun,
  type ThroughputResult,
  type ThroughputRun,
  type Variant,
} from './lib/results.js';
import {
  commit,
  compileTools,
  daemonAccepts,
  ensureTools,
  ltsNode,
  machine,
  nodeVersion,
} from './lib/setup.js';
import { parseSockperf, sockperfPingPongArgv } from './lib/sockperf.js';
import { judgeTargets, medianOf } from './lib/targets.js';
import { Testbed } from './lib/testbed.js';
import { runInNs } from './lib/topology.js';
import { wrkArgv, parseWrk } from './lib/wrk.js';

const flags = ((): BenchFlags => {
  try {
    return parseBenchFlags(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  }
})();
const { quick, only, daemonNodeFlags, save, reps: REPS } = flags;
const IPERF_SECONDS = quick ? 2 : 5;
const PINGPONG_COUNT = quick ? 5000 : 20_000;
const CONNRATE_SECONDS = quick ? 2 : 3;
const HTTP_SECONDS = quick ? 2 : 4;
const SOCKPERF_SECONDS = quick ? 2 : 4;
const SOCKPERF_SIZE = 64;
const CONCURRENCY = 4;
const CNI_PODS = quick ? 20 : 100;
const LOAD_RPS = 1000;
const LOAD_SECONDS = quick ? 4 : 10;

const log = (msg: string): void =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const has = (m: Measurement): boolean => only.has(m);

const t0 = performance.now();
if (!canRunE2e()) {
  console.error('npm run bench needs root and /usr/lib/cni (containernetworking-plugins)');
  process.exit(2);
}
if (!existsSync('dist/meshlessd.js')) {
  console.error('run npm run build first (npm run bench does)');
  process.exit(2);
}
ensureTools(log);
const dir = mkdtempSync(join(tmpdir(), 'meshless-bench-'));
const tools = compileTools(dir);
const notes: string[] = [];
let ltsLookup: ReturnType<typeof ltsNode> | undefined;
let testbed: Testbed | undefined;
let exitCode = 0;
const date = new Date()
  .toISOString()
  .replace(/:\d\d\.\d+Z$/, 'Z')
  .replace(':', '');

try {
  const asked = meshlessConfigs();
  const nodeBins = new Map(asked.map((c) => [c.id, binOf(c.runtime)]));
  log(
    `topology in ${dir}${daemonNodeFlags.length ? `, daemon node flags ${daemonNodeFlags.join(' ')}` : ''}`,
  );
  testbed = await Testbed.create({
    dir,
    configs: asked,
    nodeOf: (c) => nodeBins.get(c.id) ?? process.execPath,
    daemonNodeFlags,
    tools,
    log,
  });
  const tb = testbed;
  const configs = tb.configs;
  for (const s of tb.skipped)
    notes.push(`${s.id} skipped: its daemons did not start (${s.reason}).`);
  const variants: Variant[] = ['plain', 'stunnel', ...configs.map((c) => c.id)];
  const allDaemons = configs.flatMap((c) => tb.daemons(c.id).map((d) => ({ variant: c.id, ...d })));
  const primaryDaemons = tb.daemons('meshless');
  await sleep(2000);
  const idleRssMb = primaryDaemons.map((d) => round1(statusMb(d.pid, 'VmRSS')));
  log(`daemons idle RSS ${idleRssMb.join(' / ')} MB`);
  const idleBefore = has('memory') ? await leastRss(allDaemons) : undefined;

  // The worker-count configurations answer one question (what N threads
  // buy in throughput and connection rate): they skip the latency runs.
  const latencyVariants = variants.filter(
    (v) => configs.find((c) => c.id === v)?.workers === undefined,
  );

  /** `vs` in a rotated order per repetition, so no variant always runs first. */
  const rotation = (rep: number, vs: readonly Variant[]): Variant[] =>
    vs.map((_, i) => vs[(i + rep) % vs.length] as Variant);

  /** Runs `argv(route)` in the variant's source pod, watching its proxies. */
  const measure = (
    variant: Variant,
    app: Parameters<Testbed['route']>[1],
    argv: (r: ReturnType<Testbed['route']>) => string[],
  ): { out: string; proxies: ProcessUsage[] } => {
    const r = tb.route(variant, app);
    const stop = watchProcesses(r.proxies);
    const out = runInNs(r.ns, argv(r));
    return { out, proxies: stop() };
  };

  const iperf = (v: Variant, streams: number, reverse: boolean, s: number): ThroughputRun => {
    const { out, proxies } = measure(v, 'iperf', (r) =>
      iperf3Argv(r.host, r.port, streams, s, reverse),
    );
    return { gbps: parseIperf3(out), proxies };
  };

  const pingpong = (v: Variant, size: number, count: number, rate = 0): LatencyRun => {
    const { out, proxies } = measure(v, 'echo', (r) => [
      tools.netbench,
      'pingpong',
      r.host,
      String(r.port),
      String(size),
      String(count),
      String(rate),
    ]);
    const j = JSON.parse(out) as {
      p50: number;
      p99: number;
      p999: number;
      count: number;
      rps: number;
    };
    return { p50: j.p50, p99: j.p99, p999: j.p999, count: j.count, rps: round1(j.rps), proxies };
  };

  /** Every case x variant, `REPS` times, variants rotated; runs grouped by case and variant. */
  const alternate = async <C, R>(
    cases: readonly C[],
    run: (v: Variant, c: C) => R | Promise<R>,
    vs: readonly Variant[] = variants,
  ): Promise<Map<string, R[]>> => {
    const runs = new Map<string, R[]>();
    for (let rep = 0; rep < REPS; rep++)
      for (const [ci, c] of cases.entries())
        for (const v of rotation(rep, vs)) {
          const r = await run(v, c);
          runs.set(`${ci}/${v}`, [...(runs.get(`${ci}/${v}`) ?? []), r]);
        }
    return runs;
  };

  // Warm-up: the first meshless connection opens the pooled HBONE connection.
  for (const v of variants) {
    pingpong(v, 1, 200);
    iperf(v, 1, false, 1);
  }

  const throughput: ThroughputResult[] = [];
  if (has('throughput')) {
    const cases = [
      { streams: 1, reverse: false },
      { streams: CONCURRENCY, reverse: false },
      ...(quick ? [] : [{ streams: 1, reverse: true }]),
    ];
    const runs = await alternate(cases, (v, cs) => {
      const run = iperf(v, cs.streams, cs.reverse, IPERF_SECONDS);
      log(
        `throughput ${v} ${cs.streams} conn${cs.reverse ? ' reverse' : ''}: ${run.gbps} Gbit/s ${fmtProxies(run.proxies)}`,
      );
      return run;
    });
    for (const [ci, cs] of cases.entries())
      for (const v of variants) {
        const rs = runs.get(`${ci}/${v}`) ?? [];
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
  if (has('latency')) {
    const sizes = [1, 1024];
    const runs = await alternate(
      sizes,
      (v, size) => {
        const run = pingpong(v, size, PINGPONG_COUNT);
        log(
          `latency ${v} ${size} B: p50 ${run.p50} p99 ${run.p99} p999 ${run.p999} us ${fmtProxies(run.proxies)}`,
        );
        return run;
      },
      latencyVariants,
    );
    for (const [ci, size] of sizes.entries())
      for (const v of latencyVariants) {
        const rs = runs.get(`${ci}/${v}`) ?? [];
        latency.push({ variant: v, size, runs: rs, median: quantilesOf(rs) });
      }
  }

  const sockperf: SockperfResult[] = [];
  if (has('sockperf')) {
    const runs = await alternate(
      [SOCKPERF_SIZE],
      (v, size): SockperfRun => {
        const { out, proxies } = measure(v, 'sockperf', (r) =>
          sockperfPingPongArgv(r.host, r.port, size, SOCKPERF_SECONDS),
        );
        const run = { ...parseSockperf(out), proxies };
        log(
          `sockperf ${v} ${size} B: p50 ${run.p50} p99 ${run.p99} p999 ${run.p999} us (${run.observations} round trips) ${fmtProxies(proxies)}`,
        );
        return run;
      },
      latencyVariants,
    );
    for (const v of latencyVariants) {
      const rs = runs.get(`0/${v}`) ?? [];
      sockperf.push({ variant: v, size: SOCKPERF_SIZE, runs: rs, median: quantilesOf(rs) });
    }
  }

  const connRate: ConnRateResult[] = [];
  if (has('connrate')) {
    const runs = await alternate([0], async (v) => {
      const { out, proxies } = measure(v, 'echo', (r) => [
        tools.netbench,
        'connrate',
        r.host,
        String(r.port),
        String(CONNRATE_SECONDS),
        String(CONCURRENCY),
      ]);
      const j = JSON.parse(out) as { cps: number; errors: number };
      log(
        `new connections (netbench) ${v}: ${j.cps.toFixed(0)}/s (${j.errors} errors) ${fmtProxies(proxies)}`,
      );
      // Let TIME_WAIT and the daemons' records settle between variants.
      await sleep(500);
      return { cps: round1(j.cps), errors: j.errors, proxies };
    });
    for (const v of variants) {
      const rs = runs.get(`0/${v}`) ?? [];
      connRate.push({ variant: v, runs: rs, medianCps: round1(median(rs.map((r) => r.cps))) });
    }
  }

  const http: HttpLoadResult[] = [];
  if (has('http')) {
    const clients = [
      { tool: 'ab' as const, argv: abArgv, parse: parseAb },
      { tool: 'wrk' as const, argv: wrkArgv, parse: parseWrk },
    ];
    const runs = await alternate(clients, async (v, cl): Promise<HttpLoadRun> => {
      const { out, proxies } = measure(v, 'http', (r) =>
        cl.argv(`http://${r.host}:${r.port}/`, CONCURRENCY, HTTP_SECONDS),
      );
      const f: HttpLoadFigures = cl.parse(out);
      const cpuUsPerConn = cpuMicrosPer(proxies, f.completed - f.failed);
      log(
        `new connections (${cl.tool}) ${v}: ${f.rps.toFixed(0)}/s, ${f.failed} failed, ${Number.isNaN(cpuUsPerConn) ? '' : `${cpuUsPerConn.toFixed(0)} us CPU/conn `}${fmtProxies(proxies)}`,
      );
      await sleep(500);
      return { ...f, proxies, cpuUsPerConn };
    });
    for (const [ci, cl] of clients.entries())
      for (const v of variants) {
        const rs = runs.get(`${ci}/${v}`) ?? [];
        http.push({
          tool: cl.tool,
          variant: v,
          runs: rs,
          medianRps: round1(median(rs.map((r) => r.rps))),
          medianCpuUsPerConn: round1(medianOf(rs, (r) => r.cpuUsPerConn)),
        });
      }
  }

  let load: DaemonResult['load'] = { rps: LOAD_RPS, achievedRps: NaN, proxies: [] };
  const loadRuns: { variant: Variant; proxies: readonly ProcessUsage[] }[] = [];
  if (has('daemon')) {
    const run = pingpong('meshless', 1024, LOAD_RPS * LOAD_SECONDS, LOAD_RPS);
    load = { rps: LOAD_RPS, achievedRps: run.rps, proxies: run.proxies };
    loadRuns.push({ variant: 'meshless', proxies: run.proxies });
    log(`daemons at ${run.rps} req/s of 1 KiB: ${fmtProxies(run.proxies)}`);
  }
  const loadEnded = Date.now();

  let identity: IdentityResult | undefined;
  if (has('identity'))
    try {
      identity = identityBench(quick ? 100 : 300, log);
    } catch (err) {
      exitCode = 1;
      notes.push(`The identity bench failed: ${err instanceof Error ? err.message : String(err)}`);
    }

  let memory: MemoryResult | undefined;
  if (idleBefore) {
    const wait = loadEnded + flags.idleWaitSeconds * 1000 - Date.now();
    log(`waiting ${Math.max(0, Math.round(wait / 1000))} s for the daemons to idle`);
    await sleep(Math.max(0, wait));
    const idleAfter = await leastRss(allDaemons);
    const everyRun = [
      ...throughput.flatMap((t) => t.runs.map((r) => ({ variant: t.variant, proxies: r.proxies }))),
      ...latency.flatMap((t) => t.runs.map((r) => ({ variant: t.variant, proxies: r.proxies }))),
      ...sockperf.flatMap((t) => t.runs.map((r) => ({ variant: t.variant, proxies: r.proxies }))),
      ...connRate.flatMap((t) => t.runs.map((r) => ({ variant: t.variant, proxies: r.proxies }))),
      ...http.flatMap((t) => t.runs.map((r) => ({ variant: t.variant, proxies: r.proxies }))),
      ...loadRuns,
    ];
    const daemons: DaemonMemory[] = allDaemons.map((d, i) => ({
      variant: d.variant,
      name: d.name,
      idleBeforeMb: idleBefore[i] ?? NaN,
      peakMb: Math.max(
        ...everyRun
          .filter((r) => r.variant === d.variant)
          .flatMap((r) => r.proxies.filter((p) => p.name === d.name).map((p) => p.peakRssMb)),
      ),
      idleAfterMb: idleAfter[i] ?? NaN,
    }));
    memory = { idleWaitSeconds: flags.idleWaitSeconds, daemons };
    for (const d of daemons)
      log(
        `RSS ${d.variant} ${d.name}: idle ${d.idleBeforeMb}, peak ${d.peakMb}, ${flags.idleWaitSeconds} s after ${d.idleAfterMb} MB`,
      );
  }

  let daemon: DaemonResult | undefined;
  let cni: CniResult | undefined;
  if (has('daemon') || has('cni')) {
    // The plugin binary's runtime, for the unit ADD is reported in (npm run build fetched it).
    const lts = ltsBin();
    // Last and apart: a failure here loses this section, not the run's figures above.
    try {
      const r = await cniBench(tb.primary, CNI_PODS, primaryDaemons[0]?.pid ?? 0, lts);
      cni = r.cni;
      daemon = { idleRssMb, podsRss: r.podsRss, load };
      log(
        `CNI ADD meshless p50 ${cni.meshlessAdd.p50} p99 ${cni.meshlessAdd.p99} ms, chain p50 ${cni.chainAdd.p50} p99 ${cni.chainAdd.p99} ms; ` +
          `DEL meshless p50 ${cni.meshlessDel.p50} chain p50 ${cni.chainDel.p50} ms; ` +
          `RSS ${r.podsRss.beforeMb} -> ${r.podsRss.afterMb} MB for ${r.podsRss.pods} pods (${r.podsRss.perPodMb} MB/pod)`,
      );
    } catch (err) {
      exitCode = 1;
      log(`CNI bench failed: ${String(err)}`);
      notes.push(
        `The CNI bench failed (${err instanceof Error ? err.message : String(err)}): no CNI or daemon section.`,
      );
    }
  }

  if (daemonNodeFlags.length) await tb.stopDaemons();

  const partial = {
    meta: {
      date,
      quick,
      reps: REPS,
      machine: machine(),
      commit: commit(),
      daemonNodeFlags,
      seconds: Math.round((performance.now() - t0) / 1000),
    },
    meshlessConfigs: configs,
    throughput,
    latency,
    connRate,
    http,
    sockperf,
    ...(memory ? { memory } : {}),
    ...(cni ? { cni } : {}),
    ...(daemon ? { daemon } : {}),
    ...(identity ? { identity } : {}),
    notes,
    targets: [],
  };
  const results: BenchResults = { ...partial, targets: judgeTargets(partial) };
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
  await testbed?.destroy();
  if (process.env['MESHLESS_KEEP_BENCH_DIR'] === '1') log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

/**
 * The meshless configurations of this run: the first runtime with the
 * daemon's default workers (`meshless`), the second runtime beside it, and
 * one per `--workers` value on the first runtime when the daemon knows
 * `dataPlane.workers`.
 */
function meshlessConfigs(): MeshlessConfig[] {
  const runtimes = flags.runtimes.filter((r) => r === 'machine' || ltsBin() !== undefined);
  const [first = 'machine', second] = runtimes;
  const version = (r: 'machine' | 'lts'): string =>
    r === 'machine' ? process.version : nodeVersion(binOf('lts'));
  const out: MeshlessConfig[] = [{ id: 'meshless', runtime: first, nodeVersion: version(first) }];
  if (second) out.push({ id: `meshless-${second}`, runtime: second, nodeVersion: version(second) });
  if (flags.workers.length) {
    const probe = daemonAccepts(dir, {
      nodeName: 'probe',
      discovery: { file: join(dir, 'discovery.json') },
      dataPlane: { workers: flags.workers[0] },
    });
    if (probe.ok)
      for (const w of flags.workers)
        out.push({ id: `meshless-w${w}`, runtime: first, nodeVersion: version(first), workers: w });
    else
      notes.push(
        `--workers=${flags.workers.join(',')} skipped: this daemon's configuration rejects dataPlane.workers (${probe.reason}).`,
      );
  }
  return out;
}

function ltsBin(): string | undefined {
  const r = (ltsLookup ??= ltsNode());
  if ('bin' in r) return r.bin;
  if (!notes.some((n) => n.startsWith('Node LTS')))
    notes.push(`Node LTS runtime skipped: ${r.error}`);
  return undefined;
}

function binOf(runtime: 'machine' | 'lts'): string {
  return runtime === 'lts' ? (ltsBin() ?? process.execPath) : process.execPath;
}

function quantilesOf(
  rs: readonly { p50: number; p99: number; p999: number }[],
): LatencyResult['median'] {
  return {
    p50: round1(median(rs.map((r) => r.p50))),
    p99: round1(median(rs.map((r) => r.p99))),
    p999: round1(median(rs.map((r) => r.p999))),
  };
}

/** Each process's least VmRSS over 3 s of samples, all sampled together, MB. */
async function leastRss(ps: readonly WatchedProcess[]): Promise<number[]> {
  const least = ps.map(() => Infinity);
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    ps.forEach((p, i) => (least[i] = Math.min(least[i] ?? Infinity, statusMb(p.pid, 'VmRSS'))));
    await sleep(250);
  }
  return least.map(round1);
}

function fmtProxies(ps: readonly ProcessUsage[]): string {
  return ps.length
    ? `[${ps.map((p) => `${p.name.split(' (')[0]} ${p.cpuPercent}% ${p.peakRssMb} MB`).join(', ')}]`
    : '';
}
