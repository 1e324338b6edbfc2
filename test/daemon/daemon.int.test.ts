/**
 * The daemon's operator surface in-process: readiness, Prometheus metrics,
 * the admin routes (including the run-time log level), the CNI status call,
 * and a clean stop that frees every port and the socket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';
import { callDaemon } from '../../src/registration/client.js';
import { startDaemon, type RunningDaemon } from '../../daemon/daemon.js';
import { until } from '../support/until.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function http(
  method: string,
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const CLUSTER = [
  'apiVersion: v1\nkind: List\nitems:',
  '- {apiVersion: v1, kind: Namespace, metadata: {name: secure, labels: {io.cilium/mtls-enabled: "true"}}}',
  '- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: secure}, spec: {serviceAccountName: a, nodeName: elsewhere}, status: {podIP: 10.9.0.1}}',
  '- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: secure}, spec: {serviceAccountName: b, nodeName: elsewhere}, status: {podIP: 10.9.0.2}}',
  '',
].join('\n');
const DENY_POLICY =
  '- {apiVersion: security.meshless.dev/v1alpha1, kind: AuthorizationPolicy, metadata: {name: no-a, namespace: secure}, spec: {action: DENY, rules: [{from: [{source: {principals: [cluster.local/ns/secure/sa/a]}}]}]}}\n';

describe('meshlessd operator endpoints', () => {
  let dir: string;
  let daemon: RunningDaemon;
  const ports = { admin: 0, metrics: 0, readiness: 0 };
  let socket: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-daemon-int-'));
    writeFileSync(join(dir, 'cluster.yaml'), CLUSTER + DENY_POLICY);
    ports.admin = await freePort();
    ports.metrics = await freePort();
    ports.readiness = await freePort();
    socket = join(dir, 'state', 'cni.sock');
    const config = loadDaemonConfig({
      env: {
        MESHLESS_NODE_NAME: 'node-t',
        MESHLESS_STATE_DIR: join(dir, 'state'),
        MESHLESS_DISCOVERY_FILE: join(dir, 'cluster.yaml'),
        MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
        MESHLESS_ADMIN_ADDRESS: `127.0.0.1:${ports.admin}`,
        MESHLESS_METRICS_ADDRESS: `127.0.0.1:${ports.metrics}`,
        MESHLESS_READINESS_ADDRESS: `127.0.0.1:${ports.readiness}`,
        MESHLESS_LOG_LEVEL: 'silent',
      },
    });
    daemon = await startDaemon(config);
    await until(
      'readiness',
      () =>
        http('GET', ports.readiness, '/healthz/ready').then(
          (r) => r.status === 200,
          () => false,
        ),
      10_000,
      25,
    );
  });

  after(async () => {
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('readiness is 200 once discovery synced and nothing is pending', async () => {
    const r = await http('GET', ports.readiness, '/healthz/ready');
    assert.equal(r.status, 200);
    assert.equal((await http('GET', ports.readiness, '/nope')).status, 404);
  });

  test('the CNI socket answers status with discovery counts, and is 0600', async () => {
    const r = await callDaemon<{
      ready: boolean;
      nodeName: string;
      discovery: { namespaces: number };
    }>(socket, 'GET', '/v1/status', undefined, 2000);
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') {
      assert.equal(r.body.ready, true);
      assert.equal(r.body.nodeName, 'node-t');
      assert.equal(r.body.discovery.namespaces, 1);
    }
  });

  test('metrics expose the meshless families, CNI events counted', async () => {
    const r = await http('GET', ports.metrics, '/metrics');
    assert.equal(r.status, 200);
    for (const name of [
      'meshless_connections_opened_total',
      'meshless_connections_closed_total',
      'meshless_bytes_total',
      'meshless_hbone_handshake_failures_total',
      'meshless_hbone_pool_connections',
      'meshless_certificate_expiry_seconds',
      'meshless_enrolled_workloads 0',
      'meshless_cni_event_duration_seconds',
      'meshless_process_resident_memory_bytes',
    ])
      assert.ok(r.body.includes(name), name);
    assert.match(r.body, /meshless_cni_events_total\{command="status",outcome="ok"\} [1-9]/);
  });

  test('admin: /policy/check explains from the live snapshot; a policy change applies', async () => {
    const check = async () =>
      JSON.parse(
        (await http('GET', ports.admin, '/policy/check?from=secure%2Fa&to=secure%2Fb%3A80')).body,
      ) as {
        allowed: boolean;
        authorization: { reason: string; policy: string | null };
      };
    const denied = await check();
    assert.deepEqual(
      [denied.allowed, denied.authorization.reason, denied.authorization.policy],
      [false, 'deny_policy_matched', 'secure/no-a'],
    );
    const bad = await http(
      'GET',
      ports.admin,
      '/policy/check?from=secure%2Fnope&to=secure%2Fb%3A80',
    );
    assert.equal(bad.status, 400);
    assert.match(bad.body, /no pod secure\/nope/);
    const versions = async () =>
      (
        JSON.parse((await http('GET', ports.admin, '/workers')).body) as {
          discoveryVersion: number;
          discoveryBehind: number;
        }[]
      ).map((w) => [w.discoveryVersion, w.discoveryBehind]);
    const [before] = await versions();
    writeFileSync(join(dir, 'cluster.yaml'), CLUSTER);
    await until('the policy removed', async () => (await check()).allowed, 10_000, 25);
    // The main thread explains from its own copy; the workers decide from
    // theirs: the status says when every worker holds the change.
    await until(
      'the data plane caught up',
      async () => {
        const r = await callDaemon<{ discovery: { dataPlaneBehind: number } }>(
          socket,
          'GET',
          '/v1/status',
          undefined,
          2000,
        );
        return r.kind === 'ok' && r.body.discovery.dataPlaneBehind === 0;
      },
      10_000,
      25,
    );
    const after = await versions();
    assert.ok(after.length >= 2, 'two workers by default');
    const newer = (before?.[0] ?? 0) + 1;
    for (const [version, behind] of after) {
      assert.ok(version !== undefined && version >= newer, `a worker at ${version}`);
      assert.equal(behind, 0);
    }
  });

  test('admin: /status, /config without key material, /workloads, /connections, /certs', async () => {
    const status = JSON.parse((await http('GET', ports.admin, '/status')).body) as Record<
      string,
      unknown
    >;
    assert.equal(status['nodeName'], 'node-t');
    assert.equal(status['ready'], true);
    const config = (await http('GET', ports.admin, '/config')).body;
    assert.doesNotMatch(config, /PRIVATE KEY/);
    assert.deepEqual(JSON.parse((await http('GET', ports.admin, '/workloads')).body), []);
    assert.deepEqual(JSON.parse((await http('GET', ports.admin, '/connections')).body), []);
    const certs = JSON.parse((await http('GET', ports.admin, '/certs')).body) as {
      trustDomain: string;
    };
    assert.equal(certs.trustDomain, 'cluster.local');
    assert.equal((await http('POST', ports.admin, '/status')).status, 405);
  });

  test('POST /logging changes the level at run time; a bad level is 400', async () => {
    assert.deepEqual(JSON.parse((await http('POST', ports.admin, '/logging')).body), {
      level: 'silent',
    });
    assert.deepEqual(JSON.parse((await http('POST', ports.admin, '/logging?level=warn')).body), {
      level: 'warn',
    });
    assert.equal((await http('POST', ports.admin, '/logging?level=loud')).status, 400);
    assert.equal((await http('GET', ports.admin, '/logging')).status, 405);
    await http('POST', ports.admin, '/logging?level=silent');
  });

  test('stop frees the socket and every port', async () => {
    await daemon.stop();
    assert.equal(existsSync(socket), false);
    for (const port of Object.values(ports)) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((r) => s.close(r));
    }
  });
});
