/**
 * The performance targets, judged on one run's results: every figure is a
 * ratio or amount measured in that run (the reference variants ran
 * alternating with meshless), so a loaded or slower machine shifts both
 * sides alike. Pure: results in, rows out. The `meshless` variant is judged;
 * other meshless configurations are reported beside it, not judged.
 */
import { median } from './proc-stats.js';
import type {
  BenchResults,
  HttpLoadResult,
  LatencyQuantiles,
  MemoryResult,
  Variant,
} from './results.js';

/** One target: what is measured against what limit, and whether it holds. */
export interface TargetRow {
  readonly goal: string;
  /** The figure judged (a ratio, us, MB or ms, as `unit` says). */
  readonly value: number;
  readonly unit: 'x' | 'us' | 'MB' | 'ms';
  readonly limit: number;
  /** `min`: value must be at least `limit`; `max`: at most. */
  readonly kind: 'min' | 'max';
  /** The figures behind `value`, for the report. */
  readonly detail: string;
  /** Undefined when the value could not be measured (NaN). */
  readonly met: boolean | undefined;
}

function row(
  goal: string,
  value: number,
  unit: TargetRow['unit'],
  kind: TargetRow['kind'],
  limit: number,
  detail: string,
): TargetRow {
  const met = Number.isNaN(value) ? undefined : kind === 'min' ? value >= limit : value <= limit;
  return { goal, value, unit, limit, kind, detail, met };
}

const f0 = (n: number): string => (Number.isNaN(n) ? '-' : n.toFixed(0));

/**
 * The added round trip of `variant` over plain, as a multiple of the
 * stunnel pair's (unrounded): NaN when a figure is missing; Infinity when
 * stunnel adds nothing measurable but meshless does.
 */
export function addedRatio(plain: number, stunnel: number, meshless: number): number {
  if ([plain, stunnel, meshless].some((x) => Number.isNaN(x))) return NaN;
  const s = stunnel - plain;
  const m = meshless - plain;
  if (s <= 0) return m <= 0 ? 0 : Infinity;
  return m / s;
}

/** `a / b`, unrounded (judged as is); NaN when either is missing or b is 0. */
export function ratioOf(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !b || Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return a / b;
}

export function httpOf(
  r: Pick<BenchResults, 'http'>,
  tool: HttpLoadResult['tool'],
  v: Variant,
): HttpLoadResult | undefined {
  return r.http.find((h) => h.tool === tool && h.variant === v);
}

function quantiles(
  xs: readonly { variant: Variant; size: number; median: LatencyQuantiles }[],
  v: Variant,
  size: number,
): LatencyQuantiles | undefined {
  return xs.find((x) => x.variant === v && x.size === size)?.median;
}

/** The largest peak, and the largest idle-after minus idle-before, over `variant`'s daemons. */
export function memoryOf(
  m: MemoryResult,
  variant: Variant,
): { peakMb: number; driftMb: number } | undefined {
  const ds = m.daemons.filter((d) => d.variant === variant);
  if (ds.length === 0) return undefined;
  return {
    peakMb: Math.max(...ds.map((d) => d.peakMb)),
    driftMb: Math.round(Math.max(...ds.map((d) => d.idleAfterMb - d.idleBeforeMb)) * 10) / 10,
  };
}

/** Every target the run has the figures for, judged on the `meshless` variant. */
export function judgeTargets(r: BenchResults): TargetRow[] {
  const out: TargetRow[] = [];
  for (const tool of ['ab', 'wrk'] as const) {
    const m = httpOf(r, tool, 'meshless')?.medianRps;
    const p = httpOf(r, tool, 'plain')?.medianRps;
    if (m !== undefined && p !== undefined)
      out.push(
        row(
          `new connections/s (${tool}) >= 0.5x direct`,
          ratioOf(m, p),
          'x',
          'min',
          0.5,
          `${f0(m)} vs ${f0(p)}/s`,
        ),
      );
  }
  const own = r.connRate.find((c) => c.variant === 'meshless')?.medianCps;
  const ownPlain = r.connRate.find((c) => c.variant === 'plain')?.medianCps;
  if (own !== undefined && ownPlain !== undefined)
    out.push(
      row(
        'new connections/s (netbench, own client) >= 0.5x direct',
        ratioOf(own, ownPlain),
        'x',
        'min',
        0.5,
        `${f0(own)} vs ${f0(ownPlain)}/s`,
      ),
    );
  const ab = httpOf(r, 'ab', 'meshless');
  if (ab)
    out.push(
      row(
        'CPU per new connection, both daemons (ab) <= 200 us',
        ab.medianCpuUsPerConn,
        'us',
        'max',
        200,
        `stunnel pair ${f0(httpOf(r, 'ab', 'stunnel')?.medianCpuUsPerConn ?? NaN)} us`,
      ),
    );
  for (const [label, xs, size] of [
    ['sockperf 64 B', r.sockperf, 64],
    ['netbench 1 B', r.latency, 1],
    ['netbench 1 KiB', r.latency, 1024],
  ] as const) {
    const p = quantiles(xs, 'plain', size);
    const s = quantiles(xs, 'stunnel', size);
    const m = quantiles(xs, 'meshless', size);
    if (!p || !s || !m) continue;
    for (const [q, limit] of [
      ['p50', 1.2],
      ['p99', 1.5],
    ] as const)
      out.push(
        row(
          `added round trip ${q} (${label}) <= ${limit}x stunnel's added`,
          addedRatio(p[q], s[q], m[q]),
          'x',
          'max',
          limit,
          `+${f0(m[q] - p[q])} us vs +${f0(s[q] - p[q])} us`,
        ),
      );
  }
  for (const streams of [1, 4]) {
    const t = (v: Variant): number | undefined =>
      r.throughput.find(
        (x) => x.variant === v && x.streams === streams && x.direction === 'forward',
      )?.medianGbps;
    const m = t('meshless');
    const s = t('stunnel');
    if (m !== undefined && s !== undefined)
      out.push(
        row(
          `throughput ${streams} conn >= 1.0x stunnel`,
          ratioOf(m, s),
          'x',
          'min',
          1,
          `${m} vs ${s} Gbit/s`,
        ),
      );
  }
  const mem = r.memory ? memoryOf(r.memory, 'meshless') : undefined;
  if (mem && r.memory) {
    out.push(
      row('daemon RSS peak under the load <= 100 MB', mem.peakMb, 'MB', 'max', 100, 'both daemons'),
    );
    out.push(
      row(
        `daemon RSS ${r.memory.idleWaitSeconds} s after the load <= idle before + 10 MB`,
        mem.driftMb,
        'MB',
        'max',
        10,
        'largest growth of the two daemons',
      ),
    );
  }
  if (r.cni) {
    out.push(row('meshless-cni ADD p50 <= 60 ms', r.cni.meshlessAdd.p50, 'ms', 'max', 60, ''));
    const bare = r.cni.nodeStart?.node.p50;
    if (bare !== undefined)
      out.push(
        row(
          'meshless-cni ADD p50 <= 1.5x a bare `node -e 0`',
          ratioOf(r.cni.meshlessAdd.p50, bare),
          'x',
          'max',
          1.5,
          `${r.cni.meshlessAdd.p50} vs ${bare} ms`,
        ),
      );
    out.push(row('meshless-cni ADD p99 <= 120 ms', r.cni.meshlessAdd.p99, 'ms', 'max', 120, ''));
  }
  if (r.daemon) {
    out.push(
      row(
        'daemon RSS idle (no pod) <= 60 MB',
        Math.max(...r.daemon.idleRssMb),
        'MB',
        'max',
        60,
        r.daemon.idleRssMb.join(' / '),
      ),
    );
    out.push(
      row(
        'daemon RSS per enrolled pod <= 0.5 MB',
        r.daemon.podsRss.perPodMb,
        'MB',
        'max',
        0.5,
        `${r.daemon.podsRss.pods} pods`,
      ),
    );
  }
  return out;
}

/** The median of a field over runs, NaN-free runs only (a failed run is not a zero). */
export function medianOf<T>(runs: readonly T[], f: (x: T) => number): number {
  return median(runs.map(f).filter((x) => !Number.isNaN(x)));
}
