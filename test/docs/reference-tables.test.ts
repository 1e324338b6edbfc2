/**
 * The reference tables of docs/ against the code they describe: a config
 * key, a metric, a MESHLESS_E_* code or a plugin CNI code cannot exist
 * without its row, nor a row without the thing it documents.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_KEYS, envNameOf } from '../../src/config/daemon-config.js';
import { CNI_CODES } from '../../src/cni/cni-error.js';
import { DaemonMetrics } from '../../daemon/observability/metrics.js';
import { codeSpans, readRepoFile, repoTextFiles, tableRows } from './markdown.js';

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

describe('docs/configuration.md', () => {
  const rows = tableRows(
    readRepoFile('docs/configuration.md'),
    '## The daemon (`meshlessd --config FILE`)',
  );

  it('has one row per config key, no more', () => {
    const documented = rows.map((r) => codeSpans(r[0] ?? '')[0] ?? '');
    assert.deepEqual(sorted(documented), sorted(CONFIG_KEYS));
    assert.equal(documented.length, CONFIG_KEYS.length, 'a key documented twice');
  });

  it("names each key's environment variable as the loader derives it", () => {
    for (const row of rows) {
      const key = codeSpans(row[0] ?? '')[0] ?? '';
      assert.deepEqual(codeSpans(row[1] ?? ''), [envNameOf(key)], `row of ${key}`);
      assert.notEqual(row[3] ?? '', '', `${key} has no meaning`);
    }
  });
});

describe('docs/metrics.md', () => {
  const rows = tableRows(readRepoFile('docs/metrics.md'), '# Metrics');
  const documented = rows.flatMap((r) => codeSpans(r[0] ?? ''));
  const exact = documented.filter((n) => !n.endsWith('*'));
  const prefixes = documented.filter((n) => n.endsWith('*')).map((n) => n.slice(0, -1));
  const metrics = new DaemonMetrics(true).registry.getMetricsAsArray();
  const ours = metrics.filter((m) => !prefixes.some((p) => m.name.startsWith(p)));

  it('documents every metric the daemon registers, and no other', () => {
    assert.deepEqual(sorted(exact), sorted(ours.map((m) => m.name)));
  });

  it("covers prom-client's default metrics with its prefix rows", () => {
    const defaults = metrics.filter((m) => prefixes.some((p) => m.name.startsWith(p)));
    assert.ok(defaults.length > 10, 'the default metrics are registered under the prefixes');
  });

  it('gives each metric its type', () => {
    for (const m of ours) {
      const row = rows.find((r) => codeSpans(r[0] ?? '').includes(m.name));
      assert.equal(row?.[1], String(m.type), m.name);
    }
  });
});

describe('docs/error-codes.md', () => {
  const documented = tableRows(readRepoFile('docs/error-codes.md'), '# Error codes').map(
    (r) => codeSpans(r[0] ?? '')[0] ?? '',
  );
  const sources = repoTextFiles().filter((f) => /^(src|cni|daemon|cli)\/.*\.ts$/.test(f));
  const used = sources.flatMap((f) =>
    [...readRepoFile(f).matchAll(/\bMESHLESS_E_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]),
  );

  it('documents every MESHLESS_E_* code the sources use, and no other', () => {
    assert.ok(used.length > 0);
    assert.deepEqual(sorted(documented), sorted(used));
    assert.equal(documented.length, new Set(documented).size, 'a code documented twice');
  });
});

describe('docs/reference/cni.md', () => {
  const documented = tableRows(readRepoFile('docs/reference/cni.md'), '## Errors').map((r) =>
    Number(r[0]),
  );

  it("documents every CNI code of the plugin's own (100 and above)", () => {
    const ours = Object.values(CNI_CODES).filter((c) => c >= 100);
    for (const code of ours) assert.ok(documented.includes(code), `CNI code ${code}`);
  });
});
