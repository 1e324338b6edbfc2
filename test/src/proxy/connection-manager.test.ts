// Admission against the live counts (pure), and the manager's bookkeeping.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { ConnectionRecord } from '../../../src/hbone/connection-record.js';
import { silentLogger } from '../../../src/logger.js';
import { ConnectionManager, admit } from '../../../src/proxy/connection-manager.js';

describe('admit', () => {
  const limits = { perPodOutbound: 2, perPodInbound: 3, perNode: 10 };
  const table: [string, Parameters<typeof admit>[0], Parameters<typeof admit>[1], string][] = [
    ['outbound under', 'outbound', { podOutbound: 1, podInbound: 9, node: 5 }, 'ok'],
    [
      'outbound at the pod limit',
      'outbound',
      { podOutbound: 2, podInbound: 0, node: 5 },
      'pod-outbound',
    ],
    [
      'passthrough counts as outbound',
      'passthrough',
      { podOutbound: 2, podInbound: 0, node: 5 },
      'pod-outbound',
    ],
    ['inbound under', 'inbound', { podOutbound: 9, podInbound: 2, node: 5 }, 'ok'],
    [
      'inbound at the source limit',
      'inbound-plaintext',
      { podOutbound: 0, podInbound: 3, node: 5 },
      'pod-inbound',
    ],
    ['node full', 'inbound', { podOutbound: 0, podInbound: 0, node: 10 }, 'node'],
  ];
  for (const [what, direction, live, want] of table)
    it(what, () => {
      const v = admit(direction, live, limits);
      assert.equal(v.ok ? 'ok' : v.limit, want);
    });
  it('no limits: always ok', () =>
    assert.deepEqual(admit('outbound', { podOutbound: 1e6, podInbound: 1e6, node: 1e6 }, {}), {
      ok: true,
    }));
});

describe('ConnectionManager', () => {
  const init = (limitKey: string) => ({
    direction: 'outbound' as const,
    pod: 'a/p',
    limitKey,
    source: { address: '10.0.0.1', port: 1 },
    destination: { address: '10.0.0.2', port: 80 },
  });

  it('refuses over a limit with one record, finishes once, closes by predicate', () => {
    const records: ConnectionRecord[] = [];
    const m = new ConnectionManager({
      log: silentLogger,
      onRecord: (r) => records.push(r),
      limits: { perPodOutbound: 1 },
    });
    const s1 = new PassThrough();
    const c1 = m.open(init('a/p'), s1);
    assert.ok(c1);
    const s2 = new PassThrough();
    assert.equal(m.open(init('a/p'), s2), undefined);
    assert.ok(s2.destroyed, 'the refused socket is reset');
    assert.equal(records.length, 1);
    assert.equal(records[0]?.reason, 'limit-pod-outbound');
    assert.deepEqual(m.refusedByLimit(), { 'pod-outbound': 1 });
    // An error on an adopted socket is handled (no throw), remembered.
    s1.emit('error', new Error('boom'));
    assert.equal(c1.failure?.message, 'boom');
    assert.equal(
      m.closeWhere((c) => c.pod === 'a/p', 'policy'),
      1,
    );
    assert.ok(s1.destroyed);
    c1.finish({ outcome: 'reset', reason: 'client-reset' });
    c1.finish({ outcome: 'ok' });
    assert.equal(records.length, 2);
    assert.equal(records[1]?.reason, 'policy', 'the manager says why it closed it');
    assert.equal(m.size, 0);
    assert.ok(m.open(init('a/p')), 'room again');
  });
});
