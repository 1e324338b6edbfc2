/**
 * The command line of `npm run bench` (documented at the top of
 * bench/run.ts), parsed into a {@link BenchFlags}. Pure: argv in, flags
 * out; an unknown flag or value is an error, not a silent default.
 */

/** The measurements `--only` selects from; all of them by default. */
export const MEASUREMENTS = [
  'throughput',
  'latency',
  'sockperf',
  'connrate',
  'http',
  'memory',
  'daemon',
  'cni',
  'identity',
] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

/** Where the daemons' `node` comes from: the machine's, or the Node LTS of scripts/node-lts.mjs. */
export type Runtime = 'machine' | 'lts';

export interface BenchFlags {
  readonly quick: boolean;
  readonly only: ReadonlySet<Measurement>;
  readonly daemonNodeFlags: readonly string[];
  readonly save: boolean;
  /** Repetitions; each runs every variant once, in a rotated order. */
  readonly reps: number;
  /** The daemons' runtimes; the first is the reference `meshless` variant's. */
  readonly runtimes: readonly Runtime[];
  /** `dataPlane.workers` values to compare (empty: not asked for). */
  readonly workers: readonly number[];
  /** Seconds to wait after the load before sampling the daemons' idle RSS. */
  readonly idleWaitSeconds: number;
}

const KNOWN = [
  'quick',
  'only',
  'daemon-node-flags',
  'no-save',
  'reps',
  'runtimes',
  'workers',
  'idle-wait',
];

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name}: "${value}" is not a positive integer`);
  return n;
}

/** Parses the bench's argv (after `--`). */
export function parseBenchFlags(argv: readonly string[]): BenchFlags {
  const values = new Map<string, string>();
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a);
    if (!m?.[1] || !KNOWN.includes(m[1]))
      throw new Error(`unknown argument "${a}"; flags: ${KNOWN.map((k) => `--${k}`).join(' ')}`);
    values.set(m[1], m[2] ?? '');
  }
  const quick = values.has('quick');
  const onlyValue = values.get('only');
  const only = onlyValue === undefined ? [...MEASUREMENTS] : list(onlyValue);
  for (const o of only)
    if (!(MEASUREMENTS as readonly string[]).includes(o))
      throw new Error(`--only: unknown measurement "${o}"; one of ${MEASUREMENTS.join(',')}`);
  const runtimes = list(values.get('runtimes') ?? 'machine,lts');
  for (const r of runtimes)
    if (r !== 'machine' && r !== 'lts')
      throw new Error(`--runtimes: "${r}" is neither machine nor lts`);
  if (runtimes.length === 0 || new Set(runtimes).size !== runtimes.length)
    throw new Error('--runtimes: name machine, lts or both, once each');
  const workers = list(values.get('workers') ?? '1,2').map((w) => positiveInt('workers', w));
  const reps = values.has('reps') ? positiveInt('reps', values.get('reps') ?? '') : quick ? 1 : 3;
  const idleWaitSeconds = values.has('idle-wait')
    ? positiveInt('idle-wait', values.get('idle-wait') ?? '')
    : quick
      ? 20
      : 60;
  return {
    quick,
    only: new Set(only as Measurement[]),
    daemonNodeFlags: (values.get('daemon-node-flags') ?? '').split(/\s+/).filter(Boolean),
    save: !values.has('no-save'),
    reps,
    runtimes: runtimes as Runtime[],
    workers: [...new Set(workers)],
    idleWaitSeconds,
  };
}
