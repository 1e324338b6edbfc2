import assert from 'node:assert/strict';
import {
  chmod,
  chown,
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
import { afterEach, beforeEach, describe, it } from 'node:test';
import { installCni, uninstallCni, type InstallResult } from '../../../src/installer/install.js';
import { snapshotFiles } from '../../support/file-snapshot.js';
import { readTestdata } from './golden.js';

let root: string;
let binDir: string;
let confDir: string;
let pluginSource: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshless-installer-'));
  binDir = join(root, 'opt/cni/bin');
  confDir = join(root, 'etc/cni/net.d');
  pluginSource = join(root, 'meshless-cni.src');
  await mkdir(confDir, { recursive: true });
  await writeFile(pluginSource, '#!/bin/sh\necho plugin\n', { mode: 0o644 });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every file in the conf and bin dirs: mode, owner and bytes. */
const snapshot = () => snapshotFiles([confDir, binDir]);

const install = (extra: { confFile?: string } = {}) =>
  installCni({ binDir, confDir, pluginSource, entryOptions: { logLevel: 'info' }, ...extra });
const uninstall = () => uninstallCni({ binDir, confDir });

function actions(r: InstallResult): string[] {
  return r.actions.map((a) => `${a.action} ${a.path.slice(root.length + 1)}`);
}

describe('installCni / uninstallCni on a .conf', () => {
  it('wraps, keeps the mode, runs twice, and uninstall restores bytes and mode', async () => {
    const original = readTestdata('bridge.conf');
    await writeFile(join(confDir, '10-bridge.conf'), original);
    await chmod(join(confDir, '10-bridge.conf'), 0o640);
    const before = await snapshot();

    const first = await install();
    assert.deepEqual(actions(first), [
      'written opt/cni/bin/meshless-cni',
      'written etc/cni/net.d/10-bridge.conflist',
      'removed etc/cni/net.d/10-bridge.conf',
    ]);
    assert.deepEqual(await readdir(confDir), ['10-bridge.conflist']);
    const list = await stat(join(confDir, '10-bridge.conflist'));
    assert.equal(list.mode & 0o7777, 0o640);
    const bin = await stat(join(binDir, 'meshless-cni'));
    assert.equal(bin.mode & 0o7777, 0o755);
    assert.deepEqual(await readFile(join(binDir, 'meshless-cni')), await readFile(pluginSource));
    const installed = await snapshot();

    const second = await install();
    assert.deepEqual(actions(second), [
      'unchanged opt/cni/bin/meshless-cni',
      'unchanged etc/cni/net.d/10-bridge.conflist',
    ]);
    assert.deepEqual(await snapshot(), installed);

    const removed = await uninstall();
    assert.deepEqual(actions(removed), [
      'written etc/cni/net.d/10-bridge.conf',
      'removed etc/cni/net.d/10-bridge.conflist',
      'removed opt/cni/bin/meshless-cni',
    ]);
    assert.deepEqual(await snapshot(), before);

    const again = await uninstall();
    assert.deepEqual(actions(again), ['absent opt/cni/bin/meshless-cni']);
    assert.deepEqual(await snapshot(), before);
  });

  it(
    'keeps the owner of the file it replaces',
    { skip: process.getuid?.() !== 0 && 'needs root' },
    async () => {
      const path = join(confDir, '10-podnet.conflist');
      await writeFile(path, readTestdata('bridge-portmap.conflist'));
      await chown(path, 1234, 5678);
      await install();
      const st = await stat(path);
      assert.deepEqual([st.uid, st.gid], [1234, 5678]);
    },
  );
});

describe('installCni writes nothing when something is wrong', () => {
  const cases: readonly [string, Record<string, string>, RegExp][] = [
    ['invalid JSON', { '10-a.conflist': '{"plugins": [' }, /10-a\.conflist is not valid JSON/],
    ['no plugins', { '10-a.conflist': '{"name":"a"}\n' }, /10-a\.conflist has no "plugins" array/],
    ['conf without type', { '10-a.conf': '{"name":"a"}\n' }, /10-a\.conf has no "type"/],
    [
      'foreign conflist where the .conf would go',
      {
        '10-a.conf': '{"name":"a","type":"ptp"}\n',
        '10-a.conflist': '{"plugins":[{"type":"x"}]}\n',
      },
      /10-a\.conf would become 10-a\.conflist, but .* already exists/,
    ],
    ['empty conf dir', {}, /no CNI network config/],
  ];
  for (const [name, files, error] of cases)
    it(name, async () => {
      for (const [f, text] of Object.entries(files)) await writeFile(join(confDir, f), text);
      const before = await snapshot();
      await assert.rejects(install(), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal((err as Error & { code?: unknown }).code, 'MESHLESS_E_INSTALL');
        assert.match(err.message, error);
        return true;
      });
      assert.deepEqual(await snapshot(), before);
    });

  it('a missing plugin binary', async () => {
    await writeFile(join(confDir, '10-a.conflist'), '{"plugins":[{"type":"x"}]}\n');
    const before = await snapshot();
    await rm(pluginSource);
    await assert.rejects(install(), /cannot read the plugin binary .*npm run build/);
    assert.deepEqual(await snapshot(), before);
  });

  it('a missing conf dir', async () => {
    await rm(confDir, { recursive: true });
    await assert.rejects(install(), /CNI conf dir .* does not exist/);
  });
});

describe('uninstallCni', () => {
  it('is a no-op without a conf dir or binary', async () => {
    await rm(confDir, { recursive: true });
    const r = await uninstall();
    assert.deepEqual(actions(r), ['absent opt/cni/bin/meshless-cni']);
  });

  it('only reads configs that mention meshless, so a broken foreign file does not block it', async () => {
    await writeFile(join(confDir, '10-podnet.conflist'), readTestdata('bridge-portmap.conflist'));
    await install();
    await writeFile(join(confDir, '99-broken.conf'), '{not json');
    await uninstall();
    assert.equal(
      await readFile(join(confDir, '10-podnet.conflist'), 'utf8'),
      readTestdata('bridge-portmap.conflist'),
    );
    assert.equal(await readFile(join(confDir, '99-broken.conf'), 'utf8'), '{not json');
  });

  it('when the .conf came back after wrapping, install re-wraps the new one and uninstall restores it', async () => {
    await writeFile(join(confDir, '10-a.conf'), '{"name":"a","type":"ptp","mtu":1400}\n');
    await install();
    // The network plugin rewrites its config.
    const rewritten = '{"name":"a","type":"ptp","mtu":9000}\n';
    await writeFile(join(confDir, '10-a.conf'), rewritten);
    await install();
    assert.deepEqual(await readdir(confDir), ['10-a.conflist']);
    assert.match(await readFile(join(confDir, '10-a.conflist'), 'utf8'), /"mtu": 9000/);
    await uninstall();
    assert.deepEqual(await readdir(confDir), ['10-a.conf']);
    assert.equal(await readFile(join(confDir, '10-a.conf'), 'utf8'), rewritten);
  });

  it('leaves no temp files behind', async () => {
    await writeFile(join(confDir, '10-a.conf'), '{"name":"a","type":"ptp"}\n');
    await install();
    await uninstall();
    assert.deepEqual(await readdir(confDir), ['10-a.conf']);
    assert.deepEqual(await readdir(binDir), []);
  });
});
