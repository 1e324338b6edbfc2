import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, DEFAULT_BACKOFF } from '../../../src/discovery/backoff.js';

describe('Backoff', () => {
  it('doubles from 200 ms to the 30 s cap, within [base/2, base]', () => {
    const bases = [200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000];
    for (const [random, pick] of [
      [() => 0, (b: number) => b / 2],
      [() => 1, (b: number) => b],
      [() => 0.5, (b: number) => (b * 3) / 4],
    ] as const) {
      const b = new Backoff(DEFAULT_BACKOFF, random);
      assert.deepEqual(
        bases.map(() => b.next()),
        bases.map((x) => Math.round(pick(x))),
      );
    }
  });

  it('counts failures and starts over after reset()', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000 }, () => 1);
    b.next();
    b.next();
    assert.equal(b.failures, 2);
    assert.equal(b.next(), 40);
    b.reset();
    assert.equal(b.failures, 0);
    assert.equal(b.next(), 10);
  });

  it('stays finite after very many failures', () => {
    const b = new Backoff({ initialMs: 200, maxMs: 30_000 }, () => 1);
    for (let i = 0; i < 2000; i++) b.next();
    assert.equal(b.next(), 30_000);
  });
});
