/**
 * The plugin's kubeconfig (node mode): rendering against a golden file, the
 * in-cluster inputs and their errors, and node-mode install/uninstall run
 * twice.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { MeshlessError } from '../../../src/errors.js';
import {
  apiServerUrl,
  readServiceAccount,
  renderKubeconfig,
  writeKubeconfig,
} from '../../../src/installer/kubeconfig.js';
import {
  defaultKubeconfigPath,
  installNode,
  uninstallNode,
  waitForPrimaryConfig,
} from '../../../src/installer/node-install.js';
import { assertGolden, readTestdata } from './golden.js';

const CA = readTestdata('serviceaccount-ca.crt');
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWVzaGxlc3MifQ.c2ln';
const CREDS = { server: 'https://10.96.0.1:443', caPem: CA, token: TOKEN };

function installErrorMatching(re: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, 'MESHLESS_E_INSTALL');
    assert.match(err.message, re);
    return true;
  };
}

describe('renderKubeconfig', () => {
  it('matches the golden file', () => {
    assertGolden('plugin.kubeconfig.golden', renderKubeconfig(CREDS));
  });

  it('is what @kubernetes/client-node (the plugin fallback) loads', () => {
    const kc = new KubeConfig();
    kc.loadFromString(renderKubeconfig(CREDS));
    assert.equal(kc.getCurrentCluster()?.server, 'https://10.96.0.1:443');
    assert.equal(kc.getCurrentCluster()?.caData, Buffer.from(CA).toString('base64'));
    assert.equal(kc.getCurrentUser()?.token, TOKEN);
  });

  it('is deterministic and trims the token', () => {
    assert.equal(renderKubeconfig({ ...CREDS, token: `${TOKEN}\n` }), renderKubeconfig(CREDS));
    const doc = parse(renderKubeconfig(CREDS)) as { users: { user: { token: string } }[] };
    assert.equal(doc.users[0]?.user.token, TOKEN);
  });

  const bad: [string, Partial<typeof CREDS>, RegExp][] = [
    ['an empty token', { token: ' \n' }, /token is empty/],
    ['a token with a space', { token: 'a b' }, /printable ASCII/],
    ['a CA without a certificate', { caPem: 'hello' }, /ca\.crt holds no PEM certificate/],
  ];
  for (const [name, change, re] of bad)
    it(`refuses ${name}`, () => {
      assert.throws(() => renderKubeconfig({ ...CREDS, ...change }), installErrorMatching(re));
    });
});

describe('apiServerUrl', () => {
  const ok: [string, string, string][] = [
    ['10.96.0.1', '443', 'https://10.96.0.1:443'],
    ['fd00:10:96::1', '443', 'https://[fd00:10:96::1]:443'],
    ['kubernetes.default.svc', '6443', 'https://kubernetes.default.svc:6443'],
  ];
  for (const [host, port, want] of ok)
    it(`${host} ${port} -> ${want}`, () => {
      assert.equal(
        apiServerUrl({ KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port }),
        want,
      );
    });
  const bad: [string | undefined, string | undefined, RegExp][] = [
    [undefined, '443', /KUBERNETES_SERVICE_HOST is not set/],
    ['10.96.0.1', undefined, /KUBERNETES_SERVICE_PORT "" is not a port/],
    ['10.96.0.1', '0', /KUBERNETES_SERVICE_PORT "0"/],
    ['10.96.0.1', '70000', /KUBERNETES_SERVICE_PORT "70000"/],
    ['a/b', '443', /KUBERNETES_SERVICE_HOST "a\/b"/],
  ];
  for (const [host, port, re] of bad)
    it(`refuses host=${host} port=${port}`, () => {
      assert.throws(
        () => apiServerUrl({ KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port }),
        installErrorMatching(re),
      );
    });
});

let root: string;
let saDir: string;
let confDir: string;
let binDir: string;
let pluginSource: string;
const ENV = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshless-kubeconfig-'));
  saDir = join(root, 'sa');
  confDir = join(root, 'etc/cni/net.d');
  binDir = join(root, 'opt/cni/bin');
  pluginSource = join(root, 'meshless-cni.src');
  await mkdir(saDir);
  await mkdir(confDir, { recursive: true });
  await writeFile(join(saDir, 'token'), `${TOKEN}\n`);
  await writeFile(join(saDir, 'ca.crt'), CA);
  await writeFile(pluginSource, '#!/bin/sh\n');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('readServiceAccount / writeKubeconfig', () => {
  it('reads token, CA and server', async () => {
    assert.deepEqual(await readServiceAccount(saDir, ENV), CREDS);
  });

  it('names a missing token file and the likely cause', async () => {
    await rm(join(saDir, 'token'));
    await assert.rejects(
      readServiceAccount(saDir, ENV),
      installErrorMatching(/sa\/token does not exist: is a service-account token mounted/),
    );
  });

  it('writes mode 0600 once, and again only when the text or mode changed', async () => {
    const path = join(confDir, 'meshless-kubeconfig');
    const text = renderKubeconfig(CREDS);
    assert.equal(await writeKubeconfig(path, text), true);
    assert.equal((await stat(path)).mode & 0o7777, 0o600);
    assert.equal(await writeKubeconfig(path, text), false);
    await chmod(path, 0o644);
    assert.equal(await writeKubeconfig(path, text), true);
    assert.equal((await stat(path)).mode & 0o7777, 0o600);
    assert.equal(await readFile(path, 'utf8'), text);
  });
});

describe('installNode / uninstallNode', () => {
  const options = () => ({
    binDir,
    confDir,
    pluginSource,
    node: { kubeconfigPath: defaultKubeconfigPath(confDir), serviceAccountDir: saDir, env: ENV },
  });

  it('writes the kubeconfig, points our entry at it, runs twice, and uninstall removes both', async () => {
    await writeFile(join(confDir, '10-podnet.conflist'), readTestdata('bridge-portmap.conflist'));
    const first = await installNode(options());
    assert.deepEqual(
      first.actions.map((a) => a.action),
      ['written', 'written', 'written'],
    );
    const doc = JSON.parse(await readFile(join(confDir, '10-podnet.conflist'), 'utf8')) as {
      plugins: { type: string; kubeconfig?: string }[];
    };
    assert.equal(doc.plugins.at(-1)?.type, 'meshless-cni');
    assert.equal(doc.plugins.at(-1)?.kubeconfig, join(confDir, 'meshless-kubeconfig'));
    assert.equal(
      await readFile(join(confDir, 'meshless-kubeconfig'), 'utf8'),
      renderKubeconfig(CREDS),
    );

    const second = await installNode(options());
    assert.ok(
      second.actions.every((a) => a.action === 'unchanged'),
      JSON.stringify(second),
    );

    // A rotated token rewrites the kubeconfig and nothing else.
    await writeFile(join(saDir, 'token'), 'rotated-token');
    const rotated = await installNode(options());
    assert.deepEqual(
      rotated.actions.map((a) => a.action),
      ['written', 'unchanged', 'unchanged'],
    );

    for (let i = 0; i < 2; i++)
      await uninstallNode({ binDir, confDir }, options().node.kubeconfigPath);
    assert.deepEqual(await readdir(confDir), ['10-podnet.conflist']);
    assert.equal(
      await readFile(join(confDir, '10-podnet.conflist'), 'utf8'),
      readTestdata('bridge-portmap.conflist'),
    );
  });

  it('validates the flags before writing anything', async () => {
    await writeFile(join(confDir, '10-podnet.conflist'), readTestdata('bridge-portmap.conflist'));
    await assert.rejects(
      installNode({ ...options(), entryOptions: { logLevel: 'loud' } }),
      installErrorMatching(/--log-level "loud"/),
    );
    assert.deepEqual(await readdir(confDir), ['10-podnet.conflist']);
  });
});

describe('waitForPrimaryConfig', () => {
  it('resolves true once a config appears, ignoring other files', async () => {
    await writeFile(join(confDir, 'meshless-kubeconfig'), 'x');
    const waiting = waitForPrimaryConfig(confDir, { intervalMs: 10 });
    await new Promise((r) => setTimeout(r, 50));
    await writeFile(join(confDir, '10-a.conflist'), '{}');
    assert.equal(await waiting, true);
  });

  it('resolves false when aborted, also while the dir does not exist', async () => {
    const ac = new AbortController();
    const waiting = waitForPrimaryConfig(join(root, 'missing'), {
      signal: ac.signal,
      intervalMs: 10_000,
    });
    ac.abort();
    assert.equal(await waiting, false);
  });
});
