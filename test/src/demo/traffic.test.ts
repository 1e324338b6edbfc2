import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyCapture,
  expectationFor,
  judgeRow,
  meshStepsFromLog,
  type RowEnd,
  type RowObservation,
} from '../../../src/demo/traffic.js';
import type { TcpSegment } from '../../../src/sim/pcap.js';

const seg = (srcPort: number, dstPort: number, payload: Buffer): TcpSegment => ({
  src: '10.248.1.2',
  dst: '10.248.2.2',
  srcPort,
  dstPort,
  flags: 0x18,
  payload,
});

/** A minimal TLS ServerHello record selecting `version` through supported_versions. */
function serverHello(version: number): Buffer {
  const ext = Buffer.from([0x00, 0x2b, 0x00, 0x02, version >> 8, version & 0xff]);
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32),
    Buffer.from([0x00]), // session id
    Buffer.from([0x13, 0x01, 0x00]), // suite, compression
    Buffer.from([0x00, ext.length]),
    ext,
  ]);
  const hs = Buffer.concat([Buffer.from([0x02, 0x00, 0x00, body.length]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, hs.length]), hs]);
}

describe('demo traffic decisions', () => {
  test('what the behaviour matrix requires per pair', () => {
    assert.deepEqual(expectationFor(true, true), {
      wire: 'mtls-1.3',
      path: ['outbound', 'inbound'],
    });
    assert.deepEqual(expectationFor(true, false), { wire: 'plaintext', path: ['passthrough'] });
    assert.deepEqual(expectationFor(false, true), {
      wire: 'plaintext',
      path: ['inbound-plaintext'],
    });
    assert.deepEqual(expectationFor(false, false), { wire: 'plaintext', path: [] });
  });

  const marker = 'MESHLESS-DEMO-0011223344556677';
  for (const [name, segments, wire] of [
    ['a TLS 1.3 handshake on 15008', [seg(15008, 40000, serverHello(0x0304))], 'mtls-1.3'],
    ['a TLS 1.2 handshake', [seg(15008, 40000, serverHello(0x0303))], 'tls-not-1.3'],
    ['the marker in clear', [seg(40000, 8080, Buffer.from(`${marker}\n`))], 'plaintext'],
    [
      'the marker split across two segments',
      [
        seg(40000, 8080, Buffer.from(marker.slice(0, 9))),
        seg(40000, 8080, Buffer.from(marker.slice(9))),
      ],
      'plaintext',
    ],
    [
      'application data of a pooled connection',
      [seg(40000, 15008, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x10, ...Buffer.alloc(16)]))],
      'tls-pooled',
    ],
    ['other bytes', [seg(40000, 8080, Buffer.from('something'))], 'tls-not-1.3'],
    ['nothing', [seg(40000, 8080, Buffer.alloc(0))], 'nothing'],
  ] as const)
    test(`capture: ${name} -> ${wire}`, () => {
      assert.equal(classifyCapture(segments, marker).wire, wire);
    });

  test('connection records from a daemon log, for the pair only', () => {
    const line = (direction: string, src: string, dst: string, ids = {}): string =>
      JSON.stringify({
        level: 30,
        msg: 'connection',
        connection: {
          direction,
          source: { address: src, port: 1, ...ids },
          destination: { address: dst, port: 8080 },
          outcome: 'ok',
        },
      });
    const log = [
      line('inbound', '10.0.0.1', '10.0.0.2', { identity: 'spiffe://td/ns/a/sa/b' }),
      line('passthrough', '10.0.0.9', '10.0.0.2'),
      '{"msg":"pod registered"}',
      'not json "connection"',
    ].join('\n');
    assert.deepEqual(meshStepsFromLog('node2', log, '10.0.0.1', '10.0.0.2'), [
      {
        node: 'node2',
        direction: 'inbound',
        sourceIdentity: 'spiffe://td/ns/a/sa/b',
        destinationIdentity: undefined,
        outcome: 'ok',
      },
    ]);
  });

  test('judging a row', () => {
    const source: RowEnd = {
      pod: 'web',
      namespace: 's',
      node: 'node1',
      ip: '10.0.0.1',
      enrolled: true,
    };
    const good: RowObservation = {
      wire: 'mtls-1.3',
      markerOnWire: false,
      tlsVersions: ['1.3'],
      path: [
        {
          node: 'node1',
          direction: 'outbound',
          sourceIdentity: 'a',
          destinationIdentity: 'b',
          outcome: 'ok',
        },
        {
          node: 'node2',
          direction: 'inbound',
          sourceIdentity: 'a',
          destinationIdentity: 'b',
          outcome: 'ok',
        },
      ],
      echoed: true,
      peerSeen: '10.0.0.1:5000',
      capture: 'x.pcap',
    };
    const want = expectationFor(true, true);
    assert.deepEqual(judgeRow(source, want, good), { ok: true, problems: [] });
    assert.equal(judgeRow(source, want, { ...good, wire: 'tls-pooled' }).ok, true);
    assert.deepEqual(
      judgeRow(source, want, { ...good, wire: 'plaintext', peerSeen: '10.0.0.7:1' }).problems,
      ['the application saw 10.0.0.7:1, not 10.0.0.1', 'wire: plaintext, want mtls-1.3'],
    );
    assert.deepEqual(judgeRow(source, expectationFor(true, false), good).problems, [
      'wire: mtls-1.3, want plaintext',
      'no passthrough connection logged',
      'unexpected outbound connection logged',
      'unexpected inbound connection logged',
    ]);

    // A row the destination's policy must deny.
    const deny = { ...want, deniedBy: 'secure/cache-denies-web' };
    const refused: RowObservation = {
      ...good,
      error: 'read ECONNRESET',
      echoed: false,
      peerSeen: undefined,
      path: good.path.map((step) => ({
        ...step,
        outcome: 'denied',
        ...(step.direction === 'inbound'
          ? { policy: 'AuthorizationPolicy secure/cache-denies-web' }
          : {}),
      })),
    };
    assert.deepEqual(judgeRow(source, deny, refused), { ok: true, problems: [] });
    assert.deepEqual(judgeRow(source, deny, good).problems, [
      'the connection was not refused',
      'no inbound record denied by AuthorizationPolicy secure/cache-denies-web',
    ]);
    assert.deepEqual(
      judgeRow(source, deny, { ...refused, markerOnWire: true, path: [] }).problems,
      [
        'the marker crossed the link in plaintext',
        'no inbound record denied by AuthorizationPolicy secure/cache-denies-web',
      ],
    );
  });
});
