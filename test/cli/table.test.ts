import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderTable, tableWidth, truncate } from '../../cli/table.js';

describe('renderTable', () => {
  const rows = [
    ['NAME', 'KIND', 'NOTE'],
    ['web-7d9c5b6f4-x2x9p', 'pod', 'the long one'],
    ['db-0', 'statefulset', ''],
  ];

  it('aligns columns on two spaces, the last unpadded, no trailing blanks', () => {
    assert.equal(
      renderTable(rows),
      [
        'NAME                 KIND         NOTE',
        'web-7d9c5b6f4-x2x9p  pod          the long one',
        'db-0                 statefulset',
      ].join('\n'),
    );
    assert.equal(tableWidth(rows), 19 + 2 + 11 + 2 + 12);
  });

  it('shrinks the named columns, in order, down to their minimum, to fit', () => {
    const fitted = renderTable(rows, {
      maxWidth: 36,
      shrink: [
        { column: 2, min: 10 },
        { column: 0, min: 12, keep: 'ends' },
      ],
    });
    assert.equal(
      fitted,
      [
        'NAME          KIND         NOTE',
        'web-7d…x2x9p  pod          the long…',
        'db-0          statefulset',
      ].join('\n'),
    );
    for (const line of fitted.split('\n')) assert.ok(line.length <= 36, line);
  });

  it('leaves a table that fits alone, and stops at the minimums', () => {
    assert.equal(renderTable(rows, { maxWidth: 80, shrink: [{ column: 0 }] }), renderTable(rows));
    const tight = renderTable(rows, { maxWidth: 10, shrink: [{ column: 0, min: 12 }] });
    assert.match(tight, /^NAME {10}KIND/);
  });

  it('paints a cell after fitting, so colour never counts towards widths', () => {
    const red = (t: string): string => `<${t}>`;
    assert.equal(
      renderTable([
        ['A', 'B'],
        [{ text: 'yes', paint: red }, 'x'],
      ]),
      'A    B\n<yes>  x',
    );
  });

  const cuts: readonly [string, number, 'start' | 'ends', string][] = [
    ['abcdefghij', 10, 'start', 'abcdefghij'],
    ['abcdefghij', 6, 'start', 'abcde…'],
    ['abcdefghij', 6, 'ends', 'abc…ij'],
    ['abcdefghij', 1, 'ends', 'a'],
  ];
  for (const [text, width, keep, want] of cuts) {
    it(`truncate(${text}, ${width}, ${keep}) = ${want}`, () =>
      assert.equal(truncate(text, width, keep), want));
  }
});
