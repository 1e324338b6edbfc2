import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CNI_CODES, CniError } from '../../../src/cni/cni-error.js';
import {
  DEFAULT_SOCKET_PATH,
  decodeStdin,
  parsePluginConfig,
} from '../../../src/cni/plugin-config.js';
import { SUPPORTED_VERSIONS } from '../../../src/cni/versions.js';

/** The entry as a runtime hands it over: name and cniVersion injected. */
function entry(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: version, name: 'k8s-pod-network', type: 'meshless-cni', ...extra };
}

function assertCniError(fn: () => unknown, code: number, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${String(err)}`);
    assert.equal(err.cniCode, code, err.message);
    assert.ok(err.message.includes(mentions), `"${err.message}" should mention ${mentions}`);
    return true;
  });
}

const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/x' }],
  ips: [{ address: '10.0.0.5/24', interface: 0 }],
};

/** One invalid value per field, with the field the error must name. */
const INVALID: [string, Record<string, unknown>, string][] = [
  ['name missing', { name: undefined }, '"name"'],
  ['name empty', { name: '' }, '"name"'],
  ['name not a string', { name: 7 }, '"name"'],
  ['type missing', { type: undefined }, '"type"'],
  ['type of another plugin', { type: 'bridge' }, '"type"'],
  ['socketPath relative', { socketPath: 'run/cni.sock' }, '"socketPath"'],
  ['socketPath empty', { socketPath: '' }, '"socketPath"'],
  ['socketPath a number', { socketPath: 1 }, '"socketPath"'],
  ['kubeconfig relative', { kubeconfig: 'kubeconfig' }, '"kubeconfig"'],
  ['logFile relative', { logFile: 'x.log' }, '"logFile"'],
  ['excludeNamespaces a string', { excludeNamespaces: 'kube-system' }, '"excludeNamespaces"'],
  ['excludeNamespaces with an empty name', { excludeNamespaces: ['a', ''] }, '"excludeNamespaces"'],
  ['excludeNamespaces with a number', { excludeNamespaces: [1] }, '"excludeNamespaces"'],
  ['enrolmentLabel without "="', { enrolmentLabel: 'mtls' }, '"enrolmentLabel"'],
  ['enrolmentLabel with a bad key', { enrolmentLabel: '-bad=true' }, '"enrolmentLabel"'],
  ['enrolmentLabel a number', { enrolmentLabel: 3 }, '"enrolmentLabel"'],
  ['logLevel unknown', { logLevel: 'verbose' }, '"logLevel"'],
  ['logLevel a number', { logLevel: 1 }, '"logLevel"'],
  ['daemonTimeoutMs too small', { daemonTimeoutMs: 99 }, '"daemonTimeoutMs"'],
  ['daemonTimeoutMs too large', { daemonTimeoutMs: 60001 }, '"daemonTimeoutMs"'],
  ['daemonTimeoutMs fractional', { daemonTimeoutMs: 1000.5 }, '"daemonTimeoutMs"'],
  ['daemonTimeoutMs a string', { daemonTimeoutMs: '1000' }, '"daemonTimeoutMs"'],
  ['prevResult a list', { prevResult: [] }, '"prevResult"'],
  ['prevResult a string', { prevResult: '{}' }, '"prevResult"'],
  [
    'valid-attachments not a list',
    { 'cni.dev/valid-attachments': {} },
    '"cni.dev/valid-attachments"',
  ],
  [
    'valid-attachments entry without ifname',
    { 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }, { containerID: 'b' }] },
    '"cni.dev/valid-attachments[1]"',
  ],
];

for (const version of SUPPORTED_VERSIONS) {
  describe(`parsePluginConfig, cniVersion ${version}`, () => {
    it('fills the defaults of a minimal entry', () => {
      const c = parsePluginConfig(entry(version));
      assert.equal(c.cniVersion, version);
      assert.equal(c.name, 'k8s-pod-network');
      assert.equal(c.socketPath, DEFAULT_SOCKET_PATH);
      assert.equal(c.kubeconfig, undefined);
      assert.deepEqual(c.excludeNamespaces, ['kube-system']);
      assert.deepEqual(c.enrolmentLabel, { key: 'io.cilium/mtls-enabled', value: 'true' });
      assert.equal(c.logFile, undefined);
      assert.equal(c.logLevel, 'info');
      assert.equal(c.daemonTimeoutMs, 5000);
      assert.equal(c.prevResult, undefined);
      assert.equal(c.validAttachments, undefined);
    });

    it('reads every field of a full entry', () => {
      const c = parsePluginConfig(
        entry(version, {
          socketPath: '/run/meshless/cni.sock',
          kubeconfig: '/etc/cni/net.d/meshless-kubeconfig',
          excludeNamespaces: ['kube-system', 'istio-system'],
          enrolmentLabel: 'example.com/mesh=on',
          logFile: '/var/log/meshless-cni.log',
          logLevel: 'debug',
          daemonTimeoutMs: 100,
          prevResult: { ...prevResult, cniVersion: version },
          'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
          // Unknown fields (runtimeConfig, args, ...) are ignored.
          runtimeConfig: { portMappings: [] },
        }),
      );
      assert.equal(c.socketPath, '/run/meshless/cni.sock');
      assert.equal(c.kubeconfig, '/etc/cni/net.d/meshless-kubeconfig');
      assert.deepEqual(c.excludeNamespaces, ['kube-system', 'istio-system']);
      assert.deepEqual(c.enrolmentLabel, { key: 'example.com/mesh', value: 'on' });
      assert.equal(c.logFile, '/var/log/meshless-cni.log');
      assert.equal(c.logLevel, 'debug');
      assert.equal(c.daemonTimeoutMs, 100);
      assert.deepEqual(c.prevResult, { ...prevResult, cniVersion: version });
      assert.deepEqual(c.validAttachments, [{ containerId: 'c1', ifname: 'eth0' }]);
    });

    it('treats null optional fields as absent', () => {
      const c = parsePluginConfig(
        entry(version, {
          socketPath: null,
          excludeNamespaces: null,
          prevResult: null,
          'cni.dev/valid-attachments': null,
        }),
      );
      assert.equal(c.socketPath, DEFAULT_SOCKET_PATH);
      assert.deepEqual(c.excludeNamespaces, ['kube-system']);
      assert.equal(c.prevResult, undefined);
      assert.equal(c.validAttachments, undefined);
    });

    it('accepts an empty excludeNamespaces', () => {
      assert.deepEqual(
        parsePluginConfig(entry(version, { excludeNamespaces: [] })).excludeNamespaces,
        [],
      );
    });

    for (const [what, patch, field] of INVALID) {
      it(`${what} is code 7 naming ${field}`, () => {
        // A field patched to undefined is left out altogether.
        const doc = Object.fromEntries(
          Object.entries(entry(version, patch)).filter(([, v]) => v !== undefined),
        );
        assertCniError(() => parsePluginConfig(doc), CNI_CODES.invalidConfig, field);
      });
    }
  });
}

describe('parsePluginConfig: cniVersion', () => {
  for (const version of ['0.1.0', '0.2.0', '0.4.1', '1.2.0', '2.0.0', 'latest'])
    it(`"${version}" is unsupported: code 1`, () => {
      assertCniError(
        () => parsePluginConfig(entry(version)),
        CNI_CODES.incompatibleVersion,
        version,
      );
    });
  for (const [what, value] of [
    ['missing', undefined],
    ['empty', ''],
    ['a number', 1],
  ] as const)
    it(`${what} is code 7 naming "cniVersion"`, () => {
      const doc = entry('1.0.0', { cniVersion: value });
      if (value === undefined) delete doc['cniVersion'];
      assertCniError(() => parsePluginConfig(doc), CNI_CODES.invalidConfig, '"cniVersion"');
    });
});

describe('decodeStdin', () => {
  it('decodes a JSON object', () => {
    assert.deepEqual(decodeStdin('{"cniVersion":"1.0.0"}'), { cniVersion: '1.0.0' });
  });
  for (const [what, text] of [
    ['empty stdin', ''],
    ['truncated JSON', '{"cniVersion":'],
    ['YAML', 'cniVersion: 1.0.0'],
    ['a list', '[]'],
    ['null', 'null'],
    ['a string', '"x"'],
    ['a number', '1'],
  ] as const)
    it(`${what} is code 6`, () => {
      assertCniError(() => decodeStdin(text), CNI_CODES.decodeFailure, 'network config');
    });
});

describe('CniError.toJSON', () => {
  it('carries version, code and message; details only when set', () => {
    assert.deepEqual(new CniError(7, 'bad').toJSON('1.0.0'), {
      cniVersion: '1.0.0',
      code: 7,
      msg: 'bad',
    });
    assert.deepEqual(new CniError(4, 'bad', { details: 'more' }).toJSON('0.4.0'), {
      cniVersion: '0.4.0',
      code: 4,
      msg: 'bad',
      details: 'more',
    });
    assert.deepEqual(new CniError(4, 'bad', { details: '' }).toJSON('0.4.0'), {
      cniVersion: '0.4.0',
      code: 4,
      msg: 'bad',
    });
  });
  it('chains the cause', () => {
    const cause = new Error('root');
    assert.equal(new CniError(5, 'io', { cause }).cause, cause);
  });
});
