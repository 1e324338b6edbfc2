/**
 * iperf3 as the throughput client: its command line and the receiver's
 * rate from its JSON report (`-J`).
 */

/** `iperf3` client argv: `streams` connections for `seconds`; `reverse`: the server sends. */
export function iperf3Argv(
  host: string,
  port: number,
  streams: number,
  seconds: number,
  reverse: boolean,
): string[] {
  return [
    'iperf3',
    '-c',
    host,
    '-p',
    String(port),
    '-t',
    String(seconds),
    '-P',
    String(streams),
    '-J',
    '--connect-timeout',
    '5000',
    ...(reverse ? ['-R'] : []),
  ];
}

/** Gbit/s the receiver saw over the run (two decimals); throws when the report says why not. */
export function parseIperf3(json: string): number {
  const j = JSON.parse(json) as {
    error?: string;
    end?: { sum_received?: { bits_per_second?: number } };
  };
  if (j.error !== undefined) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error('iperf3 report has no end.sum_received');
  return Math.round(bps / 1e7) / 100;
}
