/**
 * The data plane on worker threads, end to end (real kernel, real
 * meshlessd processes with `dataPlane.workers: 2`): both workers of a node
 * serve connections (SO_REUSEPORT spreads them), enrolment and release
 * reach every worker, a worker that dies is replaced while the pod keeps
 * being served (by the other worker's listeners), and an SVID rotation
 * reaches every worker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_SKIP, RUN_TAG, removeTestDir } from '../../support/netns.js';
import {
  connectAsApp,
  exchange,
  startTestServer,
  type TestServer,
} from '../../../src/sim/pod-apps.js';
import { SimCluster, type SimNode } from '../../../src/sim/sim-cluster.js';

const skip = E2E_SKIP;
const APP_PORT = 8080;

interface WorkerReport {
  readonly worker: number;
  readonly threadId: number;
  readonly connections: number;
  readonly pods: number;
  readonly restarts: number;
  readonly svids: Record<string, string> | null;
}

describe('data-plane workers', { skip, concurrency: false }, () => {
  let dir: string;
  let cluster: SimCluster;
  const servers: TestServer[] = [];

  const ip = (pod: string): string => {
    const v = cluster.pod(pod).ip;
    if (!v) throw new Error(`${pod} has no IP`);
    return v;
  };
  const netns = (pod: string): string => cluster.pod(pod).netns.path;
  const admin = (node: SimNode, path: string, method = 'GET'): unknown => {
    const out = node.netns.exec([
      'curl',
      '-sS',
      '--max-time',
      '10',
      '-X',
      method,
      `http://127.0.0.1:15000${path}`,
    ]);
    return JSON.parse(out.stdout) as unknown;
  };
  const workers = (node: string): WorkerReport[] =>
    admin(cluster.node(node), '/workers') as WorkerReport[];
  const metric = (node: string, name: string): Map<string, number> => {
    const text = cluster
      .node(node)
      .netns.exec(['curl', '-sS', '--max-time', '10', 'http://127.0.0.1:15020/metrics']).stdout;
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = new RegExp(`^${name}\\{worker="(\\d+)"\\} (\\S+)$`).exec(line);
      if (m?.[1] !== undefined) out.set(m[1], Number(m[2]));
    }
    return out;
  };
  const until = async (what: string, ok: () => boolean, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const echo = async (from: string, to: string): Promise<void> => {
    const answer = await exchange(
      netns(from),
      ip(to),
      APP_PORT,
      'ECHO',
      Buffer.from('ping'),
      10_000,
    );
    assert.equal(answer.toString(), 'ping');
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-workers-'));
    cluster = await SimCluster.create({
      dir,
      prefix: RUN_TAG,
      nodes: 2,
      namespaces: { secure: true, plain: false },
      // A 60 s SVID rotates ~30 s after issuance: the rotation test waits for it.
      daemonConfig: {
        dataPlane: { workers: 2 },
        identity: { svidTtlSeconds: 60, intermediateTtlSeconds: 3600 },
      },
    });
    for (const n of cluster.nodes) await cluster.startDaemon(n);
    await cluster.addPods([
      { name: 'a-secure', namespace: 'secure', node: 'node1' },
      { name: 'b-secure', namespace: 'secure', node: 'node2' },
      { name: 'e-secure', namespace: 'secure', node: 'node2' },
      { name: 'c-plain', namespace: 'plain', node: 'node1' },
    ]);
    for (const p of ['b-secure', 'e-secure'])
      servers.push(await startTestServer(netns(p), APP_PORT));
  });

  after(async () => {
    if (process.env['MESHLESS_KEEP_LOGS'])
      for (const n of cluster?.nodes ?? [])
        if (n.daemon)
          copyFileSync(n.daemon.logFile, join(process.env['MESHLESS_KEEP_LOGS'], `${n.name}.log`));
    for (const s of servers) await s.close();
    await cluster?.destroy();
    removeTestDir(dir);
  });

  test('every worker binds every enrolled pod; both workers of each node serve connections', async () => {
    for (const node of ['node1', 'node2']) {
      const want = node === 'node1' ? [1, 1] : [2, 2];
      // A worker reports its counts with its next batch (at least once a second).
      await until(`${node}: every worker reports every pod`, () =>
        isDeepStrictEqual(
          workers(node).map((x) => x.pods),
          want,
        ),
      );
      const w = workers(node);
      assert.equal(w.length, 2);
      assert.deepEqual(
        w.map((x) => x.pods),
        want,
      );
      assert.notEqual(w[0]?.threadId, w[1]?.threadId);
    }
    // New connections, new source ports: the kernel's SO_REUSEPORT hash
    // spreads them; 24 all landing on one of two workers is 2^-23. Counted
    // at accept: node1's outbound listeners, node2's plaintext inbound ones
    // (HBONE streams arrive on pooled connections, spread per connection).
    for (let i = 0; i < 24; i++) await echo('a-secure', 'b-secure');
    for (let i = 0; i < 24; i++) await echo('c-plain', 'b-secure');
    await until('both workers counted', () => {
      const out = metric('node1', 'meshless_data_plane_worker_connections_opened_total');
      const inn = metric('node2', 'meshless_data_plane_worker_connections_opened_total');
      return [out, inn].every((m) => (m.get('0') ?? 0) > 0 && (m.get('1') ?? 0) > 0);
    });
    const opened = metric('node1', 'meshless_data_plane_worker_connections_opened_total');
    assert.ok((opened.get('0') ?? 0) + (opened.get('1') ?? 0) >= 24);
  });

  test("admin /connections lists every worker's connections", async () => {
    // Hold connections open and list them while they live.
    const sockets = await Promise.all(
      Array.from({ length: 12 }, () => connectAsApp(netns('a-secure'), ip('b-secure'), APP_PORT)),
    );
    try {
      for (const s of sockets) s.write('ECHO\n');
      await until('12 outbound connections listed on node1', () => {
        const list = admin(cluster.node('node1'), '/connections') as { worker: number }[];
        return list.length >= 12;
      });
      const list = admin(cluster.node('node1'), '/connections') as { worker: number }[];
      assert.deepEqual(
        [...new Set(list.map((c) => c.worker))].sort(),
        [0, 1],
        'connections from both workers',
      );
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  test('a killed worker is replaced, its pods bound again, and the pod never stops being served', async () => {
    const before = workers('node2');
    // Sequential connections a-secure -> b-secure all along. The one in
    // flight through the dying worker, if any, is reset (its sockets are
    // abortive); every connection started once the worker is gone must
    // succeed: served by the other worker's listeners until the replacement
    // has bound its own.
    const attempts: { startedAt: number; error?: string }[] = [];
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        const attempt: { startedAt: number; error?: string } = { startedAt: Date.now() };
        attempts.push(attempt);
        await echo('a-secure', 'b-secure').catch((err: unknown) => (attempt.error = String(err)));
      }
    })();
    await until('some traffic', () => attempts.length > 3);
    // Synchronous (curl): no connection starts until the worker has exited.
    admin(cluster.node('node2'), '/workers/terminate?worker=0', 'POST');
    const goneAt = Date.now();
    await until('worker 0 replaced and serving both pods', () => {
      const w = workers('node2')[0];
      return (
        w !== undefined && w.restarts === 1 && w.pods === 2 && w.threadId !== before[0]?.threadId
      );
    });
    const replacedAt = Date.now();
    await until('traffic after the restart', () =>
      attempts.some((a) => a.startedAt > replacedAt + 500),
    );
    stop = true;
    await traffic;
    const after = attempts.filter((a) => a.startedAt >= goneAt);
    const failedAfter = after.filter((a) => a.error !== undefined);
    assert.deepEqual(failedAfter, [], `${failedAfter.length} of ${after.length} failed`);
    const failedBefore = attempts.filter((a) => a.startedAt < goneAt && a.error !== undefined);
    assert.ok(failedBefore.length <= 1, JSON.stringify(failedBefore));
    assert.equal(metric('node2', 'meshless_data_plane_worker_restarts_total').get('0'), 1);
    // The replacement accepts connections too (plaintext inbound: counted at accept).
    const opened0 = (): number =>
      metric('node2', 'meshless_data_plane_worker_connections_opened_total').get('0') ?? 0;
    const was = opened0();
    for (let i = 0; i < 16; i++) await echo('c-plain', 'b-secure');
    await until('the new worker 0 accepts', () => opened0() > was);
  });

  test('release reaches every worker: the pod is unbound in both', async () => {
    await cluster.removePod(cluster.pod('e-secure'));
    await until('e-secure released in both workers of node2', () =>
      workers('node2').every((w) => w.pods === 1),
    );
  });

  test('an SVID rotation reaches every worker, and connections keep working', async () => {
    const id = `spiffe://cluster.local/ns/secure/sa/${cluster.pod('b-secure').serviceAccount}`;
    const serialIn = (node: string): (string | undefined)[] =>
      workers(node).map((w) => w.svids?.[id]);
    const first = serialIn('node2');
    assert.ok(first[0] !== undefined && first[0] === first[1], JSON.stringify(first));
    await until(
      'a rotated SVID in both workers',
      () => {
        const now = serialIn('node2');
        return now[0] !== first[0] && now[0] === now[1];
      },
      50_000,
    );
    const certs = admin(cluster.node('node2'), '/certs') as {
      identities: { spiffeId: string; serialNumber: string }[];
    };
    assert.equal(
      certs.identities.find((c) => c.spiffeId === id)?.serialNumber,
      serialIn('node2')[0],
    );
    for (let i = 0; i < 6; i++) await echo('a-secure', 'b-secure');
  });
});
