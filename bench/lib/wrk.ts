/**
 * wrk (Debian `wrk`) as the second new-connection client: with a
 * `Connection: close` request header it opens a new TCP connection for
 * every request. Its figures, parsed from its report.
 */
import type { HttpLoadFigures } from './ab.js';

/** `wrk` argv: `concurrency` connections over 2 threads for `seconds`, a new one per request. */
export function wrkArgv(url: string, concurrency: number, seconds: number): string[] {
  return [
    'wrk',
    '-t',
    String(Math.min(2, concurrency)),
    '-c',
    String(concurrency),
    '-d',
    `${seconds}s`,
    '-H',
    'Connection: close',
    url,
  ];
}

/** Parses wrk's report; socket errors and non-2xx answers count as failed. */
export function parseWrk(text: string): HttpLoadFigures {
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b/m.exec(text);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!total || !rps) throw new Error(`not a wrk report: ${text.slice(0, 200)}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as 'us' | 'ms' | 's' | 'm'];
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const failed =
    (errors ? errors.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0) +
    (non2xx ? Number(non2xx[1]) : 0);
  return {
    rps: Number(rps[1]),
    completed: Number(total[1]),
    failed,
    seconds: Number(total[2]) * unit,
  };
}
