import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMarkdown, renderSvg } from '../../../bench/lib/report.js';
import { results } from './fixture.js';

const r = results({
  gbps: { plain: [10, 12], stunnel: [2, 3], meshless: [1.5, 1.8], 'meshless-lts': [1.6, 2] },
  ab: {
    plain: [10000, NaN],
    stunnel: [800, 300],
    meshless: [700, 800],
    'meshless-lts': [900, 600],
  },
  sockperf: {
    plain: [30, 100, 200],
    stunnel: [100, 300, 500],
    meshless: [200, 500, 900],
    'meshless-lts': [170, 450, 800],
  },
  memory: [
    { variant: 'meshless', before: 60, peak: 130, after: 75 },
    { variant: 'meshless-lts', before: 70, peak: 150, after: 80 },
  ],
  configs: [
    { id: 'meshless', runtime: 'machine', nodeVersion: 'v20.20.2' },
    { id: 'meshless-lts', runtime: 'lts', nodeVersion: 'v24.22.3' },
  ],
});
const md = renderMarkdown(r);

const line = (prefix: string): string => {
  const l = md.split('\n').find((x) => x.startsWith(prefix));
  assert.ok(l, `no line starting ${prefix}`);
  return l;
};

test('the new-connection table: rates, ratios and CPU per connection of each side', () => {
  assert.equal(line('| ab |'), '| ab | 10000 | 800 | 700 | 0.07x | 0.88x | 300 us | 800 us |');
});

test('the sockperf table: added round trips and their ratio', () => {
  assert.equal(line('| 64 B | p50 |'), '| 64 B | p50 | 30 | 100 | 200 | +70 | +170 | 2.43x |');
});

test('the configurations side by side, each against the references of the run', () => {
  assert.match(
    md,
    /\| figure \| meshless \(Node v20\.20\.2, machine\) \| meshless-lts \(Node v24\.22\.3, lts\) \|/,
  );
  assert.equal(
    line('| throughput 1 conn, Gbit/s'),
    '| throughput 1 conn, Gbit/s (x stunnel) | 1.50 (0.75x) | 1.60 (0.80x) |',
  );
  assert.equal(
    line('| new connections/s, ab'),
    '| new connections/s, ab (x direct) | 700 (0.07x) | 900 (0.09x) |',
  );
  assert.equal(
    line('| daemon RSS peak'),
    '| daemon RSS peak / growth after idle, MB | 130.0 / 15.0 | 150.0 / 10.0 |',
  );
});

test('the memory table, one row per daemon', () => {
  assert.equal(
    line('| meshless-lts | meshlessd node2 |'),
    '| meshless-lts | meshlessd node2 | 70.0 | 150.0 | 80.0 | 10.0 |',
  );
});

test('the targets table: measured, limit, figures, met', () => {
  assert.equal(
    line('| new connections/s (ab)'),
    '| new connections/s (ab) >= 0.5x direct | 0.07x | >= 0.5x | 700 vs 10000/s | **no** |',
  );
  assert.equal(
    line('| CPU per new connection'),
    '| CPU per new connection, both daemons (ab) <= 200 us | 800 us | <= 200 us | stunnel pair 300 us | **no** |',
  );
  assert.equal(
    line('| daemon RSS 60 s'),
    '| daemon RSS 60 s after the load <= idle before + 10 MB | 15.0 MB | <= 10 MB | largest growth of the two daemons | **no** |',
  );
  assert.equal(
    md.split('\n').filter((l) => l.includes('| yes |') || l.includes('| **no** |')).length,
    r.targets.length,
  );
});

test('notes are listed; the SVG names the run', () => {
  const withNote = renderMarkdown({ ...r, notes: ['--workers=1,2 skipped: no such key.'] });
  assert.match(withNote, /#### Notes\n\n- --workers=1,2 skipped: no such key\./);
  assert.match(renderSvg(r), /2026-12-02T1800Z/);
});
