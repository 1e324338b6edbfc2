/**
 * Golden-file comparison for the installer tests. Set UPDATE_GOLDEN=1 to
 * rewrite the files in testdata/ from the current output, then review the
 * diff before committing.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directory of the installer's test inputs and golden outputs. */
export const TESTDATA = fileURLToPath(new URL('./testdata', import.meta.url));

/** Reads a test input from testdata/. */
export function readTestdata(name: string): string {
  return readFileSync(join(TESTDATA, name), 'utf8');
}

/** Asserts `actual` equals testdata/`name` byte for byte (or rewrites it under UPDATE_GOLDEN=1). */
export function assertGolden(name: string, actual: string): void {
  const path = join(TESTDATA, name);
  if (process.env.UPDATE_GOLDEN === '1') {
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
