/**
 * The registration API and the admin endpoint under abuse, in process:
 * malformed and oversized requests, headers and bodies trickled in
 * (slowloris), events out of order, and storms of concurrent ADD/DEL with
 * random interleavings checked against a sequential model. After every
 * abuse a normal ADD must still succeed: one bad client never stops the
 * daemon serving the others.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createAdminServer, type AdminServer } from '../../../daemon/admin/admin-server.js';
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
import { silentLogger } from '../../../src/logger.js';
import { callDaemon, type DaemonOutcome } from '../../../src/registration/client.js';
import { API_VERSION, type AddResponse } from '../../../src/registration/protocol.js';

const NODE = 'node-a';
const TIMEOUT_MS = 5000;
const PODS = 200;
/** Shortened for the test (the daemon uses 5 s); checked every second. */
const HEADERS_TIMEOUT_MS = 1000;

function clusterYaml(): string {
  const ns = (name: string, enrolled: boolean): string =>
    `- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: ${name}\n` +
    (enrolled ? '    labels:\n      io.cilium/mtls-enabled: "true"\n' : '');
  const pod = (namespace: string, name: string, node: string): string =>
    `- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: ${name}\n    namespace: ${namespace}\n` +
    `    uid: uid-${name}\n  spec:\n    nodeName: ${node}\n    serviceAccountName: sa-${name}\n`;
  let pods = '';
  for (let i = 0; i < PODS; i++) pods += pod(i % 2 === 0 ? 'demo' : 'plain', `p-${i}`, NODE);
  return (
    'apiVersion: v1\nkind: List\nitems:\n' +
    ns('demo', true) +
    ns('plain', false) +
    pod('demo', 'canary', NODE) +
    pod('demo', 'remote-0', 'node-b') +
    pods
  );
}

/** The enrolled workloads as the observers (identity, proxy) see them. */
class LiveSet implements WorkloadObserver {
  readonly live = new Map<string, number>();
  workloadEnrolled(r: Registration): Promise<void> {
    this.live.set(r.containerId, 1);
    return Promise.resolve();
  }
  workloadReleased(r: Registration): Promise<void> {
    this.live.delete(r.containerId);
    return Promise.resolve();
  }
}

let dir = '';
let socket = '';
let stateDir = '';
let netnsDir = '';
let discovery: FileDiscoverySource;
let registry: Registry;
let api: CniApiServer;
const observer = new LiveSet();

function netnsFor(containerId: string): string {
  const p = join(netnsDir, containerId);
  writeFileSync(p, '');
  return p;
}

function addBody(containerId: string, name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    containerId,
    netns: netnsFor(containerId),
    ifname: 'eth0',
    network: 'k8s-pod-network',
    pod: { namespace, name, uid: `uid-${name}` },
    addresses: [{ family: 4, ip: '10.22.0.5' }],
  };
}

const post = <T>(path: string, body: unknown): Promise<DaemonOutcome<T>> =>
  callDaemon<T>(socket, 'POST', path, body, TIMEOUT_MS);
const del = (containerId: string): Promise<DaemonOutcome<unknown>> =>
  post('/v1/del', { apiVersion: API_VERSION, containerId, ifname: 'eth0' });

let canaries = 0;
/** A normal ADD (and DEL) succeeds: the daemon still serves everyone else. */
async function assertStillServing(): Promise<void> {
  const id = `canary-${canaries++}`;
  const o = await post<AddResponse>('/v1/add', addBody(id, 'canary', 'demo'));
  assert.equal(o.kind, 'ok', JSON.stringify(o));
  assert.equal((o as { body: AddResponse }).body.enrolled, true);
  assert.deepEqual(await del(id), { kind: 'ok', body: {} });
}

/** Sends raw bytes (optionally trickled) and collects what comes back until the server closes. */
function rawExchange(
  path: string | { host: string; port: number },
  parts: readonly (string | Buffer)[],
  gapMs = 0,
): Promise<{ response: string; closedAfterMs: number; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const c: Socket = typeof path === 'string' ? createConnection(path) : createConnection(path);
    const chunks: Buffer[] = [];
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const sendNext = (): void => {
      const part = parts[i++];
      if (part === undefined || c.destroyed) return;
      c.write(part, () => undefined);
      timer = setTimeout(sendNext, gapMs);
    };
    c.on('connect', sendNext);
    c.on('data', (b: Buffer) => chunks.push(b));
    let error: string | undefined;
    c.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    c.on('close', () => {
      clearTimeout(timer);
      resolve({
        response: Buffer.concat(chunks).toString('latin1'),
        closedAfterMs: Date.now() - started,
        error,
      });
    });
    setTimeout(() => {
      c.destroy();
      reject(new Error('the server never closed the connection'));
    }, 20_000).unref();
  });
}

const statusLine = (response: string): string => response.split('\r\n')[0] ?? '';

/**
 * The server cut a trickling client off: it answered 408, or (a loaded
 * machine) the client's next trickled write hit the closed connection first
 * (EPIPE/ECONNRESET), and Node destroyed the client before it read the 408.
 */
function assertTimedOut(r: { response: string; error: string | undefined }): void {
  if (r.response === '' && (r.error === 'EPIPE' || r.error === 'ECONNRESET')) return;
  assert.match(statusLine(r.response), /^HTTP\/1\.1 408/, `${r.response.slice(0, 100)} ${r.error}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshless-abuse-'));
  stateDir = join(dir, 'state');
  netnsDir = join(dir, 'netns');
  mkdirSync(netnsDir);
  mkdirSync(stateDir);
  socket = join(dir, 'run', 'cni.sock');
  const clusterFile = join(dir, 'cluster.yaml');
  writeFileSync(clusterFile, clusterYaml());
  discovery = new FileDiscoverySource(clusterFile, silentLogger);
  await discovery.start();
  registry = new Registry(stateDir, silentLogger);
  await registry.load();
  const service = new RegistrationService({
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
  api.server.headersTimeout = HEADERS_TIMEOUT_MS;
  api.server.requestTimeout = 2 * HEADERS_TIMEOUT_MS;
});

after(async () => {
  await api.close();
  discovery.close();
  await registry.flush();
  rmSync(dir, { recursive: true, force: true });
});

describe('registration API: malformed and oversized requests', () => {
  const garbage: readonly [string, readonly (string | Buffer)[], RegExp][] = [
    ['random bytes', [Buffer.from([0, 255, 1, 13, 10, 13, 10, 200, 7])], /^HTTP\/1\.1 400/],
    ['a request line without a version', ['POST /v1/add\r\n\r\n'], /^HTTP\/1\.1 400/],
    ['HTTP/0.9 and HTTP/2 prefaces', ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], /^HTTP\/1\.1 (400|505)/],
    [
      'a 100 KiB URL',
      [`GET /v1/status?${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`],
      /^HTTP\/1\.1 431/,
    ],
    [
      'a 100 KiB header',
      [`GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100 * 1024)}\r\n\r\n`],
      /^HTTP\/1\.1 431/,
    ],
    [
      'content-length and chunked together (request smuggling)',
      [
        'POST /v1/del HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ],
      /^HTTP\/1\.1 400/,
    ],
    [
      'a negative content-length',
      ['POST /v1/del HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
      /^HTTP\/1\.1 400/,
    ],
    [
      'a bad chunk size',
      [
        'POST /v1/del HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      ],
      /^HTTP\/1\.1 400/,
    ],
  ];
  for (const [what, parts, expected] of garbage) {
    it(`${what}: refused, connection closed, others still served`, async () => {
      const { response } = await rawExchange(socket, parts);
      assert.match(statusLine(response), expected, response.slice(0, 200));
      await assertStillServing();
    });
  }

  it('a JSON body with every field of the wrong type is 400, never 500', async () => {
    const samples = fc.sample(
      fc.record(
        {
          apiVersion: fc.oneof(fc.constant(API_VERSION), fc.jsonValue({ maxDepth: 1 })),
          containerId: fc.jsonValue({ maxDepth: 1 }),
          netns: fc.jsonValue({ maxDepth: 1 }),
          ifname: fc.jsonValue({ maxDepth: 1 }),
          network: fc.jsonValue({ maxDepth: 1 }),
          pod: fc.jsonValue({ maxDepth: 2 }),
          addresses: fc.jsonValue({ maxDepth: 2 }),
          __proto__: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      ),
      { numRuns: 300, seed: 7 },
    );
    // In batches: the property is about answers, not about how many wait at
    // once (1,200 at once can outlast a client deadline on a loaded 2-core CI).
    const requests = samples.flatMap((s) =>
      ['/v1/add', '/v1/del', '/v1/check', '/v1/gc'].map((p) => () => post<unknown>(p, s)),
    );
    const outcomes: DaemonOutcome<unknown>[] = [];
    for (let i = 0; i < requests.length; i += 60)
      outcomes.push(...(await Promise.all(requests.slice(i, i + 60).map((r) => r()))));
    for (const o of outcomes) {
      if (o.kind === 'error') assert.ok(o.status === 400, JSON.stringify(o));
      else assert.equal(o.kind, 'ok');
    }
    assert.deepEqual(Object.keys(Object.prototype), []);
    await assertStillServing();
  });

  it('a chunked body trickled past 64 KiB without content-length is 413, and others are served meanwhile', async () => {
    const head = 'POST /v1/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunk = `2000\r\n${'x'.repeat(0x2000)}\r\n`;
    const parts = [head, ...Array.from<string>({ length: 12 }).fill(chunk), '0\r\n\r\n'];
    const exchange = rawExchange(socket, parts, 20);
    await assertStillServing();
    const { response } = await exchange.catch(() => ({ response: '' }));
    // The 413 is answered as soon as the limit is crossed; the server then drains or closes.
    assert.match(statusLine(response), /^HTTP\/1\.1 413/, response.slice(0, 200));
    await assertStillServing();
  });
});

describe('registration API: slowloris', () => {
  it(`20 clients trickling headers are cut off within headersTimeout (+1 s check), and others are served meanwhile`, async () => {
    const slow = Array.from({ length: 20 }, (_, i) =>
      rawExchange(
        socket,
        [
          'POST /v1/add HTTP/1.1\r\n',
          ...Array.from({ length: 100 }, (_, j) => `X-${i}-${j}: v\r\n`),
        ],
        100,
      ),
    );
    const started = Date.now();
    for (let i = 0; i < 3; i++) await assertStillServing();
    assert.ok(Date.now() - started < HEADERS_TIMEOUT_MS, 'normal ADDs were not delayed');
    const results = await Promise.all(slow);
    for (const r of results) {
      assertTimedOut(r);
      assert.ok(
        r.closedAfterMs < HEADERS_TIMEOUT_MS + 2500,
        `held ${r.closedAfterMs} ms (connectionsCheckingInterval not applied?)`,
      );
    }
    await assertStillServing();
  });

  it('a body trickled forever is cut off by requestTimeout', async () => {
    const head = 'POST /v1/add HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n';
    const r = await rawExchange(
      socket,
      [head, ...Array.from<string>({ length: 200 }).fill('{')],
      100,
    );
    assertTimedOut(r);
    assert.ok(r.closedAfterMs < 2 * HEADERS_TIMEOUT_MS + 2500, `held ${r.closedAfterMs} ms`);
    await assertStillServing();
  });
});

describe('registration API: events out of order', () => {
  it('DEL before ADD, DEL twice, CHECK before ADD: all fine, nothing registered', async () => {
    assert.deepEqual(await del('ooo-1'), { kind: 'ok', body: {} });
    assert.deepEqual(await del('ooo-1'), { kind: 'ok', body: {} });
    const c = await post('/v1/check', {
      apiVersion: API_VERSION,
      containerId: 'ooo-1',
      ifname: 'eth0',
      netns: '/x',
    });
    assert.deepEqual(c, { kind: 'ok', body: { registered: false, enrolled: false } });
    assert.equal(registry.get('ooo-1'), undefined);
    await assertStillServing();
  });

  it('ADD twice at once: one registration, one live workload', async () => {
    const body = addBody('ooo-2', 'p-0', 'demo');
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => post('/v1/add', body)));
    for (const o of outcomes) assert.equal(o.kind, 'ok', JSON.stringify(o));
    assert.equal(registry.all().filter((r) => r.containerId === 'ooo-2').length, 1);
    assert.equal(observer.live.get('ooo-2'), 1);
    assert.deepEqual(await del('ooo-2'), { kind: 'ok', body: {} });
    assert.equal(observer.live.has('ooo-2'), false);
  });

  it('ADD of an enrolled pod whose netns does not exist is refused (400, MESHLESS_E_NETNS_MISSING) before anything binds', async () => {
    const body = { ...addBody('ooo-3', 'p-0', 'demo'), netns: join(dir, 'no-such-netns') };
    const o = await post('/v1/add', body);
    assert.equal(o.kind, 'error', JSON.stringify(o));
    const e = o as { status: number; code: string; message: string };
    assert.equal(e.status, 400);
    assert.equal(e.code, 'MESHLESS_E_NETNS_MISSING');
    assert.match(e.message, /no-such-netns of pod demo\/p-0 does not exist/);
    assert.equal(registry.get('ooo-3'), undefined);
    assert.equal(observer.live.has('ooo-3'), false);
    await assertStillServing();
  });

  it('ADD of a pod scheduled on another node is refused, and nothing is enrolled for it', async () => {
    const o = await post('/v1/add', addBody('ooo-4', 'remote-0', 'demo'));
    assert.equal(o.kind === 'error' ? o.code : o.kind, 'MESHLESS_E_WRONG_NODE');
    assert.equal(observer.live.has('ooo-4'), false);
    await assertStillServing();
  });
});

describe('registration API: ADD/DEL storms', () => {
  it(`${PODS} pods, each a random sequence of ADD/DEL/CHECK, all interleaved: final state equals the sequential model, in memory and on disk`, async () => {
    const sequences = fc.sample(
      fc.array(fc.constantFrom('ADD', 'DEL', 'CHECK'), { minLength: 1, maxLength: 6 }),
      { numRuns: PODS, seed: 42 },
    );
    const jitter = fc.sample(fc.integer({ min: 0, max: 3 }), { numRuns: PODS * 6, seed: 43 });
    let j = 0;
    const model = new Map<string, boolean>();
    await Promise.all(
      sequences.map(async (ops, i) => {
        const id = `storm-${i}`;
        const enrolled = i % 2 === 0;
        const body = addBody(id, `p-${i}`, enrolled ? 'demo' : 'plain');
        for (const op of ops) {
          await new Promise((r) => setTimeout(r, jitter[j++ % jitter.length]));
          if (op === 'ADD') {
            const o = await post<AddResponse>('/v1/add', body);
            assert.equal(o.kind, 'ok', JSON.stringify(o));
            model.set(id, enrolled);
          } else if (op === 'DEL') {
            assert.deepEqual(await del(id), { kind: 'ok', body: {} });
            model.delete(id);
          } else {
            const o = await post<{ registered: boolean }>('/v1/check', {
              apiVersion: API_VERSION,
              containerId: id,
              ifname: 'eth0',
              netns: '/x',
            });
            assert.equal(o.kind === 'ok' && o.body.registered, model.has(id));
          }
        }
      }),
    );
    const storm = (ids: Iterable<string>): string[] =>
      [...ids].filter((id) => id.startsWith('storm-')).sort();
    assert.deepEqual(storm(registry.all().map((r) => r.containerId)), storm(model.keys()));
    for (const [id, enrolled] of model) assert.equal(registry.get(id)?.enrolled, enrolled, id);
    // The observers (identity, proxy) hold exactly the enrolled ones.
    assert.deepEqual(
      storm(observer.live.keys()),
      storm([...model].filter(([, e]) => e).map(([id]) => id)),
    );
    // Nothing lost on disk.
    await registry.flush();
    const reloaded = new Registry(stateDir, silentLogger);
    await reloaded.load();
    assert.deepEqual(storm(reloaded.all().map((r) => r.containerId)), storm(model.keys()));
    await assertStillServing();
  });
});

describe('admin endpoint under abuse', () => {
  let admin: AdminServer;
  let port = 0;
  before(async () => {
    admin = createAdminServer({
      address: '127.0.0.1:0',
      routes: { '/status': () => ({ ok: true }) },
    });
    admin.server.headersTimeout = HEADERS_TIMEOUT_MS;
    port = (await admin.listen()).port;
  });
  after(() => admin.close());

  const get = (path: string, method = 'GET'): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });

  it('refuses a non-loopback address unless told to', () => {
    for (const address of ['0.0.0.0:0', '[::]:0', '10.0.0.1:15000'])
      assert.throws(() => createAdminServer({ address }), { code: 'MESHLESS_E_ADMIN' }, address);
  });

  it('non-GET methods: 405, still serving', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT'])
      assert.equal(await get('/status', m).catch(() => 405), 405, m);
    assert.equal(await get('/status'), 200);
  });

  it('a huge URL is 431, a long path 404, still serving', async () => {
    const { response } = await rawExchange({ host: '127.0.0.1', port }, [
      `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]);
    assert.match(statusLine(response), /^HTTP\/1\.1 431/);
    assert.equal(await get(`/${'a'.repeat(8000)}`), 404);
    assert.equal(await get('/status'), 200);
  });

  it('500 concurrent connections are all answered', async () => {
    const codes = await Promise.all(Array.from({ length: 500 }, () => get('/status')));
    assert.ok(codes.every((c) => c === 200));
  });

  it('slowloris clients are cut off; others served meanwhile', async () => {
    const slow = Array.from({ length: 10 }, () =>
      rawExchange(
        { host: '127.0.0.1', port },
        ['GET /status HTTP/1.1\r\n', ...Array.from({ length: 100 }, (_, j) => `X-${j}: v\r\n`)],
        100,
      ),
    );
    assert.equal(await get('/status'), 200);
    for (const r of await Promise.all(slow))
      assert.ok(r.closedAfterMs < HEADERS_TIMEOUT_MS + 2500, `held ${r.closedAfterMs} ms`);
  });
});
