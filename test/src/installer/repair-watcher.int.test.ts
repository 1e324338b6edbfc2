/**
 * Watch and repair against a real conf dir: the primary CNI rewrites its
 * config (atomic rename, in-place write, a new lexically-first file) and our
 * entry comes back within a bounded wait, without the watcher looping on its
 * own writes. Then the CLI in node mode as a process: SIGTERM stops it, and
 * the exit policy asks a fake API server about the owner DaemonSet.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lookUpDaemonSet, type DaemonSetState } from '../../../src/installer/exit-policy.js';
import { installCni } from '../../../src/installer/install.js';
import { RepairWatcher } from '../../../src/installer/repair-watcher.js';
import { readTestdata } from './golden.js';
import { until } from '../../support/until.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(REPO, 'test/src/installer/run-cni-cli.ts');
const PRIMARY = readTestdata('bridge-portmap.conflist');
/** What the primary CNI writes when it "rewrites" its config: a changed subnet, no entry of ours. */
const REWRITTEN = PRIMARY.replace('10.88.0.0/16', '10.99.0.0/16');

let root: string;
let confDir: string;
let binDir: string;
let pluginSource: string;
let watcher: RepairWatcher | undefined;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshless-watch-'));
  confDir = join(root, 'etc/cni/net.d');
  binDir = join(root, 'opt/cni/bin');
  pluginSource = join(root, 'meshless-cni.src');
  await mkdir(confDir, { recursive: true });
  await writeFile(pluginSource, '#!/bin/sh\n');
  await writeFile(join(confDir, '10-podnet.conflist'), PRIMARY);
});

afterEach(async () => {
  await watcher?.stop();
  watcher = undefined;
  await rm(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pluginTypes(file: string): Promise<string[]> {
  try {
    const doc = JSON.parse(await readFile(join(confDir, file), 'utf8')) as {
      plugins: { type: string }[];
    };
    return doc.plugins.map((p) => p.type);
  } catch {
    return []; // missing or half-written
  }
}

const hasOurEntry = async (file: string) => (await pluginTypes(file)).at(-1) === 'meshless-cni';

/** Starts a watcher whose only trigger is fs.watch (the re-check is an hour away). */
async function startWatcher(): Promise<RepairWatcher> {
  watcher = new RepairWatcher({
    confDir,
    repair: () => installCni({ binDir, confDir, pluginSource }),
    debounceMs: 50,
    recheckMs: 3_600_000,
    retryMs: 100,
  });
  await watcher.start();
  return watcher;
}

/** Waits until no pass has run for `quietMs`, then returns the stats. */
async function settled(w: RepairWatcher, quietMs = 400) {
  let passes = w.stats.passes;
  for (;;) {
    await sleep(quietMs);
    if (w.stats.passes === passes) return w.stats;
    passes = w.stats.passes;
  }
}

describe('RepairWatcher', () => {
  it('installs at start and then stays quiet (no loop on its own writes)', async () => {
    const w = await startWatcher();
    assert.ok(await hasOurEntry('10-podnet.conflist'));
    const stats = await settled(w);
    assert.equal(stats.writes, 2, 'the binary and the conflist, once');
    assert.equal(stats.repairs, 1);
    assert.ok(stats.passes <= 3, `passes: ${stats.passes}`);
    await sleep(500);
    assert.deepEqual(w.stats, stats, 'nothing happens while nothing changes');
  });

  it('re-inserts our entry after an atomic rewrite (temp file + rename)', async () => {
    const w = await startWatcher();
    const before = await settled(w);
    const tmp = join(confDir, '.10-podnet.conflist.calico-tmp');
    await writeFile(tmp, REWRITTEN);
    await rename(tmp, join(confDir, '10-podnet.conflist'));
    await until('our entry is back', () => hasOurEntry('10-podnet.conflist'));
    const text = await readFile(join(confDir, '10-podnet.conflist'), 'utf8');
    assert.ok(text.includes('10.99.0.0/16'), 'their change is kept');
    const after = await settled(w);
    assert.equal(after.writes - before.writes, 1, 'exactly one write: the conflist');
    assert.equal(after.repairs - before.repairs, 1);
    assert.equal(after.failures, 0);
  });

  it('re-inserts our entry after an in-place write in two halves', async () => {
    const w = await startWatcher();
    const before = await settled(w);
    const fh = await open(join(confDir, '10-podnet.conflist'), 'r+');
    await fh.truncate(0);
    const half = Math.floor(REWRITTEN.length / 2);
    await fh.write(REWRITTEN.slice(0, half), 0);
    await fh.sync();
    await sleep(150); // longer than the debounce: a pass may see the torn file and retry
    await fh.write(REWRITTEN.slice(half), half);
    await fh.close();
    await until('our entry is back', () => hasOurEntry('10-podnet.conflist'));
    const after = await settled(w);
    assert.ok(
      (await readFile(join(confDir, '10-podnet.conflist'), 'utf8')).includes('10.99.0.0/16'),
    );
    assert.equal(after.writes - before.writes, 1, 'exactly one write once the file is whole');
  });

  it('follows a new lexically-first config', async () => {
    const w = await startWatcher();
    await settled(w);
    await writeFile(
      join(confDir, '05-cilium.conflist'),
      '{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"cilium-cni"}]}\n',
    );
    await until('our entry is in the new primary', () => hasOurEntry('05-cilium.conflist'));
    await settled(w);
    assert.deepEqual(await pluginTypes('05-cilium.conflist'), ['cilium-cni', 'meshless-cni']);
  });

  it('repairs a deleted entry and keeps going after the primary config vanished', async () => {
    const w = await startWatcher();
    await settled(w);
    await rm(join(confDir, '10-podnet.conflist'));
    await until('a failed pass', async () => w.stats.failures > 0);
    await writeFile(join(confDir, '10-podnet.conflist'), REWRITTEN);
    await until('our entry is back', () => hasOurEntry('10-podnet.conflist'));
  });

  it('ignores files no runtime loads (the kubeconfig, hidden temp files)', async () => {
    const w = await startWatcher();
    const before = await settled(w);
    await writeFile(join(confDir, 'meshless-kubeconfig'), 'x');
    await writeFile(join(confDir, '.hidden.conflist'), 'x');
    const after = await settled(w);
    assert.equal(after.passes, before.passes);
  });

  it('writes nothing after stop()', async () => {
    const w = await startWatcher();
    await settled(w);
    await w.stop();
    await writeFile(join(confDir, '10-podnet.conflist'), REWRITTEN);
    await sleep(300);
    assert.equal(await hasOurEntry('10-podnet.conflist'), false);
  });
});

/** A fake API server answering the DaemonSet lookup with `answer()`. */
function daemonSetHandler(answer: () => { status: number; body?: unknown }) {
  return (
    req: { url?: string | undefined; headers: Record<string, unknown> },
    res: {
      writeHead(s: number, h: Record<string, string>): { end(b: string): void };
    },
  ) => {
    const a = answer();
    const ok =
      req.url === '/apis/apps/v1/namespaces/meshless-system/daemonsets/meshless-node' &&
      req.headers.authorization === 'Bearer test-token';
    res
      .writeHead(ok ? a.status : 400, { 'content-type': 'application/json' })
      .end(JSON.stringify(a.body ?? { kind: 'Status' }));
  };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('lookUpDaemonSet', () => {
  let answer: { status: number; body?: unknown } = { status: 200 };
  let server: Server;
  let port: number;
  before(async () => {
    server = createHttpServer(daemonSetHandler(() => answer));
    port = await listen(server);
  });
  after(() => server.close());
  const ref = { namespace: 'meshless-system', name: 'meshless-node' };
  const creds = () => ({ server: `http://127.0.0.1:${port}`, caPem: '', token: 'test-token' });

  const cases: [string, { status: number; body?: unknown }, DaemonSetState][] = [
    ['live', { status: 200, body: { kind: 'DaemonSet', metadata: {} } }, 'present'],
    [
      'being deleted',
      { status: 200, body: { kind: 'DaemonSet', metadata: { deletionTimestamp: 'x' } } },
      'deleting',
    ],
    ['gone', { status: 404 }, 'absent'],
    ['forbidden', { status: 403 }, 'forbidden'],
    ['failing', { status: 503 }, 'unknown'],
  ];
  for (const [name, a, want] of cases)
    it(`${name} -> ${want}`, async () => {
      answer = a;
      assert.equal(await lookUpDaemonSet(creds(), ref), want);
    });

  it('no server -> unknown', async () => {
    const closed = createHttpServer();
    const p = await listen(closed);
    closed.close();
    assert.equal(
      await lookUpDaemonSet({ ...creds(), server: `http://127.0.0.1:${p}` }, ref),
      'unknown',
    );
  });
});

describe('meshless cni install --node --watch (process)', () => {
  let saDir: string;
  let key: string;
  let cert: string;
  let https: Server;
  let answers: { status: number; body?: unknown }[] = [];
  let asked = 0;
  let apiPort: number;

  before(async () => {
    saDir = await mkdtemp(join(tmpdir(), 'meshless-sa-'));
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(saDir, 'tls.key'),
        '-out',
        join(saDir, 'ca.crt'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    await writeFile(join(saDir, 'token'), 'test-token\n');
    key = await readFile(join(saDir, 'tls.key'), 'utf8');
    cert = await readFile(join(saDir, 'ca.crt'), 'utf8');
    https = createHttpsServer(
      { key, cert },
      daemonSetHandler(() => answers[Math.min(asked++, answers.length - 1)] ?? { status: 500 }),
    );
    apiPort = await listen(https);
  });
  after(async () => {
    https.close();
    await rm(saDir, { recursive: true, force: true });
  });

  function startCli(): { child: ChildProcess; output: () => string } {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'cni',
        'install',
        '--node',
        '--watch',
        '--uninstall-on-exit',
        '--owner-daemonset',
        'meshless-system/meshless-node',
        '--cni-bin-dir',
        binDir,
        '--cni-conf-dir',
        confDir,
        '--plugin',
        pluginSource,
        '--service-account-dir',
        saDir,
        '--debounce-ms',
        '50',
      ],
      {
        cwd: REPO,
        env: {
          ...process.env,
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: String(apiPort),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    return { child, output: () => out };
  }

  async function stopCli(child: ChildProcess): Promise<number | null> {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const [code] = (await exited) as [number | null];
    clearTimeout(timer);
    return code;
  }

  const kubeconfig = () => join(confDir, 'meshless-kubeconfig');

  it('on an upgrade (DaemonSet still there) SIGTERM stops it and keeps the entry', async () => {
    answers = [{ status: 200, body: { kind: 'DaemonSet', metadata: {} } }];
    asked = 0;
    const { child, output } = startCli();
    await until('watching', async () => output().includes('watching the CNI conf dir'), 20_000);
    assert.ok(await hasOurEntry('10-podnet.conflist'));
    assert.ok((await readFile(kubeconfig(), 'utf8')).includes('token: test-token'));
    // Still repairing while it runs.
    await writeFile(join(confDir, '10-podnet.conflist'), REWRITTEN);
    await until('our entry is back', () => hasOurEntry('10-podnet.conflist'));
    assert.equal(await stopCli(child), 0, output());
    assert.match(output(), /the DaemonSet still exists/);
    assert.ok(await hasOurEntry('10-podnet.conflist'), 'entry kept for the next pod');
    await readFile(kubeconfig());
    assert.equal(asked, 2, 'looked up at start and at exit');
  });

  it('when the DaemonSet is deleted SIGTERM uninstalls, kubeconfig included', async () => {
    answers = [{ status: 200, body: { kind: 'DaemonSet', metadata: {} } }, { status: 404 }];
    asked = 0;
    const { child, output } = startCli();
    await until('watching', async () => output().includes('watching the CNI conf dir'), 20_000);
    assert.equal(await stopCli(child), 0, output());
    assert.match(output(), /the DaemonSet was deleted/);
    assert.deepEqual(await readdir(confDir), ['10-podnet.conflist']);
    assert.equal(await readFile(join(confDir, '10-podnet.conflist'), 'utf8'), PRIMARY);
    assert.deepEqual(await readdir(binDir), []);
  });
});
