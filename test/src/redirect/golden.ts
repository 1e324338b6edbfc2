/**
 * Golden files of the redirect renderers. UPDATE_GOLDEN=1 rewrites them
 * from the current output; review the diff before committing.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TESTDATA = fileURLToPath(new URL('./testdata', import.meta.url));

export function readTestdata(name: string): string {
  return readFileSync(join(TESTDATA, name), 'utf8');
}

/** Asserts `actual` equals testdata/`name` exactly (or rewrites it under UPDATE_GOLDEN=1). */
export function assertGolden(name: string, actual: string): void {
  const path = join(TESTDATA, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    writeFileSync(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(path, 'utf8');
  } catch {
    assert.fail(`golden file ${path} is missing; run with UPDATE_GOLDEN=1 to create it`);
  }
  assert.equal(actual, expected, `output differs from ${path} (UPDATE_GOLDEN=1 rewrites it)`);
}
