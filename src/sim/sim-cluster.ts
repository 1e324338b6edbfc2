/**
 * A simulated Kubernetes cluster on one machine, for end-to-end tests and
 * the demo: each node is a network namespace with a bridge (made by the
 * real bridge plugin), nodes are joined by a veth link and route each
 * other's pod subnets; pods are network namespaces created through the real
 * CNI chain (bridge + host-local, then dist/meshless-cni); each node runs
 * dist/meshlessd.js on a shared file discovery source.
 *
 * Every name it gives the kernel (netns, link) starts with the cluster's
 * `prefix`, so two clusters (a test and a user's demo) never collide.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { generateRootCa } from '../identity/certificate-authority.js';
import { callDaemon } from '../registration/client.js';
import type { StatusResponse } from '../registration/protocol.js';
import type { Bundles } from './bundles.js';
import { CniRuntime, bridgeConflist, type Conflist, type PodAttachment } from './cni-chain.js';
import { startDaemonProcess, type DaemonHandle } from './daemon-process.js';
import { Netns, sh } from './netns.js';

/** The namespace label that enrols (FACTS.md 1). */
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

/** The discovery file (a v1 List of Namespaces and Pods) for these namespaces and pods. Pure. */
export function renderDiscovery(
  namespaces: Readonly<Record<string, boolean>>,
  pods: readonly DiscoveredPod[],
): string {
  const items: unknown[] = [];
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
      metadata: { name: p.name, namespace: p.namespace, uid: `uid-${p.name}` },
      spec: { nodeName: p.node, serviceAccountName: p.serviceAccount },
      status: p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {},
    });
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1);
}

/** Replaces the discovery file atomically (write beside it, then rename). */
export function writeDiscoveryFile(
  file: string,
  namespaces: Readonly<Record<string, boolean>>,
  pods: readonly DiscoveredPod[],
): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, renderDiscovery(namespaces, pods));
  renameSync(tmp, file);
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
        podSubnet: `10.248.${i}.0/24`,
        dir,
        conflist: bridgeConflist({
          name: 'meshless-sim',
          cniVersion: '1.0.0',
          bridge: 'mlbr0',
          subnet4: `10.248.${i}.0/24`,
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

  daemonConfig(node: SimNode): Record<string, unknown> {
    return {
      nodeName: node.name,
      stateDir: join(node.dir, 'state'),
      discovery: { file: this.discoveryFile },
      ca: {
        generate: true,
        certFile: join(this.#opts.dir, 'ca', 'root.crt'),
        keyFile: join(this.#opts.dir, 'ca', 'root.key'),
      },
      logLevel: 'debug',
      ...this.#opts.daemonConfig,
    };
  }

  /** Writes the discovery file from the current namespaces and pods. */
  writeDiscovery(): void {
    writeDiscoveryFile(
      this.discoveryFile,
      this.namespaces,
      this.pods.map((p) => ({ ...p, node: p.node.name })),
    );
  }

  /** Waits until every running daemon's discovery shows `addresses` pod IPs and `pods` pods. */
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
          r.body.discovery.addresses === addresses
        )
          break;
        if (Date.now() > deadline)
          throw simError(`${node.name}: the daemon's discovery did not catch up`);
        await new Promise((res) => setTimeout(res, 25));
      }
    }
  }

  async startDaemon(node: SimNode): Promise<DaemonHandle> {
    if (this.pods.length === 0) this.writeDiscovery();
    node.daemon = await startDaemonProcess({
      dir: node.dir,
      netns: node.netns.name,
      config: this.daemonConfig(node),
      ...(this.#opts.bundles ? { bundle: this.#opts.bundles.daemon } : {}),
      detached: this.#opts.detachedDaemons ?? false,
      ...(this.#opts.daemonNodeFlags ? { nodeFlags: this.#opts.daemonNodeFlags } : {}),
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
    for (const pod of created) {
      const out = pod.node.runtime.add(pod.node.conflist, pod.attachment);
      if (!out.ok)
        throw simError(
          `CNI ADD of pod ${pod.name} failed: ${JSON.stringify(out.runs.map((r) => [r.type, r.stdout, r.stderr]))}`,
        );
      const ips = (out.output?.['ips'] ?? []) as { address: string }[];
      pod.ip = ips[0]?.address.split('/')[0];
    }
    this.writeDiscovery();
    await this.waitForDiscovery();
    return created;
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
    for (const p of this.pods) p.netns.destroy();
    for (const n of this.nodes) n.netns.destroy();
  }
}
