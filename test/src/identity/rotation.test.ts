import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_TIMER_DELAY_MS,
  RETRY_MAX_MS,
  retryDelay,
  rotationTime,
  rotationWindow,
  timerDelay,
} from '../../../src/identity/rotation.js';

const HOUR = 3_600_000;

describe('rotationTime', () => {
  const cases: readonly [string, number, number][] = [
    // [name, random(), expected fraction of the lifetime]
    ['earliest jitter', 0, 0.45],
    ['no jitter', 0.5, 0.5],
    ['late jitter', 0.75, 0.525],
    ['just under the latest', 0.999999, 0.55],
  ];
  for (const [name, r, fraction] of cases) {
    it(`${name}: random ${r} -> ${fraction * 100}% of the lifetime`, () => {
      const issuedAt = 1_700_000_000_000;
      const at = rotationTime({ issuedAt, notAfter: issuedAt + HOUR }, () => r);
      assert.ok(Math.abs(at - (issuedAt + fraction * HOUR)) <= 1, `${at - issuedAt} ms`);
    });
  }

  it('stays within 45-55% of the lifetime for any randomness (1 h and 24 h)', () => {
    let seed = 42;
    const lcg = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const ttl of [HOUR, 24 * HOUR]) {
      const lifetime = { issuedAt: 0, notAfter: ttl };
      const { earliest, latest } = rotationWindow(lifetime);
      assert.equal(earliest, 0.45 * ttl);
      assert.equal(latest, 0.55 * ttl);
      const seen = new Set<number>();
      for (let i = 0; i < 1000; i++) {
        const at = rotationTime(lifetime, lcg);
        assert.ok(at >= earliest && at <= latest, String(at));
        seen.add(Math.floor(((at - earliest) / (latest - earliest)) * 10));
      }
      assert.ok(seen.size >= 9, 'jitter spreads across the window');
    }
  });

  it('clamps out-of-range randomness and degenerate lifetimes', () => {
    assert.equal(
      rotationTime({ issuedAt: 0, notAfter: 1000 }, () => -5),
      450,
    );
    assert.equal(
      rotationTime({ issuedAt: 0, notAfter: 1000 }, () => 7),
      550,
    );
    assert.equal(
      rotationTime({ issuedAt: 1000, notAfter: 500 }, () => 0.5),
      1000,
    );
  });
});

describe('retryDelay', () => {
  it('backs off exponentially up to the cap while far from expiry', () => {
    const far = 10 * HOUR;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((a) => retryDelay(a, 0, far)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000],
    );
    assert.equal(retryDelay(50, 0, far), RETRY_MAX_MS);
  });

  it('never waits more than a quarter of the remaining life, nor under 1 s', () => {
    assert.equal(retryDelay(10, 0, 100_000), 25_000);
    assert.equal(retryDelay(10, 0, 2_000), 1_000);
    assert.equal(retryDelay(3, 10_000, 5_000), 4_000, 'already expired: plain backoff');
  });
});

describe('timerDelay', () => {
  it('is never negative and never beyond a Node timer', () => {
    assert.equal(timerDelay(100, 200), 0);
    assert.equal(timerDelay(300, 200), 100);
    assert.equal(timerDelay(365 * 24 * HOUR, 0), MAX_TIMER_DELAY_MS);
  });
});
