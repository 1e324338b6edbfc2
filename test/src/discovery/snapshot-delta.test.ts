import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_SNAPSHOT, type ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import {
  SNAPSHOT_KINDS,
  applySnapshotDelta,
  diffSnapshots,
  isEmptyDelta,
  type SnapshotKind,
} from '../../../src/discovery/snapshot-delta.js';
import { seededRandom as rng } from '../../../src/sim/scale-cluster.js';

type Mutable = Record<SnapshotKind, Map<string, unknown>>;

function randomSnapshot(r: () => number): ClusterSnapshot {
  const s = Object.fromEntries(
    SNAPSHOT_KINDS.map((k) => [k, new Map<string, unknown>()]),
  ) as Mutable;
  for (const kind of SNAPSHOT_KINDS)
    for (let i = 0; i < Math.floor(r() * 30); i++)
      s[kind].set(`ns/${kind}-${i}`, {
        kind,
        i,
        ip: `10.0.${i}.${Math.floor(r() * 250)}`,
        labels: new Map([['app', `a${i}`]]),
      });
  return s as unknown as ClusterSnapshot;
}

/** `prev` with some kinds changed (objects added, replaced, removed); others keep their Map. */
function mutate(prev: ClusterSnapshot, r: () => number): ClusterSnapshot {
  const out: Record<string, ReadonlyMap<string, unknown>> = {};
  for (const kind of SNAPSHOT_KINDS) {
    const before = prev[kind] as ReadonlyMap<string, unknown>;
    if (r() < 0.5) {
      out[kind] = before; // untouched: the same Map, as discovery hands it on
      continue;
    }
    const m = new Map(before);
    for (const k of [...m.keys()]) {
      const x = r();
      if (x < 0.15) m.delete(k);
      else if (x < 0.3) m.set(k, { replaced: k, at: r() });
    }
    for (let i = 0; i < Math.floor(r() * 4); i++) m.set(`new/${kind}-${r()}`, { added: true });
    out[kind] = m;
  }
  return out as unknown as ClusterSnapshot;
}

describe('snapshot deltas', () => {
  it('nothing changed: an empty delta, and applying it keeps every Map', () => {
    const s = randomSnapshot(rng(1));
    const d = diffSnapshots(s, s);
    assert.ok(isEmptyDelta(d));
    const applied = applySnapshotDelta(s, d);
    for (const k of SNAPSHOT_KINDS) assert.equal(applied[k], s[k]);
  });

  it('a copied but equal object counts as changed (identity, never a deep compare)', () => {
    const prev = {
      ...EMPTY_SNAPSHOT,
      pods: new Map([['a/p', { ip: '10.0.0.1' }]]),
    } as unknown as ClusterSnapshot;
    const next = {
      ...prev,
      pods: new Map([['a/p', { ip: '10.0.0.1' }]]),
    } as unknown as ClusterSnapshot;
    const d = diffSnapshots(prev, next);
    assert.deepEqual(d.pods, { set: [['a/p', { ip: '10.0.0.1' }]], deleted: [] });
  });

  for (let seed = 1; seed <= 300; seed++)
    it(`seed ${seed}: a worker's copy, with the cloned delta applied, equals the new snapshot and keeps its unchanged objects`, () => {
      const r = rng(seed);
      const prev = randomSnapshot(r);
      const next = mutate(prev, r);
      // What a worker holds: a copy made when the previous snapshot crossed over.
      const workerPrev = structuredClone(prev);
      const applied = applySnapshotDelta(workerPrev, structuredClone(diffSnapshots(prev, next)));
      assert.deepEqual(applied, next);
      for (const kind of SNAPSHOT_KINDS) {
        const was = prev[kind] as ReadonlyMap<string, unknown>;
        const now = next[kind] as ReadonlyMap<string, unknown>;
        if (was === now) assert.equal(applied[kind], workerPrev[kind], `${kind}: the same Map`);
        for (const [k, v] of now)
          if (was.get(k) === v)
            assert.equal(
              (applied[kind] as ReadonlyMap<string, unknown>).get(k),
              (workerPrev[kind] as ReadonlyMap<string, unknown>).get(k),
              `${kind} ${k}: the worker's own object, not a new copy`,
            );
      }
    });
});
