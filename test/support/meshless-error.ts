/** Assertions on the errors the code under test raises. */
import assert from 'node:assert/strict';
import { MeshlessError } from '../../src/errors.js';

/**
 * A validator for `assert.throws` / `assert.rejects`: the error is a
 * {@link MeshlessError} with `code` and a message matching `message`.
 */
export function meshlessError(code: string, message: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof MeshlessError, `not a MeshlessError: ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}
