/**
 * Kubelet probes that do not depend on the daemon, real kernel.
 * On a simulated node, a connection from the node's own netns (as
 * the kubelet's probes come) to an enrolled pod is SNATed to 169.254.7.127
 * by the node rule the daemon keeps in step with enrolment, and the pod's
 * rules let it straight to the app: it works with the daemon stopped.
 * Connections from other pods still go through the pod's 15006 (with the
 * daemon stopped they are refused). The rule follows enrolment, survives
 * a restart unchanged, and is removed exactly by `probeSnat: false` and by
 * `meshless cni uninstall`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_SKIP, RUN_TAG, removeTestDir } from '../../support/netns.js';
import { until } from '../../support/until.js';
import { defaultBundles } from '../../../src/sim/bundles.js';
import { startDaemonProcess } from '../../../src/sim/daemon-process.js';
import { exchange, startTestServer, type TestServer } from '../../../src/sim/pod-apps.js';
import { SimCluster, type SimNode } from '../../../src/sim/sim-cluster.js';
import { PROBE_SNAT } from '../../../src/redirect/constants.js';
import { parseIptablesSave } from '../../../src/redirect/iptables-state.js';
import { PROBE_SNAT_CHAIN } from '../../../src/redirect/probe-snat.js';
import { NodeProbeSnat } from '../../../src/redirect/node-probe-snat.js';
import { execaRunner } from '../../../src/exec/command-runner.js';

const skip = E2E_SKIP;
const PORT = 8080;

describe('kubelet probes SNATed on the node', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  let node: SimNode;
  const servers: TestServer[] = [];

  const ip = (pod: string): string => {
    const v = cluster.pod(pod).ip;
    if (!v) throw new Error(`${pod} has no IP`);
    return v;
  };
  /** The pod addresses the node's chain SNATs now; undefined without the chain. */
  const covered = (): string[] | undefined =>
    parseIptablesSave(node.netns.exec(['iptables-save', '-t', 'nat']).stdout)
      .rulesOf('nat', PROBE_SNAT_CHAIN)
      ?.map((r) => /-d ([^/]+)\/32 /.exec(r)?.[1] ?? r)
      .sort();
  const jumps = (): number =>
    parseIptablesSave(node.netns.exec(['iptables-save', '-t', 'nat']).stdout).jumpCount(
      'nat',
      'POSTROUTING',
      PROBE_SNAT_CHAIN,
    );
  /**
   * WHO from a socket of the node's own netns, as the kubelet probes (this
   * test process lives in the host's netns): the peer address the app sees.
   */
  const probeFromNode = async (pod: string): Promise<string> =>
    (
      await promisify(execFile)(
        'ip',
        [
          'netns',
          'exec',
          node.netns.name,
          process.execPath,
          '-e',
          `const s=require('node:net').connect(${PORT},'${ip(pod)}',()=>s.write('WHO\\n'));let d='';` +
            `s.on('data',c=>d+=c);s.on('end',()=>{console.log(d.trim());process.exit(0)});` +
            `s.on('error',e=>{console.log('ERR '+e.code);process.exit(0)});setTimeout(()=>{console.log('ERR timeout');process.exit(0)},8000)`,
        ],
        { encoding: 'utf8' },
      )
    ).stdout
      .trim()
      .split(':')[0] ?? '';
  const restartDaemon = async (config: Record<string, unknown> = {}): Promise<void> => {
    await node.daemon?.stop('SIGTERM');
    const d = join(node.dir, `restart-${Date.now()}`);
    mkdirSync(d, { recursive: true });
    node.daemon = await startDaemonProcess({
      dir: d,
      netns: node.netns.name,
      config: { ...cluster.daemonConfig(node), drainTimeoutSeconds: 1, ...config },
    });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-probes-'));
    cluster = await SimCluster.create({
      dir,
      prefix: RUN_TAG,
      nodes: 1,
      namespaces: { secure: true, plain: false },
    });
    node = cluster.node('node1');
    await cluster.startDaemon(node);
    await cluster.addPods([
      { name: 'app', namespace: 'secure', node: 'node1' },
      { name: 'client', namespace: 'plain', node: 'node1' },
    ]);
    servers.push(await startTestServer(cluster.pod('app').netns.path, PORT));
    servers.push(await startTestServer(cluster.pod('client').netns.path, PORT));
    await until('the probe rule covers the enrolled pod', () => covered()?.[0] === ip('app'));
  });

  after(async () => {
    for (const s of servers) await s.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('the node SNATs only enrolled pods, one jump, one rule each', async () => {
    assert.deepEqual(covered(), [ip('app')]);
    assert.equal(jumps(), 1);
    // What the kernel prints is exactly what we render (the daemon's repair check relies on it).
    const snat = new NodeProbeSnat(execaRunner(), { netnsPath: node.netns.path });
    assert.deepEqual(await snat.verify([ip('app')]), []);
  });

  test('from the node netns the app sees 169.254.7.127; from a pod, the pod (through 15006)', async () => {
    assert.equal(await probeFromNode('app'), PROBE_SNAT[4]);
    assert.match(await probeFromNode('client'), /^10\.248\.1\.\d+$/, 'a plain pod: not SNATed');
    const who = await exchange(cluster.pod('client').netns.path, ip('app'), PORT, 'WHO');
    assert.equal(who.toString().split(':')[0], ip('client'));
    await until('the daemon recorded the pod-to-pod connection on 15006', () =>
      readFileSync(node.daemon?.logFile ?? '', 'utf8')
        .split('\n')
        .some((l) => l.includes('"inbound-plaintext"') && l.includes(`"${ip('client')}"`)),
    );
  });

  test('with the daemon stopped the probe still works; another pod is refused', async () => {
    await node.daemon?.stop('SIGTERM');
    node.daemon = undefined;
    assert.deepEqual(covered(), [ip('app')], 'the rule outlives the daemon');
    assert.equal(await probeFromNode('app'), PROBE_SNAT[4]);
    await assert.rejects(
      exchange(cluster.pod('client').netns.path, ip('app'), PORT, 'WHO', Buffer.alloc(0), 5000),
      /ECONNREFUSED|ECONNRESET|timed out/,
      'pod -> enrolled pod needs the daemon (15006): fail closed',
    );
  });

  test('a restart renders the same set; enrolment and DEL keep it in step', async () => {
    await restartDaemon();
    assert.deepEqual(covered(), [ip('app')]);
    assert.equal(jumps(), 1, 'no second jump after a restart');
    await cluster.addPods([{ name: 'app2', namespace: 'secure', node: 'node1' }]);
    await until('the new pod is covered', () => (covered() ?? []).includes(ip('app2')));
    assert.deepEqual(covered(), [ip('app'), ip('app2')].sort());
    const gone = ip('app2');
    await cluster.removePod(cluster.pod('app2'));
    await until('the deleted pod is not covered', () => !(covered() ?? []).includes(gone));
    assert.deepEqual(covered(), [ip('app')]);
  });

  test('probeSnat: false removes it exactly; back on, it returns', async () => {
    const before = node.netns.exec(['iptables-save', '-t', 'nat']).stdout;
    await restartDaemon({ probeSnat: false });
    assert.equal(covered(), undefined);
    assert.equal(jumps(), 0);
    const foreign = (t: string): string[] =>
      t.split('\n').filter((l) => l.startsWith('-A ') && !l.includes('MESHLESS'));
    assert.deepEqual(
      foreign(node.netns.exec(['iptables-save', '-t', 'nat']).stdout),
      foreign(before),
    );
    const peer = await probeFromNode('app');
    assert.match(peer, /^10\.248\.1\.\d+$/, 'now probes go through the proxy, not SNATed');
    await restartDaemon();
    assert.deepEqual(covered(), [ip('app')]);
  });

  test('meshless cni uninstall on the node removes it, twice without harm', () => {
    const bin = join(dir, 'bin');
    const conf = join(dir, 'conf');
    mkdirSync(bin, { recursive: true });
    mkdirSync(conf, { recursive: true });
    const uninstall = (): string =>
      execFileSync(
        'ip',
        [
          'netns',
          'exec',
          node.netns.name,
          process.execPath,
          defaultBundles().cli,
          'cni',
          'uninstall',
          '--cni-bin-dir',
          bin,
          '--cni-conf-dir',
          conf,
        ],
        { encoding: 'utf8' },
      );
    assert.match(uninstall(), /removed +iptables nat chain MESHLESS_POSTRT/);
    assert.equal(covered(), undefined);
    assert.equal(jumps(), 0);
    assert.doesNotMatch(uninstall(), /MESHLESS_POSTRT/);
  });
});
