// The parsers of the C clients' reports, on outputs captured from real runs
// (ab, wrk, sockperf 3.7, iperf 3.12 on Debian; loopback, and runs whose
// server was killed halfway).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abArgv, parseAb } from '../../../bench/lib/ab.js';
import { iperf3Argv, parseIperf3 } from '../../../bench/lib/iperf3.js';
import { parseSockperf, sockperfPingPongArgv } from '../../../bench/lib/sockperf.js';
import { parseWrk, wrkArgv } from '../../../bench/lib/wrk.js';
import { testdata } from '../../support/golden.js';

const data = testdata(new URL('../testdata', import.meta.url));

test('ab: rate, completed and failed requests, duration', () => {
  assert.deepEqual(parseAb(data.read('ab-loopback.txt')), {
    rps: 8783.44,
    completed: 17567,
    failed: 0,
    seconds: 2,
  });
  assert.deepEqual(parseAb(data.read('ab-killed.txt')), {
    rps: 5957.54,
    completed: 11967,
    failed: 1065,
    seconds: 2.009,
  });
});

test('ab: an aborted run is an error, not a zero', () => {
  assert.throws(
    () => parseAb('apr_socket_connect(): Connection refused (111)\n'),
    /no "Requests per second" line/,
  );
});

test('ab: no keep-alive, the cap on requests lifted after -t', () => {
  const argv = abArgv('http://10.0.0.1:8080/', 4, 3);
  assert.ok(!argv.includes('-k'));
  assert.ok(argv.indexOf('-n') > argv.indexOf('-t'));
  assert.equal(argv[argv.indexOf('-c') + 1], '4');
});

test('wrk: rate, requests, socket errors counted as failed', () => {
  assert.deepEqual(parseWrk(data.read('wrk-loopback.txt')), {
    rps: 10421.77,
    completed: 21843,
    failed: 0,
    seconds: 2.1,
  });
  assert.deepEqual(parseWrk(data.read('wrk-errors.txt')), {
    rps: 5899.78,
    completed: 11911,
    failed: 282,
    seconds: 2.02,
  });
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:18099 Connection refused\n'));
});

test('wrk: a new connection per request (Connection: close), threads never above connections', () => {
  const argv = wrkArgv('http://10.0.0.1:8080/', 1, 2);
  assert.equal(argv[argv.indexOf('-H') + 1], 'Connection: close');
  assert.equal(argv[argv.indexOf('-t') + 1], '1');
});

test('sockperf: full round-trip quantiles through the colour codes', () => {
  assert.deepEqual(parseSockperf(data.read('sockperf-loopback.txt')), {
    p50: 19.016,
    p99: 429.475,
    p999: 3877.631,
    observations: 33347,
  });
  assert.ok(sockperfPingPongArgv('10.0.0.1', 11111, 64, 2).includes('--full-rtt'));
});

test('sockperf: half round trips (no --full-rtt) are refused', () => {
  const half = data.read('sockperf-loopback.txt').replace('avg-rtt', 'avg-latency');
  assert.throws(() => parseSockperf(half), /--full-rtt/);
});

test('iperf3: the receiver rate in Gbit/s; an error report throws', () => {
  assert.equal(parseIperf3(data.read('iperf3-loopback.json')), 9.33);
  assert.throws(() => parseIperf3(data.read('iperf3-refused.json')), /Connection refused/);
  assert.deepEqual(iperf3Argv('h', 5201, 4, 5, true).slice(-1), ['-R']);
});
