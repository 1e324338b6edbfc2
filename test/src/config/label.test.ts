import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLabel, matchesLabel, parseLabelSelector } from '../../../src/config/label.js';
import { MeshlessError } from '../../../src/errors.js';

describe('parseLabelSelector', () => {
  const ok: [string, string, string][] = [
    ['io.cilium/mtls-enabled=true', 'io.cilium/mtls-enabled', 'true'],
    ['mesh=', 'mesh', ''],
    ['a=b', 'a', 'b'],
    ['example.com/Team_1.x=Blue-2', 'example.com/Team_1.x', 'Blue-2'],
    [`${'k'.repeat(63)}=${'v'.repeat(63)}`, 'k'.repeat(63), 'v'.repeat(63)],
  ];
  for (const [text, key, value] of ok)
    it(`parses ${text.slice(0, 40)}`, () => {
      const req = parseLabelSelector(text);
      assert.deepEqual(req, { key, value });
      assert.equal(formatLabel(req), text);
    });

  const bad = [
    '',
    'mesh',
    '=true',
    'a b=c',
    '-a=b',
    'a-=b',
    'a=b=c',
    'a=-b',
    'Example.com/a=b',
    '/a=b',
    `${'k'.repeat(64)}=v`,
    `k=${'v'.repeat(64)}`,
    'a/b/c=d',
  ];
  for (const text of bad)
    it(`rejects ${JSON.stringify(text.slice(0, 40))}`, () => {
      assert.throws(
        () => parseLabelSelector(text),
        (err: unknown) => err instanceof MeshlessError && err.code === 'MESHLESS_E_CONFIG',
      );
    });
});

describe('matchesLabel', () => {
  const req = { key: 'io.cilium/mtls-enabled', value: 'true' };
  const cases: [Record<string, string> | undefined, boolean][] = [
    [undefined, false],
    [{}, false],
    [{ 'io.cilium/mtls-enabled': 'true' }, true],
    [{ 'io.cilium/mtls-enabled': 'True' }, false],
    [{ 'io.cilium/mtls-enabled': 'false', other: 'true' }, false],
  ];
  for (const [labels, want] of cases)
    it(`${JSON.stringify(labels)} -> ${want}`, () => {
      assert.equal(matchesLabel(labels, req), want);
    });
  it('an empty value requires the key with an empty value', () => {
    assert.equal(matchesLabel({ mesh: '' }, { key: 'mesh', value: '' }), true);
    assert.equal(matchesLabel({}, { key: 'mesh', value: '' }), false);
  });
});
