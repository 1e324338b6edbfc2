import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MEASUREMENTS, parseBenchFlags } from '../../../bench/lib/flags.js';

test('defaults: every measurement, both runtimes, workers 1 and 2, 3 reps, 60 s idle wait', () => {
  const f = parseBenchFlags([]);
  assert.deepEqual([...f.only], [...MEASUREMENTS]);
  assert.deepEqual(f.runtimes, ['machine', 'lts']);
  assert.deepEqual(f.workers, [1, 2]);
  assert.equal(f.reps, 3);
  assert.equal(f.idleWaitSeconds, 60);
  assert.equal(f.save, true);
  assert.equal(f.quick, false);
});

test('--quick shortens the repetitions and the idle wait, unless told otherwise', () => {
  const f = parseBenchFlags(['--quick']);
  assert.equal(f.reps, 1);
  assert.equal(f.idleWaitSeconds, 20);
  const g = parseBenchFlags(['--quick', '--reps=2', '--idle-wait=60']);
  assert.equal(g.reps, 2);
  assert.equal(g.idleWaitSeconds, 60);
});

test('--only, --runtimes, --workers, --no-save, --daemon-node-flags', () => {
  const f = parseBenchFlags([
    '--only=http,sockperf',
    '--runtimes=lts',
    '--workers=',
    '--no-save',
    '--daemon-node-flags=--cpu-prof  --cpu-prof-dir=/tmp/p',
  ]);
  assert.deepEqual([...f.only], ['http', 'sockperf']);
  assert.deepEqual(f.runtimes, ['lts']);
  assert.deepEqual(f.workers, []);
  assert.equal(f.save, false);
  assert.deepEqual(f.daemonNodeFlags, ['--cpu-prof', '--cpu-prof-dir=/tmp/p']);
  assert.deepEqual(parseBenchFlags(['--workers=2,1,2']).workers, [2, 1]);
});

test('an unknown flag or value is an error', () => {
  assert.throws(() => parseBenchFlags(['--quik']), /unknown argument/);
  assert.throws(() => parseBenchFlags(['--only=http,ab']), /unknown measurement "ab"/);
  assert.throws(() => parseBenchFlags(['--runtimes=node22']), /neither machine nor lts/);
  assert.throws(() => parseBenchFlags(['--runtimes=lts,lts']), /once each/);
  assert.throws(() => parseBenchFlags(['--workers=0']), /not a positive integer/);
  assert.throws(() => parseBenchFlags(['--reps=1.5']), /not a positive integer/);
});
