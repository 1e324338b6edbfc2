/**
 * The built CLI (dist/meshless.js) against a stub admin endpoint on
 * 127.0.0.1:0 that serves the recorded answers of the daemon's routes
 * (test/cli/testdata/admin): exit codes, tables, --json, MESHLESS_ADMIN,
 * and clear errors for an unreachable daemon or an answer it cannot read.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { policyCheckRoute } from '../../cli/commands/policy.js';
import { parseClusterDocument } from '../../src/discovery/file-source.js';
import { checkPolicy } from '../../src/policy/policy-check.js';
import { buildPolicyIndex } from '../../src/policy/policy-index.js';
import { testdata } from '../support/golden.js';
import { adminAnswer } from './admin-fixtures.js';

const REPO = join(import.meta.dirname, '..', '..');
const CLI = join(REPO, 'dist', 'meshless.js');

/** Newest modification time of the sources bundled into the CLI. */
async function newestSource(): Promise<number> {
  let newest = 0;
  for (const dir of ['cli', 'src']) {
    const names = await readdir(join(REPO, dir), { recursive: true });
    for (const name of names)
      newest = Math.max(newest, (await stat(join(REPO, dir, name))).mtimeMs);
  }
  return newest;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI bundle (asynchronously: the stub server lives in this process). */
function meshless(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env['PATH'], ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Answers per route; a test may swap one. */
const routes = new Map<string, string>();

function serveRecorded(): void {
  routes.clear();
  for (const route of ['status', 'workloads', 'connections', 'config'])
    routes.set(`/${route}`, JSON.stringify(adminAnswer(route), null, 2) + '\n');
}

describe('meshless admin verbs (built CLI, stub daemon)', () => {
  let server: Server;
  let admin: string;
  let refused: string;

  before(async () => {
    // `npm test` builds first; a direct run rebuilds when the bundle is older than the sources.
    const built = await stat(CLI).catch(() => undefined);
    if (built === undefined || built.mtimeMs < (await newestSource()))
      spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
    assert.ok((await stat(CLI).catch(() => undefined)) !== undefined, 'npm run build failed');

    server = createServer((req, res) => {
      const body = routes.get(req.url ?? '/');
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(body ?? JSON.stringify({ error: `no such path ${req.url ?? '/'}` }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    admin = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    refused = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((r) => closed.close(r));
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const tables: readonly [string, RegExp][] = [
    ['status', /^Node {10}node-a, meshless 0\.1\.0, up \S+\n[^]*Ready {9}yes\n/],
    [
      'workloads',
      /^POD +ENROLLED +IDENTITY +IPS +NETNS +REGISTERED\n[^]*shop\/db-0 +yes +ns\/shop\/sa\/db /,
    ],
    ['connections', /^POD +DIRECTION +AGE +SOURCE -> DESTINATION\n[^]*-> 10\.96\.0\.10:53\n/],
    ['config', /^nodeName: node-a\ntrustDomain: cluster\.local\n/],
  ];
  for (const [verb, table] of tables) {
    it(`${verb}: a table on 80 columns, no colour on a pipe, exit 0`, async () => {
      serveRecorded();
      const r = await meshless([verb, '--admin', admin]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.match(r.stdout, table);
      assert.ok(!r.stdout.includes('\x1b'), 'no colour on a pipe');
      for (const line of r.stdout.split('\n')) assert.ok([...line].length <= 80, line);
    });

    it(`${verb} --json: the daemon's answer as it came`, async () => {
      serveRecorded();
      const r = await meshless([verb, '--json'], { MESHLESS_ADMIN: admin });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), adminAnswer(verb));
    });
  }

  describe('policy check', () => {
    const data = testdata(new URL('./testdata/policy', import.meta.url));
    const snapshot = parseClusterDocument(data.read('cluster.yaml'), 'cluster.yaml');
    const answer = (from: string, to: string): string =>
      JSON.stringify(
        checkPolicy(
          snapshot,
          buildPolicyIndex(snapshot),
          { from, to },
          {
            trustDomain: 'cluster.local',
            enforceNetworkPolicy: true,
            enrolled: (pod) => pod.namespace !== 'legacy',
          },
        ),
      );
    const cases: [string, string, string, number][] = [
      ['allowed', 'shop/web-0', 'shop/db-0:pg', 0],
      ['denied-by-deny-policy', 'pay/gateway-0', 'shop/db-0:5432', 2],
    ];
    for (const [golden, from, to, code] of cases)
      it(`${from} -> ${to}: the explanation, exit ${code}`, async () => {
        serveRecorded();
        routes.set(policyCheckRoute(from, to), answer(from, to));
        const r = await meshless(['policy', 'check', '--from', from, '--to', to, '--admin', admin]);
        assert.equal(r.stderr, '');
        assert.equal(r.code, code);
        assert.equal(r.stdout, data.read(`${golden}.txt`));
        const json = await meshless([
          'policy',
          'check',
          '--from',
          from,
          '--to',
          to,
          '--json',
          '--admin',
          admin,
        ]);
        assert.equal(json.code, code);
        assert.deepEqual(JSON.parse(json.stdout), JSON.parse(answer(from, to)));
      });
    it('a query the daemon refuses: exit 1 with its reason', async () => {
      serveRecorded();
      const r = await meshless([
        'policy',
        'check',
        '--from',
        'x/y',
        '--to',
        'shop/db-0:1',
        '--admin',
        admin,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^meshless policy check: .*answered 404/);
    });
  });

  it('an unreachable daemon: exit 1 and what to check', async () => {
    const r = await meshless(['status', '--admin', refused]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /^meshless status: cannot reach the meshless daemon's admin endpoint at http:\/\/127\.0\.0\.1:\d+\/status \(connection refused\); is the daemon running on this node\? .*\(MESHLESS_E_ADMIN_UNREACHABLE\)\n$/,
    );
  });

  it('an answer of another shape: exit 1 naming the field, no stack trace', async () => {
    serveRecorded();
    routes.set('/workloads', JSON.stringify({ items: [] }));
    const r = await meshless(['workloads', '--admin', admin]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "meshless workloads: the daemon's /workloads answer is not understood: workloads should be " +
        'an array (is the CLI the same version as the daemon?) (MESHLESS_E_ADMIN_RESPONSE)\n',
    );
  });

  it('an answer that is not JSON: exit 1', async () => {
    serveRecorded();
    routes.set('/status', '<html>hello</html>');
    const r = await meshless(['status', '--admin', admin]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^meshless status: .*not JSON; is --admin pointing at the meshless daemon\?/,
    );
  });

  it('a malformed --admin: exit 1 with an example', async () => {
    const r = await meshless(['connections', '--admin', 'localhost']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--admin "localhost" is not "host:port" \(e\.g\. 127\.0\.0\.1:15000\)/);
  });
});
