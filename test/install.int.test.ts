/**
 * install.sh end to end: the real script and the built CLI against temp CNI
 * dirs. The script and dist/ are copied into a temp "repo" first, so a
 * concurrent `npm run build` cannot change them under the test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { snapshotFiles } from './support/file-snapshot.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TESTDATA = join(REPO, 'test/src/installer/testdata');

let root: string;
let script: string;
let plugin: string;
let binDir: string;
let confDir: string;

/** Newest modification time of the sources bundled into the installer CLI. */
async function newestSource(): Promise<number> {
  let newest = 0;
  for (const dir of ['cli', 'src/installer', 'src/state']) {
    const names = await readdir(join(REPO, dir), { recursive: true });
    for (const name of names)
      newest = Math.max(newest, (await stat(join(REPO, dir, name))).mtimeMs);
  }
  return newest;
}

async function cliFresh(): Promise<boolean> {
  const built = await stat(join(REPO, 'dist/meshless.js')).catch(() => undefined);
  return built !== undefined && built.mtimeMs >= (await newestSource()) && cliBuilt();
}

function cliBuilt(): boolean {
  const r = spawnSync(process.execPath, [join(REPO, 'dist/meshless.js'), 'cni', '--help'], {
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout.includes('install');
}

before(async () => {
  // `npm test` builds first; a direct run rebuilds when the bundle is older than the sources.
  if (!(await cliFresh())) spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
  assert.ok(cliBuilt(), 'dist/meshless.js has no `cni` command; run npm run build');
  root = await mkdtemp(join(tmpdir(), 'meshless-install-sh-'));
  const repo = join(root, 'repo');
  await mkdir(repo);
  await cp(join(REPO, 'install.sh'), join(repo, 'install.sh'));
  await cp(join(REPO, 'package.json'), join(repo, 'package.json'));
  await cp(join(REPO, 'dist'), join(repo, 'dist'), { recursive: true });
  script = join(repo, 'install.sh');
  plugin = join(repo, 'dist/meshless-cni');
});

after(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  const node = await mkdtemp(join(root, 'node-'));
  binDir = join(node, 'opt/cni/bin');
  confDir = join(node, 'etc/cni/net.d');
  await mkdir(confDir, { recursive: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function installSh(args: readonly string[], env: Record<string, string> = {}): Run {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CNI_BIN_DIR: '', CNI_CONF_DIR: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dirs = () => ['--cni-bin-dir', binDir, '--cni-conf-dir', confDir];

function ok(r: Run): Run {
  assert.equal(r.status, 0, `install.sh failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Every file in the conf and bin dirs: mode, owner and bytes. */
const snapshot = () => snapshotFiles([confDir, binDir]);

async function ourEntries(file: string): Promise<unknown[]> {
  const doc = JSON.parse(await readFile(join(confDir, file), 'utf8')) as { plugins: unknown[] };
  return doc.plugins.filter(
    (p) => typeof p === 'object' && p !== null && 'type' in p && p.type === 'meshless-cni',
  );
}

describe('install.sh', () => {
  it('installs into a .conf twice, then uninstalls twice back to the original', async () => {
    const original = await readFile(join(TESTDATA, 'bridge.conf'));
    await writeFile(join(confDir, '10-bridge.conf'), original);
    await chmod(join(confDir, '10-bridge.conf'), 0o600);
    const before = await snapshot();

    const first = ok(installSh([...dirs(), '--exclude-namespaces', 'kube-system,monitoring']));
    assert.match(first.stdout, /meshless-cni installed/);
    const installed = await snapshot();
    assert.deepEqual(await readdir(confDir), ['10-bridge.conflist']);
    assert.equal((await stat(join(confDir, '10-bridge.conflist'))).mode & 0o7777, 0o600);
    const entries = await ourEntries('10-bridge.conflist');
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0], {
      type: 'meshless-cni',
      socketPath: '/var/run/meshless/cni.sock',
      excludeNamespaces: ['kube-system', 'monitoring'],
    });
    const bin = join(binDir, 'meshless-cni');
    assert.equal((await stat(bin)).mode & 0o7777, 0o755);
    assert.ok((await readFile(bin)).equals(await readFile(plugin)), 'binary identical to dist/');

    const second = ok(installSh([...dirs(), '--exclude-namespaces', 'kube-system,monitoring']));
    assert.match(second.stdout, /already installed; nothing to do/);
    assert.deepEqual(await snapshot(), installed, 'second install changed nothing');

    const removed = ok(installSh(['--uninstall', ...dirs()]));
    assert.match(removed.stdout, /meshless-cni uninstalled/);
    assert.deepEqual(await snapshot(), before, 'original bytes and mode restored');
    assert.ok((await readFile(join(confDir, '10-bridge.conf'))).equals(original));

    const again = ok(installSh(['--uninstall', ...dirs()]));
    assert.match(again.stdout, /already uninstalled; nothing to do/);
    assert.deepEqual(await snapshot(), before);
  });

  it('takes the dirs from CNI_BIN_DIR / CNI_CONF_DIR and edits the --conf-file it is given', async () => {
    const conflist = await readFile(join(TESTDATA, 'bridge-portmap.conflist'));
    await writeFile(join(confDir, '10-podnet.conflist'), conflist);
    await writeFile(
      join(confDir, '05-other.conflist'),
      '{"name":"o","plugins":[{"type":"ptp"}]}\n',
    );
    const before = await snapshot();
    const env = { CNI_BIN_DIR: binDir, CNI_CONF_DIR: confDir };

    for (let i = 0; i < 2; i++) ok(installSh(['--conf-file', '10-podnet.conflist'], env));
    assert.equal((await ourEntries('10-podnet.conflist')).length, 1);
    assert.equal((await ourEntries('05-other.conflist')).length, 0, 'lexically first left alone');
    await stat(join(binDir, 'meshless-cni'));

    for (let i = 0; i < 2; i++) ok(installSh(['--uninstall'], env));
    assert.deepEqual(await snapshot(), before);
  });

  const bad: readonly [string, string, string, RegExp][] = [
    [
      'invalid JSON',
      '10-a.conflist',
      '{"name": "a", "plugins": [',
      /10-a\.conflist is not valid JSON/,
    ],
    [
      'no plugins',
      '10-a.conflist',
      '{"cniVersion": "1.0.0", "name": "a"}\n',
      /10-a\.conflist has no "plugins" array/,
    ],
    [
      'conf without type',
      '10-a.conf',
      '{"cniVersion": "1.0.0", "name": "a"}\n',
      /10-a\.conf has no "type"/,
    ],
  ];
  for (const [name, file, text, message] of bad)
    it(`refuses a config with ${name}, exits non-zero and leaves it untouched`, async () => {
      await writeFile(join(confDir, file), text);
      const before = await snapshot();
      const r = installSh(dirs());
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /cni install failed \(MESHLESS_E_INSTALL\)/);
      assert.match(r.stderr, message);
      assert.ok(r.stderr.includes(join(confDir, file)), 'message names the full path');
      assert.deepEqual(await snapshot(), before);
      await assert.rejects(stat(binDir), { code: 'ENOENT' }, 'no binary installed either');
    });

  it('fails clearly on an empty conf dir', () => {
    const r = installSh(dirs());
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no CNI network config .* in /);
  });

  it('--node writes the plugin kubeconfig (0600) from the service account; --uninstall --node removes it', async () => {
    await writeFile(
      join(confDir, '10-podnet.conflist'),
      await readFile(join(TESTDATA, 'bridge-portmap.conflist')),
    );
    const before = await snapshot();
    const sa = await mkdtemp(join(root, 'sa-'));
    await writeFile(join(sa, 'token'), 'node-token\n');
    await cp(join(TESTDATA, 'serviceaccount-ca.crt'), join(sa, 'ca.crt'));
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    for (let i = 0; i < 2; i++)
      ok(installSh(['--node', '--service-account-dir', sa, ...dirs()], env));
    const kubeconfig = join(confDir, 'meshless-kubeconfig');
    assert.equal((await stat(kubeconfig)).mode & 0o7777, 0o600);
    assert.match(
      await readFile(kubeconfig, 'utf8'),
      /server: https:\/\/10\.96\.0\.1:443\n[^]*token: node-token\n/,
    );
    assert.deepEqual(await ourEntries('10-podnet.conflist'), [
      { type: 'meshless-cni', socketPath: '/var/run/meshless/cni.sock', kubeconfig },
    ]);

    const refused = installSh(['--uninstall', '--plugin', plugin, ...dirs()]);
    assert.equal(refused.status, 2);
    for (let i = 0; i < 2; i++) ok(installSh(['--uninstall', '--node', ...dirs()]));
    assert.deepEqual(await snapshot(), before);
  });

  it('--node without the in-cluster environment fails clearly', async () => {
    await writeFile(
      join(confDir, '10-podnet.conflist'),
      await readFile(join(TESTDATA, 'bridge-portmap.conflist')),
    );
    const r = installSh(['--node', ...dirs()], { KUBERNETES_SERVICE_HOST: '' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /KUBERNETES_SERVICE_HOST is not set/);
  });

  it('--help prints usage; unknown flags are refused', () => {
    const help = ok(installSh(['--help']));
    assert.match(help.stdout, /Usage: install\.sh/);
    assert.match(help.stdout, /--node/);
    assert.match(help.stdout, /--watch/);
    const bad = installSh(['--frobnicate']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown argument: --frobnicate/);
  });
});
