/**
 * The registration API end to end, in process: a RegistrationService over a
 * FileDiscoverySource on a temp YAML, served on a Unix socket in a temp dir,
 * driven by the plugin's own client (callDaemon).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  startCniApiServer,
  type CniApiServer,
} from '../../../daemon/registration/cni-api-server.js';
import {
  RegistrationService,
  type WorkloadObserver,
} from '../../../daemon/registration/registration-service.js';
import { Registry, type Registration } from '../../../daemon/registration/registry.js';
import { FileDiscoverySource } from '../../../src/discovery/file-source.js';
import { MeshlessError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logger.js';
import { callDaemon, type DaemonOutcome } from '../../../src/registration/client.js';
import {
  API_VERSION,
  type AddResponse,
  type CheckResponse,
  type GcResponse,
  type StatusResponse,
} from '../../../src/registration/protocol.js';

const NODE = 'node-a';
const TIMEOUT_MS = 5000;
const STORM = 150;

function clusterYaml(): string {
  const ns = (name: string, enrolled: boolean): string =>
    `- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: ${name}\n` +
    (enrolled ? '    labels:\n      io.cilium/mtls-enabled: "true"\n' : '');
  const pod = (namespace: string, name: string, node: string, sa = 'default'): string =>
    `- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: ${name}\n    namespace: ${namespace}\n` +
    `    uid: uid-${name}\n  spec:\n    nodeName: ${node}\n    serviceAccountName: ${sa}\n`;
  const storm = Array.from({ length: STORM }, (_, i) => pod('demo', `storm-${i}`, NODE)).join('');
  return (
    'apiVersion: v1\nkind: List\nitems:\n' +
    ns('demo', true) +
    ns('plain', false) +
    ns('kube-system', true) +
    pod('demo', 'web-0', NODE, 'web') +
    pod('demo', 'remote-0', 'node-b') +
    pod('plain', 'app-0', NODE) +
    storm
  );
}

/** Records what the service tells workload observers. */
class RecordingObserver implements WorkloadObserver {
  readonly enrolled: string[] = [];
  readonly released: string[] = [];
  workloadEnrolled(r: Registration): Promise<void> {
    this.enrolled.push(r.containerId);
    return Promise.resolve();
  }
  workloadReleased(r: Registration): Promise<void> {
    this.released.push(r.containerId);
    return Promise.resolve();
  }
}

let dir = '';
let socket = '';
let stateDir = '';
let netnsDir = '';
let discovery: FileDiscoverySource;
let registry: Registry;
let service: RegistrationService;
let api: CniApiServer;
const observer = new RecordingObserver();

/** A file standing in for the pod's netns (Registry.load keeps entries whose netns exists). */
function netnsFor(containerId: string): string {
  const p = join(netnsDir, containerId);
  writeFileSync(p, '');
  return p;
}

function addBody(
  containerId: string,
  namespace: string,
  name: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    containerId,
    netns: netnsFor(containerId),
    ifname: 'eth0',
    network: 'k8s-pod-network',
    pod: { namespace, name, uid: `uid-${name}` },
    addresses: [{ family: 4, ip: '10.22.0.5' }],
    ...extra,
  };
}

const post = <T>(path: string, body: unknown): Promise<DaemonOutcome<T>> =>
  callDaemon<T>(socket, 'POST', path, body, TIMEOUT_MS);
const add = (body: Record<string, unknown>): Promise<DaemonOutcome<AddResponse>> =>
  post<AddResponse>('/v1/add', body);
const del = (
  containerId: string,
  extra: Record<string, unknown> = {},
): Promise<DaemonOutcome<unknown>> =>
  post('/v1/del', { apiVersion: API_VERSION, containerId, ifname: 'eth0', ...extra });
const check = (containerId: string): Promise<DaemonOutcome<CheckResponse>> =>
  post<CheckResponse>('/v1/check', {
    apiVersion: API_VERSION,
    containerId,
    ifname: 'eth0',
    netns: '/proc/1/ns/net',
  });

function okBody<T>(o: DaemonOutcome<T>): T {
  assert.equal(o.kind, 'ok', JSON.stringify(o));
  return (o as { body: T }).body;
}

function assertError(o: DaemonOutcome<unknown>, status: number, code: string): void {
  assert.equal(o.kind, 'error', JSON.stringify(o));
  const e = o as { status: number; code: string; message: string };
  assert.equal(e.status, status, e.message);
  assert.equal(e.code, code, e.message);
}

/** An HTTP request with a raw body (callDaemon always sends valid JSON). */
function raw(
  method: string,
  path: string,
  body: string | undefined,
  opts: { chunked?: boolean } = {},
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const headers = opts.chunked ? { 'transfer-encoding': 'chunked' } : {};
    const req = request({ socketPath: socket, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshless-cni-api-'));
  stateDir = join(dir, 'state');
  netnsDir = join(dir, 'netns');
  mkdirSync(netnsDir);
  socket = join(dir, 'run', 'cni.sock');
  const clusterFile = join(dir, 'cluster.yaml');
  writeFileSync(clusterFile, clusterYaml());
  discovery = new FileDiscoverySource(clusterFile, silentLogger);
  await discovery.start();
  mkdirSync(stateDir);
  registry = new Registry(stateDir, silentLogger);
  await registry.load();
  service = new RegistrationService({
    nodeName: NODE,
    trustDomain: 'cluster.local',
    policy: {
      label: { key: 'io.cilium/mtls-enabled', value: 'true' },
      excludeNamespaces: ['kube-system'],
    },
    discovery,
    registry,
    log: silentLogger,
  });
  service.addObserver(observer);
  api = await startCniApiServer(socket, service, silentLogger);
});

after(async () => {
  await api.close();
  discovery.close();
  await registry.flush();
  rmSync(dir, { recursive: true, force: true });
});

describe('registration API: ADD, CHECK, DEL', () => {
  it('status reports ready, the node and the workload count', async () => {
    const s = okBody(
      await callDaemon<StatusResponse>(socket, 'GET', '/v1/status', undefined, TIMEOUT_MS),
    );
    assert.deepEqual(
      { ready: s.ready, nodeName: s.nodeName, workloads: s.workloads },
      { ready: true, nodeName: NODE, workloads: registry.size },
    );
  });

  it('ADD of a pod in a labelled namespace enrols it with its SPIFFE ID', async () => {
    const r = okBody(await add(addBody('c-web', 'demo', 'web-0')));
    assert.equal(r.enrolled, true);
    assert.equal(r.identity, 'spiffe://cluster.local/ns/demo/sa/web');
    assert.match(r.reason, /has io\.cilium\/mtls-enabled=true/);
    assert.deepEqual(
      observer.enrolled.filter((c) => c === 'c-web'),
      ['c-web'],
    );
    const reg = registry.get('c-web');
    assert.equal(reg?.enrolled, true);
    assert.equal(reg?.serviceAccount, 'web');
  });

  it('ADD of a pod in an unlabelled namespace registers it, not enrolled', async () => {
    const r = okBody(await add(addBody('c-app', 'plain', 'app-0')));
    assert.equal(r.enrolled, false);
    assert.equal(r.identity, undefined);
    assert.equal(registry.get('c-app')?.enrolled, false);
    assert.ok(!observer.enrolled.includes('c-app'));
  });

  it('ADD in an excluded namespace is not enrolled, even when labelled', async () => {
    const r = okBody(await add(addBody('c-sys', 'kube-system', 'coredns-1')));
    assert.equal(r.enrolled, false);
    assert.match(r.reason, /excluded/);
  });

  it('ADD twice keeps one registration', async () => {
    const before = registry.size;
    const first = registry.get('c-web');
    okBody(await add(addBody('c-web', 'demo', 'web-0')));
    assert.equal(registry.size, before);
    assert.equal(registry.get('c-web')?.registeredAt, first?.registeredAt);
    const s = okBody(
      await callDaemon<StatusResponse>(socket, 'GET', '/v1/status', undefined, TIMEOUT_MS),
    );
    assert.equal(s.workloads, before);
  });

  it('CHECK tells registered and enrolled', async () => {
    assert.deepEqual(okBody(await check('c-web')), { registered: true, enrolled: true });
    assert.deepEqual(okBody(await check('c-app')), { registered: true, enrolled: false });
    assert.deepEqual(okBody(await check('c-never')), { registered: false, enrolled: false });
  });

  it('DEL twice: the first removes and releases, the second is a no-op', async () => {
    const released = observer.released.length;
    assert.deepEqual(okBody(await del('c-web')), {});
    assert.equal(registry.get('c-web'), undefined);
    assert.deepEqual(observer.released.slice(released), ['c-web']);
    assert.deepEqual(okBody(await del('c-web')), {});
    assert.equal(observer.released.length, released + 1);
    assert.deepEqual(okBody(await check('c-web')), { registered: false, enrolled: false });
  });

  it('DEL before ADD succeeds (with or without netns)', async () => {
    assert.deepEqual(okBody(await del('c-ghost')), {});
    assert.deepEqual(okBody(await del('c-ghost', { netns: '/var/run/netns/gone' })), {});
  });

  it('a pod scheduled on another node is refused with 409', async () => {
    assertError(await add(addBody('c-remote', 'demo', 'remote-0')), 409, 'MESHLESS_E_WRONG_NODE');
    assert.equal(registry.get('c-remote'), undefined);
  });

  it('a namespace discovery does not know yet is 503 (retry)', async () => {
    assertError(await add(addBody('c-ghost', 'ghost', 'p-0')), 503, 'MESHLESS_E_NOT_READY');
    assert.equal(registry.get('c-ghost'), undefined);
  });

  it('an enrolled pod discovery does not know yet is 503', async () => {
    assertError(await add(addBody('c-new', 'demo', 'not-yet-0')), 503, 'MESHLESS_E_NOT_READY');
  });

  it('a pod UID other than the one discovery knows is 503', async () => {
    const body = addBody('c-uid', 'demo', 'web-0');
    assertError(
      await add({ ...body, pod: { namespace: 'demo', name: 'web-0', uid: 'uid-recreated' } }),
      503,
      'MESHLESS_E_NOT_READY',
    );
  });

  it('an observer failure fails the ADD with 500 and registers nothing', async () => {
    const failing: WorkloadObserver = {
      workloadEnrolled: (r) =>
        r.containerId === 'c-fail' ? Promise.reject(new Error('no SVID')) : Promise.resolve(),
      workloadReleased: () => Promise.resolve(),
    };
    service.addObserver(failing);
    assertError(await add(addBody('c-fail', 'demo', 'web-0')), 500, 'MESHLESS_E_ENROL');
    assert.equal(registry.get('c-fail'), undefined);
    assert.ok(observer.released.includes('c-fail'), 'partial enrolment is rolled back');
  });
});

describe('registration API: GC', () => {
  it('removes only unlisted attachments of the same network', async () => {
    for (const [id, network] of [
      ['gc-keep', 'net-a'],
      ['gc-stale', 'net-a'],
      ['gc-other-net', 'net-b'],
    ] as const)
      okBody(await add(addBody(id, 'plain', `app-${id}`, { network })));
    okBody(
      await add(addBody('gc-other-if', 'plain', 'app-x', { network: 'net-a', ifname: 'net1' })),
    );
    const r = okBody(
      await post<GcResponse>('/v1/gc', {
        apiVersion: API_VERSION,
        network: 'net-a',
        validAttachments: [
          { containerId: 'gc-keep', ifname: 'eth0' },
          // Same container, other interface: not the registered attachment.
          { containerId: 'gc-other-if', ifname: 'eth0' },
        ],
      }),
    );
    assert.deepEqual([...r.removed].sort(), ['gc-other-if', 'gc-stale']);
    assert.ok(registry.get('gc-keep'));
    assert.ok(registry.get('gc-other-net'));
    assert.equal(registry.get('gc-stale'), undefined);
  });

  it('GC with nothing stale removes nothing', async () => {
    const r = okBody(
      await post<GcResponse>('/v1/gc', {
        apiVersion: API_VERSION,
        network: 'net-none',
        validAttachments: [],
      }),
    );
    assert.deepEqual(r.removed, []);
  });
});

describe('registration API: bad requests', () => {
  it('malformed JSON is 400', async () => {
    const r = await raw('POST', '/v1/add', '{"apiVersion":');
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { error: { code: string } }).error.code, 'MESHLESS_E_API_REQUEST');
  });

  it('an empty body is 400', async () => {
    assert.equal((await raw('POST', '/v1/del', '')).status, 400);
  });

  it('a body over 64 KiB without content-length is 413', async () => {
    const r = await raw('POST', '/v1/add', 'x'.repeat(200 * 1024), { chunked: true });
    assert.equal(r.status, 413);
    okBody(await check('c-app'));
  });

  it('a body of several MiB is 413 (refused from its content-length)', async () => {
    assertError(
      await add({ padding: 'x'.repeat(8 * 1024 * 1024) }),
      413,
      'MESHLESS_E_API_TOO_LARGE',
    );
  });

  it('a body over 64 KiB is 413', async () => {
    const o = await add({ ...addBody('c-big', 'plain', 'app-0'), padding: 'x'.repeat(70 * 1024) });
    assertError(o, 413, 'MESHLESS_E_API_TOO_LARGE');
    assert.equal(registry.get('c-big'), undefined);
    // The server is still fine afterwards.
    okBody(await check('c-app'));
  });

  it('a wrong apiVersion is 400', async () => {
    assertError(
      await add({ ...addBody('c-v', 'plain', 'app-0'), apiVersion: 'meshless.dev/cni/v0' }),
      400,
      'MESHLESS_E_API_REQUEST',
    );
    assertError(
      await post('/v1/gc', { apiVersion: 'v2', network: 'n', validAttachments: [] }),
      400,
      'MESHLESS_E_API_REQUEST',
    );
  });

  const invalid: [string, Record<string, unknown>][] = [
    ['a bad container ID', { containerId: '-x' }],
    ['a relative netns', { netns: 'proc/1/ns/net' }],
    ['an empty ifname', { ifname: '' }],
    ['a long ifname', { ifname: 'x'.repeat(16) }],
    ['no pod', { pod: undefined }],
    ['a bad namespace', { pod: { namespace: 'Demo', name: 'p' } }],
    ['a bad address family', { addresses: [{ family: 5, ip: '10.0.0.1' }] }],
    ['addresses not a list', { addresses: 'x' }],
    ['no network', { network: undefined }],
  ];
  for (const [what, patch] of invalid)
    it(`ADD with ${what} is 400`, async () => {
      assertError(
        await add({ ...addBody('c-bad', 'plain', 'app-0'), ...patch }),
        400,
        'MESHLESS_E_API_REQUEST',
      );
    });

  it('an unknown path is 404', async () => {
    assertError(await post('/v1/nope', {}), 404, 'MESHLESS_E_API_PATH');
    assertError(
      await callDaemon(socket, 'GET', '/v2/status', undefined, TIMEOUT_MS),
      404,
      'MESHLESS_E_API_PATH',
    );
  });

  it('a known path with the wrong method is 405', async () => {
    assertError(
      await callDaemon(socket, 'GET', '/v1/add', undefined, TIMEOUT_MS),
      405,
      'MESHLESS_E_API_METHOD',
    );
  });
});

describe('registration API: concurrency', () => {
  it(`answers a storm of ${2 * STORM} concurrent ADD/DEL for different containers`, async () => {
    // Half the storm deletes containers registered beforehand, half adds new ones.
    for (let i = 0; i < STORM; i++) okBody(await add(addBody(`old-${i}`, 'plain', `old-${i}`)));
    const calls: Promise<void>[] = [];
    for (let i = 0; i < STORM; i++) {
      const enrolled = i % 2 === 0;
      calls.push(
        add(
          enrolled
            ? addBody(`storm-${i}`, 'demo', `storm-${i}`)
            : addBody(`storm-${i}`, 'plain', `plain-${i}`),
        ).then((o) => {
          assert.equal(okBody(o).enrolled, enrolled, `storm-${i}`);
        }),
        del(`old-${i}`).then((o) => {
          assert.deepEqual(okBody(o), {});
        }),
      );
    }
    await Promise.all(calls);
    for (let i = 0; i < STORM; i++) {
      assert.equal(registry.get(`storm-${i}`)?.enrolled, i % 2 === 0);
      assert.equal(registry.get(`old-${i}`), undefined);
    }
    // What is on disk is what is in memory.
    await registry.flush();
    const reloaded = new Registry(stateDir, silentLogger);
    await reloaded.load();
    assert.deepEqual(
      reloaded
        .all()
        .map((r) => r.containerId)
        .sort(),
      registry
        .all()
        .map((r) => r.containerId)
        .sort(),
    );
  });
});

describe('registry persistence', () => {
  it('a new Registry on the same dir loads the registrations', async () => {
    okBody(await add(addBody('p-keep', 'demo', 'web-0')));
    okBody(await add(addBody('p-gone', 'plain', 'app-0')));
    await registry.flush();
    const reloaded = new Registry(stateDir, silentLogger);
    const dropped = await reloaded.load();
    assert.deepEqual(dropped, []);
    assert.deepEqual(reloaded.get('p-keep'), registry.get('p-keep'));
    assert.equal(reloaded.size, registry.size);
    const mode = statSync(join(stateDir, 'registrations.json')).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('entries whose netns no longer exists are dropped on load', async () => {
    await registry.flush();
    rmSync(join(netnsDir, 'p-gone'));
    const reloaded = new Registry(stateDir, silentLogger);
    const dropped = await reloaded.load();
    assert.deepEqual(
      dropped.map((r) => r.containerId),
      ['p-gone'],
    );
    assert.equal(reloaded.get('p-gone'), undefined);
    assert.ok(reloaded.get('p-keep'));
    // The drop is persisted by the time load() resolves: a third registry does not see it.
    const third = new Registry(stateDir, silentLogger);
    assert.deepEqual(await third.load(), []);
    assert.equal(third.get('p-gone'), undefined);
  });

  it('a corrupt state file is an error, not an empty registry', async () => {
    const other = join(dir, 'corrupt');
    mkdirSync(other);
    writeFileSync(join(other, 'registrations.json'), '{"version":1,');
    await assert.rejects(new Registry(other, silentLogger).load(), (err: unknown) => {
      return err instanceof MeshlessError && err.code === 'MESHLESS_E_STATE';
    });
  });
});

describe('the socket', () => {
  it('is mode 0600', () => {
    const st = statSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('a second server on the same live socket refuses to start', async () => {
    await assert.rejects(startCniApiServer(socket, service, silentLogger), (err: unknown) => {
      return err instanceof MeshlessError && err.code === 'MESHLESS_E_SOCKET_BUSY';
    });
    // The first one still answers.
    okBody(await check('c-app'));
  });

  it('a stale socket file left by a dead daemon is replaced', async () => {
    const stale = join(dir, 'stale', 'cni.sock');
    mkdirSync(join(dir, 'stale'));
    const child = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`,
    ]);
    assert.equal(child.status, 0);
    assert.ok(statSync(stale).isSocket(), 'the dead daemon left its socket behind');
    const second = await startCniApiServer(stale, service, silentLogger);
    try {
      okBody(await callDaemon<StatusResponse>(stale, 'GET', '/v1/status', undefined, TIMEOUT_MS));
      assert.equal(statSync(stale).mode & 0o777, 0o600);
    } finally {
      await second.close();
    }
  });

  it('a path that is not a socket is left alone', async () => {
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(startCniApiServer(file, service, silentLogger), /is not a socket/);
    assert.ok(statSync(file).isFile());
  });
});
