// The cluster-scale benchmark (`npm run bench:scale`): what a daemon pays
// to keep the whole cluster in discovery. A generated cluster (10,000 pods,
// 2,000 Services with EndpointSlices, 500 Nodes with pod CIDRs, 100
// namespaces half enrolled, 150 policies: src/sim/scale-cluster.ts) is
// served to the daemon's discovery side (bench/lib/scale-daemon.ts: the
// discovery source, the ProxyService's DestinationView and the PolicyView,
// in a process of its own, bundled as meshlessd is) from a file and from a Kubernetes API server
// (the test double test/support/fake-kube-apiserver.ts, in this process).
// It reports, per source:
//   - the daemon process's RSS and heap after a full GC, empty cluster vs large;
//   - the time from a change (a pod added, an EndpointSlice changed, a
//     Service added) to decideOutbound resolving the new address, p50/p99;
//   - CPU per change (process.cpuUsage of the daemon process over the
//     changes, divided by their number), one at a time, and for the API
//     source also over a burst of pod additions.
//
//   npm run bench:scale [-- --scale=1 --changes=60 --burst=1000 --sources=file,kubernetes --cpu-prof=DIR]
//
// --scale shrinks the cluster for a quick run (0.1: 1,000 pods). Needs no
// root. Writes bench/results/scale-<date>.md.
import { fork, type ChildProcess } from 'node:child_process';
import { build, type BuildOptions } from 'esbuild';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FakeKubeApiServer,
  writeKubeconfig,
  type Resource,
} from '../test/support/fake-kube-apiserver.js';
import {
  LARGE_CLUSTER,
  generateScaleCluster,
  scaleClusterDocument,
  scaleEndpointSlice,
  scaleNamespaceName,
  scalePod,
  scaleService,
  seededRandom,
  type ScaleCluster,
} from '../src/sim/scale-cluster.js';
import { quantile, round1 } from './lib/proc-stats.js';
import { wallMs, type ScaleDaemonReply, type ScaleDaemonRequest } from './lib/scale-daemon.js';

const arg = (name: string, dflt: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const SCALE = Number(arg('scale', '1'));
const CHANGES = Number(arg('changes', '60'));
const BURST = Number(arg('burst', '1000'));
const SOURCES = arg('sources', 'file,kubernetes').split(',');
/** A directory for the daemon processes' CPU profiles (--cpu-prof); empty: none. */
const CPU_PROF = arg('cpu-prof', '');

type Obj = Record<string, unknown>;
const MB = 1024 * 1024;

/**
 * bench/lib/scale-daemon.ts bundled as meshlessd is (scripts/build.mjs:
 * CommonJS, the Kubernetes client in a file beside it, loaded on first use),
 * so its memory is a built daemon's, not tsx's.
 */
async function bundleDaemon(dir: string): Promise<string> {
  const common: BuildOptions = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    external: ['*.node'],
  };
  await build({
    ...common,
    entryPoints: [join(import.meta.dirname, 'lib', 'scale-daemon.ts')],
    outfile: join(dir, 'scale-daemon.js'),
    plugins: [
      {
        name: 'kube-client-beside',
        setup(b) {
          b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) =>
            args.kind === 'dynamic-import'
              ? { path: './meshless-kube.js', external: true }
              : undefined,
          );
        },
      },
    ],
  });
  await build({
    ...common,
    stdin: {
      contents: "export * from '@kubernetes/client-node';",
      resolveDir: join(import.meta.dirname, '..'),
      loader: 'js',
    },
    outfile: join(dir, 'meshless-kube.js'),
    minify: true,
  });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'commonjs' }));
  return join(dir, 'scale-daemon.js');
}

let daemonBundle = '';

/** A running scale-daemon process. */
class Daemon {
  readonly child: ChildProcess;
  readonly #waiting: ((m: ScaleDaemonReply) => boolean)[] = [];
  syncMs = 0;

  constructor(kind: 'file' | 'kubernetes', path: string) {
    this.child = fork(daemonBundle, [kind, path], {
      execArgv: [
        '--expose-gc',
        '--max-old-space-size=4096',
        ...(CPU_PROF === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`]),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: ScaleDaemonReply) => {
      const i = this.#waiting.findIndex((w) => w(m));
      if (i >= 0) this.#waiting.splice(i, 1);
    });
  }

  #next<T extends ScaleDaemonReply>(match: (m: ScaleDaemonReply) => m is T): Promise<T> {
    return new Promise((resolve) => {
      this.#waiting.push((m) => {
        if (!match(m)) return false;
        resolve(m);
        return true;
      });
    });
  }

  async ready(): Promise<void> {
    const r = await this.#next(
      (m): m is Extract<ScaleDaemonReply, { op: 'ready' }> => m.op === 'ready',
    );
    this.syncMs = r.syncMs;
  }

  #ask(m: ScaleDaemonRequest): void {
    this.child.send(m);
  }

  async mem(): Promise<Extract<ScaleDaemonReply, { op: 'mem' }>> {
    const r = this.#next((m): m is Extract<ScaleDaemonReply, { op: 'mem' }> => m.op === 'mem');
    this.#ask({ op: 'mem' });
    return r;
  }

  /** CPU time of the daemon process so far, microseconds. */
  async cpu(): Promise<number> {
    const r = this.#next((m): m is Extract<ScaleDaemonReply, { op: 'cpu' }> => m.op === 'cpu');
    this.#ask({ op: 'cpu' });
    const c = await r;
    return c.user + c.system;
  }

  /** Arms an expectation; resolves to a promise of the time it is seen. */
  async expect(
    id: number,
    dst: { address: string; port: number },
    target: string,
  ): Promise<{ seen: Promise<number> }> {
    const armed = this.#next(
      (m): m is Extract<ScaleDaemonReply, { op: 'armed' }> => m.op === 'armed' && m.id === id,
    );
    const seen = this.#next(
      (m): m is Extract<ScaleDaemonReply, { op: 'seen' | 'timeout' }> =>
        (m.op === 'seen' || m.op === 'timeout') && m.id === id,
    ).then((m) => {
      if (m.op === 'timeout')
        throw new Error(`change ${id} never seen: ${dst.address} -> ${m.decision}`);
      return m.at;
    });
    this.#ask({ op: 'expect', id, dst, target });
    await armed;
    return { seen };
  }

  async stop(): Promise<void> {
    const exited = once(this.child, 'exit');
    this.child.disconnect();
    await exited;
  }
}

/** One change to the cluster and what the outbound decision must then say. */
interface Change {
  readonly kind: 'pod added' | 'EndpointSlice changed' | 'Service added';
  readonly resource: Resource;
  readonly object: Obj;
  /** Replaces the object of this key (an update), else adds. */
  readonly replaces?: string;
  readonly dst: { readonly address: string; readonly port: number };
  readonly target: string;
}

/** Deterministic changes: pods added on free slots, slices pointed at another pod, Services added. */
function changes(
  cluster: ScaleCluster,
  count: number,
  seed: number,
  kinds: readonly Change['kind'][],
): Change[] {
  const rand = seededRandom(seed);
  const { size } = cluster;
  const podIps: { ip: string }[] = [];
  for (let p = 0; p < size.pods; p++)
    podIps.push({ ip: cluster.podIp(p % size.nodes, Math.floor(p / size.nodes)) });
  const out: Change[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length] ?? 'pod added';
    // Even namespaces are enrolled: new pods go there so the decision is hbone to them.
    const ns = scaleNamespaceName((2 * i) % size.namespaces);
    if (kind === 'pod added') {
      const node = i % size.nodes;
      const slot = cluster.podsPerNode + Math.floor(i / size.nodes) + (seed % 50);
      const ip = cluster.podIp(node, slot);
      out.push({
        kind,
        resource: 'pods',
        object: scalePod({
          namespace: ns,
          name: `added-${seed}-${i}`,
          app: 'added',
          node,
          ip,
          rand,
        }),
        dst: { address: ip, port: 8080 },
        target: ip,
      });
    } else {
      const backend = podIps[Math.floor(rand() * podIps.length)]?.ip ?? '';
      const k = kind === 'Service added' ? size.services + seed * 10_000 + i : i % size.services;
      const svcNs = scaleNamespaceName(k % size.namespaces);
      const svcName =
        kind === 'Service added'
          ? `added-${seed}-${i}`
          : `app-${Math.floor(k / size.namespaces) % Math.max(1, Math.ceil(size.services / size.namespaces))}`;
      const slice = scaleEndpointSlice(
        svcNs,
        svcName,
        [{ name: 'p', ip: backend, node: 0 }],
        kind === 'Service added' ? 'a' : 'a',
      );
      if (kind === 'Service added')
        out.push(
          {
            kind,
            resource: 'services',
            object: scaleService(svcNs, svcName, cluster.clusterIp(k)),
            dst: { address: cluster.clusterIp(k), port: 80 },
            target: backend,
          },
          {
            kind,
            resource: 'endpointslices',
            object: slice,
            dst: { address: cluster.clusterIp(k), port: 80 },
            target: backend,
          },
        );
      else
        out.push({
          kind,
          resource: 'endpointslices',
          object: slice,
          replaces: `${svcNs}/${svcName}-a`,
          dst: { address: cluster.clusterIp(k), port: 80 },
          target: backend,
        });
    }
  }
  return out;
}

/** A change as one step: a Service added is two writes (Service, then its slice), seen after both. */
function steps(list: Change[]): Change[][] {
  const out: Change[][] = [];
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === undefined) continue;
    const next = list[i + 1];
    if (c.kind === 'Service added' && c.resource === 'services' && next) {
      out.push([c, next]);
      i++;
    } else out.push([c]);
  }
  return out;
}

interface SourceResult {
  readonly source: string;
  readonly emptyRssMb: number;
  readonly emptyHeapMb: number;
  readonly largeRssMb: number;
  readonly largeHeapMb: number;
  readonly syncMs: number;
  readonly latency: Record<string, { n: number; p50: number; p99: number }>;
  readonly cpuPerChangeUs: number;
  readonly burst?: { n: number; cpuPerChangeUs: number; allSeenMs: number };
}

function latencyTable(samples: Map<string, number[]>): SourceResult['latency'] {
  const out: SourceResult['latency'] = {};
  for (const [k, xs] of samples)
    out[k] = { n: xs.length, p50: round1(quantile(xs, 0.5)), p99: round1(quantile(xs, 0.99)) };
  return out;
}

/** The file source: the whole List rewritten per change (replaced by rename, as kubectl > file does). */
async function fileSource(cluster: ScaleCluster, dir: string): Promise<SourceResult> {
  const file = join(dir, 'cluster.json');
  const write = (objects: readonly Obj[]): void => {
    writeFileSync(`${file}.tmp`, scaleClusterDocument(objects));
    renameSync(`${file}.tmp`, file);
  };
  write([]);
  const empty = new Daemon('file', file);
  await empty.ready();
  const emptyMem = await empty.mem();
  await empty.stop();
  const objects = [...cluster.objects];
  write(objects);
  const d = new Daemon('file', file);
  await d.ready();
  const largeMem = await d.mem();
  console.log(`file: synced in ${round1(d.syncMs)} ms, RSS ${round1(largeMem.rss / MB)} MB`);
  const index = new Map<string, number>();
  objects.forEach((o, i) => {
    const m = o['metadata'] as { namespace?: string; name: string };
    index.set(`${String(o['kind'])}/${m.namespace ?? ''}/${m.name}`, i);
  });
  const samples = new Map<string, number[]>();
  const cpu0 = await d.cpu();
  let n = 0;
  for (const step of steps(
    changes(cluster, CHANGES, 1, ['pod added', 'EndpointSlice changed', 'Service added']),
  )) {
    const first = step[0];
    if (first === undefined) continue;
    const { seen } = await d.expect(n++, first.dst, first.target);
    for (const c of step) {
      const m = c.object['metadata'] as { namespace?: string; name: string };
      const key = `${String(c.object['kind'])}/${m.namespace ?? ''}/${m.name}`;
      const at = index.get(key);
      if (at !== undefined) objects[at] = c.object;
      else index.set(key, objects.push(c.object) - 1);
    }
    write(objects);
    const t0 = wallMs();
    const t1 = await seen;
    const list = samples.get(first.kind) ?? [];
    list.push(t1 - t0);
    samples.set(first.kind, list);
  }
  const cpu1 = await d.cpu();
  await d.stop();
  return {
    source: 'file',
    emptyRssMb: round1(emptyMem.rss / MB),
    emptyHeapMb: round1(emptyMem.heapUsed / MB),
    largeRssMb: round1(largeMem.rss / MB),
    largeHeapMb: round1(largeMem.heapUsed / MB),
    syncMs: round1(d.syncMs),
    latency: latencyTable(samples),
    cpuPerChangeUs: Math.round((cpu1 - cpu0) / n),
  };
}

const RESOURCE_OF: Readonly<Record<string, Resource>> = {
  Namespace: 'namespaces',
  Pod: 'pods',
  Node: 'nodes',
  Service: 'services',
  EndpointSlice: 'endpointslices',
  NetworkPolicy: 'networkpolicies',
  AuthorizationPolicy: 'authorizationpolicies',
  PeerAuthentication: 'peerauthentications',
};

/** The Kubernetes source: list+watch against the API server double. */
async function kubernetesSource(cluster: ScaleCluster, dir: string): Promise<SourceResult> {
  const token = 'scale-bench';
  const emptyApi = await FakeKubeApiServer.start({ token });
  const empty = new Daemon('kubernetes', writeKubeconfig(dir, emptyApi.url, token));
  await empty.ready();
  const emptyMem = await empty.mem();
  await empty.stop();
  await emptyApi.close();
  const api = await FakeKubeApiServer.start({ token });
  for (const o of cluster.objects) {
    const r = RESOURCE_OF[String(o['kind'])];
    if (r !== undefined) api.put(r, o);
  }
  const d = new Daemon('kubernetes', writeKubeconfig(dir, api.url, token));
  await d.ready();
  const largeMem = await d.mem();
  console.log(`kubernetes: synced in ${round1(d.syncMs)} ms, RSS ${round1(largeMem.rss / MB)} MB`);
  const samples = new Map<string, number[]>();
  // put() replaces an object of the same key (MODIFIED) or adds one (ADDED).
  const apply = (c: Change): number => api.put(c.resource, c.object);

  const cpu0 = await d.cpu();
  let n = 0;
  for (const step of steps(
    changes(cluster, CHANGES, 2, ['pod added', 'EndpointSlice changed', 'Service added']),
  )) {
    const first = step[0];
    if (first === undefined) continue;
    const { seen } = await d.expect(n++, first.dst, first.target);
    const t0 = wallMs();
    for (const c of step) apply(c);
    const t1 = await seen;
    const list = samples.get(first.kind) ?? [];
    list.push(t1 - t0);
    samples.set(first.kind, list);
  }
  const cpu1 = await d.cpu();
  // A burst: BURST pods added back to back; seen when the last one is.
  const burst = changes(cluster, BURST, 3, ['pod added']);
  const last = burst[burst.length - 1];
  let burstResult: SourceResult['burst'];
  if (last !== undefined) {
    const { seen } = await d.expect(n++, last.dst, last.target);
    const b0 = await d.cpu();
    const t0 = wallMs();
    for (const c of burst) apply(c);
    const t1 = await seen;
    const b1 = await d.cpu();
    burstResult = {
      n: burst.length,
      cpuPerChangeUs: Math.round((b1 - b0) / burst.length),
      allSeenMs: round1(t1 - t0),
    };
  }
  await d.stop();
  await api.close();
  return {
    source: 'kubernetes',
    emptyRssMb: round1(emptyMem.rss / MB),
    emptyHeapMb: round1(emptyMem.heapUsed / MB),
    largeRssMb: round1(largeMem.rss / MB),
    largeHeapMb: round1(largeMem.heapUsed / MB),
    syncMs: round1(d.syncMs),
    latency: latencyTable(samples),
    cpuPerChangeUs: Math.round((cpu1 - cpu0) / n),
    ...(burstResult === undefined ? {} : { burst: burstResult }),
  };
}

function render(results: readonly SourceResult[], cluster: ScaleCluster): string {
  const s = cluster.size;
  const lines = [
    `# Cluster scale, ${new Date().toISOString()}`,
    '',
    `Cluster: ${s.pods} pods, ${s.services} Services (one EndpointSlice each), ${s.nodes} nodes, ${s.namespaces} namespaces (half enrolled), ${s.policies * 3} policies. ` +
      `${CHANGES} changes per source (pod added / EndpointSlice changed / Service added in turn). Node ${process.version}, ${process.arch}.`,
    '',
    '| source | RSS empty MB | RSS large MB | heap empty MB | heap large MB | initial sync ms | CPU per change us |',
    '|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.source} | ${r.emptyRssMb} | ${r.largeRssMb} | ${r.emptyHeapMb} | ${r.largeHeapMb} | ${r.syncMs} | ${r.cpuPerChangeUs} |`,
    ),
    '',
    'Change to decision (decideOutbound resolves the new address), ms:',
    '',
    '| source | change | n | p50 | p99 |',
    '|---|---|---|---|---|',
    ...results.flatMap((r) =>
      Object.entries(r.latency).map(
        ([k, v]) => `| ${r.source} | ${k} | ${v.n} | ${v.p50} | ${v.p99} |`,
      ),
    ),
    '',
    ...results.flatMap((r) =>
      r.burst === undefined
        ? []
        : [
            `Burst (${r.source}): ${r.burst.n} pods added back to back, all seen after ${r.burst.allSeenMs} ms, ${r.burst.cpuPerChangeUs} us CPU per change.`,
            '',
          ],
    ),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const size = {
    nodes: Math.max(2, Math.round(LARGE_CLUSTER.nodes * SCALE)),
    namespaces: Math.max(2, Math.round(LARGE_CLUSTER.namespaces * SCALE)),
    pods: Math.max(4, Math.round(LARGE_CLUSTER.pods * SCALE)),
    services: Math.max(2, Math.round(LARGE_CLUSTER.services * SCALE)),
    policies: Math.max(1, Math.round(LARGE_CLUSTER.policies * SCALE)),
  };
  const cluster = generateScaleCluster(size);
  const dir = mkdtempSync(join(tmpdir(), 'meshless-scale-'));
  const results: SourceResult[] = [];
  try {
    mkdirSync(join(dir, 'daemon'));
    daemonBundle = await bundleDaemon(join(dir, 'daemon'));
    if (SOURCES.includes('file')) results.push(await fileSource(cluster, dir));
    if (SOURCES.includes('kubernetes')) results.push(await kubernetesSource(cluster, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const md = render(results, cluster);
  console.log(md);
  const out = join(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/:\d\d\.\d+Z$/, 'Z')
    .replace(':', '');
  writeFileSync(join(out, `scale-${stamp}.md`), md + '\n');
}

await main();
