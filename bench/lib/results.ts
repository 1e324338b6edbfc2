/** The shape of bench/results/<date>.json, shared by the runner and the renderers. */
import type { ProcessUsage } from './proc-stats.js';

/** The three ways bytes go from the source pod to the destination pod. */
export const VARIANTS = ['plain', 'stunnel', 'meshless'] as const;
export type Variant = (typeof VARIANTS)[number];

export const VARIANT_LABEL: Readonly<Record<Variant, string>> = {
  plain: 'plain TCP',
  stunnel: 'stunnel4 mTLS pair',
  meshless: 'meshless HBONE',
};

export interface ThroughputRun {
  readonly gbps: number;
  readonly proxies: readonly ProcessUsage[];
}

export interface ThroughputResult {
  readonly variant: Variant;
  readonly streams: number;
  /** `forward`: source pod sends; `reverse`: destination pod sends (iperf3 -R). */
  readonly direction: 'forward' | 'reverse';
  readonly runs: readonly ThroughputRun[];
  readonly medianGbps: number;
}

export interface LatencyQuantiles {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

export interface LatencyRun extends LatencyQuantiles {
  readonly count: number;
  readonly rps: number;
  readonly proxies: readonly ProcessUsage[];
}

export interface LatencyResult {
  readonly variant: Variant;
  readonly size: number;
  readonly runs: readonly LatencyRun[];
  /** Median over runs of each quantile, us. */
  readonly median: LatencyQuantiles;
}

export interface ConnRateResult {
  readonly variant: Variant;
  readonly runs: readonly {
    readonly cps: number;
    readonly errors: number;
    readonly proxies: readonly ProcessUsage[];
  }[];
  readonly medianCps: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface CniResult {
  readonly pods: number;
  readonly meshlessAdd: Percentiles;
  readonly meshlessDel: Percentiles;
  readonly chainAdd: Percentiles;
  readonly chainDel: Percentiles;
  /** `ip netns exec <node> /bin/true`, included in every figure above. */
  readonly netnsExecOverhead: Percentiles;
  /**
   * `ip netns exec <node> env -i <node binary> -e 0` in the same run: the
   * start-up of a bare Node.js, the unit the plugin's ADD is reported in.
   * `node` is the machine's node; `lts` the Node LTS binary the plugin is
   * built on (absent when not cached).
   */
  readonly nodeStart?: { readonly node: Percentiles; readonly lts?: Percentiles };
}

export interface DaemonResult {
  /** RSS of each daemon right after start-up, no pod, MB. */
  readonly idleRssMb: readonly number[];
  /** RSS of node1's daemon before and after enrolling `pods` more pods. */
  readonly podsRss: {
    readonly pods: number;
    readonly beforeMb: number;
    readonly afterMb: number;
    readonly perPodMb: number;
  };
  /** CPU of both daemons under a paced 1 KiB ping-pong at `rps`. */
  readonly load: {
    readonly rps: number;
    readonly achievedRps: number;
    readonly proxies: readonly ProcessUsage[];
  };
}

export interface IdentityResult {
  readonly firstSvidP50Ms: number;
  readonly firstSvidP99Ms: number;
  readonly issuedPerSecondSequential: number;
  readonly issuedPerSecondConcurrent: number;
  readonly raw: string;
}

export interface BenchResults {
  readonly meta: {
    readonly date: string;
    readonly quick: boolean;
    readonly reps: number;
    readonly machine: Readonly<Record<string, string>>;
    readonly commit: string;
    readonly daemonNodeFlags: readonly string[];
    readonly seconds: number;
  };
  readonly throughput: readonly ThroughputResult[];
  readonly latency: readonly LatencyResult[];
  readonly connRate: readonly ConnRateResult[];
  readonly cni?: CniResult;
  readonly daemon?: DaemonResult;
  readonly identity?: IdentityResult;
}
