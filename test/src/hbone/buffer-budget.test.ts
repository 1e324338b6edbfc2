// The node-wide relay buffer budget: accounting, exhaustion, waking waiters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferBudget } from '../../../src/hbone/buffer-budget.js';

describe('BufferBudget', () => {
  it('is spent at its limit, counts each exhaustion once, wakes waiters when it has room', () => {
    let exhausted = 0;
    const b = new BufferBudget(100, () => exhausted++);
    let woken = 0;
    b.charge(60);
    assert.equal(b.spent, false);
    b.charge(40);
    assert.equal(b.spent, true);
    b.charge(10);
    assert.equal(exhausted, 1, 'one exhaustion, however far past the limit');
    const cancel = b.wait(() => woken++);
    b.wait(() => woken++);
    cancel();
    b.release(5);
    assert.equal(woken, 0, 'still spent: nobody woken');
    b.release(50);
    assert.equal(b.spent, false);
    assert.equal(woken, 1, 'the remaining waiter, once');
    b.release(50);
    assert.equal(woken, 1);
    b.charge(200);
    assert.equal(exhausted, 2);
    b.release(1000);
    assert.equal(b.used, 0, 'never below zero');
  });

  it('ignores zero and negative amounts', () => {
    const b = new BufferBudget(10);
    b.charge(0);
    b.charge(-5);
    b.release(-5);
    assert.equal(b.used, 0);
  });
});
