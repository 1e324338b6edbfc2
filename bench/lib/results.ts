/** The shape of bench/results/<date>.json, shared by the runner and the renderers. */
import type { HttpLoadFigures } from './ab.js';
import type { Runtime } from './flags.js';
import type { ProcessUsage } from './proc-stats.js';
import type { SockperfFigures } from './sockperf.js';
import type { TargetRow } from './targets.js';

/** The three ways bytes go from the source pod to the destination pod. */
export const VARIANTS = ['plain', 'stunnel', 'meshless'] as const;
export type CoreVariant = (typeof VARIANTS)[number];
/**
 * A core variant, or another meshless configuration ({@link MeshlessConfig}
 * `id`, e.g. `meshless-lts`, `meshless-w2`) measured beside it.
 */
export type Variant = string;

/**
 * One way of running the daemons. The first is the `meshless` variant the
 * targets judge; the others (another runtime, a `dataPlane.workers` count)
 * run on their own two-node cluster, alternating with the rest.
 */
export interface MeshlessConfig {
  readonly id: string;
  readonly runtime: Runtime;
  /** `node --version` of the daemons. */
  readonly nodeVersion: string;
  /** `dataPlane.workers`; absent: the daemon's default. */
  readonly workers?: number;
}

export const VARIANT_LABEL: Readonly<Record<CoreVariant, string>> = {
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

/** One run of a new-connection client (ab or wrk) against the C responder. */
export interface HttpLoadRun extends HttpLoadFigures {
  readonly proxies: readonly ProcessUsage[];
  /** CPU of the variant's proxies together per successful connection, us (NaN: no proxy). */
  readonly cpuUsPerConn: number;
}

export interface HttpLoadResult {
  readonly tool: 'ab' | 'wrk';
  readonly variant: Variant;
  readonly runs: readonly HttpLoadRun[];
  readonly medianRps: number;
  readonly medianCpuUsPerConn: number;
}

export interface SockperfRun extends SockperfFigures {
  readonly proxies: readonly ProcessUsage[];
}

/** sockperf ping-pong round trips over one TCP connection, us. */
export interface SockperfResult {
  readonly variant: Variant;
  readonly size: number;
  readonly runs: readonly SockperfRun[];
  readonly median: LatencyQuantiles;
}

/** One daemon's resident memory before, during and after the bench's load, MB. */
export interface DaemonMemory {
  readonly variant: Variant;
  readonly name: string;
  /** Least of samples over a few seconds once the pods are up, before any traffic. */
  readonly idleBeforeMb: number;
  /** Highest VmHWM over every run of the variant. */
  readonly peakMb: number;
  /** Least of samples over a few seconds, `idleWaitSeconds` after the last load. */
  readonly idleAfterMb: number;
}

export interface MemoryResult {
  readonly idleWaitSeconds: number;
  readonly daemons: readonly DaemonMemory[];
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
  /** The meshless configurations measured; the first is the `meshless` variant. */
  readonly meshlessConfigs: readonly MeshlessConfig[];
  readonly throughput: readonly ThroughputResult[];
  readonly latency: readonly LatencyResult[];
  readonly connRate: readonly ConnRateResult[];
  readonly http: readonly HttpLoadResult[];
  readonly sockperf: readonly SockperfResult[];
  readonly memory?: MemoryResult;
  /** Every target, judged on this run (also in the report). */
  readonly targets: readonly TargetRow[];
  /** What was skipped and why (e.g. a configuration the daemon rejected). */
  readonly notes: readonly string[];
  readonly cni?: CniResult;
  readonly daemon?: DaemonResult;
  readonly identity?: IdentityResult;
}
