import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  compareVersions,
  isSupportedVersion,
  supportsCheck,
  supportsStatusAndGc,
} from '../../../src/cni/versions.js';

describe('versions', () => {
  it('lists the supported versions oldest first, ending with the latest', () => {
    const sorted = [...SUPPORTED_VERSIONS].sort(compareVersions);
    assert.deepEqual(sorted, [...SUPPORTED_VERSIONS]);
    assert.equal(SUPPORTED_VERSIONS.at(-1), LATEST_VERSION);
  });

  const compare: [string, string, -1 | 0 | 1][] = [
    ['0.3.0', '0.3.1', -1],
    ['0.4.0', '0.3.1', 1],
    ['1.0.0', '0.4.0', 1],
    ['1.1.0', '1.1.0', 0],
    ['0.10.0', '0.9.0', 1],
    ['1.0', '1.0.0', 0],
  ];
  for (const [a, b, want] of compare)
    it(`compareVersions(${a}, ${b}) is ${want}`, () => {
      assert.equal(Math.sign(compareVersions(a, b)), want);
    });

  it('isSupportedVersion', () => {
    for (const v of SUPPORTED_VERSIONS) assert.equal(isSupportedVersion(v), true);
    for (const v of ['0.2.0', '2.0.0', '', 1, undefined])
      assert.equal(isSupportedVersion(v), false);
  });

  it('CHECK from 0.4.0, STATUS and GC from 1.1.0', () => {
    const table = SUPPORTED_VERSIONS.map((v) => [v, supportsCheck(v), supportsStatusAndGc(v)]);
    assert.deepEqual(table, [
      ['0.3.0', false, false],
      ['0.3.1', false, false],
      ['0.4.0', true, false],
      ['1.0.0', true, false],
      ['1.1.0', true, true],
    ]);
  });
});
