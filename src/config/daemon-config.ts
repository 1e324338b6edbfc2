/**
 * The node daemon's configuration: one file (YAML or JSON), every key
 * overridable by a MESHLESS_* environment variable, validated once at start
 * into one immutable object. Errors name the key at fault.
 *
 * Environment names are the key path in SCREAMING_SNAKE_CASE:
 * `signer.tokenFile` -> MESHLESS_SIGNER_TOKEN_FILE, `discovery.kubernetes.kubeconfig`
 * -> MESHLESS_DISCOVERY_KUBERNETES_KUBECONFIG.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MeshlessError, errorMessage } from '../errors.js';
import { parseCidr } from '../proxy/pod-address-space.js';
import { defaultDataPlaneWorkers, usableCpus } from './data-plane-workers.js';
import { parseLabelSelector, type LabelRequirement } from './label.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where the daemon learns about namespaces and pods. */
export type DiscoveryConfig =
  | { readonly source: 'file'; readonly file: string }
  | { readonly source: 'kubernetes'; readonly kubeconfig: string | undefined };

/**
 * The cluster signer (ca/): the daemon holds no key that can sign; it sends
 * a CSR per workload key, attested as its node.
 */
export interface SignerConfig {
  /** `host:port` of the signer's gRPC endpoint. */
  readonly address: string;
  /** DNS name the signer's certificate carries. */
  readonly serverName: string;
  /** PEM roots to trust first (the published bundle: a ConfigMap in Kubernetes); watched. */
  readonly trustBundleFile: string;
  /** Projected service-account token (Kubernetes attestation); re-read per request. */
  readonly tokenFile: string | undefined;
  /** Join credential from `meshless ca join-token` (file discovery). */
  readonly joinCredentialFile: string | undefined;
  /** How long a new pod's ADD waits for its first SVID while the signer is unreachable, s. */
  readonly enrolWaitSeconds: number;
}

/**
 * UNSAFE for more than one node: the daemon holds the cluster root key
 * itself and signs its own intermediate, so root on this node can forge
 * every identity of the trust domain. One-node setups only.
 */
export interface CaConfig {
  /** PEM certificate of the cluster root (may hold several roots: the bundle). */
  readonly certFile: string | undefined;
  /** PEM PKCS#8 private key of the signing root. */
  readonly keyFile: string | undefined;
  /** Kubernetes Secret holding `ca.crt`/`ca.key` (namespace/name). */
  readonly secret: string | undefined;
  /** Generate and persist a root under `<stateDir>/ca/` when none exists; never with certFile/keyFile. */
  readonly generate: boolean;
}

export interface IdentityConfig {
  /** Lifetime of a workload X509-SVID, seconds (SPIRE default 1 h). */
  readonly svidTtlSeconds: number;
  /** Lifetime of the node intermediate CA, seconds (SPIRE default 24 h). */
  readonly intermediateTtlSeconds: number;
}

export interface DaemonConfig {
  readonly nodeName: string;
  readonly trustDomain: string;
  readonly stateDir: string;
  /** Unix socket of the CNI registration API. */
  readonly cniSocket: string;
  readonly discovery: DiscoveryConfig;
  /** Namespace label that enrols its pods, `key=value`. */
  readonly enrolmentLabel: LabelRequirement;
  /** Namespaces never enrolled, whatever their labels. */
  readonly excludeNamespaces: readonly string[];
  /** The cluster signer; undefined in the unsafe local-root mode. */
  readonly signer: SignerConfig | undefined;
  /**
   * The unsafe one-node mode; undefined with a signer. Without either, the
   * daemon refuses to start unless a root it generated earlier exists.
   */
  readonly unsafeLocalRoot: CaConfig | undefined;
  readonly identity: IdentityConfig;
  readonly adminAddress: string;
  readonly metricsAddress: string;
  readonly readinessAddress: string;
  readonly logLevel: LogLevel;
  /**
   * Where the host's /proc is mounted for a daemon in a container (e.g.
   * /host/proc), for runtimes that name netns as /proc/<pid>/ns/net.
   */
  readonly hostProcPath: string | undefined;
  /**
   * A writable mount of /proc/sys/net for the per-pod sysctl the upgrade
   * takeover needs (net.ipv4.tcp_migrate_req). Default /proc/sys/net; a
   * container's own is read-only (runtimes mount /proc/sys read-only), so
   * the DaemonSet mounts the host's at /host/proc-sys-net. Writes through
   * any mount of it reach the netns of the writing thread.
   */
  readonly procSysNetPath: string;
  /**
   * How long established connections may finish on shutdown or when a pod
   * is released, seconds. Default 25: 5 s less than Kubernetes' default
   * 30 s termination grace period.
   */
  readonly drainTimeoutSeconds: number;
  /**
   * SNAT TCP from the node's own sockets (the kubelet's probes) to enrolled
   * pods of this node to 169.254.7.127, a source the pods' rules let
   * through, so probes do not depend on the daemon (rule in the node's nat
   * POSTROUTING, chain MESHLESS_POSTRT). Default true; false removes it.
   */
  readonly probeSnat: boolean;
  /**
   * The cluster's pod address ranges (CIDRs). An enrolled pod's connection
   * to an address in them that discovery does not know yet waits briefly
   * for discovery, then is reset: never plaintext. Empty (the default):
   * unknown addresses are outside the cluster and passed through.
   */
  readonly podCidrs: readonly string[];
  /**
   * The cluster's Service address ranges (the API server's
   * --service-cluster-ip-range). A connection to an address in them that no
   * Service known to discovery has waits for discovery, then is reset, never
   * handed to kube-proxy in plaintext. Empty (the default): the ranges of the
   * cluster's ServiceCIDR objects (networking.k8s.io/v1, Kubernetes 1.33+).
   */
  readonly serviceCidrs: readonly string[];
  /**
   * The namespace whose AuthorizationPolicies without a selector apply to
   * every workload, and whose PeerAuthentication without a selector is the
   * mesh-wide default (Istio's root namespace). Default `meshless-system`.
   */
  readonly rootNamespace: string;
  /**
   * Whether the destination daemon evaluates the destination pod's ingress
   * NetworkPolicies for connections that arrive over HBONE (the CNI only
   * sees port 15008 for them). Default true.
   */
  readonly enforceNetworkPolicy: boolean;
  /** Data-plane limits: no pod can exhaust the node's proxy. */
  readonly limits: LimitsConfig;
  /** The data plane's threads. */
  readonly dataPlane: DataPlaneConfig;
}

export interface DataPlaneConfig {
  /**
   * Worker threads running the pods' listeners and connections, at least 1.
   * Default: max(25 % of the CPUs the daemon may use, 2), at most that many
   * CPUs (affinity and cgroup `cpu.max`; src/config/data-plane-workers.ts).
   */
  readonly workers: number;
}

export interface LimitsConfig {
  /** Live connections one enrolled pod may open through its proxy; default 512. */
  readonly connectionsPerPodOutbound: number;
  /** Live connections one source pod may hold into this node's pods; default 512. */
  readonly connectionsPerPodInbound: number;
  /** Live proxied connections on the node; default 4096. */
  readonly connectionsPerNode: number;
  /** Bytes all relays together may buffer before they stop reading; default 128 MiB. */
  readonly relayBufferBytes: number;
}

type Kind =
  | 'string'
  | 'path'
  | 'boolean'
  | 'seconds'
  | 'duration'
  | 'address'
  | 'label'
  | 'logLevel'
  | 'list'
  | 'count';

interface Field {
  readonly key: string;
  readonly kind: Kind;
}

/** Every leaf key the file may hold. Anything else is an error. */
const FIELDS: readonly Field[] = [
  { key: 'nodeName', kind: 'string' },
  { key: 'trustDomain', kind: 'string' },
  { key: 'stateDir', kind: 'path' },
  { key: 'cniSocket', kind: 'path' },
  { key: 'discovery.file', kind: 'path' },
  { key: 'discovery.kubernetes', kind: 'boolean' },
  { key: 'discovery.kubernetes.kubeconfig', kind: 'path' },
  { key: 'enrolmentLabel', kind: 'label' },
  { key: 'excludeNamespaces', kind: 'list' },
  { key: 'signer.address', kind: 'string' },
  { key: 'signer.serverName', kind: 'string' },
  { key: 'signer.trustBundleFile', kind: 'path' },
  { key: 'signer.tokenFile', kind: 'path' },
  { key: 'signer.joinCredentialFile', kind: 'path' },
  { key: 'signer.enrolWaitSeconds', kind: 'duration' },
  { key: 'unsafeLocalRoot.certFile', kind: 'path' },
  { key: 'unsafeLocalRoot.keyFile', kind: 'path' },
  { key: 'unsafeLocalRoot.secret', kind: 'string' },
  { key: 'unsafeLocalRoot.generate', kind: 'boolean' },
  { key: 'identity.svidTtlSeconds', kind: 'seconds' },
  { key: 'identity.intermediateTtlSeconds', kind: 'seconds' },
  { key: 'adminAddress', kind: 'address' },
  { key: 'metricsAddress', kind: 'address' },
  { key: 'readinessAddress', kind: 'address' },
  { key: 'logLevel', kind: 'logLevel' },
  { key: 'drainTimeoutSeconds', kind: 'duration' },
  { key: 'probeSnat', kind: 'boolean' },
  { key: 'hostProcPath', kind: 'path' },
  { key: 'procSysNetPath', kind: 'path' },
  { key: 'podCidrs', kind: 'list' },
  { key: 'serviceCidrs', kind: 'list' },
  { key: 'rootNamespace', kind: 'string' },
  { key: 'enforceNetworkPolicy', kind: 'boolean' },
  { key: 'limits.connectionsPerPodOutbound', kind: 'count' },
  { key: 'limits.connectionsPerPodInbound', kind: 'count' },
  { key: 'limits.connectionsPerNode', kind: 'count' },
  { key: 'limits.relayBufferBytes', kind: 'count' },
  { key: 'dataPlane.workers', kind: 'count' },
];

/** Every key the config file may hold; docs/configuration.md documents each (a test checks). */
export const CONFIG_KEYS: readonly string[] = FIELDS.map((f) => f.key);

/** The environment variable that overrides `key`. */
export function envNameOf(key: string): string {
  return (
    'MESHLESS_' +
    key
      .split('.')
      .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

function configError(key: string, message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_CONFIG', `config key "${key}": ${message}`, {
    details: { key },
    cause,
  });
}

/** Flattens a parsed document into `a.b.c` -> leaf value. */
function flatten(doc: unknown, prefix: string, out: Map<string, unknown>): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    out.set(prefix, doc);
    return;
  }
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    // `discovery.kubernetes: {}` means "use Kubernetes, in-cluster credentials".
    // Any other empty section (`signer: {}`) is just empty.
    if (key === 'discovery.kubernetes' && v !== null && typeof v === 'object') {
      out.set(key, true);
    }
    flatten(v, key, out);
  }
}

function coerce(field: Field, raw: unknown, fromEnv: boolean): unknown {
  const { key, kind } = field;
  switch (kind) {
    case 'string':
    case 'path': {
      if (typeof raw !== 'string' || raw.trim() === '')
        throw configError(key, 'must be a non-empty string');
      if (kind === 'path' && !isAbsolute(raw))
        throw configError(key, `must be an absolute path, got "${raw}"`);
      return raw;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (fromEnv && (raw === 'true' || raw === 'false')) return raw === 'true';
      throw configError(key, 'must be true or false');
    }
    case 'count': {
      const n = typeof raw === 'string' && fromEnv ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
        throw configError(key, 'must be a whole number of at least 1');
      return n;
    }
    case 'seconds': {
      const n = typeof raw === 'string' && fromEnv ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 60 || n > 10 * 365 * 86400)
        throw configError(key, 'must be a whole number of seconds between 60 and 315360000');
      return n;
    }
    case 'duration': {
      const n = typeof raw === 'string' && fromEnv ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 3600)
        throw configError(key, 'must be a number of seconds from 0 to 3600');
      return n;
    }
    case 'address': {
      if (typeof raw !== 'string') throw configError(key, 'must be "host:port" or ":port"');
      parseListenAddress(raw, key);
      return raw;
    }
    case 'label': {
      if (typeof raw !== 'string') throw configError(key, 'must be "key=value"');
      try {
        return parseLabelSelector(raw);
      } catch (err) {
        throw configError(key, errorMessage(err), err);
      }
    }
    case 'logLevel': {
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw))
        throw configError(key, `must be one of ${LOG_LEVELS.join(', ')}`);
      return raw;
    }
    case 'list': {
      const list = fromEnv && typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : raw;
      if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s !== ''))
        throw configError(key, 'must be a list of non-empty strings');
      return list;
    }
  }
}

/** Splits `host:port`, `:port` or `[v6]:port`. Host '' means all addresses. */
export function parseListenAddress(
  address: string,
  key = 'address',
): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw configError(key, `"${address}" is not "host:port" or ":port"`);
  return { host: m[1] ?? m[2] ?? '', port };
}

export interface LoadOptions {
  /** Path of the config file; undefined means defaults and environment only. */
  readonly file?: string | undefined;
  /** The environment to read MESHLESS_* overrides from. */
  readonly env?: NodeJS.ProcessEnv;
  /** The CPUs the daemon may use, for the `dataPlane.workers` default; default: this host's. */
  readonly usableCpus?: () => number;
}

/** The CPUs this process may use: affinity, capped by the cgroup v2 quota. */
export function hostUsableCpus(): number {
  let cpuMax: string | undefined;
  try {
    cpuMax = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    cpuMax = undefined; // cgroup v1 or no cgroup fs: the affinity alone
  }
  return usableCpus(availableParallelism(), cpuMax);
}

/** Reads, merges and validates the daemon configuration. */
export function loadDaemonConfig(options: LoadOptions = {}): DaemonConfig {
  const env = options.env ?? process.env;
  let doc: unknown = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new MeshlessError(
        'MESHLESS_E_CONFIG',
        `cannot read config file ${options.file}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    try {
      doc = parseYaml(text) ?? {};
    } catch (err) {
      throw new MeshlessError(
        'MESHLESS_E_CONFIG',
        `config file ${options.file} is neither valid YAML nor JSON: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new MeshlessError('MESHLESS_E_CONFIG', `config file ${options.file} must hold a map`);
  }
  const flat = new Map<string, unknown>();
  flatten(doc, '', flat);
  const known = new Set(FIELDS.map((f) => f.key));
  for (const key of flat.keys()) {
    if (!known.has(key)) throw configError(key, 'is not a known key');
  }
  const values = new Map<string, unknown>();
  for (const field of FIELDS) {
    const envValue = env[envNameOf(field.key)];
    if (envValue !== undefined && envValue !== '') {
      values.set(field.key, coerce(field, envValue, true));
    } else if (flat.has(field.key)) {
      values.set(field.key, coerce(field, flat.get(field.key), false));
    }
  }
  const get = <T>(key: string, fallback: T): T => (values.get(key) as T | undefined) ?? fallback;

  const stateDir = get('stateDir', '/var/run/meshless');
  const trustDomain = get('trustDomain', 'cluster.local');
  if (!/^[a-z0-9._-]{1,255}$/.test(trustDomain))
    throw configError('trustDomain', 'must be lowercase letters, digits, ".", "-" or "_"');

  const file = values.get('discovery.file') as string | undefined;
  const kube = values.get('discovery.kubernetes') === true;
  const kubeconfig = values.get('discovery.kubernetes.kubeconfig') as string | undefined;
  if (file !== undefined && (kube || kubeconfig !== undefined))
    throw configError('discovery', 'set either "file" or "kubernetes", not both');
  if (file === undefined && !kube && kubeconfig === undefined)
    throw configError('discovery', 'is required: "file: PATH" or "kubernetes: {kubeconfig?}"');
  const discovery: DiscoveryConfig =
    file !== undefined ? { source: 'file', file } : { source: 'kubernetes', kubeconfig };

  const localKeys = [...values.keys()].filter((k) => k.startsWith('unsafeLocalRoot.'));
  const signerKeys = [...values.keys()].filter((k) => k.startsWith('signer.'));
  if (localKeys.length > 0 && signerKeys.length > 0)
    throw configError('signer', 'set either "signer" or "unsafeLocalRoot", not both');
  let signer: SignerConfig | undefined;
  let unsafeLocalRoot: CaConfig | undefined;
  if (signerKeys.length > 0) {
    const address = values.get('signer.address') as string | undefined;
    const trustBundleFile = values.get('signer.trustBundleFile') as string | undefined;
    if (address === undefined) throw configError('signer.address', 'is required ("host:port")');
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address))
      throw configError('signer.address', `must be "host:port", got "${address}"`);
    if (trustBundleFile === undefined)
      throw configError(
        'signer.trustBundleFile',
        'is required (the roots to verify the signer with)',
      );
    const tokenFile = values.get('signer.tokenFile') as string | undefined;
    const joinCredentialFile = values.get('signer.joinCredentialFile') as string | undefined;
    if ((tokenFile === undefined) === (joinCredentialFile === undefined))
      throw configError(
        'signer',
        'set exactly one of "tokenFile" (Kubernetes) or "joinCredentialFile"',
      );
    signer = Object.freeze({
      address,
      serverName: get('signer.serverName', 'meshless-ca'),
      trustBundleFile,
      tokenFile,
      joinCredentialFile,
      // Below the plugin's daemonTimeoutMs (5 s), so the plugin hears 503 -> CNI 11.
      enrolWaitSeconds: get('signer.enrolWaitSeconds', 3),
    });
  } else {
    const ca: CaConfig = {
      certFile: values.get('unsafeLocalRoot.certFile') as string | undefined,
      keyFile: values.get('unsafeLocalRoot.keyFile') as string | undefined,
      secret: values.get('unsafeLocalRoot.secret') as string | undefined,
      generate: get('unsafeLocalRoot.generate', false),
    };
    if ((ca.certFile === undefined) !== (ca.keyFile === undefined))
      throw configError('unsafeLocalRoot', '"certFile" and "keyFile" go together');
    if (ca.generate && (ca.certFile !== undefined || ca.secret !== undefined))
      throw configError(
        'unsafeLocalRoot.generate',
        'generates a root under <stateDir>/ca/, which would silently differ from the configured ' +
          '"certFile"/"secret": make the root yourself, or drop the files and keep "generate"',
      );
    if (ca.secret !== undefined && !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(ca.secret))
      throw configError('unsafeLocalRoot.secret', 'must be "namespace/name"');
    unsafeLocalRoot = Object.freeze(ca);
  }

  const identity: IdentityConfig = {
    svidTtlSeconds: get('identity.svidTtlSeconds', 3600),
    intermediateTtlSeconds: get('identity.intermediateTtlSeconds', 86400),
  };
  if (identity.svidTtlSeconds >= identity.intermediateTtlSeconds)
    throw configError('identity.svidTtlSeconds', 'must be shorter than intermediateTtlSeconds');
  const podCidrs = get<string[]>('podCidrs', []);
  for (const cidr of podCidrs)
    if (!parseCidr(cidr))
      throw configError('podCidrs', `"${cidr}" is not a CIDR (a.b.c.d/n, v6/n)`);
  const serviceCidrs = get<string[]>('serviceCidrs', []);
  for (const cidr of serviceCidrs)
    if (!parseCidr(cidr))
      throw configError('serviceCidrs', `"${cidr}" is not a CIDR (a.b.c.d/n, v6/n)`);
  const rootNamespace = get('rootNamespace', 'meshless-system');
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(rootNamespace))
    throw configError('rootNamespace', 'must be a namespace name (RFC 1123 label)');

  return Object.freeze({
    nodeName: get('nodeName', hostname()),
    trustDomain,
    stateDir,
    cniSocket: get('cniSocket', join(stateDir, 'cni.sock')),
    discovery: Object.freeze(discovery),
    enrolmentLabel: get('enrolmentLabel', parseLabelSelector('io.cilium/mtls-enabled=true')),
    excludeNamespaces: Object.freeze(get<string[]>('excludeNamespaces', ['kube-system'])),
    signer,
    unsafeLocalRoot,
    identity: Object.freeze(identity),
    adminAddress: get('adminAddress', '127.0.0.1:15000'),
    // Loopback by default: the daemon runs with hostNetwork, where ':port'
    // would expose the metrics (which name workload identities) to every pod
    // and beyond the node. SECURITY.md "Exposure" says how to open them.
    metricsAddress: get('metricsAddress', '127.0.0.1:15020'),
    readinessAddress: get('readinessAddress', '127.0.0.1:15021'),
    logLevel: get<LogLevel>('logLevel', 'info'),
    drainTimeoutSeconds: get('drainTimeoutSeconds', 25),
    probeSnat: get('probeSnat', true),
    hostProcPath: values.get('hostProcPath') as string | undefined,
    procSysNetPath: get('procSysNetPath', '/proc/sys/net'),
    podCidrs: Object.freeze(podCidrs),
    serviceCidrs: Object.freeze(serviceCidrs),
    rootNamespace,
    enforceNetworkPolicy: get('enforceNetworkPolicy', true),
    limits: Object.freeze({
      connectionsPerPodOutbound: get('limits.connectionsPerPodOutbound', 512),
      connectionsPerPodInbound: get('limits.connectionsPerPodInbound', 512),
      connectionsPerNode: get('limits.connectionsPerNode', 4096),
      relayBufferBytes: get('limits.relayBufferBytes', 128 * 1024 * 1024),
    }),
    dataPlane: Object.freeze({
      workers:
        (values.get('dataPlane.workers') as number | undefined) ??
        defaultDataPlaneWorkers((options.usableCpus ?? hostUsableCpus)()),
    }),
  });
}
