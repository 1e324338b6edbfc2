/**
 * The CNI_* environment of one invocation, parsed and checked once (SPEC.md
 * "Parameters"). Every failure is a CniError with code 4 naming the variable.
 */
import { CNI_CODES, CniError } from './cni-error.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface CniEnvironment {
  readonly command: CniCommand;
  /** Empty for VERSION, STATUS and GC. */
  readonly containerId: string;
  /** Path of the container's network namespace; may be empty on DEL. */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS as key/value pairs (keys kept as given). */
  readonly args: Readonly<Record<string, string>>;
  readonly path: readonly string[];
}

/** The pod a kubelet-driven runtime names in CNI_ARGS. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
  readonly infraContainerId: string | undefined;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// Linux IFNAMSIZ is 16 bytes including the NUL.
const IFNAME_FORBIDDEN = /[/:\s]/;

function invalid(name: string, why: string): CniError {
  return new CniError(CNI_CODES.invalidEnvironment, `${name} ${why}`);
}

/**
 * Parses `K=V;K=V` as the spec (and libcni's types.LoadArgs) do: a pair
 * with no "=" or with more than one is malformed. Empty pairs (a trailing
 * ";") are tolerated.
 */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0 || pair.includes('=', eq + 1))
      throw invalid('CNI_ARGS', `holds "${pair}", which is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Reads the environment for one invocation; throws CniError(4) when it is unusable. */
export function parseEnvironment(env: NodeJS.ProcessEnv): CniEnvironment {
  const command = env['CNI_COMMAND'] ?? '';
  if (command === '') throw invalid('CNI_COMMAND', 'is not set');
  if (!(COMMANDS as readonly string[]).includes(command))
    throw invalid('CNI_COMMAND', `is "${command}"; expected one of ${COMMANDS.join(', ')}`);
  const cmd = command as CniCommand;
  const perContainer = cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK';

  const containerId = env['CNI_CONTAINERID'] ?? '';
  const netns = env['CNI_NETNS'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  if (perContainer) {
    if (containerId === '') throw invalid('CNI_CONTAINERID', `is required for ${cmd}`);
    if (!CONTAINER_ID.test(containerId))
      throw invalid(
        'CNI_CONTAINERID',
        'must start with a letter or digit and hold only letters, digits, "_", "." and "-"',
      );
    if (ifname === '') throw invalid('CNI_IFNAME', `is required for ${cmd}`);
    if (
      Buffer.byteLength(ifname) > 15 ||
      ifname === '.' ||
      ifname === '..' ||
      IFNAME_FORBIDDEN.test(ifname)
    )
      throw invalid('CNI_IFNAME', `"${ifname}" is not a valid Linux interface name`);
    if (cmd !== 'DEL' && netns === '') throw invalid('CNI_NETNS', `is required for ${cmd}`);
    if (netns !== '' && !netns.startsWith('/'))
      throw invalid('CNI_NETNS', `must be an absolute path, got "${netns}"`);
  }
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args: parseCniArgs(env['CNI_ARGS'] ?? ''),
    path: (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== ''),
  };
}

/** The pod named by K8S_POD_* args, or undefined when the runtime gave none. */
export function podRefOf(args: Readonly<Record<string, string>>): PodRef | undefined {
  const namespace = args['K8S_POD_NAMESPACE'] ?? '';
  const name = args['K8S_POD_NAME'] ?? '';
  if (namespace === '' || name === '') return undefined;
  const uid = args['K8S_POD_UID'];
  const infra = args['K8S_POD_INFRA_CONTAINER_ID'];
  return {
    namespace,
    name,
    uid: uid === '' ? undefined : uid,
    infraContainerId: infra === '' ? undefined : infra,
  };
}
