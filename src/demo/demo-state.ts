/**
 * The demo's state file (`<dir>/demo.json`): everything `demo up` made,
 * written before each thing is made, so `status`, `exec`, `label` and
 * `down` (run by later CLI processes) find the nodes, pods, processes and
 * files, and `down` can remove a half-built demo too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError, errorMessage } from '../errors.js';
import type { DiscoveryExtras } from '../sim/sim-cluster.js';
import { writeFileAtomic } from '../state/atomic-file.js';
import { DEMO_POLICIES, DEMO_SERVICES } from './topology.js';

/** Where the demo lives unless `--state-dir` or `MESHLESS_DEMO_DIR` says otherwise. */
export const DEFAULT_DEMO_DIR = '/var/run/meshless-demo';

/** The netns and link name prefix unless `--prefix` or `MESHLESS_DEMO_PREFIX` says otherwise. */
export const DEFAULT_DEMO_PREFIX = 'mldemo';

/** The state file's name inside the demo dir. */
export const STATE_FILE = 'demo.json';

/** A simulated node of the demo. */
export interface DemoNode {
  readonly name: string;
  readonly netns: string;
  /** Its end of the node-to-node veth link, and the address on it. */
  readonly link: string;
  readonly linkIp: string;
  readonly podSubnet: string;
  readonly daemonConfig: string;
  readonly daemonLog: string;
  readonly cniSocket: string;
  /** The daemon's pid, once started. */
  daemonPid?: number;
}

/** A pod of the demo. */
export interface DemoPod {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  readonly serviceAccount: string;
  readonly netns: string;
  /** The echo server's port inside the pod. */
  readonly port: number;
  readonly serverLog: string;
  /** Assigned by host-local at CNI ADD. */
  ip?: string;
  /** The echo server's pid, once started. */
  serverPid?: number;
}

/** The cluster signer of the demo: its own process, the only holder of the root key. */
export interface DemoSigner {
  /** `host:port` the daemons reach it at. */
  readonly address: string;
  /** The netns it runs in. */
  readonly netns: string;
  readonly config: string;
  readonly log: string;
  pid?: number;
}

/** The whole demo. */
export interface DemoState {
  readonly version: 1;
  readonly dir: string;
  readonly prefix: string;
  readonly createdAt: string;
  readonly trustDomain: string;
  readonly discoveryFile: string;
  /** Namespace -> enrolled (labelled `io.cilium/mtls-enabled=true`). */
  readonly namespaces: Record<string, boolean>;
  readonly nodes: DemoNode[];
  readonly pods: DemoPod[];
  /** Absent in a state file written before the signer existed. */
  signer?: DemoSigner;
}

/** The demo dir: the option, else `MESHLESS_DEMO_DIR`, else {@link DEFAULT_DEMO_DIR}. */
export function demoDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? env['MESHLESS_DEMO_DIR'] ?? DEFAULT_DEMO_DIR;
}

/** The prefix: the option, else `MESHLESS_DEMO_PREFIX`, else {@link DEFAULT_DEMO_PREFIX}. */
export function demoPrefix(
  option: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return option ?? env['MESHLESS_DEMO_PREFIX'] ?? DEFAULT_DEMO_PREFIX;
}

function stateError(file: string, why: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_DEMO_STATE', `demo state ${file}: ${why}`, {
    cause,
    details: { file },
  });
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, where: string, file: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw stateError(file, `${where}.${key} must be a string`);
  return v;
}

function optInt(o: Obj, key: string, where: string, file: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw stateError(file, `${where}.${key} must be a positive integer`);
  return v;
}

function list(o: Obj, key: string, file: string): Obj[] {
  const v = o[key];
  if (!Array.isArray(v) || !v.every(isObj))
    throw stateError(file, `${key} must be a list of objects`);
  return v;
}

function parseSigner(s: Obj, file: string): DemoSigner {
  const signer: DemoSigner = {
    address: str(s, 'address', 'signer', file),
    netns: str(s, 'netns', 'signer', file),
    config: str(s, 'config', 'signer', file),
    log: str(s, 'log', 'signer', file),
  };
  const pid = optInt(s, 'pid', 'signer', file);
  if (pid !== undefined) signer.pid = pid;
  return signer;
}

/** Checks a parsed state document. Pure. */
export function parseDemoState(doc: unknown, file: string): DemoState {
  if (!isObj(doc) || doc['version'] !== 1) throw stateError(file, 'not a version 1 demo state');
  const namespacesDoc = doc['namespaces'];
  if (!isObj(namespacesDoc) || !Object.values(namespacesDoc).every((v) => typeof v === 'boolean'))
    throw stateError(file, 'namespaces must map names to booleans');
  const nodes: DemoNode[] = list(doc, 'nodes', file).map((n, i) => {
    const where = `nodes[${i}]`;
    const node: DemoNode = {
      name: str(n, 'name', where, file),
      netns: str(n, 'netns', where, file),
      link: str(n, 'link', where, file),
      linkIp: str(n, 'linkIp', where, file),
      podSubnet: str(n, 'podSubnet', where, file),
      daemonConfig: str(n, 'daemonConfig', where, file),
      daemonLog: str(n, 'daemonLog', where, file),
      cniSocket: str(n, 'cniSocket', where, file),
    };
    const pid = optInt(n, 'daemonPid', where, file);
    if (pid !== undefined) node.daemonPid = pid;
    return node;
  });
  const pods: DemoPod[] = list(doc, 'pods', file).map((p, i) => {
    const where = `pods[${i}]`;
    const port = optInt(p, 'port', where, file);
    if (port === undefined || port > 65535) throw stateError(file, `${where}.port must be a port`);
    const pod: DemoPod = {
      name: str(p, 'name', where, file),
      namespace: str(p, 'namespace', where, file),
      node: str(p, 'node', where, file),
      serviceAccount: str(p, 'serviceAccount', where, file),
      netns: str(p, 'netns', where, file),
      port,
      serverLog: str(p, 'serverLog', where, file),
    };
    if (p['ip'] !== undefined) pod.ip = str(p, 'ip', where, file);
    const pid = optInt(p, 'serverPid', where, file);
    if (pid !== undefined) pod.serverPid = pid;
    return pod;
  });
  return {
    version: 1,
    dir: str(doc, 'dir', 'state', file),
    prefix: str(doc, 'prefix', 'state', file),
    createdAt: str(doc, 'createdAt', 'state', file),
    trustDomain: str(doc, 'trustDomain', 'state', file),
    discoveryFile: str(doc, 'discoveryFile', 'state', file),
    namespaces: { ...(namespacesDoc as Record<string, boolean>) },
    nodes,
    pods,
    ...(isObj(doc['signer']) ? { signer: parseSigner(doc['signer'], file) } : {}),
  };
}

/** The state file of the demo in `dir`. */
export function stateFile(dir: string): string {
  return join(dir, STATE_FILE);
}

/** Reads the demo in `dir`; undefined when there is none. */
export function readDemoState(dir: string): DemoState | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw stateError(file, `unreadable (${errorMessage(err)})`, err);
  }
  return parseDemoState(doc, file);
}

/**
 * Reads the demo in `dir`.
 * @throws MeshlessError `MESHLESS_E_DEMO_NOT_RUNNING` when there is none.
 */
export function requireDemoState(dir: string): DemoState {
  const state = readDemoState(dir);
  if (!state)
    throw new MeshlessError(
      'MESHLESS_E_DEMO_NOT_RUNNING',
      `no demo in ${dir} (no ${STATE_FILE}); start one with: sudo meshless demo up` +
        (dir === DEFAULT_DEMO_DIR ? '' : ` --state-dir ${dir}`),
    );
  return state;
}

/** Replaces the state file atomically (0600: it names every process we may kill). */
export async function writeDemoState(state: DemoState): Promise<void> {
  await writeFileAtomic(stateFile(state.dir), JSON.stringify(state, null, 2) + '\n', {
    mode: 0o600,
    errorCode: 'MESHLESS_E_DEMO_STATE',
  });
}

/** The demo's nodes and Services as its discovery file lists them. Pure. */
export function demoDiscoveryExtras(state: DemoState): DiscoveryExtras {
  return {
    nodes: state.nodes.map((n) => ({ name: n.name, podSubnet: n.podSubnet, ip: n.linkIp })),
    services: DEMO_SERVICES,
    objects: DEMO_POLICIES,
  };
}
