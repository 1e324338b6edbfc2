/**
 * `meshless demo` end to end, as a user runs it: the built CLI brings the
 * demo up (its processes outlive the CLI), every row of the behaviour matrix (docs/reference/behaviour.md)
 * is checked on the capture it made, `status`, `exec` and `label` work on
 * the running demo, and `down` (twice) leaves nothing behind. A state dir
 * and name prefix of its own keep it clear of a user's demo.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DemoStatus } from '../../src/demo/inspect.js';
import { tearDown } from '../../src/demo/lifecycle.js';
import type { TrafficRow } from '../../src/demo/traffic.js';
import { canRunE2e } from '../../src/sim/netns.js';
import { payloadContains, readPcap, tlsHandshakes } from '../../src/sim/pcap.js';
import { processCommandLine } from '../../src/sim/processes.js';

const hasTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status === 0;
const skip =
  canRunE2e() && hasTcpdump ? false : 'needs root, /usr/lib/cni and tcpdump (the e2e tier)';
const CLI = join(process.cwd(), 'dist', 'meshless.js');

describe('meshless demo', { skip, concurrency: false }, () => {
  let parent: string;
  let dir: string;
  const prefix = `mlq${process.pid.toString(36)}`;
  let up: { nodes: DemoStatus['nodes']; pods: DemoStatus['pods']; traffic: TrafficRow[] };
  let pids: number[] = [];

  const demo = (
    ...args: string[]
  ): { status: number; stdout: string; stderr: string; ms: number } => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [CLI, 'demo', ...args], {
      encoding: 'utf8',
      env: { ...process.env, MESHLESS_DEMO_DIR: dir, MESHLESS_DEMO_PREFIX: prefix, NO_COLOR: '1' },
      timeout: 60_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
  };
  const ipOf = (pod: string): string => {
    const ip = up.pods.find((p) => p.name === pod)?.ip;
    assert.ok(ip, `${pod} has an IP`);
    return ip;
  };
  const ourNetns = (): string[] =>
    existsSync('/var/run/netns')
      ? readdirSync('/var/run/netns').filter((n) => n.startsWith(`${prefix}-`))
      : [];

  before(() => {
    if (!existsSync(CLI)) {
      const b = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
      assert.equal(b.status, 0, 'npm run build');
    }
    parent = mkdtempSync(join(tmpdir(), 'meshless-demo-e2e-'));
    dir = join(parent, 'demo');
  });

  after(async () => {
    // Whatever a failed test left behind.
    if (dir) await tearDown({ dir, prefix });
    if (parent) rmSync(parent, { recursive: true, force: true });
  });

  test('up: builds the cluster, checks each row of the behaviour matrix on a capture, and exits leaving it running', () => {
    const r = demo('up', '--json');
    assert.equal(r.status, 0, `demo up failed:\n${r.stderr}\n${r.stdout}`);
    assert.ok(r.ms < 45_000, `demo up took ${r.ms} ms`);
    assert.match(r.stderr, /creating 6 pods through the CNI chain/, 'progress on stderr');
    up = JSON.parse(r.stdout) as typeof up;
    assert.equal(up.traffic.length, 6);
    const row = (src: string, dst: string): TrafficRow => {
      const found = up.traffic.find(
        (t) =>
          t.source.pod === src &&
          t.destination.pod === dst &&
          t.service === undefined &&
          t.expected.deniedBy === undefined,
      );
      assert.ok(found, `row ${src} -> ${dst}`);
      return found;
    };
    for (const t of up.traffic) {
      assert.equal(t.ok, true, `${t.source.pod} -> ${t.destination.pod}: ${t.problems.join('; ')}`);
      if (t.expected.deniedBy !== undefined) continue;
      assert.equal(t.seen.echoed, true);
      assert.equal(t.seen.peerSeen?.split(':')[0], t.source.ip, 'the app sees the real peer');
    }

    const secure = row('web', 'api');
    assert.deepEqual([secure.source.enrolled, secure.destination.enrolled], [true, true]);
    assert.equal(secure.seen.wire, 'mtls-1.3');
    assert.deepEqual(
      secure.seen.tlsVersions.filter((v) => v !== '1.3'),
      [],
    );
    assert.equal(secure.seen.markerOnWire, false);
    const inbound = secure.seen.path.find((s) => s.direction === 'inbound');
    assert.equal(inbound?.node, 'node2');
    assert.equal(inbound?.sourceIdentity, 'spiffe://cluster.local/ns/secure/sa/sa-web');
    assert.equal(inbound?.destinationIdentity, 'spiffe://cluster.local/ns/secure/sa/sa-api');
    // The capture itself, read again here: TLS 1.3 on 15008, the marker never in clear.
    const segments = readPcap(secure.seen.capture);
    assert.equal(payloadContains(segments, secure.marker), false);
    assert.ok(tlsHandshakes(segments, 15008).serverVersions.includes(0x0304));

    // web -> cache: denied at cache's node by the demo's AuthorizationPolicy.
    const denied = up.traffic.find((t) => t.expected.deniedBy !== undefined);
    assert.equal(denied?.ok, true, denied?.problems.join('; '));
    assert.equal(denied.destination.pod, 'cache');
    assert.ok(denied.seen.error, 'the client was reset');
    assert.equal(payloadContains(readPcap(denied.seen.capture), denied.marker), false);
    assert.ok(
      denied.seen.path.some(
        (s) =>
          s.direction === 'inbound' &&
          s.outcome === 'denied' &&
          s.policy === 'AuthorizationPolicy secure/cache-denies-web',
      ),
    );

    // web -> Service api's ClusterIP: meshless picked the backend and tunnelled to it.
    const viaService = up.traffic.find((t) => t.service !== undefined);
    assert.deepEqual(viaService?.service, { name: 'secure/api', address: '10.96.0.10', port: 80 });
    assert.equal(viaService.destination.pod, 'api');
    assert.equal(viaService.seen.markerOnWire, false);
    assert.ok(['mtls-1.3', 'tls-pooled'].includes(viaService.seen.wire), viaService.seen.wire);
    assert.equal(payloadContains(readPcap(viaService.seen.capture), viaService.marker), false);
    assert.ok(viaService.seen.path.some((s) => s.direction === 'inbound' && s.sourceIdentity));

    for (const [src, dst, path] of [
      ['web', 'batch', ['passthrough']],
      ['legacy', 'api', ['inbound-plaintext']],
      ['legacy', 'batch', []],
    ] as const) {
      const t = row(src, dst);
      assert.equal(t.seen.wire, 'plaintext', `${src} -> ${dst}`);
      assert.equal(payloadContains(readPcap(t.seen.capture), t.marker), true);
      assert.equal(tlsHandshakes(readPcap(t.seen.capture), 15008).clientHellos, 0);
      assert.deepEqual([...new Set(t.seen.path.map((s) => s.direction))], [...path]);
    }

    // The processes outlived the CLI.
    const state = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as {
      nodes: { daemonPid: number }[];
      pods: { serverPid: number }[];
    };
    pids = [...state.nodes.map((n) => n.daemonPid), ...state.pods.map((p) => p.serverPid)];
    assert.equal(pids.length, 8);
    for (const pid of pids) assert.ok(processCommandLine(pid)?.includes(dir), `pid ${pid} runs`);
  });

  test('up again refuses while the demo runs', () => {
    const r = demo('up');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /MESHLESS_E_DEMO_RUNNING/);
  });

  test('status: the table and --json', () => {
    const json = demo('status', '--json');
    assert.equal(json.status, 0, json.stderr);
    const s = JSON.parse(json.stdout) as DemoStatus;
    assert.deepEqual(
      s.nodes.map((n) => [n.name, n.netns, n.daemonRunning]),
      [
        ['node1', `${prefix}-node1`, true],
        ['node2', `${prefix}-node2`, true],
      ],
    );
    for (const n of s.nodes) {
      assert.ok(existsSync(n.daemonConfig));
      assert.ok(existsSync(n.daemonLog));
    }
    // The cluster signer is a process of its own, and no daemon config names a signing key.
    assert.equal(s.signer?.running, true);
    assert.ok(existsSync(s.signer?.log ?? ''));
    for (const n of s.nodes)
      assert.doesNotMatch(readFileSync(n.daemonConfig, 'utf8'), /unsafeLocalRoot|\.key"/);
    assert.equal(s.pods.length, 6);
    for (const p of s.pods) {
      assert.equal(typeof p.enrolled, 'boolean');
      assert.equal(p.enrolled, p.namespace === 'secure', p.name);
      assert.equal(p.port, 8080);
      assert.match(p.ip ?? '', /^10\.248\.[12]\.\d+$/);
      assert.equal(p.netns, `${prefix}-pod-${p.name}`);
    }
    assert.deepEqual(new Set(s.pods.map((p) => p.node)), new Set(['node1', 'node2']));
    const table = demo('status');
    assert.equal(table.status, 0);
    assert.match(table.stdout, /^web\s+secure\s+node1\s+10\.248\.1\.\d+\s+yes\s+spiffe:/m);
    assert.match(table.stdout, /^legacy\s+plain\s+node1\s+10\.248\.1\.\d+\s+no\s+-/m);
    assert.match(table.stdout, /^signer \(10\.247\.0\.1:15012\)\s+\S+-node1\s+running/m);
  });

  test('exec: runs in the pod netns and passes the exit code on', () => {
    const addr = demo('exec', 'web', '--', 'ip', '-4', '-br', 'addr', 'show', 'eth0');
    assert.equal(addr.status, 0, addr.stderr);
    assert.ok(addr.stdout.includes(ipOf('web')), addr.stdout);
    assert.equal(demo('exec', 'web', '--', 'sh', '-c', 'exit 3').status, 3);
    const missing = demo('exec', 'nope', '--', 'true');
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /MESHLESS_E_DEMO_NOT_FOUND/);
    if (spawnSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' }).status === 0) {
      const http = demo('exec', 'web', '--', 'curl', '-s', `http://${ipOf('api')}:8080/`);
      assert.match(
        http.stdout,
        new RegExp(
          `^pod: secure/api on node2\\npeer: ${ipOf('web').replaceAll('.', '\\.')}:\\d+\\n$`,
        ),
      );
    }
  });

  test('label plain on/off: the discovery file changes and the daemons enrol and release live', () => {
    const on = demo('label', 'plain', 'on');
    assert.equal(on.status, 0, on.stderr + on.stdout);
    const discovery = readFileSync(join(dir, 'cluster.yaml'), 'utf8');
    const plain = (
      JSON.parse(discovery) as {
        items: { kind: string; metadata: { name: string; labels?: Record<string, string> } }[];
      }
    ).items.find((i) => i.kind === 'Namespace' && i.metadata.name === 'plain');
    assert.deepEqual(plain?.metadata.labels, { 'io.cilium/mtls-enabled': 'true' });
    assert.match(on.stdout, /plain\/batch \(node2\): enrolled/);
    const s = JSON.parse(demo('status', '--json').stdout) as DemoStatus;
    assert.ok(
      s.pods.every((p) => p.enrolled),
      'every pod enrolled',
    );
    const traffic = demo('traffic', '--json');
    assert.equal(traffic.status, 0, traffic.stderr);
    const rows = JSON.parse(traffic.stdout) as TrafficRow[];
    const plainToPlain = rows.find(
      (t) => t.source.pod === 'legacy' && t.destination.pod === 'batch',
    );
    assert.ok(plainToPlain?.ok);
    assert.equal(plainToPlain.seen.markerOnWire, false, 'now over mTLS');

    const off = demo('label', 'plain', 'off');
    assert.equal(off.status, 0, off.stderr + off.stdout);
    const after = JSON.parse(demo('status', '--json').stdout) as DemoStatus;
    assert.deepEqual(
      after.pods
        .filter((p) => p.enrolled)
        .map((p) => p.name)
        .sort(),
      ['api', 'cache', 'web'],
    );
    assert.equal(demo('label', 'nope', 'on').status, 1);
  });

  test('down, twice: nothing is left (netns, links, processes, files)', () => {
    const first = demo('down');
    assert.equal(first.status, 0, first.stderr);
    // 2 daemons, the signer, 6 pod servers.
    assert.match(first.stdout, /Removed 9 processes, 8 network namespaces/);
    const second = demo('down');
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /Nothing to remove/);
    assert.deepEqual(ourNetns(), []);
    const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
    assert.equal(links.includes(prefix), false, 'no link of the demo on the host');
    for (const pid of pids) assert.equal(processCommandLine(pid)?.includes(dir) ?? false, false);
    assert.equal(existsSync(dir), false, 'the state dir is gone');
    assert.equal(demo('status').status, 1, 'status says no demo');
  });
});
