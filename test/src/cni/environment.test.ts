import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CNI_CODES, CniError } from '../../../src/cni/cni-error.js';
import { parseCniArgs, parseEnvironment, podRefOf } from '../../../src/cni/environment.js';

const BASE = {
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/cni-1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
} as const;

/** Asserts `fn` throws CniError code 4 whose message names `variable`. */
function assertInvalidEnv(fn: () => unknown, variable: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${String(err)}`);
    assert.equal(err.cniCode, CNI_CODES.invalidEnvironment);
    assert.ok(err.message.includes(variable), `"${err.message}" should name ${variable}`);
    return true;
  });
}

describe('parseEnvironment: required variables per command', () => {
  const required: Record<string, readonly string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
    VERSION: [],
    STATUS: [],
    GC: [],
  };
  for (const [command, vars] of Object.entries(required)) {
    it(`${command} parses with everything set`, () => {
      const env = parseEnvironment({ ...BASE, CNI_COMMAND: command });
      assert.equal(env.command, command);
      assert.deepEqual(env.path, ['/opt/cni/bin']);
    });
    for (const v of vars) {
      it(`${command} without ${v} is code 4 naming it`, () => {
        assertInvalidEnv(() => parseEnvironment({ ...BASE, CNI_COMMAND: command, [v]: '' }), v);
        const env = Object.fromEntries(
          Object.entries({ ...BASE, CNI_COMMAND: command }).filter(([k]) => k !== v),
        );
        assertInvalidEnv(() => parseEnvironment(env), v);
      });
    }
  }

  it('DEL accepts a missing CNI_NETNS', () => {
    const env = parseEnvironment({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' });
    assert.equal(env.netns, '');
  });

  it('VERSION needs nothing but the command', () => {
    const env = parseEnvironment({ CNI_COMMAND: 'VERSION' });
    assert.deepEqual(
      { ...env, args: { ...env.args } },
      { command: 'VERSION', containerId: '', netns: '', ifname: '', args: {}, path: [] },
    );
  });

  for (const command of [undefined, '', 'add', 'FOO']) {
    it(`CNI_COMMAND ${JSON.stringify(command)} is code 4`, () => {
      assertInvalidEnv(() => parseEnvironment({ ...BASE, CNI_COMMAND: command }), 'CNI_COMMAND');
    });
  }

  it('splits CNI_PATH and drops empty entries', () => {
    const env = parseEnvironment({ CNI_COMMAND: 'VERSION', CNI_PATH: '/a::/b:' });
    assert.deepEqual(env.path, ['/a', '/b']);
  });
});

describe('parseEnvironment: container IDs', () => {
  const valid = ['a', '0', 'abc_DEF.1-2', 'f'.repeat(64), 'pod.sandbox-1'];
  const invalid = ['-abc', '_abc', '.abc', 'a b', 'a/b', 'a:b', 'ümlaut', 'a\nb', 'a;b'];
  for (const id of valid)
    it(`accepts ${JSON.stringify(id)}`, () => {
      assert.equal(
        parseEnvironment({ ...BASE, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }).containerId,
        id,
      );
    });
  for (const id of invalid)
    it(`rejects ${JSON.stringify(id)} with code 4`, () => {
      assertInvalidEnv(
        () => parseEnvironment({ ...BASE, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }),
        'CNI_CONTAINERID',
      );
    });
});

describe('parseEnvironment: interface names', () => {
  const valid = ['eth0', 'net1', 'a', 'x'.repeat(15), 'veth-abc_1.2'];
  const invalid = ['x'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'a\tb'];
  for (const ifname of valid)
    it(`accepts ${JSON.stringify(ifname)}`, () => {
      assert.equal(
        parseEnvironment({ ...BASE, CNI_COMMAND: 'ADD', CNI_IFNAME: ifname }).ifname,
        ifname,
      );
    });
  for (const ifname of invalid)
    it(`rejects ${JSON.stringify(ifname)} with code 4`, () => {
      assertInvalidEnv(
        () => parseEnvironment({ ...BASE, CNI_COMMAND: 'ADD', CNI_IFNAME: ifname }),
        'CNI_IFNAME',
      );
    });
});

describe('parseEnvironment: CNI_NETNS', () => {
  for (const command of ['ADD', 'CHECK', 'DEL'])
    it(`${command} rejects a relative netns path`, () => {
      assertInvalidEnv(
        () => parseEnvironment({ ...BASE, CNI_COMMAND: command, CNI_NETNS: 'netns/x' }),
        'CNI_NETNS',
      );
    });
});

describe('parseCniArgs', () => {
  const ok: [string, Record<string, string>][] = [
    ['', {}],
    ['IgnoreUnknown=1', { IgnoreUnknown: '1' }],
    [
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1',
      {
        IgnoreUnknown: '1',
        K8S_POD_NAMESPACE: 'demo',
        K8S_POD_NAME: 'web-0',
        K8S_POD_INFRA_CONTAINER_ID: 'abc',
        K8S_POD_UID: 'u-1',
      },
    ],
    ['K=', { K: '' }],
    ['A=1;;B=2', { A: '1', B: '2' }],
    ['A=1;', { A: '1' }],
  ];
  for (const [text, want] of ok)
    it(`parses ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseCniArgs(text), want);
    });

  const malformed = ['novalue', '=value', 'A=1;B', 'A=1;=2', 'A=1;B=2=3'];
  for (const text of malformed) {
    it(`rejects ${JSON.stringify(text)} with code 4`, () => {
      assertInvalidEnv(() => parseCniArgs(text), 'CNI_ARGS');
    });
    it(`parseEnvironment rejects CNI_ARGS=${JSON.stringify(text)} with code 4`, () => {
      assertInvalidEnv(
        () => parseEnvironment({ ...BASE, CNI_COMMAND: 'ADD', CNI_ARGS: text }),
        'CNI_ARGS',
      );
    });
  }
});

describe('podRefOf', () => {
  const cases: [string, Record<string, string>, ReturnType<typeof podRefOf>][] = [
    ['no args', {}, undefined],
    ['name without namespace', { K8S_POD_NAME: 'p' }, undefined],
    ['namespace without name', { K8S_POD_NAMESPACE: 'ns' }, undefined],
    [
      'namespace and name only',
      { K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'p' },
      { namespace: 'ns', name: 'p', uid: undefined, infraContainerId: undefined },
    ],
    [
      'empty uid and infra id',
      {
        K8S_POD_NAMESPACE: 'ns',
        K8S_POD_NAME: 'p',
        K8S_POD_UID: '',
        K8S_POD_INFRA_CONTAINER_ID: '',
      },
      { namespace: 'ns', name: 'p', uid: undefined, infraContainerId: undefined },
    ],
    [
      'everything',
      {
        K8S_POD_NAMESPACE: 'ns',
        K8S_POD_NAME: 'p',
        K8S_POD_UID: 'u',
        K8S_POD_INFRA_CONTAINER_ID: 'i',
      },
      { namespace: 'ns', name: 'p', uid: 'u', infraContainerId: 'i' },
    ],
  ];
  for (const [name, args, want] of cases)
    it(name, () => {
      assert.deepEqual(podRefOf(args), want);
    });
});
