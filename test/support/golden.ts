/**
 * Golden files: a test's expected output kept byte for byte in a testdata/
 * directory beside it. Set UPDATE_GOLDEN=1 to rewrite them from the current
 * output, then review the diff before committing.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The inputs and golden outputs of one testdata/ directory. */
export interface Testdata {
  /** The directory's path. */
  readonly dir: string;
  /** Reads a test input from the directory. */
  readonly read: (name: string) => string;
  /** Asserts `actual` equals the file `name` byte for byte (or rewrites it under UPDATE_GOLDEN=1). */
  readonly assertGolden: (name: string, actual: string) => void;
}

/** The testdata directory at `dir` (a path, or a `file:` URL such as `new URL('./testdata', import.meta.url)`). */
export function testdata(dir: string | URL): Testdata {
  const root = typeof dir === 'string' ? dir : fileURLToPath(dir);
  return {
    dir: root,
    read: (name) => readFileSync(join(root, name), 'utf8'),
    assertGolden: (name, actual) => {
      const path = join(root, name);
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
    },
  };
}
