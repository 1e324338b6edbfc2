/**
 * Policy at the destination end to end, real kernel: two simulated nodes,
 * pods made through the real CNI chain, file discovery carrying
 * `security.meshless.dev/v1alpha1` AuthorizationPolicies and
 * PeerAuthentications and `networking.k8s.io/v1` NetworkPolicies, edited
 * live. Each case is judged by what the client application sees (an
 * echo, or a reset: a denied HBONE stream is answered 401 and the source
 * daemon resets the app) and by the destination daemon's record (outcome
 * `denied`, the deciding policy named).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { SECURITY_API_VERSION } from '../../../src/policy/authorization-policy.js';
import {
  connectAsApp,
  exchange,
  startTestServer,
  type TestServer,
} from '../../../src/sim/pod-apps.js';
import { SimCluster } from '../../../src/sim/sim-cluster.js';
import { E2E_SKIP, RUN_TAG, removeTestDir } from '../../support/netns.js';
import { until } from '../../support/until.js';

const APP = 8080;

/** Whether `err`, or an error it wraps, is a reset (ECONNRESET, EPIPE). */
function resetIn(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const o = e as { code?: unknown; cause?: unknown; details?: { errno?: unknown } };
    for (const c of [o.code, o.details?.errno])
      if (c === 'ECONNRESET' || c === 'EPIPE') return true;
    e = o.cause;
  }
  return false;
}
const ADMIN = 9090;

describe('policy at the destination', { skip: E2E_SKIP, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  const servers: TestServer[] = [];
  const ip = (pod: string): string => cluster.pod(pod).ip ?? assert.fail(`${pod} has no IP`);
  const netns = (pod: string): string => cluster.pod(pod).netns.path;
  const principal = (ns: string, pod: string): string => `cluster.local/ns/${ns}/sa/sa-${pod}`;

  /** One exchange from `from` to server:port: 'ok' (echoed) or 'reset'/the error. */
  const attempt = async (from: string, port = APP): Promise<string> => {
    try {
      const r = await exchange(netns(from), ip('server'), port, 'ECHO', Buffer.from('hi'), 5000);
      return r.toString() === 'hi' ? 'ok' : `answered ${r.toString()}`;
    } catch (err) {
      // A reset can land during the connect itself (the peer is refused at
      // once): then it is the cause of the netns helper's error.
      return resetIn(err) ? 'reset' : String(err);
    }
  };
  /**
   * Waits until `from` -> server:port gives `want` (a policy change applies
   * live), then until every data-plane worker holds the change: the worker
   * that showed it may be the first, and the next connection may land on
   * another.
   */
  const expect = async (what: string, from: string, want: string, port = APP): Promise<void> => {
    await until(what, async () => (await attempt(from, port)) === want, 10_000, 100);
    await cluster.waitForDiscovery();
  };
  /** node2's records with outcome denied. */
  const denials = (): { direction: string; policy?: string; reason?: string }[] =>
    readFileSync(cluster.node('node2').daemon?.logFile ?? '', 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"connection"') && l.includes('"outcome":"denied"'))
      .map((l) => (JSON.parse(l) as { connection: { direction: string } }).connection);
  /**
   * Waits until node2's denials satisfy `ok`. Records reach the log file
   * late by design (each thread's lines are written in batches, at least
   * every 250 ms, through the daemon's stdout pipe): a failure shows what
   * was recorded.
   */
  const recorded = async (
    what: string,
    ok: (d: ReturnType<typeof denials>) => boolean,
  ): Promise<void> => {
    try {
      await until(what, () => ok(denials()), 10_000, 50);
    } catch (err) {
      assert.fail(`${String(err)}; denials recorded: ${JSON.stringify(denials())}`);
    }
  };
  const authz = (
    name: string,
    action: 'ALLOW' | 'DENY',
    rules: unknown[],
    namespace = 'secure',
  ): unknown => ({
    apiVersion: SECURITY_API_VERSION,
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace },
    spec: { action, rules },
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-policy-'));
    cluster = await SimCluster.create({
      dir,
      prefix: RUN_TAG,
      nodes: 2,
      namespaces: { secure: true, other: true, plain: false },
    });
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    await cluster.addPods([
      { name: 'a', namespace: 'secure', node: 'node1' },
      { name: 'b', namespace: 'other', node: 'node1' },
      { name: 'legacy', namespace: 'plain', node: 'node1' },
      { name: 'server', namespace: 'secure', node: 'node2' },
    ]);
    for (const port of [APP, ADMIN]) servers.push(await startTestServer(netns('server'), port));
  });

  after(async () => {
    for (const s of servers) await s.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('no policy: every enrolled and plain client reaches the server', async () => {
    for (const from of ['a', 'b', 'legacy']) assert.equal(await attempt(from), 'ok', from);
  });

  test('ALLOW by principal: the named identity passes; another identity gets 401 (reset), plaintext too', async () => {
    cluster.setObjects([
      authz('allow-a', 'ALLOW', [
        { from: [{ source: { principals: [principal('secure', 'a')] } }] },
      ]),
    ]);
    await expect('b denied', 'b', 'reset');
    assert.equal(await attempt('a'), 'ok');
    assert.equal(await attempt('legacy'), 'reset');
    await recorded(
      'denials recorded with the policy',
      (d) =>
        d.some((r) => r.direction === 'inbound' && r.policy === undefined) &&
        d.some((r) => r.direction === 'inbound-plaintext'),
    );
  });

  test('ALLOW by namespace, DENY by port and by ipBlock', async () => {
    cluster.setObjects([
      authz('allow-ns', 'ALLOW', [{ from: [{ source: { namespaces: ['secure', 'other'] } }] }]),
      authz('deny-admin', 'DENY', [{ to: [{ operation: { ports: [String(ADMIN)] } }] }]),
      authz('deny-b-ip', 'DENY', [{ from: [{ source: { ipBlocks: [`${ip('b')}/32`] } }] }]),
    ]);
    // Wait on what only the new policies decide: the admin port.
    await expect('the admin port denied', 'a', 'reset', ADMIN);
    assert.equal(await attempt('a'), 'ok');
    assert.equal(await attempt('b'), 'reset', 'b denied by its address');
    assert.equal(await attempt('legacy'), 'reset', 'plaintext has no namespace');
    await recorded('the deciding DENY policies are named', (d) => {
      const named = new Set(d.map((r) => r.policy));
      return (
        named.has('AuthorizationPolicy secure/deny-admin') &&
        named.has('AuthorizationPolicy secure/deny-b-ip')
      );
    });
  });

  test('PeerAuthentication STRICT refuses plaintext; mTLS peers pass', async () => {
    cluster.setObjects([
      {
        apiVersion: SECURITY_API_VERSION,
        kind: 'PeerAuthentication',
        metadata: { name: 'strict', namespace: 'secure' },
        spec: { mtls: { mode: 'STRICT' } },
      },
    ]);
    // Wait on what only the new policy decides: b allowed again.
    await expect('b allowed again', 'b', 'ok');
    assert.equal(await attempt('legacy'), 'reset', 'plaintext refused');
    assert.equal(await attempt('a'), 'ok');
  });

  test('a live change closes an established connection it now denies', async () => {
    cluster.setObjects([]);
    await expect('policies gone', 'legacy', 'ok');
    const sock: Socket = await connectAsApp(netns('a'), ip('server'), APP);
    const ended = new Promise<string>((resolve) => {
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      sock.on('close', () => resolve('closed'));
    });
    sock.write('ECHO\nstill here');
    await until('the connection is established', () => sock.bytesRead > 0, 5000);
    cluster.setObjects([
      authz('deny-a', 'DENY', [{ from: [{ source: { principals: [principal('secure', 'a')] } }] }]),
    ]);
    assert.equal(await ended, 'ECONNRESET');
    await recorded('the close is recorded as denied by deny-a', (d) =>
      d.some((r) => r.policy === 'AuthorizationPolicy secure/deny-a' && r.reason === 'policy'),
    );
  });

  test("NetworkPolicy holds for tunnelled traffic: the app port rule of the server's policy", async () => {
    cluster.setObjects([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'only-app-from-secure', namespace: 'secure' },
        spec: {
          podSelector: {},
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ podSelector: {} }],
              ports: [{ protocol: 'TCP', port: APP }],
            },
          ],
        },
      },
    ]);
    await expect('b (another namespace) denied', 'b', 'reset');
    assert.equal(await attempt('a'), 'ok', 'same namespace, allowed port');
    assert.equal(
      await attempt('a', ADMIN),
      'reset',
      'same namespace, a port the policy does not allow',
    );
    await recorded('named in the record', (d) =>
      d.some((r) => r.policy === 'NetworkPolicy secure/only-app-from-secure'),
    );
    cluster.setObjects([]);
    await expect('back to open', 'b', 'ok');
  });
});
