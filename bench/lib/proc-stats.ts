/**
 * CPU and memory of the processes under test, read from /proc: CPU% over a
 * run from utime+stime (all threads), peak RSS from VmHWM after resetting
 * it (`echo 5 > /proc/PID/clear_refs`, Linux >= 4.0) at the run's start.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** One process to watch, named for the report (e.g. `meshlessd node1`). */
export interface WatchedProcess {
  readonly name: string;
  readonly pid: number;
}

/** What a process used during one run. */
export interface ProcessUsage {
  readonly name: string;
  /** Percent of one core over the run (200 = two cores busy). */
  readonly cpuPercent: number;
  /** CPU time (user + system, all threads) over the run, s. */
  readonly cpuSeconds: number;
  /** Peak resident set during the run, MB. */
  readonly peakRssMb: number;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clockTicks;
}

/** utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A `kB` field of /proc/PID/status (VmRSS, VmHWM), in MB. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resets VmHWM to the current RSS. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Old kernel: VmHWM then is the peak since start.
  }
}

/** Starts watching `procs`; the returned function ends the run and reports. */
export function watchProcesses(procs: readonly WatchedProcess[]): () => ProcessUsage[] {
  const started = performance.now();
  const before = procs.map((p) => {
    resetPeakRss(p.pid);
    return cpuTicks(p.pid);
  });
  return () => {
    const seconds = (performance.now() - started) / 1000;
    return procs.map((p, i) => {
      const cpuSeconds = (cpuTicks(p.pid) - (before[i] ?? 0)) / ticksPerSecond();
      return {
        name: p.name,
        cpuPercent: round1((cpuSeconds * 100) / seconds),
        cpuSeconds: Math.round(cpuSeconds * 1000) / 1000,
        peakRssMb: round1(statusMb(p.pid, 'VmHWM')),
      };
    });
  };
}

/**
 * CPU of `proxies` together per unit of work (a connection), us: their
 * summed CPU time over the run divided by `count`. NaN without a proxy or
 * without work.
 */
export function cpuMicrosPer(proxies: readonly ProcessUsage[], count: number): number {
  if (proxies.length === 0 || !(count > 0)) return NaN;
  return round1((proxies.reduce((a, p) => a + p.cpuSeconds, 0) * 1e6) / count);
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** The `p` quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}
