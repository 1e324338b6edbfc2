import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SOCKET_PATH,
  buildEntry,
  parseNamespaceList,
  type EntryOptions,
} from '../../../src/installer/entry.js';
import { parsePluginConfig } from '../../../src/cni/plugin-config.js';

describe('buildEntry', () => {
  it('defaults to the daemon socket and omits unset options', () => {
    assert.deepEqual(buildEntry(), { type: 'meshless-cni', socketPath: DEFAULT_SOCKET_PATH });
  });

  it('passes every option through, in a fixed key order, namespaces deduplicated', () => {
    const entry = buildEntry({
      logLevel: 'debug',
      logFile: '/var/log/meshless-cni.log',
      excludeNamespaces: ['kube-system', 'kube-system', 'monitoring'],
      kubeconfig: '/etc/cni/net.d/meshless-kubeconfig',
      socketPath: '/run/m.sock',
    });
    assert.deepEqual(Object.keys(entry), [
      'type',
      'socketPath',
      'kubeconfig',
      'excludeNamespaces',
      'logFile',
      'logLevel',
    ]);
    assert.deepEqual(entry.excludeNamespaces, ['kube-system', 'monitoring']);
  });

  it("writes entries the plugin's own config parser accepts", () => {
    for (const options of [
      {},
      {
        socketPath: '/run/m.sock',
        kubeconfig: '/etc/cni/net.d/meshless-kubeconfig',
        excludeNamespaces: ['kube-system', 'monitoring'],
        logFile: '/var/log/meshless-cni.log',
        logLevel: 'debug',
      },
    ]) {
      const entry = buildEntry(options);
      // The runtime injects name and cniVersion from the conflist.
      const config = parsePluginConfig({ cniVersion: '1.0.0', name: 'podnet', ...entry });
      assert.equal(config.socketPath, entry.socketPath);
      assert.equal(config.kubeconfig, entry.kubeconfig);
      assert.equal(config.logFile, entry.logFile);
      if (entry.excludeNamespaces)
        assert.deepEqual(config.excludeNamespaces, entry.excludeNamespaces);
      if (entry.logLevel) assert.equal(config.logLevel, entry.logLevel);
    }
  });

  it('an empty namespace list is omitted', () => {
    assert.equal('excludeNamespaces' in buildEntry({ excludeNamespaces: [] }), false);
  });

  const bad: readonly [string, EntryOptions, RegExp][] = [
    [
      'relative socket',
      { socketPath: 'run/m.sock' },
      /--socket-path "run\/m\.sock" must be an absolute path/,
    ],
    ['relative kubeconfig', { kubeconfig: 'kc' }, /--kubeconfig/],
    ['relative log file', { logFile: 'x.log' }, /--log-file/],
    ['unknown log level', { logLevel: 'loud' }, /--log-level "loud" is not one of debug, info/],
    ['a level the plugin lacks', { logLevel: 'trace' }, /--log-level "trace"/],
    [
      'bad namespace',
      { excludeNamespaces: ['Kube_System'] },
      /"Kube_System" is not a valid namespace name/,
    ],
  ];
  for (const [name, options, error] of bad)
    it(`rejects ${name}`, () =>
      assert.throws(() => buildEntry(options), { code: 'MESHLESS_E_INSTALL', message: error }));
});

describe('parseNamespaceList', () => {
  it('splits on commas and drops blanks', () => {
    assert.deepEqual(parseNamespaceList(' a, b,,c ,'), ['a', 'b', 'c']);
    assert.deepEqual(parseNamespaceList(''), []);
  });
});
