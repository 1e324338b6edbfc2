import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keepUnchanged,
  sameModel,
  snapshotFromObjects,
} from '../../../src/discovery/cluster-state.js';
import { parseClusterDocument } from '../../../src/discovery/file-source.js';
import { MeshlessError } from '../../../src/errors.js';
import {
  generateScaleCluster,
  scaleClusterDocument,
  scalePod,
  seededRandom,
} from '../../../src/sim/scale-cluster.js';

describe('sameModel', () => {
  const cases: [string, unknown, unknown, boolean][] = [
    ['equal primitives', 'a', 'a', true],
    ['different primitives', 1, 2, false],
    ['undefined against a missing key', { a: undefined }, {}, false],
    ['equal nested objects', { a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] }, true],
    ['a deeper difference', { a: [1, { b: 'x' }] }, { a: [1, { b: 'y' }] }, false],
    ['arrays of other lengths', [1, 2], [1, 2, 3], false],
    ['array against object', [], {}, false],
    ['null against object', null, {}, false],
    ['key order does not matter', { a: 1, b: 2 }, { b: 2, a: 1 }, true],
    ['a RegExp only by identity', { r: /x/ }, { r: /x/ }, false],
    ['equal Maps', new Map([['a', { b: 1 }]]), new Map([['a', { b: 1 }]]), true],
    ['Maps with another value', new Map([['a', 1]]), new Map([['a', 2]]), false],
    ['Maps with other keys', new Map([['a', 1]]), new Map([['b', 1]]), false],
  ];
  for (const [name, a, b, want] of cases)
    it(name, () => {
      assert.equal(sameModel(a, b), want);
      assert.equal(sameModel(b, a), want);
    });
});

describe('keepUnchanged', () => {
  const cluster = generateScaleCluster({
    nodes: 3,
    namespaces: 2,
    pods: 6,
    services: 2,
    policies: 1,
  });
  const s1 = snapshotFromObjects(cluster.objects);

  it('keeps every map of a snapshot parsed again from the same objects', () => {
    const s2 = keepUnchanged(s1, snapshotFromObjects(cluster.objects));
    for (const k of Object.keys(s1) as (keyof typeof s1)[]) assert.equal(s2[k], s1[k], k);
  });

  it('keeps unchanged models and replaces the changed map and model only', () => {
    const added = scalePod({
      namespace: 'team-0',
      name: 'new',
      app: 'x',
      node: 0,
      ip: '10.64.0.200',
      rand: seededRandom(1),
    });
    const objects = [...cluster.objects, added];
    const s2 = keepUnchanged(s1, snapshotFromObjects(objects));
    assert.notEqual(s2.pods, s1.pods);
    assert.equal(s2.pods.size, s1.pods.size + 1);
    for (const [k, pod] of s1.pods) assert.equal(s2.pods.get(k), pod, k);
    assert.equal(s2.services, s1.services);
    assert.equal(s2.namespaces, s1.namespaces);
  });
});

describe('parseClusterDocument, JSON', () => {
  it('reads a JSON List as the YAML parser does', () => {
    const text = scaleClusterDocument(
      generateScaleCluster({ nodes: 3, namespaces: 2, pods: 6, services: 2, policies: 1 }).objects,
    );
    // A YAML document that is not JSON: the same List after a comment line.
    assert.deepEqual(
      parseClusterDocument(text, 'f.json'),
      parseClusterDocument(`# yaml\n${text}`, 'f.yaml'),
    );
  });

  it('an invalid document is still refused with the file named', () => {
    assert.throws(
      () => parseClusterDocument('{"kind": "List", "items": [', 'broken.json'),
      (err: unknown) => err instanceof MeshlessError && /broken\.json/.test(err.message),
    );
  });
});
