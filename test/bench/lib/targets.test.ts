import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addedRatio, judgeTargets, memoryOf, ratioOf } from '../../../bench/lib/targets.js';
import { results } from './fixture.js';

test('addedRatio: what meshless adds over plain, in units of what stunnel adds', () => {
  assert.equal(addedRatio(30, 130, 150), 1.2);
  assert.equal(addedRatio(30, 130, 330), 3);
  assert.equal(addedRatio(30, 30, 40), Infinity);
  assert.equal(addedRatio(30, 25, 28), 0);
  assert.ok(Number.isNaN(addedRatio(30, NaN, 40)));
});

test('ratioOf: unrounded, so a limit is judged on the figure itself; missing or zero denominators are NaN', () => {
  assert.equal(ratioOf(499, 1000), 0.499);
  assert.ok(Number.isNaN(ratioOf(1, 0)));
  assert.ok(Number.isNaN(ratioOf(undefined, 2)));
});

const met = (r: ReturnType<typeof results>, goal: RegExp): boolean | undefined => {
  const row = r.targets.find((t) => goal.test(t.goal));
  assert.ok(row, `no target matching ${goal}`);
  return row.met;
};

test('every target of the meshless variant, met', () => {
  const r = results({
    gbps: { plain: [10, 12], stunnel: [2, 3], meshless: [2, 3.3] },
    ab: { plain: [1000, NaN], stunnel: [400, 300], meshless: [500, 200] },
    sockperf: { plain: [30, 100, 200], stunnel: [130, 300, 500], meshless: [150, 400, 900] },
    memory: [{ variant: 'meshless', before: 60, peak: 100, after: 70 }],
  });
  assert.deepEqual(
    r.targets.map((t) => [t.goal, Math.round(t.value * 100) / 100, t.met]),
    [
      ['new connections/s (ab) >= 0.5x direct', 0.5, true],
      ['CPU per new connection, both daemons (ab) <= 200 us', 200, true],
      ["added round trip p50 (sockperf 64 B) <= 1.2x stunnel's added", 1.2, true],
      ["added round trip p99 (sockperf 64 B) <= 1.5x stunnel's added", 1.5, true],
      ['throughput 1 conn >= 1.0x stunnel', 1, true],
      ['throughput 4 conn >= 1.0x stunnel', 1.1, true],
      ['daemon RSS peak under the load <= 100 MB', 100, true],
      ['daemon RSS 60 s after the load <= idle before + 10 MB', 10, true],
    ],
  );
});

test('each target fails on its own side of the limit', () => {
  const r = results({
    gbps: { plain: [10, 12], stunnel: [2, 3], meshless: [1.99, 2.9] },
    ab: { plain: [1000, NaN], stunnel: [400, 300], meshless: [499, 201] },
    sockperf: { plain: [30, 100, 200], stunnel: [130, 300, 500], meshless: [151, 401, 900] },
    memory: [
      { variant: 'meshless', before: 60, peak: 100.1, after: 70.1 },
      { variant: 'meshless-lts', before: 60, peak: 50, after: 60 },
    ],
  });
  assert.ok(r.targets.every((t) => t.met === false));
});

test('the reference meshless variant is judged, not the other configurations', () => {
  const r = results({
    gbps: { plain: [10, 12], stunnel: [2, 3], meshless: [1, 1], 'meshless-w2': [5, 5] },
    ab: { plain: [1000, NaN], meshless: [100, 900], 'meshless-w2': [900, 10] },
    sockperf: {},
  });
  assert.equal(met(r, /throughput 1 conn/), false);
  assert.equal(met(r, /new connections/), false);
  assert.equal(met(r, /CPU per new connection/), false);
});

test('a figure that could not be measured is neither met nor missed', () => {
  const r = results({
    gbps: {},
    ab: { plain: [0, NaN], stunnel: [0, NaN], meshless: [0, NaN] },
    sockperf: {},
  });
  assert.equal(met(r, /new connections/), undefined);
  assert.equal(met(r, /CPU per new connection/), undefined);
});

test('memoryOf: the larger peak and the larger growth of the two daemons', () => {
  const r = results({
    gbps: {},
    ab: {},
    sockperf: {},
    memory: [{ variant: 'meshless', before: 60, peak: 90, after: 65.5 }],
  });
  assert.ok(r.memory);
  assert.deepEqual(memoryOf(r.memory, 'meshless'), { peakMb: 90, driftMb: 5.5 });
  assert.equal(memoryOf(r.memory, 'meshless-lts'), undefined);
  assert.deepEqual(judgeTargets({ ...r, memory: undefined }).length, 0);
});
