import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseClusterDocument } from '../../../../src/discovery/file-source.js';
import { EMPTY_SNAPSHOT } from '../../../../src/discovery/cluster-state.js';
import { applySnapshotDelta, diffSnapshots } from '../../../../src/discovery/snapshot-delta.js';
import { limitPerWorker, limitsPerWorker } from '../../../../daemon/proxy/workers/protocol.js';

describe('limits split between data-plane workers', () => {
  const cases: [number | undefined, number, number | undefined][] = [
    [undefined, 2, undefined],
    [0, 4, 0],
    [512, 1, 512],
    [512, 2, 256],
    [4096, 3, 1365],
    [5, 2, 2],
    [1, 4, 1],
  ];
  for (const [limit, workers, each] of cases)
    it(`${String(limit)} over ${workers} workers -> ${String(each)} each`, () => {
      assert.equal(limitPerWorker(limit, workers), each);
      // Together they never admit more than the limit, once it is at least the worker count.
      if (limit !== undefined && limit >= workers && each !== undefined)
        assert.ok(each * workers <= limit);
    });

  it('splits every limit', () =>
    assert.deepEqual(limitsPerWorker({ perPodOutbound: 512, perPodInbound: 100, perNode: 0 }, 4), {
      perPodOutbound: 128,
      perPodInbound: 25,
      perNode: 0,
    }));
});

describe('discovery handed to workers', () => {
  it('a delta cloned as postMessage does rebuilds real snapshots (policies and Services included)', () => {
    for (const file of [
      'test/cli/testdata/policy/cluster.yaml',
      'test/src/proxy/testdata/services.yaml',
    ]) {
      const snapshot = parseClusterDocument(readFileSync(file, 'utf8'), file);
      const delta = structuredClone(diffSnapshots(EMPTY_SNAPSHOT, snapshot));
      // Deep equality with prototypes: the indexes see the same values.
      assert.deepStrictEqual(applySnapshotDelta(EMPTY_SNAPSHOT, delta), snapshot);
    }
  });
});
