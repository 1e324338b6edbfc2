/**
 * Plain-text tables for the CLI: columns left-aligned and separated by two
 * spaces, the last column unpadded, no trailing blanks. Given a width, the
 * columns the caller names are truncated, in the order given, until every
 * line fits. Pure: colour (or any decoration) is applied after fitting, so
 * it never counts towards a width.
 */

/** A cell: plain text, or text with a decoration applied once it is fitted and padded. */
export type Cell = string | { readonly text: string; readonly paint: (text: string) => string };

/** How one column may be shortened to fit {@link TableOptions.maxWidth}. */
export interface ShrinkRule {
  /** Index of the column. */
  readonly column: number;
  /** Never narrower than this many characters (default 8). */
  readonly min?: number;
  /** `start` keeps the beginning (`namespace sho…`); `ends` keeps both ends (`web-7d…x2x9p`). */
  readonly keep?: 'start' | 'ends';
}

/** Options for {@link renderTable}. */
export interface TableOptions {
  /** The widest a line may be; columns are truncated by {@link shrink}. Default: no limit. */
  readonly maxWidth?: number;
  /** The columns that may be truncated, the first shrunk first. */
  readonly shrink?: readonly ShrinkRule[];
}

const GAP = '  ';
const ELLIPSIS = '…';

function textOf(cell: Cell): string {
  return typeof cell === 'string' ? cell : cell.text;
}

/** `text` cut to at most `width` characters with an ellipsis, keeping its start or both its ends. */
export function truncate(text: string, width: number, keep: 'start' | 'ends' = 'start'): string {
  if (text.length <= width) return text;
  if (width <= 1) return text.slice(0, width);
  // Blanks beside the ellipsis are dropped: `the long…`, not `the long …`.
  if (keep === 'start') return text.slice(0, width - 1).trimEnd() + ELLIPSIS;
  const tail = Math.floor((width - 1) / 2);
  const head = width - 1 - tail;
  return text.slice(0, head).trimEnd() + ELLIPSIS + text.slice(text.length - tail).trimStart();
}

function columnWidths(rows: readonly (readonly Cell[])[]): number[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, textOf(cell).length)));
  return widths;
}

function lineWidth(widths: readonly number[]): number {
  return widths.reduce((sum, w) => sum + w, 0) + GAP.length * Math.max(0, widths.length - 1);
}

/** The width of the widest line {@link renderTable} makes of `rows` when nothing is truncated. */
export function tableWidth(rows: readonly (readonly Cell[])[]): number {
  return lineWidth(columnWidths(rows));
}

/**
 * Renders `rows` (a header row first, if any) as aligned lines, joined by
 * newlines. A rule of `options.shrink` may name a column again with a
 * smaller `min`: a column is cut a little before another, then more.
 */
export function renderTable(
  rows: readonly (readonly Cell[])[],
  options: TableOptions = {},
): string {
  const widths = columnWidths(rows);
  const keeps = new Map<number, 'start' | 'ends'>();
  if (options.maxWidth !== undefined) {
    let excess = lineWidth(widths) - options.maxWidth;
    for (const rule of options.shrink ?? []) {
      const width = widths[rule.column];
      if (excess <= 0 || width === undefined) continue;
      const cut = Math.min(excess, Math.max(0, width - (rule.min ?? 8)));
      widths[rule.column] = width - cut;
      excess -= cut;
      keeps.set(rule.column, rule.keep ?? 'start');
    }
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const width = widths[i] ?? 0;
          const text = truncate(textOf(cell), width, keeps.get(i));
          const padding = i === row.length - 1 ? '' : ' '.repeat(width - text.length);
          return (typeof cell === 'string' ? text : cell.paint(text)) + padding;
        })
        .join(GAP)
        .trimEnd(),
    )
    .join('\n');
}
