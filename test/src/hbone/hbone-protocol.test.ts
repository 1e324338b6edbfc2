// HBONE wire decisions: table tests, no sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hboneErrorCode } from '../../../src/hbone/hbone-error.js';
import {
  canonicalIp,
  connectRequestHeaders,
  decideConnectRequest,
  DEFAULT_FORBIDDEN_PORTS,
  formatAuthority,
  formatForwarded,
  newTraceparent,
  parseAuthority,
  parseForwardedFor,
} from '../../../src/hbone/hbone-protocol.js';
import { poolKey } from '../../../src/hbone/pool.js';

describe('authority', () => {
  const cases: [string, { host: string; port: number } | undefined][] = [
    ['10.0.0.1:80', { host: '10.0.0.1', port: 80 }],
    ['[fd00::1]:8080', { host: 'fd00::1', port: 8080 }],
    ['10.0.0.1', undefined],
    ['10.0.0.1:0', undefined],
    ['10.0.0.1:65536', undefined],
    ['10.0.0.1:+80', undefined],
    ['fd00::1:80', undefined],
    ['[10.0.0.1]:80', undefined],
    ['example.com:80', undefined],
    ['[fd00::1]80', undefined],
    ['', undefined],
  ];
  for (const [text, want] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => assert.deepEqual(parseAuthority(text), want));
  }
  it('formats IPv4 and IPv6', () => {
    assert.equal(formatAuthority({ host: '10.0.0.1', port: 80 }), '10.0.0.1:80');
    assert.equal(formatAuthority({ host: 'fd00::1', port: 80 }), '[fd00::1]:80');
  });
  it('canonicalises IPv6 spellings', () => {
    assert.equal(canonicalIp('0:0::1'), '::1');
    assert.equal(canonicalIp('FD00:0:0::1'), 'fd00::1');
    assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('nope'), undefined);
  });
});

describe('request headers', () => {
  it('builds a CONNECT with forwarded and traceparent', () => {
    const h = connectRequestHeaders({
      target: { host: 'fd00::2', port: 443 },
      forwardedFor: { ip: 'fd00::1', port: 5555 },
      baggage: 'k=v',
    });
    assert.equal(h[':method'], 'CONNECT');
    assert.equal(h[':authority'], '[fd00::2]:443');
    assert.equal(h['forwarded'], 'for="[fd00::1]:5555"');
    assert.equal(h['baggage'], 'k=v');
    assert.match(h['traceparent'] ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.equal(h[':path'], undefined);
  });
  it('quotes IPv4 forwarded nodes too, and parses them back', () => {
    assert.equal(formatForwarded({ ip: '10.0.0.1', port: 1 }), 'for="10.0.0.1:1"');
    assert.equal(parseForwardedFor('for="[fd00::1]:5555";proto=http'), '[fd00::1]:5555');
    assert.equal(parseForwardedFor('proto=http;For=10.0.0.1, for=10.0.0.2'), '10.0.0.1');
    assert.equal(parseForwardedFor('proto=http'), undefined);
    assert.equal(parseForwardedFor(undefined), undefined);
  });
  it('draws fresh IDs for every CONNECT, across refills of the random pool', () => {
    const seen = new Set<string>();
    // 4 KiB pool / 24 bytes per traceparent: 1,000 calls refill it several times.
    for (let i = 0; i < 1000; i++) {
      const t = newTraceparent();
      assert.match(t, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      seen.add(t.slice(3, 35)).add(t.slice(36, 52));
    }
    assert.equal(seen.size, 2000);
  });
  it('never makes an all-zero traceparent ID', () => {
    assert.equal(
      newTraceparent((n) => Buffer.alloc(n)),
      `00-${'0'.repeat(31)}1-${'0'.repeat(15)}1-00`,
    );
  });
});

describe('decideConnectRequest', () => {
  const policy = {
    localAddresses: ['10.0.0.5', 'fd00::5'],
    forbiddenPorts: DEFAULT_FORBIDDEN_PORTS,
  };
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['CONNECT to a pod address', { ':method': 'CONNECT', ':authority': '10.0.0.5:80' }, undefined],
    ['IPv6 another spelling', { ':method': 'CONNECT', ':authority': '[fd00:0::5]:80' }, undefined],
    ['GET', { ':method': 'GET', ':authority': '10.0.0.5:80', ':path': '/' }, 'not-connect'],
    ['no authority', { ':method': 'CONNECT' }, 'bad-authority'],
    ['hostname', { ':method': 'CONNECT', ':authority': 'pod:80' }, 'bad-authority'],
    ['another IP', { ':method': 'CONNECT', ':authority': '10.0.0.6:80' }, 'not-local-address'],
    ['15001', { ':method': 'CONNECT', ':authority': '10.0.0.5:15001' }, 'forbidden-port'],
    ['15006', { ':method': 'CONNECT', ':authority': '10.0.0.5:15006' }, 'forbidden-port'],
    ['15008', { ':method': 'CONNECT', ':authority': '10.0.0.5:15008' }, 'forbidden-port'],
  ];
  for (const [name, headers, problem] of cases) {
    it(name, () => {
      const d = decideConnectRequest(headers, policy);
      if (problem === undefined) assert.equal(d.ok, true);
      else assert.deepEqual(d, { ok: false, status: 400, problem });
    });
  }
  it('passes the forwarded client on', () => {
    const d = decideConnectRequest(
      { ':method': 'CONNECT', ':authority': '10.0.0.5:80', forwarded: 'for="10.0.0.9:1234"' },
      policy,
    );
    assert.deepEqual(d, {
      ok: true,
      target: { host: '10.0.0.5', port: 80 },
      forwardedFor: '10.0.0.9:1234',
    });
  });
});

describe('errors and keys', () => {
  it('maps reasons to codes and outcomes', () => {
    assert.equal(hboneErrorCode('connect-timeout'), 'MESHLESS_E_HBONE_CONNECT');
    assert.equal(hboneErrorCode('http-status-503'), 'MESHLESS_E_HBONE_STATUS');
    assert.equal(hboneErrorCode('peer-identity'), 'MESHLESS_E_HBONE_PEER_IDENTITY');
  });
  it('keys the pool on identities, source IP and HBONE address (canonical IPs)', () => {
    const base = {
      sourceIdentity: 'a',
      destinationIdentity: 'b',
      sourceIp: 'fd00::1',
      hboneAddress: { host: 'fd00::2', port: 15008 },
    };
    const key = (o: Partial<typeof base>): string =>
      poolKey({ ...base, ...o } as Parameters<typeof poolKey>[0]);
    assert.equal(
      key({}),
      key({ sourceIp: 'fd00:0::1', hboneAddress: { host: 'fd00:0::2', port: 15008 } }),
    );
    assert.notEqual(key({}), key({ sourceIdentity: 'c' }));
    assert.notEqual(key({}), key({ hboneAddress: { host: 'fd00::2', port: 15009 } }));
  });
});
