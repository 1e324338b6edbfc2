/**
 * A simulated Kubernetes cluster on one machine, for end-to-end tests and
 * the demo: each node is a network namespace with a bridge (made by the
 * real bridge plugin), nodes are joined by a veth link and route each
 * other's pod subnets; pods are network namespaces created through the real
 * CNI chain (bridge + host-local, then dist/meshless-cni); each node runs
 * dist/meshlessd.js on a shared file discovery source, and the cluster
 * signer (dist/meshless-ca.js) runs as its own process in node1's netns,
 * listening on node1's link address: the only holder of the root key. Each
 * node's daemon gets a join credential for its node name and the root
 * certificate as its trust bundle, never a key that can sign.
 *
 * Every name it gives the kernel (netns, link) starts with the cluster's
 * `prefix`, so two clusters (a test and a user's demo) never collide.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { generateRootCa } from '../identity/certificate-authority.js';
import { joinMacKey, makeJoinCredential, newJoinKey } from '../signer/join-credential.js';
import { callDaemon } from '../registration/client.js';
import type { StatusResponse } from '../registration/protocol.js';
import type { Bundles } from './bundles.js';
import {
  CniRuntime,
  bridgeConflist,
  type ChainOutcome,
  type Conflist,
  type PodAttachment,
} from './cni-chain.js';
import { startDaemonProcess, type DaemonHandle } from './daemon-process.js';
import { startSignerProcess, type SignerHandle } from './signer-process.js';
import { Netns, sh } from './netns.js';

/** The signer's port (istiod's CA port). */
export const SIGNER_PORT = 15012;
/** The DNS name in the signer's certificate, which the daemons verify. */
export const SIGNER_SERVER_NAME = 'meshless-ca';

/** The namespace label that enrols (docs/reference/behaviour.md). */
export const ENROLMENT_LABEL = { key: 'io.cilium/mtls-enabled', value: 'true' } as const;

/** Longest cluster prefix: link names are `<prefix>n<i>`, at most 15 bytes. */
export const MAX_PREFIX_LENGTH = 12;

/** A prefix unique to this process: `mlt<pid in base 36>`. */
export function defaultPrefix(): string {
  return `mlt${process.pid.toString(36)}`;
}

/** The netns name of node `index` (1-based) of the cluster `prefix`. */
export function nodeNetnsName(prefix: string, index: number): string {
  return `${prefix}-node${index}`;
}

/** The netns name of pod `name` of the cluster `prefix`. */
export function podNetnsName(prefix: string, name: string): string {
  return `${prefix}-pod-${name}`;
}

/** Node `index`'s end of the node-to-node veth link. */
export function nodeLinkName(prefix: string, index: number): string {
  return `${prefix}n${index}`;
}

/** A simulated node. */
export interface SimNode {
  readonly name: string;
  readonly index: number;
  readonly netns: Netns;
  /** This node's end of the node-to-node link, and its address. */
  readonly linkIf: string;
  readonly linkIp: string;
  readonly podSubnet: string;
  readonly dir: string;
  readonly conflist: Conflist;
  readonly runtime: CniRuntime;
  daemon: DaemonHandle | undefined;
}

/** A pod of the simulated cluster. */
export interface SimPod {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly node: SimNode;
  readonly netns: Netns;
  readonly attachment: PodAttachment;
  ip: string | undefined;
}

/** Options of {@link SimCluster.create}. */
export interface SimClusterOptions {
  /** Where the CA, discovery file and per-node state, logs and IPAM go. */
  readonly dir: string;
  /** Starts every netns and link name; `[a-z0-9]`, 1-12 characters. Default {@link defaultPrefix}. */
  readonly prefix?: string;
  readonly nodes: number;
  /** Namespace name -> enrolled. */
  readonly namespaces: Readonly<Record<string, boolean>>;
  readonly daemonConfig?: Readonly<Record<string, unknown>>;
  /** The built programs; default {@link defaultBundles}. */
  readonly bundles?: Bundles;
  /** Daemons in their own session, outliving this process (the demo). */
  readonly detachedDaemons?: boolean;
  /** Extra `node` flags for every daemon, e.g. `--cpu-prof` (bench/). */
  readonly daemonNodeFlags?: readonly string[];
  /** The `node` binary of every daemon; default this process's (bench/ compares runtimes). */
  readonly daemonNode?: string;
  /** Run the CNI plugins with node hidden (`withoutNode` of cni-chain.ts). */
  readonly pluginsWithoutNode?: boolean;
}

/** A pod as the discovery file describes it. */
export interface DiscoveredPod {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  readonly serviceAccount: string;
  readonly ip: string | undefined;
}

/** A node as the discovery file describes it. */
export interface DiscoveredNode {
  readonly name: string;
  /** Its pod CIDR (`spec.podCIDRs`). */
  readonly podSubnet: string;
  /** Its InternalIP. */
  readonly ip: string;
}

/** A ClusterIP Service of the simulated cluster, its backends by pod name. */
export interface SimServiceSpec {
  readonly name: string;
  readonly namespace: string;
  readonly clusterIp: string;
  readonly port: number;
  readonly targetPort: number;
  readonly backends: readonly string[];
}

/** Nodes and Services besides the namespaces and pods. */
export interface DiscoveryExtras {
  readonly nodes?: readonly DiscoveredNode[];
  readonly services?: readonly SimServiceSpec[];
  /** Any other API objects, as they are (policies, NetworkPolicies). */
  readonly objects?: readonly unknown[];
}

/**
 * The discovery file (a v1 List of Nodes, Namespaces, Pods, Services and
 * their EndpointSlices, as kubectl prints them) for this cluster. Pure.
 */
export function renderDiscovery(
  namespaces: Readonly<Record<string, boolean>>,
  pods: readonly DiscoveredPod[],
  extras: DiscoveryExtras = {},
): string {
  const items: unknown[] = [];
  if (extras.nodes !== undefined)
    items.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'kubernetes' },
      spec: { cidrs: [SERVICE_CIDR] },
    });
  for (const n of extras.nodes ?? [])
    items.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name },
      spec: { podCIDR: n.podSubnet, podCIDRs: [n.podSubnet] },
      status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
    });
  for (const [name, enrolled] of Object.entries(namespaces))
    items.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: enrolled ? { [ENROLMENT_LABEL.key]: ENROLMENT_LABEL.value } : {} },
    });
  for (const p of pods)
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      // `app: <name>`, as a Deployment's template would label it (policy selectors).
      metadata: {
        name: p.name,
        namespace: p.namespace,
        uid: `uid-${p.name}`,
        labels: { app: p.name },
      },
      spec: { nodeName: p.node, serviceAccountName: p.serviceAccount },
      status: p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {},
    });
  for (const svc of extras.services ?? []) {
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: svc.name, namespace: svc.namespace },
      spec: {
        type: 'ClusterIP',
        clusterIP: svc.clusterIp,
        clusterIPs: [svc.clusterIp],
        ports: [{ name: 'http', port: svc.port, targetPort: svc.targetPort, protocol: 'TCP' }],
      },
    });
    const backends = svc.backends.flatMap((name) => {
      const pod = pods.find((p) => p.name === name && p.namespace === svc.namespace);
      return pod?.ip ? [{ name, ip: pod.ip }] : [];
    });
    items.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${svc.name}-sim`,
        namespace: svc.namespace,
        labels: { 'kubernetes.io/service-name': svc.name },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: svc.targetPort, protocol: 'TCP' }],
      endpoints: backends.map((b) => ({
        addresses: [b.ip],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: 'Pod', namespace: svc.namespace, name: b.name },
      })),
    });
  }
  items.push(...(extras.objects ?? []));
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1);
}

/**
 * kube-proxy's part for these Services, as `iptables-restore --noflush`
 * input for a node's netns: a chain of our own hung from nat PREROUTING and
 * OUTPUT that DNATs each ClusterIP:port to one backend (picked at random
 * among several, as kube-proxy's iptables mode does). Pure; declaring the
 * chain flushes it, so applying again replaces the rules.
 */
export function renderKubeProxyRules(
  services: readonly SimServiceSpec[],
  pods: readonly DiscoveredPod[],
  jumpsPresent: boolean,
): string {
  const lines = ['*nat', `:${KUBE_PROXY_CHAIN} - [0:0]`];
  if (!jumpsPresent)
    lines.push(`-A PREROUTING -j ${KUBE_PROXY_CHAIN}`, `-A OUTPUT -j ${KUBE_PROXY_CHAIN}`);
  for (const svc of services) {
    const ips = svc.backends.flatMap((name) => {
      const pod = pods.find((p) => p.name === name && p.namespace === svc.namespace);
      return pod?.ip ? [pod.ip] : [];
    });
    const match = `-d ${svc.clusterIp}/32 -p tcp -m tcp --dport ${svc.port}`;
    if (ips.length === 0) {
      lines.push(`-A ${KUBE_PROXY_CHAIN} ${match} -j REJECT`);
      continue;
    }
    ips.forEach((ip, i) => {
      const left = ips.length - i;
      const random =
        left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(5)}` : '';
      lines.push(
        `-A ${KUBE_PROXY_CHAIN} ${match}${random} -j DNAT --to-destination ${ip}:${svc.targetPort}`,
      );
    });
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The simulated cluster's Service range (ClusterIPs come from it). */
export const SERVICE_CIDR = '10.96.0.0/16';

/** The chain of the simulated kube-proxy in each node netns. */
export const KUBE_PROXY_CHAIN = 'SIM-KUBE-SERVICES';

/** Node `index`'s pod subnet. */
export const nodePodSubnet = (index: number): string => `10.248.${index}.0/24`;

/** Replaces the discovery file atomically (write beside it, then rename). */
export function writeDiscoveryFile(
  file: string,
  namespaces: Readonly<Record<string, boolean>>,
  pods: readonly DiscoveredPod[],
  extras: DiscoveryExtras = {},
): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, renderDiscovery(namespaces, pods, extras));
  renameSync(tmp, file);
}

/** Installs (or replaces) the simulated kube-proxy's rules in a node netns. */
export function applyKubeProxyRules(
  netns: Netns,
  services: readonly SimServiceSpec[],
  pods: readonly DiscoveredPod[],
): void {
  const saved = netns.exec(['iptables-save', '-t', 'nat']);
  const present = saved.stdout.includes(`-A PREROUTING -j ${KUBE_PROXY_CHAIN}`);
  netns.exec(['iptables-restore', '--noflush'], renderKubeProxyRules(services, pods, present));
}

const LINK_SUBNET = '10.247.0';

function simError(message: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_SIM', message);
}

/** Nodes, pods and daemons of one simulated cluster. */
export class SimCluster {
  readonly nodes: SimNode[] = [];
  readonly pods: SimPod[] = [];
  readonly namespaces: Record<string, boolean>;
  readonly discoveryFile: string;
  /** The cluster signer process, once started. */
  signer: SignerHandle | undefined;
  readonly #opts: SimClusterOptions & { readonly prefix: string };
  /** Starts every netns and link name of this cluster. */
  readonly prefix: string;

  private constructor(opts: SimClusterOptions & { readonly prefix: string }) {
    this.#opts = opts;
    this.prefix = opts.prefix;
    this.namespaces = { ...opts.namespaces };
    this.discoveryFile = join(opts.dir, 'cluster.yaml');
  }

  /**
   * Builds the nodes and the link (no daemons, no pods yet), and the cluster
   * root CA every node's daemon loads (as a Kubernetes Secret would hand it).
   */
  static async create(opts: SimClusterOptions): Promise<SimCluster> {
    const prefix = opts.prefix ?? defaultPrefix();
    if (!new RegExp(`^[a-z0-9]{1,${MAX_PREFIX_LENGTH}}$`).test(prefix))
      throw simError(`cluster prefix "${prefix}" must be 1-${MAX_PREFIX_LENGTH} of [a-z0-9]`);
    if (opts.nodes < 1 || opts.nodes > 2) throw simError('a simulated cluster has 1 or 2 nodes');
    const c = new SimCluster({ ...opts, prefix });
    const root = await generateRootCa({ trustDomain: 'cluster.local', now: Date.now() });
    mkdirSync(join(opts.dir, 'ca'), { recursive: true, mode: 0o700 });
    writeFileSync(join(opts.dir, 'ca', 'root.crt'), root.certPem);
    writeFileSync(join(opts.dir, 'ca', 'root.key'), root.keyPem, { mode: 0o600 });
    const joinKey = newJoinKey();
    writeFileSync(join(opts.dir, 'ca', 'join.key'), joinKey, { mode: 0o600 });
    for (let i = 1; i <= opts.nodes; i++) {
      const dir = join(opts.dir, `node${i}`);
      mkdirSync(dir, { recursive: true });
      const netns = Netns.create(nodeNetnsName(prefix, i));
      netns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const node: SimNode = {
        name: `node${i}`,
        index: i,
        netns,
        linkIf: nodeLinkName(prefix, i),
        linkIp: `${LINK_SUBNET}.${i}`,
        podSubnet: nodePodSubnet(i),
        dir,
        conflist: bridgeConflist({
          name: 'meshless-sim',
          cniVersion: '1.0.0',
          bridge: 'mlbr0',
          subnet4: nodePodSubnet(i),
          ipamDataDir: join(dir, 'ipam'),
          meshless: {
            socketPath: join(dir, 'state', 'cni.sock'),
            logFile: join(dir, 'plugin.log'),
            logLevel: 'debug',
          },
        }),
        runtime: new CniRuntime(netns.name, {
          ...(opts.bundles ? { meshlessPlugin: opts.bundles.plugin } : {}),
          ...(opts.pluginsWithoutNode ? { withoutNode: true } : {}),
        }),
        daemon: undefined,
      };
      c.nodes.push(node);
      // What an operator hands the node: a join credential for its name alone.
      const credential = makeJoinCredential({
        node: node.name,
        macKey: joinMacKey(joinKey),
        now: Date.now(),
        ttlMs: 7 * 86_400_000,
      });
      writeFileSync(join(dir, 'join.json'), JSON.stringify(credential, null, 2), { mode: 0o600 });
    }
    const [a, b] = c.nodes;
    if (a && b) {
      sh('ip', [
        'link',
        'add',
        a.linkIf,
        'netns',
        a.netns.name,
        'type',
        'veth',
        'peer',
        b.linkIf,
        'netns',
        b.netns.name,
      ]);
      for (const [n, peer] of [
        [a, b],
        [b, a],
      ] as const) {
        n.netns.exec(['ip', 'addr', 'add', `${n.linkIp}/24`, 'dev', n.linkIf]);
        n.netns.exec(['ip', 'link', 'set', n.linkIf, 'up']);
        n.netns.exec(['ip', 'route', 'add', peer.podSubnet, 'via', peer.linkIp]);
      }
    }
    return c;
  }

  node(name: string): SimNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw simError(`no node ${name}`);
    return n;
  }

  pod(name: string): SimPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw simError(`no pod ${name}`);
    return p;
  }

  /** Where the daemons reach the signer: node1's link address (loopback on a 1-node cluster). */
  get signerAddress(): string {
    const host = this.nodes.length > 1 ? (this.nodes[0]?.linkIp ?? '127.0.0.1') : '127.0.0.1';
    return `${host}:${SIGNER_PORT}`;
  }

  signerConfig(): Record<string, unknown> {
    const ca = join(this.#opts.dir, 'ca');
    return {
      trustDomain: 'cluster.local',
      listen: `0.0.0.0:${SIGNER_PORT}`,
      serverNames: [SIGNER_SERVER_NAME],
      root: { certFile: join(ca, 'root.crt'), keyFile: join(ca, 'root.key') },
      discovery: { file: this.discoveryFile },
      attestation: { joinCredentials: { keyFile: join(ca, 'join.key') } },
      logLevel: 'debug',
    };
  }

  /** Starts the signer (in node1's netns); idempotent while it runs. */
  async startSigner(): Promise<SignerHandle> {
    if (this.signer && this.signer.child.exitCode === null && this.signer.child.signalCode === null)
      return this.signer;
    if (this.pods.length === 0) this.writeDiscovery();
    const node1 = this.nodes[0];
    if (!node1) throw simError('a cluster without nodes has no signer');
    this.signer = await startSignerProcess({
      dir: this.#opts.dir,
      netns: node1.netns.name,
      config: this.signerConfig(),
      ...(this.#opts.bundles ? { bundle: this.#opts.bundles.signer } : {}),
      detached: this.#opts.detachedDaemons ?? false,
    });
    return this.signer;
  }

  /** Stops the signer (SIGKILL by default: a crash). */
  async stopSigner(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const s = this.signer;
    this.signer = undefined;
    await s?.stop(signal);
  }

  daemonConfig(node: SimNode): Record<string, unknown> {
    return {
      nodeName: node.name,
      stateDir: join(node.dir, 'state'),
      discovery: { file: this.discoveryFile },
      // No key that can sign: a join credential and the bundle to verify with.
      signer: {
        address: this.signerAddress,
        serverName: SIGNER_SERVER_NAME,
        trustBundleFile: join(this.#opts.dir, 'ca', 'root.crt'),
        joinCredentialFile: join(node.dir, 'join.json'),
        enrolWaitSeconds: 2,
      },
      logLevel: 'debug',
      // The whole e2e tier can run with another worker count:
      // MESHLESS_DATA_PLANE_WORKERS=1 node scripts/test.mjs e2e.
      ...(process.env['MESHLESS_DATA_PLANE_WORKERS']
        ? { dataPlane: { workers: Number(process.env['MESHLESS_DATA_PLANE_WORKERS']) } }
        : {}),
      ...this.#opts.daemonConfig,
    };
  }

  /** The Services of the cluster (see {@link addService}). */
  readonly services: SimServiceSpec[] = [];

  /** Other API objects discovery lists (policies): see {@link setObjects}. */
  #objects: readonly unknown[] = [];

  /** Nodes, Services and other objects as discovery lists them. */
  discoveryExtras(): DiscoveryExtras {
    return {
      nodes: this.nodes.map((n) => ({ name: n.name, podSubnet: n.podSubnet, ip: n.linkIp })),
      services: this.services,
      objects: this.#objects,
    };
  }

  /**
   * Replaces the other API objects of the discovery file (policies,
   * NetworkPolicies) and rewrites it; the daemons apply it live.
   */
  setObjects(objects: readonly unknown[]): void {
    this.#objects = [...objects];
    this.writeDiscovery();
  }

  /** Writes the discovery file from the current nodes, namespaces, pods and Services. */
  writeDiscovery(): void {
    writeDiscoveryFile(
      this.discoveryFile,
      this.namespaces,
      this.discoveredPods(),
      this.discoveryExtras(),
    );
  }

  discoveredPods(): DiscoveredPod[] {
    return this.pods.map((p) => ({ ...p, node: p.node.name }));
  }

  /**
   * Adds a ClusterIP Service (or replaces the one of that name): published
   * to discovery with an EndpointSlice of its backends, and kube-proxy's
   * DNAT installed in every node, so a client that meshless does not
   * capture reaches a backend the way a real cluster's would.
   */
  async addService(spec: SimServiceSpec): Promise<void> {
    const at = this.services.findIndex(
      (s) => s.name === spec.name && s.namespace === spec.namespace,
    );
    if (at >= 0) this.services.splice(at, 1, spec);
    else this.services.push(spec);
    this.writeDiscovery();
    for (const node of this.nodes)
      applyKubeProxyRules(node.netns, this.services, this.discoveredPods());
    await this.waitForDiscovery();
  }

  /**
   * Waits until every running daemon's discovery shows `addresses` pod IPs
   * and `pods` pods, and its data-plane workers have applied all it holds
   * (a policy the main thread has read decides every new connection).
   */
  async waitForDiscovery(timeoutMs = 10_000): Promise<void> {
    const pods = this.pods.length;
    const addresses = this.pods.filter((p) => p.ip).length;
    const deadline = Date.now() + timeoutMs;
    for (const node of this.nodes) {
      if (!node.daemon) continue;
      for (;;) {
        const r = await callDaemon<StatusResponse>(
          node.daemon.socket,
          'GET',
          '/v1/status',
          undefined,
          1000,
        );
        if (
          r.kind === 'ok' &&
          r.body.discovery.pods === pods &&
          r.body.discovery.addresses === addresses &&
          r.body.discovery.dataPlaneBehind === 0
        )
          break;
        if (Date.now() > deadline)
          throw simError(`${node.name}: the daemon's discovery did not catch up`);
        await new Promise((res) => setTimeout(res, 25));
      }
    }
  }

  /**
   * Starts a node's daemon, and the signer first unless it runs already or
   * `options.signer` is false (a daemon starting while the signer is down).
   */
  async startDaemon(node: SimNode, options: { signer?: boolean } = {}): Promise<DaemonHandle> {
    if (this.pods.length === 0) this.writeDiscovery();
    if (!this.signer && options.signer !== false) await this.startSigner();
    node.daemon = await startDaemonProcess({
      dir: node.dir,
      netns: node.netns.name,
      config: this.daemonConfig(node),
      ...(this.#opts.bundles ? { bundle: this.#opts.bundles.daemon } : {}),
      detached: this.#opts.detachedDaemons ?? false,
      ...(this.#opts.daemonNodeFlags ? { nodeFlags: this.#opts.daemonNodeFlags } : {}),
      ...(this.#opts.daemonNode ? { node: this.#opts.daemonNode } : {}),
    });
    return node.daemon;
  }

  /**
   * Creates pods through the CNI chain of their node, then publishes their
   * IPs to discovery. Throws when a chain fails.
   */
  async addPods(
    specs: readonly { name: string; namespace: string; node: string; serviceAccount?: string }[],
  ): Promise<SimPod[]> {
    const created = await this.declarePods(specs);
    for (const pod of created) {
      const out = this.attachPod(pod);
      if (!out.ok)
        throw simError(
          `CNI ADD of pod ${pod.name} failed: ${JSON.stringify(out.runs.map((r) => [r.type, r.stdout, r.stderr]))}`,
        );
    }
    this.writeDiscovery();
    await this.waitForDiscovery();
    return created;
  }

  /**
   * Makes pods known (netns, discovery: scheduled on their node) without
   * running their CNI ADD yet, as the API server knows a pod before the
   * kubelet sets it up.
   */
  async declarePods(
    specs: readonly { name: string; namespace: string; node: string; serviceAccount?: string }[],
  ): Promise<SimPod[]> {
    const created: SimPod[] = [];
    for (const s of specs) {
      const node = this.node(s.node);
      const netns = Netns.create(podNetnsName(this.#opts.prefix, s.name));
      const containerId = `ctr-${this.#opts.prefix}-${s.name}`;
      const pod: SimPod = {
        name: s.name,
        namespace: s.namespace,
        serviceAccount: s.serviceAccount ?? `sa-${s.name}`,
        node,
        netns,
        ip: undefined,
        attachment: {
          containerId,
          netns: netns.path,
          ifname: 'eth0',
          args: {
            IgnoreUnknown: '1',
            K8S_POD_NAMESPACE: s.namespace,
            K8S_POD_NAME: s.name,
            K8S_POD_UID: `uid-${s.name}`,
            K8S_POD_INFRA_CONTAINER_ID: containerId,
          },
        },
      };
      this.pods.push(pod);
      created.push(pod);
    }
    this.writeDiscovery();
    await this.waitForDiscovery();
    return created;
  }

  /**
   * Runs a declared pod's CNI ADD. On success its IP is set (publish it with
   * writeDiscovery); on failure the chain is torn down (DEL), as the kubelet
   * does before it retries, and the outcome says why (`output.code`).
   */
  attachPod(pod: SimPod): ChainOutcome {
    const out = pod.node.runtime.add(pod.node.conflist, pod.attachment);
    if (!out.ok) {
      pod.node.runtime.del(pod.node.conflist, pod.attachment);
      return out;
    }
    const ips = (out.output?.['ips'] ?? []) as { address: string }[];
    pod.ip = ips[0]?.address.split('/')[0];
    return out;
  }

  async removePod(pod: SimPod): Promise<void> {
    pod.node.runtime.del(pod.node.conflist, pod.attachment);
    pod.netns.destroy();
    this.pods.splice(this.pods.indexOf(pod), 1);
    this.writeDiscovery();
    await this.waitForDiscovery();
  }

  /** Kills every daemon and removes every namespace and link this cluster made. */
  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.daemon?.stop('SIGKILL');
    await this.stopSigner();
    for (const p of this.pods) p.netns.destroy();
    for (const n of this.nodes) n.netns.destroy();
  }
}
