import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { demoDir, demoPrefix, parseDemoState } from '../../../src/demo/demo-state.js';
import { planDemo } from '../../../src/demo/lifecycle.js';
import { MeshlessError } from '../../../src/errors.js';
import { renderDiscovery } from '../../../src/sim/sim-cluster.js';

describe('demo state', () => {
  const plan = planDemo('/run/d', 'mldemo', new Date('2030-01-01T00:00:00Z'));

  test('the plan names every netns and link under the prefix', () => {
    assert.deepEqual(
      plan.nodes.map((n) => [n.netns, n.link]),
      [
        ['mldemo-node1', 'mldemon1'],
        ['mldemo-node2', 'mldemon2'],
      ],
    );
    assert.ok(plan.pods.every((p) => p.netns === `mldemo-pod-${p.name}`));
    assert.deepEqual(
      new Set(plan.pods.map((p) => `${p.namespace}@${p.node}`)).size,
      4,
      'both namespaces on both nodes',
    );
  });

  test('round trip through JSON, pids and IPs included', () => {
    const withPids = structuredClone(plan);
    const [node] = withPids.nodes;
    const [pod] = withPids.pods;
    assert.ok(node && pod);
    node.daemonPid = 42;
    pod.ip = '10.248.1.2';
    pod.serverPid = 43;
    assert.deepEqual(parseDemoState(JSON.parse(JSON.stringify(withPids)), 'f'), withPids);
  });

  for (const [name, mutate] of [
    ['wrong version', (d: Record<string, unknown>) => (d['version'] = 2)],
    ['namespaces not booleans', (d: Record<string, unknown>) => (d['namespaces'] = { a: 'yes' })],
    [
      'a bad pid',
      (d: Record<string, unknown>) =>
        Object.assign((d['nodes'] as Record<string, unknown>[])[0] ?? {}, { daemonPid: -1 }),
    ],
    [
      'a pod without netns',
      (d: Record<string, unknown>) =>
        delete ((d['pods'] as Record<string, unknown>[])[0] ?? {})['netns'],
    ],
  ] as const)
    test(`refused: ${name}`, () => {
      const doc = JSON.parse(JSON.stringify(plan)) as Record<string, unknown>;
      mutate(doc);
      assert.throws(
        () => parseDemoState(doc, '/run/d/demo.json'),
        (e: unknown) => e instanceof MeshlessError && e.code === 'MESHLESS_E_DEMO_STATE',
      );
    });

  test('dir and prefix: option, then environment, then default', () => {
    assert.equal(demoDir('/x', { MESHLESS_DEMO_DIR: '/y' }), '/x');
    assert.equal(demoDir(undefined, { MESHLESS_DEMO_DIR: '/y' }), '/y');
    assert.equal(demoDir(undefined, {}), '/var/run/meshless-demo');
    assert.equal(demoPrefix(undefined, { MESHLESS_DEMO_PREFIX: 'abc' }), 'abc');
    assert.equal(demoPrefix(undefined, {}), 'mldemo');
  });

  test('the discovery file labels enrolled namespaces only', () => {
    const doc = JSON.parse(renderDiscovery({ secure: true, plain: false }, [])) as {
      items: { metadata: { name: string; labels: Record<string, string> } }[];
    };
    assert.deepEqual(
      doc.items.map((i) => [i.metadata.name, i.metadata.labels]),
      [
        ['secure', { 'io.cilium/mtls-enabled': 'true' }],
        ['plain', {}],
      ],
    );
  });
});
