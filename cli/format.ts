/**
 * Small text formatters shared by the CLI's views: durations, SPIFFE IDs,
 * network namespace paths, and colour that is only ever used on a terminal.
 * Pure.
 */
import type { Cell } from './table.js';

/** How a view is rendered: the time it is rendered at, the line width, colour or not. */
export interface ViewOptions {
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** The widest a table line may be. */
  readonly width: number;
  /** ANSI colour (only when stdout is a terminal that has colours). */
  readonly color: boolean;
}

/** `42s`, `3m12s`, `2h05m`, `3d04h`; negative durations (clock skew) count as 0. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** The time since `iso` at `now`: `3m12s`; `?` when `iso` is not a time. */
export function age(iso: string, now: number): string {
  const then = Date.parse(iso);
  return Number.isNaN(then) ? '?' : formatDuration(now - then);
}

/**
 * A SPIFFE ID as short as it can be without ambiguity: `ns/shop/sa/web`
 * when it is in `trustDomain` (the daemon's), the whole ID otherwise.
 */
export function shortSpiffeId(id: string, trustDomain: string): string {
  const prefix = `spiffe://${trustDomain}/`;
  return id.startsWith(prefix) && id.length > prefix.length ? id.slice(prefix.length) : id;
}

/**
 * A pod's network namespace path without what every path shares:
 * `/var/run/netns/cni-1b2c...` -> `cni-1b2c...`, `/proc/4242/ns/net` -> `pid 4242`.
 */
export function shortNetns(path: string): string {
  const proc = /^\/proc\/(\d+)\/ns\/net$/.exec(path);
  if (proc) return `pid ${proc[1] ?? ''}`;
  const named = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(path);
  return named?.[1] ?? path;
}

/** Colours the views use. */
export type Colour = 'green' | 'red' | 'yellow' | 'dim';

const SGR: Readonly<Record<Colour, readonly [number, number]>> = {
  green: [32, 39],
  red: [31, 39],
  yellow: [33, 39],
  dim: [2, 22],
};

/**
 * `text` in `colour` when `enabled` (plain when `colour` is undefined), as a
 * table {@link Cell}: the colour never counts towards widths.
 */
export function painted(text: string, colour: Colour | undefined, enabled: boolean): Cell {
  if (!enabled || colour === undefined) return text;
  const [on, off] = SGR[colour];
  return { text, paint: (t) => `\x1b[${on}m${t}\x1b[${off}m` };
}
