/**
 * The uninstall-on-exit policy: what an API answer about our DaemonSet
 * means, and the decision for every (start, exit) pair.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import {
  classifyDaemonSet,
  decideExit,
  parseDaemonSetRef,
  type DaemonSetState,
} from '../../../src/installer/exit-policy.js';

const ds = (metadata: Record<string, unknown>) => ({ kind: 'DaemonSet', metadata });

describe('classifyDaemonSet', () => {
  const cases: [string, number, unknown, DaemonSetState][] = [
    ['200 live', 200, ds({ name: 'meshless-node' }), 'present'],
    ['200 being deleted', 200, ds({ deletionTimestamp: '2025-01-01T00:00:00Z' }), 'deleting'],
    ['404', 404, { kind: 'Status', code: 404 }, 'absent'],
    ['401', 401, undefined, 'forbidden'],
    ['403', 403, { kind: 'Status', code: 403 }, 'forbidden'],
    ['500', 500, undefined, 'unknown'],
    ['200 not JSON', 200, undefined, 'unknown'],
    ['200 another kind', 200, { kind: 'Pod', metadata: {} }, 'unknown'],
    ['200 without metadata', 200, { kind: 'DaemonSet' }, 'unknown'],
  ];
  for (const [name, status, body, want] of cases)
    it(`${name} -> ${want}`, () => assert.equal(classifyDaemonSet(status, body), want));
});

describe('decideExit', () => {
  const states: DaemonSetState[] = ['present', 'deleting', 'absent', 'forbidden', 'unknown'];
  // [atStart, atExit] pairs that uninstall; every other pair keeps the entry.
  const uninstalls = new Set([
    ...states.flatMap((s) => [`${s}/absent`, `${s}/deleting`]),
    'present/forbidden',
    'deleting/forbidden',
  ]);
  for (const atStart of states)
    for (const atExit of states) {
      const want = uninstalls.has(`${atStart}/${atExit}`);
      it(`${atStart} then ${atExit}: ${want ? 'uninstall' : 'keep'}`, () => {
        const d = decideExit(atStart, atExit);
        assert.equal(d.uninstall, want, d.reason);
        assert.ok(d.reason.length > 0);
      });
    }

  it('an upgrade (DaemonSet still there) never uninstalls', () => {
    for (const atStart of states) assert.equal(decideExit(atStart, 'present').uninstall, false);
  });
});

describe('parseDaemonSetRef', () => {
  it('parses namespace/name', () => {
    assert.deepEqual(parseDaemonSetRef('meshless-system/meshless-node'), {
      namespace: 'meshless-system',
      name: 'meshless-node',
    });
  });
  for (const bad of ['', 'meshless-node', 'a/b/c', 'A/b', 'ns/', '/name'])
    it(`refuses "${bad}"`, () => {
      assert.throws(
        () => parseDaemonSetRef(bad),
        (err: unknown) =>
          err instanceof MeshlessError &&
          err.code === 'MESHLESS_E_INSTALL' &&
          err.message.includes('--owner-daemonset'),
      );
    });
});
