/**
 * containerd's CRI as the runtime: on each of two simulated nodes (netns),
 * Debian's containerd with its own root, state and socket runs the node's
 * CNI chain (bridge + host-local, then dist/meshless-cni) from its bin and
 * conf dirs, with no node on its PATH (as on Kubernetes node images). Pod
 * sandboxes are made through the CRI exactly as the kubelet does
 * (test/support/cri-client.ts), on a pause image built here and imported,
 * no registry. The node daemon runs as in the other e2e tests.
 *
 * Checks: enrolment from the K8S_POD_* arguments containerd passes (the
 * daemon's registration carries the sandbox ID as container ID and the pod's
 * name/namespace), the rules and listeners in the sandbox netns, mutual TLS
 * between two sandboxes on two nodes, and DEL on StopPodSandbox.
 * Skips without containerd, runc, buildah or a C compiler.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callDaemon } from '../../src/registration/client.js';
import type { StatusResponse } from '../../src/registration/protocol.js';
import { chainRules } from '../../src/redirect/rules.js';
import { payloadContains, tlsHandshakes } from '../../src/sim/pcap.js';
import { exchange, startTestServer, type TestServer } from '../../src/sim/pod-apps.js';
import {
  SimCluster,
  writeDiscoveryFile,
  type DiscoveredPod,
  type SimNode,
} from '../../src/sim/sim-cluster.js';
import { CriClient } from '../support/cri-client.js';
import { E2E_SKIP, RUN_TAG, captureDuring, removeTestDir } from '../support/netns.js';
import { until } from '../support/until.js';

const PAUSE_IMAGE = 'localhost/meshless-pause:test';
const APP_PORT = 8080;

function missing(): false | string {
  if (E2E_SKIP) return E2E_SKIP;
  for (const [bin, pkg] of [
    ['containerd', 'containerd'],
    ['ctr', 'containerd'],
    ['runc', 'runc'],
    ['buildah', 'buildah'],
    ['cc', 'gcc'],
  ] as const)
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
      return `${bin} is not installed (apt-get install ${pkg})`;
  return false;
}
const skip = missing();

function run(argv: readonly string[]): string {
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/** A PATH dir with every command of /usr/bin but node (node images have none). */
function pathWithoutNode(dir: string): string {
  const bin = join(dir, 'bin-without-node');
  mkdirSync(bin, { recursive: true });
  for (const name of readdirSync('/usr/bin'))
    if (name !== 'node' && name !== 'nodejs') symlinkSync(join('/usr/bin', name), join(bin, name));
  return `${bin}:/usr/sbin:/sbin`;
}

/** The pause image: a static binary that waits for a signal, imported with ctr. */
function buildPauseImage(dir: string): string {
  const src = join(dir, 'pause.c');
  writeFileSync(
    src,
    '#include <signal.h>\n#include <unistd.h>\n' +
      'static void done(int s) { (void)s; _exit(0); }\n' +
      'int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }\n',
  );
  run(['cc', '-static', '-O2', '-o', join(dir, 'pause'), src]);
  const ctr = run(['buildah', 'from', 'scratch']).trim();
  try {
    run(['buildah', 'copy', ctr, join(dir, 'pause'), '/pause']);
    run(['buildah', 'config', '--entrypoint', '["/pause"]', ctr]);
    run(['buildah', 'commit', '--quiet', ctr, PAUSE_IMAGE]);
  } finally {
    spawnSync('buildah', ['rm', ctr]);
  }
  const tar = join(dir, 'pause.tar');
  run(['buildah', 'push', '--quiet', PAUSE_IMAGE, `docker-archive:${tar}:${PAUSE_IMAGE}`]);
  return tar;
}

interface ContainerdNode {
  readonly node: SimNode;
  readonly socket: string;
  readonly child: ChildProcess;
  readonly cri: CriClient;
}

function containerdConfig(root: string, binDir: string, confDir: string): string {
  return `version = 2
root = "${root}/root"
state = "${root}/state"
[grpc]
  address = "${root}/containerd.sock"
[ttrpc]
  address = "${root}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Sandboxes get oom_score_adj -998, which needs CAP_SYS_RESOURCE; CI VMs
  # may withhold it from root (runc then fails "can't get final child's PID").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${binDir}"
    conf_dir = "${confDir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`;
}

describe(
  'containerd CRI runs the CNI chain with meshless-cni, two nodes',
  { skip, concurrency: false },
  () => {
    let dir: string;
    let cluster: SimCluster;
    let pauseTar: string;
    const nodes = new Map<string, ContainerdNode>();
    const pods: DiscoveredPod[] = [];
    const sandboxes = new Map<string, { id: string; node: string; ip: string; netns: string }>();
    const servers: TestServer[] = [];

    const publish = async (): Promise<void> => {
      writeDiscoveryFile(cluster.discoveryFile, cluster.namespaces, pods);
      const want = { pods: pods.length, addresses: pods.filter((p) => p.ip).length };
      for (const n of cluster.nodes) {
        const socket = n.daemon?.socket;
        assert.ok(socket);
        await until(
          `${n.name}: discovery shows ${JSON.stringify(want)}`,
          async () => {
            const r = await callDaemon<StatusResponse>(
              socket,
              'GET',
              '/v1/status',
              undefined,
              1000,
            );
            return (
              r.kind === 'ok' &&
              r.body.discovery.pods === want.pods &&
              r.body.discovery.addresses === want.addresses
            );
          },
          10_000,
          25,
        );
      }
    };

    async function startContainerd(node: SimNode, path: string): Promise<ContainerdNode> {
      const root = join(dir, `containerd-${node.name}`);
      const binDir = join(root, 'cni-bin');
      const confDir = join(root, 'cni-conf');
      for (const d of [root, binDir, confDir]) mkdirSync(d, { recursive: true });
      for (const p of ['bridge', 'host-local', 'loopback'])
        symlinkSync(join('/usr/lib/cni', p), join(binDir, p));
      symlinkSync(join(process.cwd(), 'dist', 'meshless-cni'), join(binDir, 'meshless-cni'));
      writeFileSync(
        join(confDir, '10-meshless-sim.conflist'),
        JSON.stringify(node.conflist, null, 2),
      );
      const cfg = join(root, 'config.toml');
      writeFileSync(cfg, containerdConfig(root, binDir, confDir));
      const log = openSync(join(root, 'containerd.log'), 'a');
      // nsenter, not ip netns exec: containerd must mount the sandboxes' netns
      // in the host's mount namespace, where the daemon opens them.
      const child = spawn('nsenter', [`--net=${node.netns.path}`, 'containerd', '--config', cfg], {
        env: { PATH: path },
        stdio: ['ignore', log, log],
      });
      const socket = join(root, 'containerd.sock');
      await until('containerd socket', () => existsSync(socket), 30_000, 100);
      run(['ctr', '--address', socket, '-n', 'k8s.io', 'images', 'import', pauseTar]);
      const cri = new CriClient(socket);
      await until(
        'the CRI answers',
        async () => {
          try {
            await cri.version();
            return true;
          } catch {
            return false;
          }
        },
        30_000,
        200,
      );
      return { node, socket, child, cri };
    }

    async function runSandbox(name: string, namespace: string, nodeName: string): Promise<void> {
      const c = nodes.get(nodeName);
      assert.ok(c);
      pods.push({ name, namespace, node: nodeName, serviceAccount: `sa-${name}`, ip: undefined });
      await publish();
      const id = await c.cri.runPodSandbox(
        { name, namespace, uid: `uid-${name}` },
        join(dir, 'logs', name),
      );
      const st = await c.cri.status(id);
      assert.equal(st.state, 'SANDBOX_READY');
      assert.ok(st.ip, `${name} has an IP`);
      assert.ok(st.netnsPath, `${name}: containerd reports its netns`);
      sandboxes.set(name, { id, node: nodeName, ip: st.ip, netns: st.netnsPath });
      const i = pods.findIndex((p) => p.name === name);
      const known = pods[i];
      assert.ok(known);
      pods[i] = { ...known, ip: st.ip };
      await publish();
    }
    const sandbox = (name: string) => {
      const s = sandboxes.get(name);
      assert.ok(s, name);
      return s;
    };
    const registrations = (
      node: string,
    ): { containerId: string; namespace: string; podName: string; enrolled: boolean }[] =>
      JSON.parse(readFileSync(join(cluster.node(node).dir, 'state', 'registrations.json'), 'utf8'))
        .registrations ?? [];

    before(async () => {
      dir = mkdtempSync(join('/var/tmp', 'meshless-cri-'));
      pauseTar = buildPauseImage(dir);
      cluster = await SimCluster.create({
        dir,
        prefix: RUN_TAG,
        nodes: 2,
        namespaces: { secure: true, plain: false },
      });
      cluster.writeDiscovery();
      for (const n of cluster.nodes) await cluster.startDaemon(n);
      const path = pathWithoutNode(dir);
      assert.notEqual(
        spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: path } }).status,
        0,
        'no node on containerd PATH',
      );
      for (const n of cluster.nodes) nodes.set(n.name, await startContainerd(n, path));
      await runSandbox('a-secure', 'secure', 'node1');
      await runSandbox('b-secure', 'secure', 'node2');
      await runSandbox('c-plain', 'plain', 'node2');
      for (const p of ['a-secure', 'b-secure', 'c-plain'])
        servers.push(await startTestServer(sandbox(p).netns, APP_PORT));
    });

    after(async () => {
      for (const s of servers) await s.close();
      for (const [name, s] of sandboxes) {
        const c = nodes.get(s.node);
        await c?.cri.stopPodSandbox(s.id).catch(() => undefined);
        await c?.cri.removePodSandbox(s.id).catch(() => undefined);
        sandboxes.delete(name);
      }
      for (const c of nodes.values()) {
        c.cri.close();
        c.child.kill('SIGTERM');
        await new Promise((r) => (c.child.exitCode === null ? c.child.once('exit', r) : r(null)));
        spawnSync('umount', ['-R', join(dir, `containerd-${c.node.name}`, 'root')]);
        spawnSync('umount', ['-R', join(dir, `containerd-${c.node.name}`, 'state')]);
      }
      await cluster?.destroy();
      spawnSync('buildah', ['rmi', PAUSE_IMAGE]);
      removeTestDir(dir);
    });

    test('enrolment from the K8S_POD_* arguments containerd passes', () => {
      const regs = registrations('node1');
      const a = regs.find((r) => r.podName === 'a-secure');
      assert.ok(a, JSON.stringify(regs));
      assert.equal(
        a.containerId,
        sandbox('a-secure').id,
        'K8S_POD_INFRA_CONTAINER_ID / CNI_CONTAINERID',
      );
      assert.equal(a.namespace, 'secure');
      assert.equal(a.enrolled, true);
      const c = registrations('node2').find((r) => r.podName === 'c-plain');
      assert.equal(c?.enrolled, false);
    });

    test('rules and listeners in the sandbox netns', () => {
      const ns = sandbox('a-secure').netns;
      const rules = run(['nsenter', `--net=${ns}`, 'iptables-save']);
      for (const table of ['mangle', 'nat'] as const)
        for (const { chain, rule } of chainRules(4)[table])
          assert.ok(rules.includes(`-A ${chain} ${rule}`), `${table}: ${chain} ${rule}`);
      const listening = run(['nsenter', `--net=${ns}`, 'ss', '-Hltn']);
      for (const port of [15001, 15006, 15008]) assert.match(listening, new RegExp(`:${port}\\b`));
      const plain = run(['nsenter', `--net=${sandbox('c-plain').netns}`, 'iptables-save']);
      assert.equal(plain.includes('MESHLESS'), false, 'nothing of ours in a plain pod');
    });

    test('mutual TLS between two sandboxes on two nodes; plain passed through', async () => {
      const marker = `MARKER-${randomBytes(8).toString('hex')}`;
      const { result, segments } = await captureDuring(
        cluster.node('node1'),
        join(dir, 'cap.pcap'),
        () =>
          exchange(
            sandbox('a-secure').netns,
            sandbox('b-secure').ip,
            APP_PORT,
            'ECHO',
            Buffer.from(marker),
          ),
      );
      assert.equal(result.toString(), marker);
      assert.equal(
        payloadContains(segments, marker),
        false,
        'marker crossed the link in plaintext',
      );
      const tls = tlsHandshakes(segments, 15008);
      assert.ok(tls.clientHellos >= 1);
      assert.ok(tls.serverVersions.includes(0x0304), 'TLS 1.3');
      const who = await exchange(
        sandbox('a-secure').netns,
        sandbox('b-secure').ip,
        APP_PORT,
        'WHO',
      );
      assert.equal(who.toString().split(':')[0], sandbox('a-secure').ip);
      const m2 = `PLAIN-${randomBytes(6).toString('hex')}`;
      const out = await captureDuring(cluster.node('node1'), join(dir, 'cap2.pcap'), () =>
        exchange(
          sandbox('a-secure').netns,
          sandbox('c-plain').ip,
          APP_PORT,
          'ECHO',
          Buffer.from(m2),
        ),
      );
      assert.equal(out.result.toString(), m2);
      assert.equal(payloadContains(out.segments, m2), true);
    });

    test('StopPodSandbox runs DEL: the registration goes; RemovePodSandbox succeeds', async () => {
      const s = sandbox('b-secure');
      const c = nodes.get('node2');
      assert.ok(c);
      assert.ok(registrations('node2').some((r) => r.containerId === s.id));
      await c.cri.stopPodSandbox(s.id);
      await until(
        'the registration removed',
        () => !registrations('node2').some((r) => r.containerId === s.id),
        10_000,
        50,
      );
      await c.cri.stopPodSandbox(s.id); // the kubelet may stop twice
      await c.cri.removePodSandbox(s.id);
      sandboxes.delete('b-secure');
    });
  },
);
