/**
 * The bench's topology: two-node simulated clusters (netns, real CNI chain,
 * one meshlessd per node) with a source and a destination pod per variant,
 * the servers every client dials in each destination pod (iperf3, the
 * netbench echo server, the C HTTP responder, a sockperf server), and the
 * stunnel pair. The first cluster carries plain, stunnel and the reference
 * meshless configuration; every other meshless configuration (another
 * runtime, a worker count) gets a cluster of its own, so all of them stay
 * up and the variants can alternate within one repetition.
 *
 * Invariant: a route's `proxies` are exactly the processes that carry that
 * variant's bytes (none for plain), so their CPU and memory are the
 * variant's cost.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimCluster, defaultPrefix, type SimPod } from '../../src/sim/sim-cluster.js';
import type { WatchedProcess } from './proc-stats.js';
import type { MeshlessConfig, Variant } from './results.js';
import {
  makeStunnelPki,
  runInNs,
  startInNs,
  waitListening,
  writeStunnelConfig,
  type NsProcess,
} from './topology.js';
import { sockperfServerArgv } from './sockperf.js';

/** The servers in each destination pod. */
export const APPS = {
  iperf: { port: 5201, stunnelLocal: 15201, stunnelRemote: 9201 },
  echo: { port: 7000, stunnelLocal: 17000, stunnelRemote: 9700 },
  http: { port: 8080, stunnelLocal: 18080, stunnelRemote: 9880 },
  sockperf: { port: 11111, stunnelLocal: 11112, stunnelRemote: 9111 },
} as const;
export type App = keyof typeof APPS;

/** Where a client of a variant runs, what it dials, and which proxies carry it. */
export interface Route {
  readonly ns: string;
  readonly host: string;
  readonly port: number;
  readonly proxies: readonly WatchedProcess[];
}

export interface TestbedOptions {
  readonly dir: string;
  readonly configs: readonly MeshlessConfig[];
  /** `node` binary per configuration id. */
  readonly nodeOf: (c: MeshlessConfig) => string;
  readonly daemonNodeFlags: readonly string[];
  readonly tools: { readonly netbench: string; readonly httpd: string };
  readonly log: (msg: string) => void;
}

interface MeshlessSide {
  readonly config: MeshlessConfig;
  readonly cluster: SimCluster;
  readonly daemons: readonly WatchedProcess[];
}

export class Testbed {
  readonly #servers: NsProcess[] = [];
  readonly #clusters: SimCluster[] = [];
  readonly #meshless = new Map<Variant, MeshlessSide>();
  #stunnel: { client: NsProcess; server: NsProcess } | undefined;

  /** The cluster of plain, stunnel and the reference `meshless` variant. */
  get primary(): SimCluster {
    const c = this.#clusters[0];
    if (!c) throw new Error('no cluster');
    return c;
  }

  /** The daemons of a meshless variant, node1 (client side) first. */
  daemons(variant: Variant): readonly WatchedProcess[] {
    return this.#meshless.get(variant)?.daemons ?? [];
  }

  /** Configurations whose cluster did not come up (not the first: its failure is the bench's). */
  readonly skipped: { readonly id: string; readonly reason: string }[] = [];

  /** The configurations that came up, the first one always. */
  get configs(): MeshlessConfig[] {
    return [...this.#meshless.values()].map((m) => m.config);
  }

  static async create(o: TestbedOptions): Promise<Testbed> {
    const t = new Testbed();
    try {
      for (const [i, config] of o.configs.entries()) {
        const clusters = t.#clusters.length;
        try {
          await t.#addCluster(o, config, i);
        } catch (err) {
          if (i === 0) throw err;
          // Another configuration (a worker count, a runtime) may be one
          // this daemon refuses: say so and measure the rest.
          const c = t.#clusters.length > clusters ? t.#clusters.pop() : undefined;
          t.#meshless.delete(config.id);
          await c?.destroy();
          t.skipped.push({ id: config.id, reason: withLogTail(err) });
          o.log(`${config.id} skipped: ${String(err)}`);
        }
      }
      await t.#startStunnel(o.dir);
    } catch (err) {
      await t.destroy();
      throw err;
    }
    return t;
  }

  async #addCluster(o: TestbedOptions, config: MeshlessConfig, index: number): Promise<void> {
    const primary = index === 0;
    const dir = primary ? o.dir : join(o.dir, config.id);
    o.log(
      `cluster for ${config.id}: daemons on node ${config.nodeVersion}${config.workers === undefined ? '' : `, dataPlane.workers ${config.workers}`}`,
    );
    const cluster = await SimCluster.create({
      dir,
      ...(primary ? {} : { prefix: `${defaultPrefix()}c${index}` }),
      nodes: 2,
      namespaces: primary ? { secure: true, plain: false, many: true } : { secure: true },
      // As deployed (deploy/20-configmap.yaml): info, one record per connection.
      daemonConfig: {
        logLevel: 'info',
        ...(config.workers === undefined ? {} : { dataPlane: { workers: config.workers } }),
      },
      daemonNode: o.nodeOf(config),
      ...(o.daemonNodeFlags.length ? { daemonNodeFlags: o.daemonNodeFlags } : {}),
    });
    this.#clusters.push(cluster);
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    const pid = (i: number): number => {
      const p = cluster.nodes[i]?.daemon?.pid;
      if (p === undefined) throw new Error(`${config.id}: no daemon on node${i + 1}`);
      return p;
    };
    const daemons = [
      { name: 'meshlessd node1 (client side)', pid: pid(0) },
      { name: 'meshlessd node2 (server side)', pid: pid(1) },
    ];
    this.#meshless.set(config.id, { config, cluster, daemons });
    const pods = [
      { name: 'src-secure', namespace: 'secure', node: 'node1' },
      { name: 'dst-secure', namespace: 'secure', node: 'node2' },
      ...(primary
        ? [
            { name: 'src-plain', namespace: 'plain', node: 'node1' },
            { name: 'dst-plain', namespace: 'plain', node: 'node2' },
          ]
        : []),
    ];
    await cluster.addPods(pods);
    for (const p of pods.filter((x) => x.name.startsWith('src-')))
      runInNs(cluster.pod(p.name).netns.name, ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    for (const p of pods.filter((x) => x.name.startsWith('dst-')))
      await this.#startServers(o, cluster.pod(p.name), join(dir, `${config.id}-${p.name}`));
  }

  async #startServers(o: TestbedOptions, pod: SimPod, logBase: string): Promise<void> {
    const ns = pod.netns.name;
    const argv: Record<App, string[]> = {
      iperf: ['iperf3', '-s', '-p', String(APPS.iperf.port)],
      echo: [o.tools.netbench, 'serve', String(APPS.echo.port)],
      http: [o.tools.httpd, String(APPS.http.port)],
      sockperf: sockperfServerArgv(APPS.sockperf.port),
    };
    for (const app of Object.keys(APPS) as App[])
      this.#servers.push(startInNs(ns, argv[app], `${logBase}-${app}.log`));
    for (const app of Object.keys(APPS) as App[])
      await waitListening(ns, '127.0.0.1', APPS[app].port);
  }

  async #startStunnel(dir: string): Promise<void> {
    const c = this.primary;
    const pki = makeStunnelPki(dir);
    const apps = Object.keys(APPS) as App[];
    const dst = c.pod('dst-plain');
    const server = startInNs(
      dst.netns.name,
      [
        'stunnel4',
        writeStunnelConfig(
          join(dir, 'stunnel-server.conf'),
          'server',
          pki,
          apps.map((a) => ({
            name: a,
            accept: `0.0.0.0:${APPS[a].stunnelRemote}`,
            connect: `127.0.0.1:${APPS[a].port}`,
          })),
        ),
      ],
      join(dir, 'stunnel-server.log'),
    );
    this.#servers.push(server);
    const src = c.pod('src-plain');
    const client = startInNs(
      src.netns.name,
      [
        'stunnel4',
        writeStunnelConfig(
          join(dir, 'stunnel-client.conf'),
          'client',
          pki,
          apps.map((a) => ({
            name: a,
            accept: `127.0.0.1:${APPS[a].stunnelLocal}`,
            connect: `${ipOf(dst)}:${APPS[a].stunnelRemote}`,
          })),
        ),
      ],
      join(dir, 'stunnel-client.log'),
    );
    this.#servers.push(client);
    this.#stunnel = { client, server };
    for (const a of apps) {
      await waitListening(dst.netns.name, '127.0.0.1', APPS[a].stunnelRemote);
      await waitListening(src.netns.name, '127.0.0.1', APPS[a].stunnelLocal);
    }
  }

  route(variant: Variant, app: App): Route {
    const port = APPS[app].port;
    const c = this.primary;
    if (variant === 'plain')
      return {
        ns: c.pod('src-plain').netns.name,
        host: ipOf(c.pod('dst-plain')),
        port,
        proxies: [],
      };
    if (variant === 'stunnel') {
      const s = this.#stunnel;
      if (!s) throw new Error('no stunnel pair');
      return {
        ns: c.pod('src-plain').netns.name,
        host: '127.0.0.1',
        port: APPS[app].stunnelLocal,
        proxies: [
          { name: 'stunnel client', pid: s.client.pid },
          { name: 'stunnel server', pid: s.server.pid },
        ],
      };
    }
    const m = this.#meshless.get(variant);
    if (!m) throw new Error(`unknown variant ${variant}`);
    return {
      ns: m.cluster.pod('src-secure').netns.name,
      host: ipOf(m.cluster.pod('dst-secure')),
      port,
      proxies: m.daemons,
    };
  }

  /** Stops every daemon cleanly (`--cpu-prof` and friends write on a clean exit only). */
  async stopDaemons(): Promise<void> {
    for (const c of this.#clusters) for (const n of c.nodes) await n.daemon?.stop('SIGTERM');
  }

  async destroy(): Promise<void> {
    for (const s of this.#servers) await s.stop();
    for (const c of this.#clusters) await c.destroy();
  }
}

/** An error's message, with the last line of the log it names (the directory goes at the end). */
function withLogTail(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const log = /see (\S+\.log)/.exec(msg)?.[1];
  if (log === undefined || !existsSync(log)) return msg;
  const last = readFileSync(log, 'utf8').trim().split('\n').pop() ?? '';
  return `${msg}: ${last.slice(0, 300)}`;
}

function ipOf(pod: SimPod): string {
  if (!pod.ip) throw new Error(`${pod.name} has no IP`);
  return pod.ip;
}
