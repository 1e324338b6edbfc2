/**
 * Reading and changing a running demo: its status (from the state file and
 * each node daemon's admin `/workloads`) and a namespace's enrolment label
 * (a new discovery file, then waiting until the daemons agree).
 */
import { MeshlessError } from '../errors.js';
import { NETNS_DIR, netnsExists } from '../sim/netns.js';
import { isOurProcess } from '../sim/processes.js';
import { writeDiscoveryFile } from '../sim/sim-cluster.js';
import { demoDiscoveryExtras, writeDemoState, type DemoState } from './demo-state.js';
import { getAdminInNetns, parseWorkloads, type RegisteredWorkload } from './node-admin.js';

/** A node as `demo status --json` reports it. */
export interface NodeStatus {
  readonly name: string;
  readonly netns: string;
  readonly daemonConfig: string;
  readonly daemonLog: string;
  readonly daemonRunning: boolean;
}

/** A pod as `demo status --json` reports it. */
export interface PodStatus {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  readonly netns: string;
  readonly ip: string | null;
  /** What the node's daemon says; the namespace label when it cannot be asked. */
  readonly enrolled: boolean;
  readonly port: number;
  /** The SPIFFE ID the daemon holds for it, when enrolled. */
  readonly identity: string | null;
  readonly serverRunning: boolean;
}

/** The cluster signer as `demo status --json` reports it. */
export interface SignerStatus {
  readonly address: string;
  readonly netns: string;
  readonly config: string;
  readonly log: string;
  readonly running: boolean;
}

/** The demo's status. */
export interface DemoStatus {
  readonly signer: SignerStatus | null;
  readonly nodes: NodeStatus[];
  readonly pods: PodStatus[];
}

/** Each node's `/workloads`, or undefined for a node whose daemon did not answer. */
export async function nodeWorkloads(
  state: DemoState,
): Promise<Map<string, RegisteredWorkload[] | undefined>> {
  const out = new Map<string, RegisteredWorkload[] | undefined>();
  await Promise.all(
    state.nodes.map(async (n) => {
      try {
        out.set(
          n.name,
          parseWorkloads(await getAdminInNetns(`${NETNS_DIR}/${n.netns}`, '/workloads')),
        );
      } catch {
        out.set(n.name, undefined);
      }
    }),
  );
  return out;
}

/** The status of the demo described by `state`. */
export async function demoStatus(state: DemoState): Promise<DemoStatus> {
  const workloads = await nodeWorkloads(state);
  const s = state.signer;
  return {
    signer: s
      ? {
          address: s.address,
          netns: s.netns,
          config: s.config,
          log: s.log,
          running: s.pid !== undefined && isOurProcess(s.pid, s.config),
        }
      : null,
    nodes: state.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      daemonConfig: n.daemonConfig,
      daemonLog: n.daemonLog,
      daemonRunning: n.daemonPid !== undefined && isOurProcess(n.daemonPid, n.daemonConfig),
    })),
    pods: state.pods.map((p) => {
      const w = workloads
        .get(p.node)
        ?.find((x) => x.namespace === p.namespace && x.podName === p.name);
      return {
        name: p.name,
        namespace: p.namespace,
        node: p.node,
        netns: p.netns,
        ip: p.ip ?? null,
        enrolled: w ? w.enrolled : (state.namespaces[p.namespace] ?? false),
        port: p.port,
        identity: w?.identity ?? null,
        serverRunning:
          netnsExists(p.netns) && p.serverPid !== undefined && isOurProcess(p.serverPid, state.dir),
      };
    }),
  };
}

/** Where each pod of a namespace stands after a label change. */
export interface LabelOutcome {
  readonly namespace: string;
  readonly enrolled: boolean;
  /** Every pod of the namespace reported by its daemon with the new enrolment. */
  readonly converged: boolean;
  readonly pods: readonly { pod: string; node: string; enrolled: boolean | undefined }[];
}

/**
 * Sets or removes the enrolment label of `namespace`: rewrites the discovery
 * file atomically (the daemons watch it) and the state, then waits up to
 * `timeoutMs` until every node's daemon reports the namespace's pods with
 * the new enrolment.
 * @throws MeshlessError `MESHLESS_E_DEMO_NOT_FOUND` for an unknown namespace.
 */
export async function setEnrolment(
  state: DemoState,
  namespace: string,
  enrolled: boolean,
  timeoutMs = 10_000,
): Promise<LabelOutcome> {
  if (!(namespace in state.namespaces))
    throw new MeshlessError(
      'MESHLESS_E_DEMO_NOT_FOUND',
      `no namespace ${namespace} in the demo (namespaces: ${Object.keys(state.namespaces).join(', ')})`,
    );
  state.namespaces[namespace] = enrolled;
  writeDiscoveryFile(
    state.discoveryFile,
    state.namespaces,
    state.pods.map((p) => ({ ...p, ip: p.ip })),
    demoDiscoveryExtras(state),
  );
  await writeDemoState(state);
  const pods = state.pods.filter((p) => p.namespace === namespace);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const workloads = await nodeWorkloads(state);
    const seen = pods.map((p) => ({
      pod: p.name,
      node: p.node,
      enrolled: workloads
        .get(p.node)
        ?.find((w) => w.namespace === namespace && w.podName === p.name)?.enrolled,
    }));
    const converged = seen.every((s) => s.enrolled === enrolled);
    if (converged || Date.now() > deadline) return { namespace, enrolled, converged, pods: seen };
    await new Promise((r) => setTimeout(r, 100));
  }
}
