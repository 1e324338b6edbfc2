/**
 * The plugin's fallback when the daemon is unreachable, through the built
 * bundle (which loads the embedded Kubernetes client): a fake API server on
 * loopback answers GET /api/v1/namespaces/NAME.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BUNDLE = join(process.cwd(), 'dist/meshless-cni');

const PREV = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/x' }],
  ips: [{ address: '10.9.0.4/24', interface: 0 }],
};

describe('plugin fallback to the Kubernetes API', () => {
  let dir: string;
  let api: Server;
  let kubeconfig: string;
  const seen: string[] = [];

  before(async () => {
    if (!existsSync(BUNDLE)) spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
    dir = mkdtempSync(join(tmpdir(), 'meshless-fallback-'));
    api = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const m = /^\/api\/v1\/namespaces\/([a-z0-9-]+)$/.exec(req.url ?? '');
      const labels: Record<string, Record<string, string>> = {
        secure: { 'io.cilium/mtls-enabled': 'true' },
        plain: { team: 'a' },
        custom: { 'example.com/mtls': 'on' },
      };
      if (m && m[1] && labels[m[1]]) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: m[1], labels: labels[m[1]] },
          }),
        );
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            reason: 'NotFound',
            code: 404,
          }),
        );
      }
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as AddressInfo).port;
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: test-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
  });

  after(() => {
    api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Async: the fake API server runs on this process's event loop.
  function add(
    namespace: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ status: number | null; out: Record<string, unknown> }> {
    const child = spawn(BUNDLE, [], {
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c1',
        CNI_NETNS: '/var/run/netns/x',
        CNI_IFNAME: 'eth0',
        CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=p1`,
      },
    });
    child.stdin.end(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'n',
        type: 'meshless-cni',
        socketPath: join(dir, 'no-daemon.sock'),
        kubeconfig,
        prevResult: PREV,
        daemonTimeoutMs: 2000,
        ...extra,
      }),
    );
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    return new Promise((resolve) =>
      child.on('close', (status) =>
        resolve({ status, out: JSON.parse(stdout) as Record<string, unknown> }),
      ),
    );
  }

  test('plain namespace: passes through with prevResult', async () => {
    const r = await add('plain');
    assert.equal(r.status, 0, JSON.stringify(r));
    assert.deepEqual(r.out, PREV);
    assert.ok(seen.includes('GET /api/v1/namespaces/plain'));
  });

  test('enrolled namespace: 11, the pod must not start unprotected', async () => {
    const r = await add('secure');
    assert.equal(r.status, 1);
    assert.equal(r.out['code'], 11);
    assert.match(String(r.out['msg']), /namespace secure is enrolled/);
  });

  test('custom enrolment label is honoured', async () => {
    assert.equal((await add('custom', { enrolmentLabel: 'example.com/mtls=on' })).out['code'], 11);
    assert.equal((await add('secure', { enrolmentLabel: 'example.com/mtls=on' })).status, 0);
  });

  test('namespace the API does not know: 11 (unknown means fail closed)', async () => {
    const r = await add('ghost');
    assert.equal(r.out['code'], 11);
    assert.match(String(r.out['msg']), /cannot tell/);
  });

  test('API unreachable: 11', async () => {
    const r = await add('plain', { kubeconfig: join(dir, 'missing-kubeconfig') });
    assert.equal(r.out['code'], 11);
  });
});
