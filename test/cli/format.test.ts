import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultAdminAddress, viewOptionsFor } from '../../cli/admin-command.js';
import { age, formatDuration, painted, shortNetns, shortSpiffeId } from '../../cli/format.js';

describe('CLI formatting', () => {
  const durations: readonly [number, string][] = [
    [0, '0s'],
    [-5000, '0s'],
    [42_900, '42s'],
    [192_000, '3m12s'],
    [7_500_000, '2h05m'],
    [273_600_000, '3d04h'],
  ];
  for (const [ms, text] of durations) {
    it(`formatDuration(${ms}) = ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it('age of a time, and of garbage', () => {
    assert.equal(age('2030-01-15T11:56:48.000Z', Date.parse('2030-01-15T12:00:00.000Z')), '3m12s');
    assert.equal(age('yesterday-ish', 0), '?');
  });

  const ids: readonly [string, string][] = [
    ['spiffe://cluster.local/ns/shop/sa/web', 'ns/shop/sa/web'],
    ['spiffe://partner.example/ns/shop/sa/web', 'spiffe://partner.example/ns/shop/sa/web'],
    ['spiffe://cluster.local.evil/ns/a/sa/b', 'spiffe://cluster.local.evil/ns/a/sa/b'],
    ['spiffe://cluster.local/', 'spiffe://cluster.local/'],
  ];
  for (const [id, short] of ids) {
    it(`shortSpiffeId(${id}) = ${short}`, () =>
      assert.equal(shortSpiffeId(id, 'cluster.local'), short));
  }

  const namespaces: readonly [string, string][] = [
    ['/var/run/netns/cni-1b2c3d4e-5f60', 'cni-1b2c3d4e-5f60'],
    ['/run/netns/cni-1b2c', 'cni-1b2c'],
    ['/proc/4242/ns/net', 'pid 4242'],
    ['/some/where/else', '/some/where/else'],
  ];
  for (const [path, short] of namespaces) {
    it(`shortNetns(${path}) = ${short}`, () => assert.equal(shortNetns(path), short));
  }

  it('paints only when colour is on', () => {
    assert.equal(painted('yes', 'green', false), 'yes');
    assert.equal(painted('yes', undefined, true), 'yes');
    const cell = painted('yes', 'green', true);
    assert.ok(typeof cell === 'object');
    assert.equal(cell.paint(cell.text), '\x1b[32myes\x1b[39m');
  });

  it('colour and the terminal width on a TTY; 80 columns, no colour on a pipe', () => {
    const tty = { write: () => true, isTTY: true, columns: 132, hasColors: () => true };
    assert.deepEqual(viewOptionsFor(tty, 1, {}), { now: 1, width: 132, color: true });
    assert.deepEqual(viewOptionsFor({ ...tty, hasColors: () => false }, 1, {}), {
      now: 1,
      width: 132,
      color: false,
    });
    const pipe = { write: () => true };
    assert.deepEqual(viewOptionsFor(pipe, 1, {}), { now: 1, width: 80, color: false });
    assert.equal(viewOptionsFor(pipe, 1, { COLUMNS: '100' }).width, 100);
    assert.equal(viewOptionsFor(pipe, 1, { COLUMNS: 'wide' }).width, 80);
  });

  it('the admin address comes from MESHLESS_ADMIN when set', () => {
    assert.equal(defaultAdminAddress({}), '127.0.0.1:15000');
    assert.equal(defaultAdminAddress({ MESHLESS_ADMIN: '' }), '127.0.0.1:15000');
    assert.equal(defaultAdminAddress({ MESHLESS_ADMIN: '127.0.0.1:16000' }), '127.0.0.1:16000');
  });
});
