/**
 * How many data-plane worker threads the daemon runs when the config does
 * not say (`dataPlane.workers`): derived from the CPUs the daemon may use.
 *
 * - The CPUs it may use: the scheduler affinity (`os.availableParallelism()`
 *   respects it), capped by the cgroup v2 CPU quota (`cpu.max`, e.g.
 *   "200000 100000" for a DaemonSet limit of 2 CPUs), rounded up.
 * - The default: a quarter of those, at least 2 and never more than there
 *   are CPUs (ztunnel's rule: max(25 % of cores, 2)). The main thread keeps
 *   the control plane (discovery, identities, the CNI API), so a node's
 *   proxy takes a bounded share of the node and applications keep the rest.
 *
 * Pure: the caller reads the files (see daemon-config.ts).
 */

/**
 * The CPU quota of a cgroup v2 `cpu.max` file ("$MAX $PERIOD"; "max $PERIOD"
 * when unlimited), in CPUs, rounded up; undefined when unlimited, absent or
 * unreadable.
 */
export function cpuQuotaOf(cpuMax: string | undefined): number | undefined {
  if (cpuMax === undefined) return undefined;
  const m = /^\s*(\d+|max)\s+(\d+)\s*$/.exec(cpuMax);
  if (!m || m[1] === 'max') return undefined;
  const quota = Number(m[1]);
  const period = Number(m[2]);
  if (!(quota > 0) || !(period > 0)) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** The CPUs the daemon may use: its affinity, capped by the cgroup quota. */
export function usableCpus(availableParallelism: number, cpuMax: string | undefined): number {
  const affinity = Math.max(1, Math.floor(availableParallelism));
  const quota = cpuQuotaOf(cpuMax);
  return quota === undefined ? affinity : Math.min(affinity, quota);
}

/** The default worker count for `cpus` usable CPUs: max(25 %, 2), at most `cpus`. */
export function defaultDataPlaneWorkers(cpus: number): number {
  const usable = Math.max(1, Math.floor(cpus));
  return Math.min(usable, Math.max(2, Math.floor(usable / 4)));
}
