/**
 * ApacheBench (`ab`, Debian apache2-utils) as the new-connection client:
 * its command line and the figures of its report. Without `-k` every
 * request is a new TCP connection; `-r` keeps it going past a receive error
 * (counted as failed) instead of aborting the run.
 */

/** What one ab run measured. */
export interface HttpLoadFigures {
  /** Requests answered per second over the run. */
  readonly rps: number;
  /** Requests that completed, failed ones included. */
  readonly completed: number;
  /** Completed requests that failed (connect, receive, length, exceptions). */
  readonly failed: number;
  readonly seconds: number;
}

/** `ab` argv: `concurrency` clients for `seconds`, no keep-alive. */
export function abArgv(url: string, concurrency: number, seconds: number): string[] {
  // -t alone caps requests at 50,000; -n after it lifts the cap.
  return [
    'ab',
    '-q',
    '-r',
    '-c',
    String(concurrency),
    '-t',
    String(seconds),
    '-n',
    '100000000',
    url,
  ];
}

function field(text: string, label: string): number {
  const m = new RegExp(`^${label}:\\s+([\\d.]+)`, 'm').exec(text);
  if (!m) throw new Error(`ab output has no "${label}" line`);
  return Number(m[1]);
}

/** Parses ab's report; throws when it is not one (ab aborted). */
export function parseAb(text: string): HttpLoadFigures {
  return {
    rps: field(text, 'Requests per second'),
    completed: field(text, 'Complete requests'),
    failed: field(text, 'Failed requests'),
    seconds: field(text, 'Time taken for tests'),
  };
}
