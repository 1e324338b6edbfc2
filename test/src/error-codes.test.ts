// The typed table of error codes (src/error-codes.ts) and docs/error-codes.md agree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/error-codes.js';

/** The codes the first cell of each row of the page's table names (in full). */
function documentedCodes(markdown: string): Set<string> {
  const codes = new Set<string>();
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('| `MESHLESS_E_')) continue;
    for (const [, name] of (line.split('|')[1] ?? '').matchAll(/`(MESHLESS_E_[A-Z_]+)`/g))
      if (name !== undefined) codes.add(name);
  }
  return codes;
}

describe('error codes', () => {
  const documented = documentedCodes(readFileSync('docs/error-codes.md', 'utf8'));

  it('docs/error-codes.md names every code of src/error-codes.ts', () => {
    const missing = Object.keys(ERROR_CODES).filter((c) => !documented.has(c));
    assert.deepEqual(missing, []);
  });

  it('docs/error-codes.md names no code the typed table does not have', () => {
    const unknown = [...documented].filter((c) => !(c in ERROR_CODES));
    assert.deepEqual(unknown, []);
  });
});
