/**
 * meshless-cni end to end, real kernel: a simulated node (a netns) runs a
 * real conflist (Debian's bridge + host-local, then dist/meshless-cni) with
 * the daemon on a file discovery source. Pods are network namespaces.
 * Every plugin runs as on a node image without Node.js (PluginPaths.withoutNode:
 * each `node` on PATH hidden in the plugin's mount namespace), as the
 * installed plugin must: it is a self-contained executable (scripts/sea.mjs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainRules } from '../../src/redirect/rules.js';
import { PROBE_SNAT } from '../../src/redirect/constants.js';
import { listenInNetns } from '../../src/netns/socket-in-netns.js';
import { until } from '../support/until.js';
import {
  CniRuntime,
  bridgeConflist,
  execPlugin,
  type Conflist,
  type PodAttachment,
} from '../../src/sim/cni-chain.js';
import { startDaemonProcess, type DaemonHandle } from '../../src/sim/daemon-process.js';
import { RUN_TAG, canRunE2e, netnsSnapshot, testNetns, type Netns } from '../support/netns.js';

const skip = canRunE2e() ? false : 'needs root and /usr/lib/cni (the e2e tier)';

function clusterYaml(node: string): string {
  const pod = (ns: string, name: string) => `
- apiVersion: v1
  kind: Pod
  metadata: {name: ${name}, namespace: ${ns}, uid: uid-${name}}
  spec: {nodeName: ${node}, serviceAccountName: sa-${name}}`;
  return `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: secure, labels: {io.cilium/mtls-enabled: "true"}}
- apiVersion: v1
  kind: Namespace
  metadata: {name: plain}
${pod('secure', 'web')}${pod('secure', 'late')}${pod('plain', 'cache')}${pod('plain', 'batch')}
`;
}

describe('meshless-cni in a real CNI chain', { skip, concurrency: false }, () => {
  let dir: string;
  let node: Netns;
  const pods: Record<string, Netns> = {};
  let daemon: DaemonHandle | undefined;
  let list: Conflist;
  let runtime: CniRuntime;
  const socket = () => join(dir, 'state', 'cni.sock');
  const pod = (name: string): Netns => {
    const ns = pods[name];
    if (ns === undefined) throw new Error(`no pod netns ${name}`);
    return ns;
  };

  const attachment = (name: string, ns: string, netns = pods[name]?.path ?? ''): PodAttachment => ({
    containerId: `ctr-${RUN_TAG}-${name}`,
    netns,
    ifname: 'eth0',
    args: {
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: ns,
      K8S_POD_NAME: name,
      K8S_POD_UID: `uid-${name}`,
      K8S_POD_INFRA_CONTAINER_ID: `ctr-${RUN_TAG}-${name}`,
    },
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-cni-e2e-'));
    node = testNetns('node1');
    for (const p of ['web', 'late', 'cache', 'batch']) pods[p] = testNetns(`pod-${p}`);
    writeFileSync(join(dir, 'cluster.yaml'), clusterYaml('node1'));
    daemon = await startDaemonProcess({
      dir,
      netns: node.name,
      config: {
        nodeName: 'node1',
        stateDir: join(dir, 'state'),
        discovery: { file: join(dir, 'cluster.yaml') },
        unsafeLocalRoot: { generate: true },
        logLevel: 'debug',
      },
    });
    list = bridgeConflist({
      name: 'e2e-net',
      cniVersion: '1.0.0',
      bridge: 'mlbr0',
      subnet4: '10.248.1.0/24',
      subnet6: 'fd00:248:1::/64',
      ipamDataDir: join(dir, 'ipam'),
      meshless: { socketPath: socket(), logFile: join(dir, 'plugin.log'), logLevel: 'debug' },
    });
    runtime = new CniRuntime(node.name, { withoutNode: true });
  });

  after(async () => {
    await daemon?.stop('SIGKILL');
    for (const p of Object.values(pods)) p.destroy();
    node?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an enrolled pod gets the redirect rules, both families, and prevResult unchanged', () => {
    const before = netnsSnapshot(pod('web'));
    const att = attachment('web', 'secure');
    const out = runtime.add(list, att);
    assert.equal(out.ok, true, JSON.stringify(out.runs.map((r) => [r.type, r.stdout, r.stderr])));
    const bridgeResult = out.runs[0]?.json;
    assert.deepEqual(out.output, bridgeResult, 'prevResult passed through unchanged');
    for (const [save, family] of [
      ['iptables-save', 4],
      ['ip6tables-save', 6],
    ] as const) {
      const text = pod('web').exec([save]).stdout;
      for (const table of ['mangle', 'nat'] as const) {
        for (const { chain, rule } of chainRules(family)[table])
          assert.ok(text.includes(`-A ${chain} ${rule}`), `${save} ${table}: ${chain} ${rule}`);
      }
      assert.equal(
        text.match(/-A PREROUTING -j MESHLESS_PRERT/g)?.length,
        2,
        `${save}: one jump per table`,
      );
    }
    assert.match(
      pod('web').exec(['ip', 'rule']).stdout,
      /32764:\s+from all fwmark 0x111\/0xfff lookup 100/,
    );
    // CHECK right after ADD passes.
    const check = runtime.check(list, att);
    assert.equal(check.ok, true, JSON.stringify(check.runs.map((r) => r.stdout)));

    // Our ADD again (the daemon or runtime retrying) leaves one copy of everything.
    const again = execPlugin(
      node.name,
      'ADD',
      att,
      {
        ...list.plugins[1],
        name: list.name,
        cniVersion: list.cniVersion,
        prevResult: bridgeResult,
      },
      { withoutNode: true },
    );
    assert.equal(again.status, 0, again.stdout);
    assert.deepEqual(again.json, bridgeResult);
    const text = pod('web').exec(['iptables-save']).stdout;
    assert.equal(text.match(/-A OUTPUT -j MESHLESS_OUTPUT/g)?.length, 2);
    assert.equal(text.match(/REDIRECT --to-ports 15001/g)?.length, 1);
    assert.equal(
      pod('web')
        .exec(['ip', 'rule'])
        .stdout.match(/fwmark 0x111/g)?.length,
      1,
    );

    // A tampered ruleset fails CHECK with our code.
    pod('web').exec(['iptables', '-t', 'nat', '-F', 'MESHLESS_OUTPUT']);
    const bad = runtime.check(list, att);
    assert.equal(bad.ok, false);
    assert.equal(bad.output?.['code'], 102);
    assert.match(String(bad.output?.['msg']), /not intact/);

    // DEL removes everything of ours; DEL again and DEL without netns succeed.
    assert.equal(runtime.del(list, att).ok, true);
    assert.equal(netnsSnapshot(pod('web')), before, 'netns back to its state before ADD');
    assert.equal(runtime.del(list, att).ok, true);
    assert.equal(runtime.del(list, { ...att, netns: '' }).ok, true);
  });

  test('the node SNATs its own connections to an enrolled dual-stack pod, both families, while it is enrolled', async () => {
    const att = attachment('web', 'secure');
    const out = runtime.add(list, att);
    assert.equal(out.ok, true, JSON.stringify(out.output));
    const ips = ((out.output?.['ips'] ?? []) as { address: string }[]).map(
      (i) => i.address.split('/')[0] ?? '',
    );
    const v4 = ips.find((ip) => !ip.includes(':')) ?? '';
    const v6 = ips.find((ip) => ip.includes(':')) ?? '';
    assert.ok(v4 && v6, `dual stack: ${ips.join(' ')}`);
    const natOf = (save: string): string => node.exec([save, '-t', 'nat']).stdout;
    await until(
      'the node rules cover the pod',
      () =>
        natOf('iptables-save').includes(`-d ${v4}/32 -p tcp -m owner --socket-exists`) &&
        natOf('ip6tables-save').includes(`-d ${v6}/128 -p tcp -m owner --socket-exists`),
    );
    // IPv6 addresses are usable once duplicate address detection is over.
    await until('no tentative IPv6 address on the node or in the pod', () =>
      [node, pod('web')].every((ns) => !/tentative/.test(ns.exec(['ip', '-6', 'addr']).stdout)),
    );
    // The reply to the probe address follows the pod's default route to the
    // node; this conflist gives pods none for IPv6 (a dual-stack CNI does).
    const gw6 = v6.replace(/::[0-9a-f]+$/, '::1');
    pod('web').exec(['ip', '-6', 'route', 'add', 'default', 'via', gw6, 'dev', 'eth0']);
    // The app answers the peer address it sees.
    const server = await listenInNetns({ netnsPath: pod('web').path, host: '::', port: 8080 });
    server.on('connection', (s: Socket) => s.end(`${s.remoteAddress ?? '?'}\n`));
    const fromNode = (host: string): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile(
          'ip',
          [
            'netns',
            'exec',
            node.name,
            process.execPath,
            '-e',
            `const s=require('node:net').connect(8080,process.argv[1]);let d='';` +
              `s.on('data',c=>d+=c);s.on('end',()=>console.log(d.trim()));` +
              `s.on('error',e=>console.log('ERR '+e.code));`,
            host,
          ],
          { timeout: 10_000 },
          (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
        ),
      );
    try {
      assert.equal((await fromNode(v4)).replace(/^::ffff:/, ''), PROBE_SNAT[4]);
      assert.equal(await fromNode(v6), PROBE_SNAT[6]);
    } finally {
      await new Promise((r) => server.close(r));
      pod('web').exec(['ip', '-6', 'route', 'del', 'default']);
    }
    assert.equal(runtime.del(list, att).ok, true);
    await until(
      'the node rules no longer cover the pod',
      () =>
        !natOf('iptables-save').includes(`-d ${v4}/32`) &&
        !natOf('ip6tables-save').includes(`-d ${v6}/128`),
    );
  });

  test('where node is hidden, the script form of the plugin fails and the installed one runs', () => {
    const att = attachment('web', 'secure');
    const config = { ...list.plugins[1], name: list.name, cniVersion: list.cniVersion };
    const script = execPlugin(node.name, 'VERSION', att, config, {
      withoutNode: true,
      meshlessPlugin: join(process.cwd(), 'dist/meshless-cni.js'),
    });
    assert.notEqual(script.status, 0, 'a #!/usr/bin/env node script cannot run there');
    assert.match(script.stderr, /node/);
    const installed = execPlugin(node.name, 'VERSION', att, config, { withoutNode: true });
    assert.equal(installed.status, 0, installed.stderr);
    assert.ok(Array.isArray(installed.json?.['supportedVersions']), installed.stdout);
  });

  test('a pod of a plain namespace is passed through byte-for-byte with no rules', () => {
    const att = attachment('cache', 'plain');
    const out = runtime.add(list, att);
    assert.equal(out.ok, true);
    assert.deepEqual(out.output, out.runs[0]?.json);
    const text =
      pod('cache').exec(['iptables-save']).stdout + pod('cache').exec(['ip6tables-save']).stdout;
    assert.doesNotMatch(text, /MESHLESS/);
    assert.equal(runtime.check(list, att).ok, true);
    assert.equal(runtime.del(list, att).ok, true);
  });

  test('DEL of a pod whose netns is already gone succeeds', () => {
    const gone = testNetns('pod-gone');
    const att = attachment('late', 'secure', gone.path);
    assert.equal(runtime.add(list, att).ok, true);
    gone.destroy();
    const del = runtime.del(list, att);
    // bridge's DEL tolerates a missing netns too (CNI spec: DEL is best effort).
    assert.equal(
      del.runs.find((r) => r.type === 'meshless-cni')?.status,
      0,
      JSON.stringify(del.runs),
    );
  });

  test('with the daemon stopped an enrolled pod fails with 11 and nothing is installed', async () => {
    await daemon?.stop('SIGTERM');
    const att = attachment('late', 'secure');
    const out = runtime.add(list, att);
    assert.equal(out.ok, false);
    assert.equal(out.output?.['code'], 11, JSON.stringify(out.output));
    assert.match(String(out.output?.['msg']), /daemon unreachable/);
    assert.doesNotMatch(pod('late').exec(['iptables-save']).stdout, /MESHLESS/);
    // Without a kubeconfig the plugin cannot tell a plain namespace either: fail closed.
    const plain = runtime.add(list, attachment('batch', 'plain'));
    assert.equal(plain.output?.['code'], 11);
    // The runtime cleans up after a failed ADD; our DEL works with no daemon.
    assert.equal(runtime.del(list, att).runs.find((r) => r.type === 'meshless-cni')?.status, 0);
  });
});
