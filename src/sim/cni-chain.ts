/**
 * Runs a CNI conflist the way libcni does, for the simulated cluster: each
 * plugin executed with the CNI_* environment and its network config on
 * stdin, ADD in order with prevResult threaded through, DEL in reverse with
 * the cached result, CHECK in order; inside a simulated node's netns.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { defaultBundles } from './bundles.js';

/** Where Debian's containernetworking-plugins package puts the plugins. */
export const DEBIAN_CNI_DIR = '/usr/lib/cni';

/** Where the plugins of a chain are found. */
export interface PluginPaths {
  /** Our plugin bundle; default: `meshless-cni` of {@link defaultBundles}. */
  readonly meshlessPlugin?: string;
  /** The other plugins (CNI_PATH); default {@link DEBIAN_CNI_DIR}. */
  readonly cniDir?: string;
  /**
   * Run each plugin as on a Kubernetes node image without Node.js: in a
   * private mount namespace where every `node` on the plugins' PATH is
   * covered by an empty, non-executable file (a plugin needing node fails
   * as it would there). The launcher checks that no node is left to run.
   */
  readonly withoutNode?: boolean;
}

/** The plugins' PATH, as a runtime sets it. */
const PLUGIN_PATH = '/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin';

/** Shell run by {@link PluginPaths.withoutNode}: hide every node, then exec "$@". */
const HIDE_NODE = [
  'set -e',
  'for d in $(echo "$PATH" | tr : " "); do',
  '  if [ -f "$d/node" ]; then mount --bind /dev/null "$(readlink -f "$d/node")"; fi',
  'done',
  'if command -v node >/dev/null 2>&1; then echo "node is still runnable" >&2; exit 97; fi',
  'exec "$@"',
].join('\n');

/** A network configuration list, as in `/etc/cni/net.d`. */
export interface Conflist {
  readonly cniVersion: string;
  readonly name: string;
  readonly plugins: readonly Record<string, unknown>[];
}

/** What the runtime tells the chain about a pod's interface. */
export interface PodAttachment {
  readonly containerId: string;
  /** Netns path of the pod ('' for a DEL without netns). */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS pairs; the K8S_POD_* keys a kubelet passes. */
  readonly args: Readonly<Record<string, string>>;
}

/** One plugin's execution. */
export interface PluginRun {
  readonly type: string;
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON, when it is. */
  readonly json: Record<string, unknown> | undefined;
}

/** The outcome of running a whole chain. */
export interface ChainOutcome {
  readonly ok: boolean;
  readonly runs: readonly PluginRun[];
  /** The final result (ADD) or the failing plugin's error JSON. */
  readonly output: Record<string, unknown> | undefined;
}

function pluginPath(type: string, paths: PluginPaths): string {
  if (type === 'meshless-cni') return paths.meshlessPlugin ?? defaultBundles().plugin;
  const dir = paths.cniDir ?? DEBIAN_CNI_DIR;
  const p = join(dir, type);
  if (!existsSync(p))
    throw new MeshlessError(
      'MESHLESS_E_SIM',
      `CNI plugin ${type} not found in ${dir} (install containernetworking-plugins)`,
    );
  return p;
}

/** Executes one plugin inside `nodeNetns` (a netns name), bare environment. */
export function execPlugin(
  nodeNetns: string | undefined,
  command: string,
  att: PodAttachment,
  config: Record<string, unknown>,
  paths: PluginPaths = {},
): PluginRun {
  const type = String(config['type']);
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: att.containerId,
    CNI_NETNS: att.netns,
    CNI_IFNAME: att.ifname,
    CNI_ARGS: Object.entries(att.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(';'),
    CNI_PATH: paths.cniDir ?? DEBIAN_CNI_DIR,
    PATH: PLUGIN_PATH,
  };
  const run =
    nodeNetns === undefined
      ? [pluginPath(type, paths)]
      : ['ip', 'netns', 'exec', nodeNetns, pluginPath(type, paths)];
  const argv = paths.withoutNode
    ? ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', HIDE_NODE, 'sh', ...run]
    : run;
  const r = spawnSync(argv[0] ?? '', argv.slice(1), {
    env,
    input: JSON.stringify(config),
    encoding: 'utf8',
    timeout: 30_000,
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout) as Record<string, unknown>);
  } catch {
    json = undefined;
  }
  return { type, status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

/** What libcni injects into each plugin's config. */
function pluginConfig(
  list: Conflist,
  plugin: Record<string, unknown>,
  prev: Record<string, unknown> | undefined,
) {
  return {
    ...plugin,
    name: list.name,
    cniVersion: list.cniVersion,
    ...(prev ? { prevResult: prev } : {}),
  };
}

/** A container runtime's CNI side on one node: ADD, CHECK and DEL of a conflist. */
export class CniRuntime {
  readonly #nodeNetns: string | undefined;
  readonly #paths: PluginPaths;
  /** The cached ADD result per container, as libcni keeps it for DEL/CHECK. */
  readonly #cache = new Map<string, Record<string, unknown>>();

  constructor(nodeNetns: string | undefined, paths: PluginPaths = {}) {
    this.#nodeNetns = nodeNetns;
    this.#paths = paths;
  }

  add(list: Conflist, att: PodAttachment): ChainOutcome {
    let prev: Record<string, unknown> | undefined;
    const runs: PluginRun[] = [];
    for (const plugin of list.plugins) {
      const run = execPlugin(
        this.#nodeNetns,
        'ADD',
        att,
        pluginConfig(list, plugin, prev),
        this.#paths,
      );
      runs.push(run);
      if (run.status !== 0) return { ok: false, runs, output: run.json };
      prev = run.json;
    }
    if (prev) this.#cache.set(att.containerId, prev);
    return { ok: true, runs, output: prev };
  }

  check(list: Conflist, att: PodAttachment): ChainOutcome {
    const prev = this.#cache.get(att.containerId);
    const runs: PluginRun[] = [];
    for (const plugin of list.plugins) {
      const run = execPlugin(
        this.#nodeNetns,
        'CHECK',
        att,
        pluginConfig(list, plugin, prev),
        this.#paths,
      );
      runs.push(run);
      if (run.status !== 0) return { ok: false, runs, output: run.json };
    }
    return { ok: true, runs, output: undefined };
  }

  del(list: Conflist, att: PodAttachment): ChainOutcome {
    const prev = this.#cache.get(att.containerId);
    const runs: PluginRun[] = [];
    let failed: PluginRun | undefined;
    for (const plugin of [...list.plugins].reverse()) {
      const run = execPlugin(
        this.#nodeNetns,
        'DEL',
        att,
        pluginConfig(list, plugin, prev),
        this.#paths,
      );
      runs.push(run);
      failed ??= run.status !== 0 ? run : undefined;
    }
    if (!failed) this.#cache.delete(att.containerId);
    return { ok: failed === undefined, runs, output: failed?.json };
  }

  /** The result the previous plugins produced (what ours must pass through). */
  lastResultBefore(
    list: Conflist,
    att: PodAttachment,
    outcome: ChainOutcome,
  ): Record<string, unknown> | undefined {
    void list;
    void att;
    return outcome.runs.at(-2)?.json;
  }
}

/** A conflist like a node's: bridge + host-local (dual-stack), then meshless-cni. */
export function bridgeConflist(opts: {
  name: string;
  cniVersion: string;
  bridge: string;
  subnet4: string;
  subnet6?: string;
  ipamDataDir: string;
  meshless: Record<string, unknown>;
}): Conflist {
  const ranges: { subnet: string }[][] = [[{ subnet: opts.subnet4 }]];
  if (opts.subnet6) ranges.push([{ subnet: opts.subnet6 }]);
  return {
    cniVersion: opts.cniVersion,
    name: opts.name,
    plugins: [
      {
        type: 'bridge',
        bridge: opts.bridge,
        isGateway: true,
        ipMasq: false,
        ipam: {
          type: 'host-local',
          ranges,
          dataDir: opts.ipamDataDir,
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'meshless-cni', ...opts.meshless },
    ],
  };
}
