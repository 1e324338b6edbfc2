/**
 * Bringing the demo up and tearing it down. Up builds a simulated cluster
 * (src/sim) whose daemons and pod servers run detached, in their own
 * session with their output in log files, so they outlive the CLI; the
 * state file names everything it made, written before each thing is made.
 * Down stops those processes (checking each pid's command line first),
 * removes every netns of the demo (their links, bridges and rules go with
 * them) and the demo dir; it is safe to run twice.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { defaultBundles, type Bundles } from '../sim/bundles.js';
import { DEBIAN_CNI_DIR } from '../sim/cni-chain.js';
import { deleteNetns, netnsExists, NETNS_DIR } from '../sim/netns.js';
import { isOurProcess, processCommandLine, spawnDetached, stopProcess } from '../sim/processes.js';
import {
  MAX_PREFIX_LENGTH,
  SimCluster,
  nodeLinkName,
  nodeNetnsName,
  podNetnsName,
} from '../sim/sim-cluster.js';
import {
  STATE_FILE,
  readDemoState,
  writeDemoState,
  type DemoNode,
  type DemoPod,
  type DemoState,
} from './demo-state.js';
import { DEMO_NAMESPACES, DEMO_PODS, DEMO_POLICIES, DEMO_SERVICES, POD_PORT } from './topology.js';

/** A step of a long operation, for progress output. */
export interface DemoProgress {
  /** `start` before the step, `done` after it. */
  readonly phase: 'start' | 'done';
  readonly step: string;
}

/** Options of {@link bringUp}. */
export interface BringUpOptions {
  readonly dir: string;
  readonly prefix: string;
  readonly bundles?: Bundles;
  readonly progress?: (p: DemoProgress) => void;
  /** Per step; default 20 s. */
  readonly timeoutMs?: number;
}

function prereq(message: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_DEMO_PREREQ', message);
}

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/**
 * What the demo needs from this machine: root, Debian's CNI plugins,
 * iproute2, iptables, tcpdump, and the built programs.
 * @throws MeshlessError `MESHLESS_E_DEMO_PREREQ` naming what is missing and how to get it.
 */
export function checkPrerequisites(bundles: Bundles): void {
  if (process.getuid?.() !== 0)
    throw prereq('the demo creates network namespaces and iptables rules: run it as root (sudo)');
  for (const plugin of ['bridge', 'host-local'])
    if (!existsSync(join(DEBIAN_CNI_DIR, plugin)))
      throw prereq(
        `CNI plugin ${join(DEBIAN_CNI_DIR, plugin)} is missing: apt-get install containernetworking-plugins`,
      );
  const tools: [string, string][] = [
    ['ip', 'iproute2'],
    ['iptables-restore', 'iptables'],
    ['tcpdump', 'tcpdump'],
  ];
  const missing = tools.filter(([t]) => !onPath(t));
  if (missing.length > 0)
    throw prereq(
      `${missing.map(([t]) => t).join(', ')} missing: apt-get install ${missing.map(([, p]) => p).join(' ')}`,
    );
  for (const f of [bundles.plugin, bundles.daemon, bundles.cli])
    if (!existsSync(f)) throw prereq(`${f} is missing: run npm run build`);
}

/** The state of a demo about to be built (nothing made yet). Pure. */
export function planDemo(dir: string, prefix: string, now: Date): DemoState {
  const nodes: DemoNode[] = [1, 2].map((i) => ({
    name: `node${i}`,
    netns: nodeNetnsName(prefix, i),
    link: nodeLinkName(prefix, i),
    linkIp: `10.247.0.${i}`,
    podSubnet: `10.248.${i}.0/24`,
    daemonConfig: join(dir, `node${i}`, 'meshlessd.json'),
    daemonLog: join(dir, `node${i}`, 'meshlessd.log'),
    cniSocket: join(dir, `node${i}`, 'state', 'cni.sock'),
  }));
  const pods: DemoPod[] = DEMO_PODS.map((p) => ({
    name: p.name,
    namespace: p.namespace,
    node: p.node,
    serviceAccount: `sa-${p.name}`,
    netns: podNetnsName(prefix, p.name),
    port: POD_PORT,
    serverLog: join(dir, 'pods', `${p.name}.log`),
  }));
  return {
    version: 1,
    dir,
    prefix,
    createdAt: now.toISOString(),
    trustDomain: 'cluster.local',
    discoveryFile: join(dir, 'cluster.yaml'),
    namespaces: { ...DEMO_NAMESPACES },
    nodes,
    pods,
  };
}

/** The command a pod's server runs as (inside the pod netns). */
export function podServerArgv(state: DemoState, pod: DemoPod, bundles: Bundles): string[] {
  return [
    'ip',
    'netns',
    'exec',
    pod.netns,
    process.execPath,
    bundles.cli,
    'demo',
    'serve',
    '--port',
    String(pod.port),
    '--pod',
    pod.name,
    '--namespace',
    pod.namespace,
    '--node',
    pod.node,
    '--state-dir',
    state.dir,
  ];
}

/** The line `demo serve` logs once it listens. */
export const SERVE_READY_LINE = 'listening on';

async function waitForLine(
  file: string,
  line: string,
  alive: () => boolean,
  deadline: number,
): Promise<void> {
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (text.includes(line)) return;
    if (!alive())
      throw new MeshlessError(
        'MESHLESS_E_DEMO_UP',
        `the pod server exited: ${text.trim() || '(no output)'} (${file})`,
      );
    if (Date.now() > deadline)
      throw new MeshlessError('MESHLESS_E_DEMO_UP', `the pod server did not start; see ${file}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function timed<T>(
  progress: BringUpOptions['progress'],
  step: string,
  fn: () => Promise<T>,
): Promise<T> {
  progress?.({ phase: 'start', step });
  const out = await fn();
  progress?.({ phase: 'done', step });
  return out;
}

/**
 * Builds the demo in `dir` and returns its state (also in `<dir>/demo.json`).
 * On failure everything made so far is torn down again.
 * @throws MeshlessError `MESHLESS_E_DEMO_RUNNING` when a demo already lives
 *   in `dir` or under `prefix`; `MESHLESS_E_DEMO_PREREQ`; `MESHLESS_E_DEMO_UP`
 *   or `MESHLESS_E_SIM` when a step fails.
 */
export async function bringUp(options: BringUpOptions): Promise<DemoState> {
  const { dir, prefix, progress } = options;
  if (!new RegExp(`^[a-z0-9]{1,${MAX_PREFIX_LENGTH - 2}}$`).test(prefix))
    throw new MeshlessError(
      'MESHLESS_E_USAGE',
      `demo prefix "${prefix}" must be 1-${MAX_PREFIX_LENGTH - 2} of [a-z0-9]`,
    );
  const bundles = options.bundles ?? defaultBundles();
  checkPrerequisites(bundles);
  if (readDemoState(dir))
    throw new MeshlessError(
      'MESHLESS_E_DEMO_RUNNING',
      `a demo is already running from ${dir}; see meshless demo status, or remove it with meshless demo down`,
    );
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new MeshlessError(
      'MESHLESS_E_DEMO_STATE',
      `${dir} exists and is not a demo dir (no ${STATE_FILE}); choose another --state-dir`,
    );
  const taken = [1, 2].map((i) => nodeNetnsName(prefix, i)).filter(netnsExists);
  if (taken.length > 0)
    throw new MeshlessError(
      'MESHLESS_E_DEMO_RUNNING',
      `network namespace ${taken.join(', ')} exists: another demo uses prefix "${prefix}"; ` +
        'choose another --prefix, or remove it with meshless demo down --prefix',
    );
  const timeoutMs = options.timeoutMs ?? 20_000;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'pods'), { mode: 0o700 });
  const state = planDemo(dir, prefix, new Date());
  await writeDemoState(state);
  try {
    const cluster = await timed(progress, 'creating 2 nodes (netns, veth link, routes)', () =>
      SimCluster.create({
        dir,
        prefix,
        nodes: 2,
        namespaces: state.namespaces,
        bundles,
        detachedDaemons: true,
        daemonConfig: { logLevel: 'info', trustDomain: state.trustDomain },
      }),
    );
    await timed(
      progress,
      'starting the cluster signer (meshless-ca, the only root key holder)',
      async () => {
        const handle = await cluster.startSigner();
        state.signer = {
          address: cluster.signerAddress,
          netns: cluster.nodes[0]?.netns.name ?? '',
          config: handle.configFile,
          log: handle.logFile,
          pid: handle.pid,
        };
        await writeDemoState(state);
      },
    );
    await timed(progress, 'starting meshlessd on each node', async () => {
      for (const node of cluster.nodes) {
        const handle = await cluster.startDaemon(node);
        const s = state.nodes.find((n) => n.name === node.name);
        if (s) s.daemonPid = handle.pid;
        await writeDemoState(state);
      }
    });
    await timed(
      progress,
      `creating ${state.pods.length} pods through the CNI chain (bridge, host-local, meshless-cni)`,
      async () => {
        const pods = await cluster.addPods(
          state.pods.map((p) => ({
            name: p.name,
            namespace: p.namespace,
            node: p.node,
            serviceAccount: p.serviceAccount,
          })),
        );
        for (const p of pods) {
          const s = state.pods.find((x) => x.name === p.name);
          if (s && p.ip) s.ip = p.ip;
        }
        await writeDemoState(state);
      },
    );
    await timed(progress, "publishing Service api and kube-proxy's DNAT on each node", async () => {
      for (const svc of DEMO_SERVICES) await cluster.addService(svc);
    });
    await timed(progress, 'publishing the AuthorizationPolicy: cache refuses web', async () => {
      cluster.setObjects(DEMO_POLICIES);
      await cluster.waitForDiscovery();
    });
    await timed(progress, 'starting an echo server in each pod', async () => {
      const deadline = Date.now() + timeoutMs;
      for (const pod of state.pods) {
        const { pid } = await spawnDetached(podServerArgv(state, pod, bundles), pod.serverLog);
        pod.serverPid = pid;
        await writeDemoState(state);
      }
      for (const pod of state.pods)
        await waitForLine(
          pod.serverLog,
          SERVE_READY_LINE,
          () => pod.serverPid !== undefined && isOurProcess(pod.serverPid, state.dir),
          deadline,
        );
    });
    return state;
  } catch (err) {
    await tearDown({ dir, prefix });
    throw err;
  }
}

/** What {@link tearDown} removed. */
export interface TearDownReport {
  readonly processes: number;
  readonly netns: readonly string[];
  readonly dirRemoved: boolean;
}

/** Options of {@link tearDown}. */
export interface TearDownOptions {
  readonly dir: string;
  /** Also remove netns of this prefix the state file does not name (or when there is no state). */
  readonly prefix?: string;
}

/** Our processes: command lines naming the demo dir and being a daemon, a pod server or tcpdump. */
function demoProcesses(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmd = processCommandLine(pid);
    if (
      cmd?.includes(`${dir}/`) &&
      (cmd.includes('meshlessd.js') ||
        cmd.includes('meshless-ca.js') ||
        cmd.includes(' demo serve ') ||
        cmd.includes('tcpdump'))
    )
      out.push(pid);
    else if (cmd?.includes(' demo serve ') && cmd.endsWith(`--state-dir ${dir}`)) out.push(pid);
  }
  return out;
}

/** The netns names under `prefix` (`<prefix>-node*`, `<prefix>-pod-*`). */
function netnsOfPrefix(prefix: string): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR).filter(
    (n) => n.startsWith(`${prefix}-node`) || n.startsWith(`${prefix}-pod-`),
  );
}

/**
 * Removes the demo in `dir`: its processes, every netns it made (links,
 * bridges and rules inside go with them) and the dir. Idempotent. A dir
 * without a state file is left alone (it may not be ours).
 */
export async function tearDown(options: TearDownOptions): Promise<TearDownReport> {
  const { dir } = options;
  let state: DemoState | undefined;
  try {
    state = readDemoState(dir);
  } catch {
    state = undefined; // unreadable: still remove what the prefix and dir name
  }
  const prefix = options.prefix ?? state?.prefix;
  // Processes first: a netns held open by a process outlives `ip netns del`.
  const pids = new Set<number>(demoProcesses(dir));
  for (const n of state?.nodes ?? []) if (n.daemonPid) pids.add(n.daemonPid);
  if (state?.signer?.pid) pids.add(state.signer.pid);
  for (const p of state?.pods ?? []) if (p.serverPid) pids.add(p.serverPid);
  const stopped = await Promise.all([...pids].map((pid) => stopProcess(pid, dir)));
  const names = new Set<string>([
    ...(state?.pods.map((p) => p.netns) ?? []),
    ...(state?.nodes.map((n) => n.netns) ?? []),
    ...(prefix ? netnsOfPrefix(prefix) : []),
  ]);
  const removed: string[] = [];
  for (const name of names)
    if (netnsExists(name)) {
      deleteNetns(name);
      removed.push(name);
    }
  const ours = existsSync(join(dir, STATE_FILE)) || state !== undefined;
  let dirRemoved = false;
  if (ours || (existsSync(dir) && readdirSync(dir).length === 0)) {
    rmSync(dir, { recursive: true, force: true });
    dirRemoved = true;
  }
  return { processes: stopped.filter(Boolean).length, netns: removed, dirRemoved };
}
