/**
 * sockperf (Debian `sockperf`) ping-pong over TCP: its command lines and
 * the round-trip quantiles of its report (`--full-rtt`: whole round trips,
 * not sockperf's default half), in microseconds.
 */

/** Round-trip quantiles of one sockperf run, us. */
export interface SockperfFigures {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly observations: number;
}

/** The server: echoes every message back (`sockperf server`). */
export function sockperfServerArgv(port: number): string[] {
  return ['sockperf', 'server', '--tcp', '-i', '0.0.0.0', '-p', String(port)];
}

/** The client: one TCP connection, `size`-byte messages, for `seconds`. */
export function sockperfPingPongArgv(
  host: string,
  port: number,
  size: number,
  seconds: number,
): string[] {
  return [
    'sockperf',
    'ping-pong',
    '--tcp',
    '--full-rtt',
    '-i',
    host,
    '-p',
    String(port),
    '-m',
    String(size),
    '-t',
    String(seconds),
  ];
}

function percentile(text: string, p: string): number {
  const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s+([\\d.]+)`).exec(text);
  if (!m) throw new Error(`sockperf output has no percentile ${p}`);
  return Number(m[1]);
}

/** Parses sockperf's ping-pong report; throws on anything else. */
export function parseSockperf(text: string): SockperfFigures {
  // Its summary lines carry ANSI colour codes (ESC [ ... m).
  const plain = text.replace(new RegExp(`${String.fromCharCode(27)}\\[[\\d;]*m`, 'g'), '');
  if (!/avg-rtt=/.test(plain)) throw new Error('sockperf ran without --full-rtt or did not finish');
  const obs = /Total (\d+) observations/.exec(plain);
  return {
    p50: percentile(plain, '50.000'),
    p99: percentile(plain, '99.000'),
    p999: percentile(plain, '99.900'),
    observations: Number(obs?.[1] ?? NaN),
  };
}
