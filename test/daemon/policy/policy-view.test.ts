import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyView } from '../../../daemon/policy/policy-view.js';
import { snapshotFromObjects, type ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import type { Logger } from '../../../src/logger.js';

/** A discovery source reduced to what PolicyView reads: a snapshot and its change listeners. */
class Snapshots {
  current: ClusterSnapshot;
  readonly listeners: ((s: ClusterSnapshot) => void)[] = [];
  constructor(objects: unknown[]) {
    this.current = snapshotFromObjects(objects);
  }
  snapshot(): ClusterSnapshot {
    return this.current;
  }
  onChange(l: (s: ClusterSnapshot) => void): void {
    this.listeners.push(l);
  }
  set(objects: unknown[]): void {
    this.current = snapshotFromObjects(objects);
    for (const l of this.listeners) l(this.current);
  }
}

const l7 = (name: string) => ({
  apiVersion: 'security.meshless.dev/v1alpha1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'app' },
  spec: { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
});

describe('PolicyView', () => {
  it('rebuilds the index per snapshot, tells listeners, and logs each problem once per change', () => {
    const warnings: Record<string, unknown>[] = [];
    const log: Logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (fields) => warnings.push(fields),
      error: () => undefined,
      child: () => log,
    };
    const source = new Snapshots([l7('a')]);
    const view = new PolicyView(source, { rootNamespace: 'mesh', log });
    assert.equal(view.index.rootNamespace, 'mesh');
    assert.equal(view.index.applicable.get('app')?.deny[0]?.name, 'a');
    assert.deepEqual(
      warnings.map((w) => w['policy']),
      ['app/a'],
    );
    const seen: number[] = [];
    view.onChange((index) => seen.push(index.problems.length));
    source.set([l7('a'), l7('b')]);
    assert.deepEqual(
      warnings.map((w) => w['policy']),
      ['app/a', 'app/b'],
      'a is not logged again',
    );
    source.set([]);
    source.set([l7('a')]);
    assert.deepEqual(
      warnings.map((w) => w['policy']),
      ['app/a', 'app/b', 'app/a'],
      'logged again once it came back',
    );
    assert.deepEqual(seen, [2, 0, 1]);
  });
});
