/**
 * A {@link BenchResults} built from a few medians, for the tests of the
 * targets and the report: one run per variant, every other figure derived.
 */
import type { ProcessUsage } from '../../../bench/lib/proc-stats.js';
import type {
  BenchResults,
  HttpLoadResult,
  LatencyQuantiles,
  MeshlessConfig,
  SockperfResult,
  ThroughputResult,
} from '../../../bench/lib/results.js';
import { judgeTargets } from '../../../bench/lib/targets.js';

export interface Figures {
  /** Gbit/s per variant, 1 and 4 connections. */
  readonly gbps: Readonly<Record<string, readonly [number, number]>>;
  /** ab connections/s and us of CPU per connection per variant. */
  readonly ab: Readonly<Record<string, readonly [number, number]>>;
  /** sockperf p50, p99, p999 per variant, us. */
  readonly sockperf: Readonly<Record<string, readonly [number, number, number]>>;
  readonly memory?: readonly {
    variant: string;
    before: number;
    peak: number;
    after: number;
  }[];
  readonly configs?: readonly MeshlessConfig[];
}

const proxies: ProcessUsage[] = [];

export function results(f: Figures): BenchResults {
  const throughput: ThroughputResult[] = Object.entries(f.gbps).flatMap(([variant, g]) =>
    ([1, 4] as const).map((streams, i) => ({
      variant,
      streams,
      direction: 'forward' as const,
      runs: [{ gbps: g[i] ?? NaN, proxies }],
      medianGbps: g[i] ?? NaN,
    })),
  );
  const http: HttpLoadResult[] = Object.entries(f.ab).map(([variant, [rps, cpu]]) => ({
    tool: 'ab',
    variant,
    runs: [{ rps, completed: rps * 2, failed: 0, seconds: 2, proxies, cpuUsPerConn: cpu }],
    medianRps: rps,
    medianCpuUsPerConn: cpu,
  }));
  const sockperf: SockperfResult[] = Object.entries(f.sockperf).map(
    ([variant, [p50, p99, p999]]) => {
      const median: LatencyQuantiles = { p50, p99, p999 };
      return { variant, size: 64, runs: [{ ...median, observations: 1000, proxies }], median };
    },
  );
  const partial = {
    meta: {
      date: '2026-12-02T1800Z',
      quick: true,
      reps: 1,
      machine: { cpu: '2 x test', memory: '1 GiB', kernel: '6', node: 'v20' },
      commit: 'abc1234',
      daemonNodeFlags: [],
      seconds: 60,
    },
    meshlessConfigs: f.configs ?? [
      { id: 'meshless', runtime: 'machine' as const, nodeVersion: 'v20.20.2' },
    ],
    throughput,
    latency: [],
    connRate: [],
    http,
    sockperf,
    ...(f.memory
      ? {
          memory: {
            idleWaitSeconds: 60,
            daemons: f.memory.flatMap((m) =>
              ['node1', 'node2'].map((n) => ({
                variant: m.variant,
                name: `meshlessd ${n}`,
                idleBeforeMb: m.before,
                peakMb: m.peak,
                idleAfterMb: m.after,
              })),
            ),
          },
        }
      : {}),
    notes: [],
    targets: [],
  };
  return { ...partial, targets: judgeTargets(partial) };
}
