import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { daemonAccepts } from '../../../bench/lib/setup.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-setup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('daemonAccepts: the daemon’s own loader decides; a key it does not know is refused, named', () => {
  const base = { nodeName: 'n', discovery: { file: join(dir, 'discovery.json') } };
  assert.deepEqual(daemonAccepts(dir, { ...base, logLevel: 'info' }), { ok: true });
  assert.equal(daemonAccepts(dir, { ...base, logLevel: 'loud' }).ok, false);
  const r = daemonAccepts(dir, { ...base, benchNoSuchKey: { workers: 1 } });
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /benchNoSuchKey/);
});

test('daemonAccepts: a refusal naming none of the probed keys is not a refusal of them', () => {
  // The loader wants discovery too: its complaint is not a verdict on logLevel.
  assert.deepEqual(daemonAccepts(dir, { nodeName: 'n', logLevel: 'info' }), { ok: true });
});
