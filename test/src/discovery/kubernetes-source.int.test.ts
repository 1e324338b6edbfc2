/**
 * The Kubernetes discovery source against the API server test double
 * (test/support/fake-kube-apiserver.ts), which speaks the real list/watch
 * protocol over loopback HTTP: initial sync, live events, bookmarks,
 * dropped watches, 410 Gone, an API that is down at start, resync, and a
 * close() that lets the process exit. Every wait is on an observable
 * condition with a bounded timeout; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { buildServiceIndex } from '../../../src/proxy/service-index.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { ClusterSnapshot, PodInfo } from '../../../src/discovery/cluster-state.js';
import {
  KubernetesDiscoverySource,
  type KubernetesSourceOptions,
} from '../../../src/discovery/kubernetes-source.js';
import { MeshlessError } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import {
  FakeKubeApiServer,
  namespaceObject,
  podObject,
  writeKubeconfig,
  type RecordedRequest,
} from '../../support/fake-kube-apiserver.js';

/** One watch per resource the source informs on (namespaces, pods, nodes, services, endpointslices, networkpolicies, authorizationpolicies, peerauthentications; ServiceCIDRs are not served: 404, none). */
const ALL_WATCHES = 8;
const WAIT_MS = 5000;
const TOKEN = 'daemon-token';

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function recorder(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ level, fields, msg });
    };
  const log: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
  };
  return log;
}

/** Counts snapshots and waits for one that satisfies a condition. */
class Changes {
  count = 0;
  readonly #waiters = new Set<(s: ClusterSnapshot) => void>();
  readonly #source: KubernetesDiscoverySource;

  constructor(source: KubernetesDiscoverySource) {
    this.#source = source;
    source.onChange((s) => {
      this.count += 1;
      for (const w of [...this.#waiters]) w(s);
    });
  }

  /** Resolves with the current or next snapshot where `pred` holds; rejects after WAIT_MS. */
  until(pred: (s: ClusterSnapshot) => boolean, what: string): Promise<ClusterSnapshot> {
    const now = this.#source.snapshot();
    if (pred(now)) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no snapshot with ${what} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      const check = (s: ClusterSnapshot): void => {
        if (!pred(s)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(s);
      };
      this.#waiters.add(check);
    });
  }
}

/** `p`, or a rejection after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const lists = (r: readonly RecordedRequest[], resource?: string): RecordedRequest[] =>
  r.filter(
    (q) => !q.watch && q.status === 200 && (resource === undefined || q.resource === resource),
  );

/** The cluster every test starts from. */
function seed(api: FakeKubeApiServer): void {
  api.put('namespaces', namespaceObject('secure', { 'example.com/mtls': 'on', team: 'a' }));
  api.put('namespaces', namespaceObject('plain', { team: 'b' }));
  api.put('namespaces', namespaceObject('kube-system'));
  api.put(
    'pods',
    podObject({
      namespace: 'secure',
      name: 'web',
      serviceAccount: 'web',
      nodeName: 'node-a',
      ips: ['10.0.0.5', 'fd00::5'],
      labels: { app: 'web' },
    }),
  );
  api.put(
    'pods',
    podObject({
      namespace: 'secure',
      name: 'db',
      serviceAccount: 'db',
      nodeName: 'node-b',
      ips: ['10.0.1.7'],
    }),
  );
  // Only the legacy podIP field, and no service account: "default".
  const batch = podObject({
    namespace: 'plain',
    name: 'batch',
    nodeName: 'node-a',
    ips: ['10.0.0.9'],
  });
  delete (batch['spec'] as Record<string, unknown>)['serviceAccountName'];
  delete (batch['status'] as Record<string, unknown>)['podIPs'];
  api.put('pods', batch);
  api.put(
    'pods',
    podObject({
      namespace: 'kube-system',
      name: 'kube-proxy-x',
      serviceAccount: 'kube-proxy',
      nodeName: 'node-b',
      hostNetwork: true,
      ips: ['192.168.1.11'],
    }),
  );
  // Not yet scheduled: no node, no IP.
  api.put('pods', podObject({ namespace: 'plain', name: 'pending' }));
}

const pod = (s: ClusterSnapshot, key: string): PodInfo | undefined => s.pods.get(key);

describe('KubernetesDiscoverySource against the API server test double', () => {
  let dir: string;
  let api: FakeKubeApiServer;
  let kubeconfig: string;
  let source: KubernetesDiscoverySource;
  let changes: Changes;
  let logs: LogLine[];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-kube-source-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    api = await FakeKubeApiServer.start({ token: TOKEN });
    kubeconfig = writeKubeconfig(dir, api.url, TOKEN);
    seed(api);
    logs = [];
  });

  afterEach(async () => {
    source?.close();
    await api.close();
  });

  function makeSource(extra: Partial<KubernetesSourceOptions> = {}): KubernetesDiscoverySource {
    source = new KubernetesDiscoverySource({
      kubeconfig,
      log: recorder(logs),
      backoff: { initialMs: 20, maxMs: 200 },
      debounceMs: 20,
      pageSize: 2,
      resyncMs: 0,
      watchTimeoutSeconds: [60, 60],
      ...extra,
    });
    changes = new Changes(source);
    return source;
  }

  it('syncs namespaces and pods (paged lists) into the workload model', async () => {
    const s = makeSource();
    assert.equal(s.synced, false);
    await within(s.start(), WAIT_MS, 'start');
    assert.equal(s.synced, true);
    const snap = s.snapshot();
    assert.deepEqual(
      [...snap.namespaces.values()].sort((a, b) => a.name.localeCompare(b.name)),
      [
        { name: 'kube-system', labels: {} },
        { name: 'plain', labels: { team: 'b' } },
        { name: 'secure', labels: { 'example.com/mtls': 'on', team: 'a' } },
      ],
    );
    assert.deepEqual(pod(snap, 'secure/web'), {
      namespace: 'secure',
      name: 'web',
      uid: 'uid-secure-web',
      labels: { app: 'web' },
      serviceAccount: 'web',
      nodeName: 'node-a',
      hostNetwork: false,
      ips: ['10.0.0.5', 'fd00::5'],
      containerPorts: {},
    });
    assert.equal(pod(snap, 'secure/db')?.nodeName, 'node-b');
    assert.deepEqual(pod(snap, 'plain/batch')?.ips, ['10.0.0.9']);
    assert.equal(pod(snap, 'plain/batch')?.serviceAccount, 'default');
    assert.equal(pod(snap, 'kube-system/kube-proxy-x')?.hostNetwork, true);
    assert.deepEqual(pod(snap, 'plain/pending'), {
      namespace: 'plain',
      name: 'pending',
      uid: 'uid-plain-pending',
      labels: {},
      serviceAccount: 'default',
      nodeName: undefined,
      hostNetwork: false,
      ips: [],
      containerPorts: {},
    });
    assert.equal(snap.pods.size, 5);
    // Five pods in pages of two: the continue token was followed, all nodes' pods are in.
    const podLists = lists(api.requests, 'pods');
    assert.equal(podLists.length, 3);
    assert.ok(podLists.slice(1).every((r) => (r.query['continue'] ?? '') !== ''));
    // Every request carried the token (the double answers 401 otherwise).
    assert.ok(api.requests.every((r) => r.status !== 401));
    // Watches ask for bookmarks and a server-side timeout.
    await api.waitForOpenWatches(ALL_WATCHES);
    const watch = api.requests.find((r) => r.watch);
    assert.equal(watch?.query['allowWatchBookmarks'], 'true');
    assert.equal(watch?.query['timeoutSeconds'], '60');
  });

  it('by default, one snapshot per event-loop turn that keeps what did not change', async () => {
    const s = makeSource({ debounceMs: 0 });
    await within(s.start(), WAIT_MS, 'start');
    const first = s.snapshot();
    const web = first.pods.get('secure/web');
    assert.ok(web);
    // Two pods written in one turn: one watch chunk or two, never a snapshot per pod beyond that.
    api.put(
      'pods',
      podObject({ namespace: 'plain', name: 'n1', nodeName: 'node-b', ips: ['10.0.0.61'] }),
    );
    api.put(
      'pods',
      podObject({ namespace: 'plain', name: 'n2', nodeName: 'node-b', ips: ['10.0.0.62'] }),
    );
    const next = await changes.until((x) => x.pods.has('plain/n2'), 'the two new pods');
    assert.ok(next.pods.has('plain/n1'));
    assert.ok(changes.count <= 2, `${changes.count} snapshots for two pods`);
    // Only the pods map is new; every other kind and every unchanged pod is the same object.
    assert.notEqual(next.pods, first.pods);
    assert.equal(next.pods.get('secure/web'), web);
    for (const k of [
      'namespaces',
      'nodes',
      'services',
      'endpointSlices',
      'networkPolicies',
    ] as const)
      assert.equal(next[k], first[k], k);
  });

  it('syncs NetworkPolicies, AuthorizationPolicies and PeerAuthentications; an L7 field turns a policy into a DENY live', async () => {
    api.put('networkpolicies', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'web', namespace: 'secure' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [{ ports: [{ port: 15008 }] }],
      },
    });
    const authz = {
      apiVersion: 'security.meshless.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-a', namespace: 'secure' },
      spec: { rules: [{ from: [{ source: { namespaces: ['secure'] } }] }] },
    };
    api.put('authorizationpolicies', authz);
    api.put('peerauthentications', {
      apiVersion: 'security.meshless.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: 'mesh', namespace: 'meshless-system' },
      spec: { mtls: { mode: 'STRICT' } },
    });
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    const snap = s.snapshot();
    assert.deepEqual(snap.networkPolicies.get('secure/web')?.ingress[0]?.ports[0]?.port, 15008);
    assert.equal(snap.authorizationPolicies.get('secure/allow-a')?.action, 'ALLOW');
    assert.equal(snap.peerAuthentications.get('meshless-system/mesh')?.mode, 'STRICT');
    await api.waitForOpenWatches(ALL_WATCHES);
    api.update('authorizationpolicies', 'secure/allow-a', (o) =>
      Object.assign(o, {
        spec: { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
      }),
    );
    const next = await changes.until(
      (x) => x.authorizationPolicies.get('secure/allow-a')?.action === 'DENY',
      'the policy turned DENY',
    );
    assert.equal(
      next.authorizationPolicies.get('secure/allow-a')?.unsupported,
      'spec.rules[0].to[0].operation.methods',
    );
  });

  it('syncs Nodes, Services and EndpointSlices; a new backend reaches the Service index live', async () => {
    api.put('nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-a' },
      spec: { podCIDRs: ['10.0.0.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.1.11' }] },
    });
    api.put('services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'secure' },
      spec: { clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    const slice = (addresses: string[]): Record<string, unknown> => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'web-1',
        namespace: 'secure',
        labels: { 'kubernetes.io/service-name': 'web' },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    });
    api.put('endpointslices', slice(['10.0.0.5']));
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    const snap = s.snapshot();
    assert.deepEqual(snap.nodes.get('node-a')?.podCidrs, ['10.0.0.0/24']);
    // The double does not serve ServiceCIDR (as API servers before 1.33): none, and synced anyway.
    assert.equal(snap.serviceCidrs.size, 0);
    assert.ok(logs.some((l) => l.level === 'info' && /does not serve ServiceCIDR/.test(l.msg)));
    await api.waitForOpenWatches(ALL_WATCHES);
    const backends = (x: typeof snap): string[] =>
      (buildServiceIndex(x).frontend('10.96.0.5', 80)?.backends ?? []).map(
        (b) => `${b.address}:${b.port}`,
      );
    assert.deepEqual(backends(snap), ['10.0.0.5:8080']);
    api.update('endpointslices', 'secure/web-1', (o) =>
      Object.assign(o, slice(['10.0.0.5', '10.0.0.6'])),
    );
    const next = await changes.until((x) => backends(x).length === 2, 'the second backend');
    assert.deepEqual(backends(next), ['10.0.0.5:8080', '10.0.0.6:8080']);
  });

  it('logs and skips malformed objects, in the list and in watch events', async () => {
    api.putRaw('pods', 'bad/one', { metadata: { name: 'one', namespace: 7 } });
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    assert.equal(s.snapshot().pods.size, 5);
    api.putRaw('pods', 'bad/two', { metadata: { namespace: 'x' } });
    api.put('pods', podObject({ namespace: 'plain', name: 'after', ips: ['10.0.0.30'] }));
    await changes.until((x) => x.pods.has('plain/after'), 'plain/after');
    assert.equal(s.snapshot().pods.size, 6);
    const skipped = logs.filter((l) => l.level === 'warn' && l.msg === 'skipping malformed Pod');
    assert.equal(skipped.length, 2);
    assert.match(String(skipped[0]?.fields['error']), /metadata\.namespace/);
  });

  it('applies ADDED, MODIFIED and DELETED live, one snapshot per burst', async () => {
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    const before = s.snapshot();

    api.update('namespaces', 'plain', (o) => {
      (o.metadata['labels'] as Record<string, string>)['example.com/mtls'] = 'on';
    });
    await changes.until(
      (x) => x.namespaces.get('plain')?.labels['example.com/mtls'] === 'on',
      'the new label on plain',
    );
    // Snapshots are immutable: the one taken before did not change.
    assert.equal(before.namespaces.get('plain')?.labels['example.com/mtls'], undefined);

    api.put(
      'pods',
      podObject({
        namespace: 'plain',
        name: 'new',
        serviceAccount: 'n',
        nodeName: 'node-c',
        ips: ['10.0.2.2'],
      }),
    );
    await changes.until((x) => pod(x, 'plain/new')?.nodeName === 'node-c', 'plain/new');

    api.update('pods', 'plain/pending', (o) => {
      (o['spec'] as Record<string, unknown>)['nodeName'] = 'node-a';
      (o['status'] as Record<string, unknown>)['podIPs'] = [{ ip: '10.0.0.44' }];
    });
    await changes.until(
      (x) => pod(x, 'plain/pending')?.ips[0] === '10.0.0.44',
      'pending scheduled',
    );

    api.delete('pods', 'secure/db');
    await changes.until((x) => !x.pods.has('secure/db'), 'secure/db deleted');
    api.delete('namespaces', 'kube-system');
    await changes.until((x) => !x.namespaces.has('kube-system'), 'kube-system deleted');

    // A burst of 40 writes is coalesced into a few snapshots.
    const countBefore = changes.count;
    for (let i = 0; i < 40; i++)
      api.put('pods', podObject({ namespace: 'plain', name: `burst-${i}`, ips: [`10.1.0.${i}`] }));
    await changes.until(
      (x) => x.pods.has('plain/burst-39') && x.pods.has('plain/burst-0'),
      'the burst',
    );
    const snapshotsForBurst = changes.count - countBefore;
    assert.ok(snapshotsForBurst <= 4, `${snapshotsForBurst} snapshots for one burst`);

    // A MODIFIED that leaves the model alone (a status condition) yields no snapshot;
    // the change after it does, and is the only one.
    const countQuiet = changes.count;
    api.update('pods', 'plain/new', (o) => {
      (o['status'] as Record<string, unknown>)['conditions'] = [{ type: 'Ready', status: 'False' }];
    });
    api.update('namespaces', 'plain', (o) => {
      (o.metadata['labels'] as Record<string, string>)['marker'] = '1';
    });
    await changes.until((x) => x.namespaces.get('plain')?.labels['marker'] === '1', 'marker');
    assert.equal(changes.count, countQuiet + 1);
  });

  it('resumes from a BOOKMARK resourceVersion, so a compaction does not force a relist', async () => {
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    await api.waitForOpenWatches(ALL_WATCHES);
    // Pod writes move the cluster's resourceVersion; the namespaces watch sees none of them.
    for (let i = 0; i < 3; i++) api.put('pods', podObject({ namespace: 'plain', name: `p${i}` }));
    await changes.until((x) => x.pods.has('plain/p2'), 'plain/p2');
    const bookmarkRv = api.resourceVersion;
    api.bookmark('namespaces');
    api.compact();
    const seen = api.requests.length;
    // A clean end, as the server's watch timeout does: the bookmark line is read first.
    api.endWatches('namespaces');
    await api.waitForRequests((r) =>
      r.slice(seen).some((q) => q.watch && q.resource === 'namespaces'),
    );
    const resumed = api.requests.slice(seen).find((q) => q.watch && q.resource === 'namespaces');
    assert.equal(resumed?.query['resourceVersion'], String(bookmarkRv));
    assert.equal(resumed?.expired, false);
    assert.equal(lists(api.requests.slice(seen)).length, 0, 'no relist');
    // And the resumed watch is live.
    api.put('namespaces', namespaceObject('later'));
    await changes.until((x) => x.namespaces.has('later'), 'namespace later');
  });

  it('reconnects a dropped watch and catches up from its resourceVersion', async () => {
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    await api.waitForOpenWatches(ALL_WATCHES);
    const listsBefore = lists(api.requests).length;

    // Dropped mid-stream, reconnects at once.
    api.dropWatches();
    api.put('pods', podObject({ namespace: 'secure', name: 'during-drop', ips: ['10.0.0.77'] }));
    await changes.until((x) => x.pods.has('secure/during-drop'), 'the pod written during the drop');

    // Dropped and the API down for a while: retried with backoff, then resumed.
    api.setDown(true);
    await api.waitForRequests((r) => r.filter((q) => q.status === 500).length >= 3);
    api.put('pods', podObject({ namespace: 'secure', name: 'while-down', ips: ['10.0.0.78'] }));
    api.delete('pods', 'secure/web');
    api.update('namespaces', 'plain', (o) => {
      (o.metadata['labels'] as Record<string, string>)['example.com/mtls'] = 'on';
    });
    api.setDown(false);
    const snap = await changes.until(
      (x) =>
        x.pods.has('secure/while-down') &&
        !x.pods.has('secure/web') &&
        x.namespaces.get('plain')?.labels['example.com/mtls'] === 'on',
      'the writes made while the API was down',
    );
    assert.equal(snap.pods.size, 6);
    assert.equal(lists(api.requests).length, listsBefore, 'resumed by watch, no relist');
    assert.ok(logs.some((l) => l.level === 'warn' && /list\/watch failed; retrying/.test(l.msg)));
  });

  it('relists on 410 Gone and drops what was deleted while it was away', async () => {
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    await api.waitForOpenWatches(ALL_WATCHES);
    api.setDown(true);
    await api.waitForRequests((r) => r.filter((q) => q.status === 500).length >= 2);
    api.delete('pods', 'secure/db');
    api.delete('pods', 'kube-system/kube-proxy-x');
    api.delete('namespaces', 'kube-system');
    api.put(
      'pods',
      podObject({ namespace: 'secure', name: 'fresh', nodeName: 'node-a', ips: ['10.0.0.99'] }),
    );
    api.update('namespaces', 'plain', (o) => {
      o.metadata['labels'] = { team: 'c' };
    });
    api.compact(); // the events above are gone: only a list can tell
    const seen = api.requests.length;
    api.setDown(false);
    const snap = await changes.until(
      (x) =>
        !x.pods.has('secure/db') &&
        !x.namespaces.has('kube-system') &&
        !x.pods.has('kube-system/kube-proxy-x') &&
        x.pods.has('secure/fresh') &&
        x.namespaces.get('plain')?.labels['team'] === 'c',
      'the state after the relist',
    );
    assert.deepEqual([...snap.namespaces.keys()].sort(), ['plain', 'secure']);
    assert.deepEqual([...snap.pods.keys()].sort(), [
      'plain/batch',
      'plain/pending',
      'secure/fresh',
      'secure/web',
    ]);
    const after = api.requests.slice(seen);
    assert.ok(
      after.some((q) => q.watch && q.expired),
      'a watch was answered 410 Expired',
    );
    assert.ok(
      lists(after, 'pods').length >= 1 && lists(after, 'namespaces').length >= 1,
      'relisted',
    );
    // Live again after the relist.
    api.put('namespaces', namespaceObject('after-410'));
    await changes.until((x) => x.namespaces.has('after-410'), 'after-410');
  });

  it('keeps retrying while the API is down at start, with growing delays, and syncs when it is back', async () => {
    api.setDown(true);
    const s = makeSource({ backoff: { initialMs: 20, maxMs: 400 } });
    const started = Date.now();
    const starting = s.start();
    await api.waitForRequests((r) => r.filter((q) => q.resource === 'pods').length >= 5);
    assert.equal(s.synced, false);
    // Backoff: the gap before the 5th try (base 320 ms, jittered to at least half) is
    // longer than the first base delay could ever be.
    const podTries = api.requests.filter((q) => q.resource === 'pods').map((q) => q.at);
    const lastGap = (podTries[4] ?? 0) - (podTries[3] ?? 0);
    assert.ok(lastGap >= 70, `gap before the 5th try: ${lastGap} ms`);
    api.setDown(false);
    await within(starting, WAIT_MS, 'start after the API came back');
    assert.equal(s.synced, true);
    assert.equal(s.snapshot().pods.size, 5);
    assert.ok(Date.now() - started < 10_000);
  });

  it('resyncs: a periodic relist repairs an event the watch never delivered', async () => {
    const s = makeSource({ resyncMs: 150 });
    await within(s.start(), WAIT_MS, 'start');
    api.forget('pods', 'secure/db');
    const snap = await changes.until(
      (x) => !x.pods.has('secure/db'),
      'secure/db gone after a resync',
    );
    assert.equal(snap.pods.size, 4);
    const resyncList = api.requests.find(
      (q) => !q.watch && q.query['resourceVersionMatch'] === 'NotOlderThan',
    );
    assert.ok(resyncList, 'the resync list may be served from the watch cache');
  });

  it('refuses a bad kubeconfig with a keyed error', async () => {
    const s = new KubernetesDiscoverySource({ kubeconfig: join(dir, 'missing-kubeconfig') });
    await assert.rejects(s.start(), (err: unknown) => {
      assert.ok(err instanceof MeshlessError);
      assert.equal(err.code, 'MESHLESS_E_DISCOVERY_KUBECONFIG');
      assert.match(err.message, /missing-kubeconfig/);
      return true;
    });
    s.close();
  });

  it('close() during start() rejects it and stops retrying', async () => {
    api.setDown(true);
    const s = makeSource();
    const starting = s.start();
    await api.waitForRequests((r) => r.filter((q) => q.status === 500).length >= 2);
    s.close();
    await assert.rejects(within(starting, WAIT_MS, 'start'), {
      code: 'MESHLESS_E_DISCOVERY_CLOSED',
    });
    // What is left running is checked in a separate process (next test).
  });

  it('close() ends the watches and leaves nothing that keeps a process alive', async () => {
    const s = makeSource();
    await within(s.start(), WAIT_MS, 'start');
    await api.waitForOpenWatches(ALL_WATCHES);
    s.close();
    await api.waitForOpenWatches(0);
    // The real proof: a separate process that starts, syncs, closes and must exit on its own.
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'testdata', 'kubernetes-source-exit.ts')],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.equal(r.signal, null, `the process did not exit by itself: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /synced 2 namespaces 1 pods; closed\nclosed while starting\n/);
  });
});
