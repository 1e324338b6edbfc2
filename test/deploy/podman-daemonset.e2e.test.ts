/**
 * The DaemonSet's pod under a real container runtime: `podman kube play` of
 * the pod template of deploy/30-daemonset.yaml and the ConfigMap of
 * deploy/20-configmap.yaml (test/support/daemonset-pod.ts lists the only
 * changes: test host dirs, what the kubelet adds, the sim's discovery/CA),
 * on the image deploy/build-image.sh builds, once per simulated node (the
 * pod's host network is the node's netns). Pods are made through the real
 * CNI chain with node hidden, using the plugin the init container installed.
 *
 * Proves: the declared capabilities, mounts, read-only root and host
 * network are enough for install-cni (plugin + conflist entry + kubeconfig),
 * the daemon (enrolment, listeners in pod netns, mTLS across nodes) and
 * cni-watch (repairs a rewritten conflist).
 * Skips without podman or without the image (run deploy/build-image.sh).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callDaemon } from '../../src/registration/client.js';
import { payloadContains, tlsHandshakes } from '../../src/sim/pcap.js';
import {
  connectAsApp,
  exchange,
  startTestServer,
  type TestServer,
} from '../../src/sim/pod-apps.js';
import { defaultBundles } from '../../src/sim/bundles.js';
import { SimCluster, type SimNode } from '../../src/sim/sim-cluster.js';
import { daemonSetImage, nodePodYaml } from '../support/daemonset-pod.js';
import { E2E_SKIP, RUN_TAG, captureDuring, removeTestDir } from '../support/netns.js';
import { until } from '../support/until.js';

const APP_PORT = 8080;
const execFileAsync = promisify(execFile);
/** runc: Debian's default crun refuses hosts with hybrid (v1 + v2) cgroups. */
const RUNTIME = ['--runtime', process.env['MESHLESS_OCI_RUNTIME'] ?? 'runc'];
const IMAGE = daemonSetImage();

function podmanSkip(): false | string {
  if (E2E_SKIP) return E2E_SKIP;
  if (spawnSync('podman', ['--version']).status !== 0)
    return 'podman is not installed (apt-get install podman)';
  if (spawnSync('podman', ['image', 'exists', IMAGE]).status !== 0)
    return `image ${IMAGE} is not built here (run deploy/build-image.sh)`;
  return false;
}
const skip = podmanSkip();

/**
 * podman's own default rlimits (nofile 1048576, nproc 4194304) exceed what a
 * root without CAP_SYS_RESOURCE may set (sandboxed CI VMs): a containers.conf
 * with the host's nofile limit and a moderate nproc, as a kubelet's runtime
 * would inherit them.
 */
function containersConf(dir: string): string {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  // "Max open files            20000                20000                files"
  const hard = (name: string) =>
    limits
      .split('\n')
      .find((l) => l.startsWith(name))
      ?.split(/\s{2,}/)[2];
  const nofile = hard('Max open files') ?? '1024';
  const file = join(dir, 'containers.conf');
  writeFileSync(
    file,
    `[containers]\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]\n`,
  );
  return file;
}
let podmanEnv: NodeJS.ProcessEnv = process.env;

function podman(args: readonly string[], netns?: string): string {
  const argv =
    netns === undefined
      ? ['podman', ...RUNTIME, ...args]
      : // nsenter, not ip netns exec: that one remounts /sys, hiding the cgroup mounts podman needs.
        ['nsenter', `--net=/var/run/netns/${netns}`, 'podman', ...RUNTIME, ...args];
  const r = spawnSync(argv[0] ?? '', argv.slice(1), {
    encoding: 'utf8',
    timeout: 120_000,
    env: podmanEnv,
  });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

interface NodePod {
  readonly name: string;
  readonly yamlFile: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly logs: ChildProcess;
  readonly logFile: string;
}

describe(
  'the DaemonSet pod under podman, two nodes, the real CNI chain',
  { skip, concurrency: false },
  () => {
    let dir: string;
    let cluster: SimCluster;
    const nodePods = new Map<string, NodePod>();
    const servers: TestServer[] = [];
    const binDir = () => join(dir, 'opt-cni-bin');
    const nodePod = (node: string): NodePod => {
      const p = nodePods.get(node);
      assert.ok(p, `pod of ${node}`);
      return p;
    };
    const ip = (pod: string): string => {
      const v = cluster.pod(pod).ip;
      assert.ok(v, `${pod} has an IP`);
      return v;
    };
    const netns = (pod: string): string => cluster.pod(pod).netns.path;

    /** Plays the node's pod; `revision` names a second one (a surge rollout). */
    async function playNodePod(node: SimNode, revision = ''): Promise<NodePod> {
      const name = `${RUN_TAG}-meshless-${node.name}${revision}`;
      const confDir = join(node.dir, 'net.d');
      const stateDir = join(node.dir, 'state');
      const saDir = join(node.dir, 'serviceaccount');
      const trustBundleDir = join(node.dir, 'trust-bundle');
      const signerTokenDir = join(node.dir, 'signer-token');
      for (const d of [confDir, stateDir, saDir, trustBundleDir, signerTokenDir, binDir()])
        mkdirSync(d, { recursive: true });
      // The bundle the signer publishes as a ConfigMap (the kubelet's copy of it).
      copyFileSync(join(dir, 'ca', 'root.crt'), join(trustBundleDir, 'ca.crt'));
      // The primary CNI's config, as on a node before meshless: our entry removed.
      const primary = {
        ...node.conflist,
        plugins: node.conflist.plugins.filter((p) => p['type'] !== 'meshless-cni'),
      };
      if (revision === '')
        writeFileSync(join(confDir, '10-meshless-sim.conflist'), JSON.stringify(primary, null, 2));
      writeFileSync(join(saDir, 'token'), 'test-token-not-used-while-the-daemon-is-up');
      copyFileSync(join(dir, 'ca', 'root.crt'), join(saDir, 'ca.crt'));
      writeFileSync(join(saDir, 'namespace'), 'meshless-system');
      const yamlFile = join(node.dir, `pod${revision}.yaml`);
      writeFileSync(
        yamlFile,
        nodePodYaml({
          podName: name,
          nodeName: node.name,
          cniBinDir: binDir(),
          cniConfDir: confDir,
          stateDir,
          serviceAccountDir: saDir,
          simDir: dir,
          signerAddress: cluster.signerAddress,
          trustBundleDir,
          signerTokenDir,
        }),
      );
      podman(['kube', 'play', yamlFile], node.netns.name);
      const logFile = join(node.dir, `meshlessd${revision}.log`);
      const log = openSync(logFile, 'a');
      const logs = spawn('podman', ['logs', '-f', `${name}-meshlessd`], {
        stdio: ['ignore', log, log],
      });
      const socket = join(stateDir, 'cni.sock');
      await until(
        `${node.name}: the daemon in the pod answers on its CNI socket`,
        async () => (await callDaemon(socket, 'GET', '/v1/status', undefined, 1000)).kind === 'ok',
        60_000,
        200,
      );
      node.daemon = {
        pid: logs.pid ?? 0,
        child: logs,
        configFile: yamlFile,
        logFile,
        socket,
        stop: async () => {
          podman(['pod', 'rm', '-f', '-t', '5', name]);
          return 0;
        },
      };
      return { name, yamlFile, binDir: binDir(), confDir, stateDir, logs, logFile };
    }

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'meshless-podman-'));
      podmanEnv = { ...process.env, CONTAINERS_CONF: containersConf(dir) };
      cluster = await SimCluster.create({
        dir,
        prefix: RUN_TAG,
        nodes: 2,
        namespaces: { secure: true, plain: false },
        bundles: {
          plugin: join(dir, 'opt-cni-bin', 'meshless-cni'),
          daemon: '/nonexistent',
          cli: '/nonexistent',
          signer: defaultBundles().signer,
        },
        pluginsWithoutNode: true,
      });
      cluster.writeDiscovery();
      // The cluster signer (the Deployment of deploy/40-signer.yaml, as a process).
      await cluster.startSigner();
      for (const n of cluster.nodes) nodePods.set(n.name, await playNodePod(n));
      await cluster.addPods([
        { name: 'a-secure', namespace: 'secure', node: 'node1' },
        { name: 'b-secure', namespace: 'secure', node: 'node2' },
        { name: 'c-plain', namespace: 'plain', node: 'node2' },
        { name: 'd-plain', namespace: 'plain', node: 'node1' },
      ]);
      for (const p of ['a-secure', 'b-secure', 'c-plain', 'd-plain'])
        servers.push(await startTestServer(netns(p), APP_PORT));
    });

    after(async () => {
      for (const s of servers) await s.close();
      for (const p of nodePods.values()) {
        p.logs.kill();
        spawnSync('podman', ['pod', 'rm', '-f', '-t', '0', p.name]);
      }
      await cluster?.destroy();
      removeTestDir(dir);
    });

    test('install-cni installed the plugin binary and appended our entry, as declared', () => {
      // The image's own build of the plugin (its SEA), a ~130 MB ELF executable.
      const bin = join(binDir(), 'meshless-cni');
      assert.equal(statSync(bin).mode & 0o777, 0o755);
      const head = Buffer.alloc(4);
      const fd = openSync(bin, 'r');
      readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      assert.deepEqual([...head], [0x7f, 0x45, 0x4c, 0x46], 'an ELF executable, not a node script');
      for (const node of ['node1', 'node2']) {
        const p = nodePod(node);
        const list = JSON.parse(
          readFileSync(join(p.confDir, '10-meshless-sim.conflist'), 'utf8'),
        ) as {
          plugins: Record<string, unknown>[];
        };
        const ours = list.plugins.at(-1);
        assert.equal(ours?.['type'], 'meshless-cni');
        assert.equal(ours?.['socketPath'], '/var/run/meshless/cni.sock');
        assert.ok(readdirSync(p.confDir).includes('meshless-kubeconfig'));
        assert.equal(statSync(join(p.confDir, 'meshless-kubeconfig')).mode & 0o777, 0o600);
      }
    });

    test('the containers run as declared: read-only root, named capabilities, host network', () => {
      const inspect = JSON.parse(
        podman(['container', 'inspect', `${nodePod('node1').name}-meshlessd`]),
      ) as {
        HostConfig: {
          ReadonlyRootfs: boolean;
          CapAdd: string[] | null;
          NetworkMode: string;
          Privileged: boolean;
        };
        State: { Running: boolean };
      }[];
      const c = inspect[0];
      assert.ok(c);
      assert.equal(c.State.Running, true);
      assert.equal(c.HostConfig.ReadonlyRootfs, true);
      assert.equal(c.HostConfig.Privileged, false);
      assert.equal(c.HostConfig.NetworkMode, 'host');
      const status = readFileSync(
        `/proc/${podmanPid(`${nodePod('node1').name}-meshlessd`)}/status`,
        'utf8',
      );
      const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
      // CAP_NET_ADMIN 12, CAP_NET_RAW 13, CAP_SYS_ADMIN 21, CAP_SYS_PTRACE 19: those and no other.
      assert.equal(
        capEff,
        (1n << 12n) | (1n << 13n) | (1n << 19n) | (1n << 21n),
        capEff.toString(16),
      );
    });

    test('enrolled pods on two nodes talk mutual TLS through the pods; plain is passed through', async () => {
      const marker = `MARKER-${randomBytes(8).toString('hex')}`;
      const { result, segments } = await captureDuring(
        cluster.node('node1'),
        join(dir, 'cap.pcap'),
        () => exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'ECHO', Buffer.from(marker)),
      );
      assert.equal(result.toString(), marker);
      assert.equal(
        payloadContains(segments, marker),
        false,
        'marker crossed the link in plaintext',
      );
      const tls = tlsHandshakes(segments, 15008);
      assert.ok(tls.clientHellos >= 1, 'a TLS ClientHello to 15008');
      assert.ok(tls.serverVersions.includes(0x0304), 'TLS 1.3');
      const who = await exchange(netns('a-secure'), ip('b-secure'), APP_PORT, 'WHO');
      assert.equal(who.toString().split(':')[0], ip('a-secure'));
      const plain = `PLAIN-${randomBytes(6).toString('hex')}`;
      const out = await captureDuring(cluster.node('node1'), join(dir, 'cap2.pcap'), () =>
        exchange(netns('a-secure'), ip('c-plain'), APP_PORT, 'ECHO', Buffer.from(plain)),
      );
      assert.equal(out.result.toString(), plain);
      assert.equal(payloadContains(out.segments, plain), true, 'passthrough is plaintext');
    });

    // The behaviour matrix (docs/reference/behaviour.md), the demo's table, through the pods run from the manifests.
    const table: [string, string, 'mtls' | 'plaintext'][] = [
      ['a-secure', 'b-secure', 'mtls'],
      ['a-secure', 'c-plain', 'plaintext'],
      ['d-plain', 'b-secure', 'plaintext'],
      ['d-plain', 'c-plain', 'plaintext'],
    ];
    for (const [from, to, expected] of table)
      test(`${from} (node1) -> ${to} (node2): ${expected}, delivered, real peer address`, async () => {
        const marker = `ROW-${randomBytes(8).toString('hex')}`;
        const { result, segments } = await captureDuring(
          cluster.node('node1'),
          join(dir, `row-${from}-${to}.pcap`),
          () => exchange(netns(from), ip(to), APP_PORT, 'ECHO', Buffer.from(marker)),
        );
        assert.equal(result.toString(), marker);
        assert.equal(payloadContains(segments, marker), expected === 'plaintext');
        // HBONE (port 15008) carries it, or nothing of ours does (the pooled
        // connection may be reused: no new handshake to look for).
        assert.equal(
          segments.some((x) => x.dstPort === 15008 || x.srcPort === 15008),
          expected === 'mtls',
        );
        const who = await exchange(netns(from), ip(to), APP_PORT, 'WHO');
        assert.equal(who.toString().split(':')[0], ip(from));
      });

    test('readiness answers on the node loopback, where the kubelet probe looks', () => {
      const r = spawnSync(
        'ip',
        ['netns', 'exec', cluster.node('node1').netns.name, 'node', '-e', READY_PROBE],
        { encoding: 'utf8', timeout: 10_000 },
      );
      assert.equal(r.stdout.trim(), '200', r.stderr);
    });

    test('surge rollout on node1: new pod beside the old, old removed; a long transfer and new connections survive', async () => {
      const node1 = cluster.node('node1');
      const old = nodePod('node1');
      const conflist = join(old.confDir, '10-meshless-sim.conflist');
      // The takeover needs tcp_migrate_req in the pod: the daemon in its
      // container set it through the writable mount the manifests declare.
      const migrate = spawnSync(
        'nsenter',
        [`--net=${netns('a-secure')}`, 'sysctl', '-n', 'net.ipv4.tcp_migrate_req'],
        { encoding: 'utf8' },
      );
      assert.equal(migrate.stdout.trim(), '1');
      assert.equal(
        readFileSync(old.logFile, 'utf8').includes('cannot set net.ipv4.tcp_migrate_req'),
        false,
      );
      // A steady stream of new connections.
      let ok = 0;
      const failures: string[] = [];
      let running = true;
      const loop = (async () => {
        while (running) {
          const r = await exchange(
            netns('a-secure'),
            ip('b-secure'),
            APP_PORT,
            'ECHO',
            Buffer.from('rollout'),
            10_000,
          ).then(
            (b) => b.toString(),
            (e: Error) => `failed: ${e.message}`,
          );
          if (r === 'rollout') ok++;
          else failures.push(r);
        }
      })();
      const next = await playNodePod(node1, '-v2');
      nodePods.set('node1', next);
      const log = (p: NodePod) => (existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8') : '');
      await until(
        'the new daemon listening in the pod',
        () => log(next).includes('pod proxy listening'),
        60_000,
        100,
      );
      const before = ok;
      await until('traffic while both pods run', () => ok > before + 20, 30_000, 50);
      // A long transfer through node1's daemon, in flight when the old pod gets
      // SIGTERM (read slowly); the old daemon drains it (drainTimeoutSeconds 25).
      const size = 8 * 1024 * 1024;
      const s = await connectAsApp(netns('a-secure'), ip('b-secure'), APP_PORT);
      let received = 0;
      const transfer = new Promise<number>((resolve, reject) => {
        // Paced by bytes, not reads (their size varies with load): 100 ms
        // after every 512 KiB, about 1.6 s for the whole, well inside the drain.
        let sincePause = 0;
        s.on('data', (c: Buffer) => {
          received += c.length;
          sincePause += c.length;
          if (sincePause < 512 * 1024) return;
          sincePause = 0;
          s.pause();
          setTimeout(() => s.resume(), 100);
        });
        s.on('end', () => resolve(received));
        s.on('error', reject);
      });
      s.end(`SOURCE ${size}\n`);
      await until('transfer under way', () => received > 1024 * 1024, 10_000);
      const atSigterm = received;
      assert.ok(atSigterm < size, 'the transfer is in flight when the old pod stops');
      // The rollout deletes the old pod: SIGTERM, terminationGracePeriodSeconds 30.
      // Asynchronously: this process is the pods' applications too, and must
      // keep reading the transfer the old daemon is draining.
      await execFileAsync('podman', [...RUNTIME, 'pod', 'stop', '-t', '30', old.name], {
        env: podmanEnv,
      });
      podman(['pod', 'rm', '-f', old.name]);
      old.logs.kill();
      await until(
        'the new daemon took over the CNI socket',
        () => log(next).includes('took over from the previous daemon'),
        30_000,
        100,
      );
      const atTakeover = ok;
      await until('traffic after the take-over', () => ok > atTakeover + 20, 30_000, 50);
      running = false;
      await loop;
      assert.equal(await transfer, size, 'the long transfer arrived whole');
      assert.deepEqual(
        failures,
        [],
        `${failures.length} of ${ok + failures.length} new connections failed: ${failures.slice(0, 3).join('; ')}`,
      );
      // cni-watch of the old pod kept our entry (an upgrade, not an uninstall).
      const list = JSON.parse(readFileSync(conflist, 'utf8')) as {
        plugins: Record<string, unknown>[];
      };
      assert.equal(list.plugins.at(-1)?.['type'], 'meshless-cni');
      const ready = spawnSync('nsenter', [`--net=${node1.netns.path}`, 'node', '-e', READY_PROBE], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(ready.stdout.trim(), '200', 'the new daemon answers readiness');
      console.log(
        `rollout: ${ok} new connections, 0 failed; ${size - atSigterm} of ${size} bytes after SIGTERM`,
      );
    });

    test('cni-watch puts our entry back when the primary CNI rewrites its config', async () => {
      const p = nodePod('node2');
      const file = join(p.confDir, '10-meshless-sim.conflist');
      const list = JSON.parse(readFileSync(file, 'utf8')) as { plugins: Record<string, unknown>[] };
      writeFileSync(
        file,
        JSON.stringify({
          ...list,
          plugins: list.plugins.filter((x) => x['type'] !== 'meshless-cni'),
        }),
      );
      await until(
        'the entry re-inserted',
        () =>
          (
            JSON.parse(readFileSync(file, 'utf8')) as { plugins: Record<string, unknown>[] }
          ).plugins.at(-1)?.['type'] === 'meshless-cni',
        30_000,
        200,
      );
    });
  },
);

/** An HTTP GET of the readiness endpoint, printing the status code. */
const READY_PROBE =
  "require('http').get('http://127.0.0.1:15021/healthz/ready', (r) => { console.log(r.statusCode); r.resume(); }).on('error', (e) => { console.log(e.message); })";

function podmanPid(container: string): number {
  return Number(podman(['container', 'inspect', '--format', '{{.State.Pid}}', container]).trim());
}
