import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import {
  parseSpiffeId,
  spiffeIdFromParts,
  trustDomainSpiffeId,
  tryParseSpiffeId,
  validateTrustDomain,
  workloadNameOf,
  workloadSpiffeId,
  type SpiffeIdProblem,
} from '../../../src/identity/spiffe-id.js';

// Valid IDs: the examples of spiffe/spiffe standards/SPIFFE-ID.md §2.2, plus
// the edges of each rule.
const VALID: readonly [string, string, string][] = [
  ['spiffe://staging.example.com/payments/mysql', 'staging.example.com', '/payments/mysql'],
  ['spiffe://staging.example.com/payments/web-fe', 'staging.example.com', '/payments/web-fe'],
  [
    'spiffe://k8s-west.example.com/ns/staging/sa/default',
    'k8s-west.example.com',
    '/ns/staging/sa/default',
  ],
  [
    'spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453',
    'example.com',
    '/9eebccd2-12bf-40a6-b262-65fe0487d453',
  ],
  ['spiffe://trust-domain-name/path', 'trust-domain-name', '/path'],
  ['spiffe://example.org', 'example.org', ''],
  ['spiffe://cluster.local/ns/default/sa/default', 'cluster.local', '/ns/default/sa/default'],
  ['spiffe://a_b.c-d.0/x', 'a_b.c-d.0', '/x'],
  ['spiffe://192.168.1.1/ip-looking', '192.168.1.1', '/ip-looking'],
  ['spiffe://td/CamelCase/UPPER/MiXeD', 'td', '/CamelCase/UPPER/MiXeD'],
  ['spiffe://td/a.b/..c/.d./...', 'td', '/a.b/..c/.d./...'],
  ['spiffe://td/_-_/0', 'td', '/_-_/0'],
  [`spiffe://${'a'.repeat(255)}/p`, 'a'.repeat(255), '/p'],
];

const INVALID: readonly [string, SpiffeIdProblem][] = [
  ['', 'empty'],
  ['spiffe://', 'missing_trust_domain'],
  ['spiffe:///path', 'missing_trust_domain'],
  ['SPIFFE://example.org/path', 'wrong_scheme'],
  ['Spiffe://example.org/path', 'wrong_scheme'],
  ['https://example.org/path', 'wrong_scheme'],
  ['spiffe:/example.org/path', 'wrong_scheme'],
  ['spiffe:example.org', 'wrong_scheme'],
  ['example.org/path', 'wrong_scheme'],
  ['spiffe://Example.org/path', 'bad_trust_domain_char'],
  ['spiffe://EXAMPLE.ORG', 'bad_trust_domain_char'],
  ['spiffe://exa%41mple.org/path', 'bad_trust_domain_char'],
  ['spiffe://exa mple.org/path', 'bad_trust_domain_char'],
  ['spiffe://[::1]/path', 'port'],
  ['spiffe://ex*ample.org', 'bad_trust_domain_char'],
  ['spiffe://éxample.org', 'bad_trust_domain_char'],
  ['spiffe://user@example.org/path', 'userinfo'],
  ['spiffe://user:pass@example.org/path', 'userinfo'],
  ['spiffe://example.org:8080/path', 'port'],
  ['spiffe://example.org:/path', 'port'],
  [`spiffe://${'a'.repeat(256)}/p`, 'trust_domain_too_long'],
  ['spiffe://example.org/path?query=1', 'query'],
  ['spiffe://example.org?query', 'query'],
  ['spiffe://example.org/path#fragment', 'fragment'],
  ['spiffe://example.org#frag', 'fragment'],
  ['spiffe://example.org/', 'trailing_slash'],
  ['spiffe://example.org/path/', 'trailing_slash'],
  ['spiffe://example.org//path', 'empty_segment'],
  ['spiffe://example.org/path//x', 'empty_segment'],
  ['spiffe://example.org/./path', 'dot_segment'],
  ['spiffe://example.org/path/..', 'dot_segment'],
  ['spiffe://example.org/path/.', 'dot_segment'],
  ['spiffe://example.org/../x', 'dot_segment'],
  ['spiffe://example.org/pa%20th', 'bad_path_segment_char'],
  ['spiffe://example.org/p%2Fq', 'bad_path_segment_char'],
  ['spiffe://example.org/pa th', 'bad_path_segment_char'],
  ['spiffe://example.org/pa:th', 'bad_path_segment_char'],
  ['spiffe://example.org/pa@th', 'bad_path_segment_char'],
  ['spiffe://example.org/päth', 'bad_path_segment_char'],
  ['spiffe://example.org/a+b', 'bad_path_segment_char'],
  ['spiffe://example.org/a~b', 'bad_path_segment_char'],
  [`spiffe://example.org/${'p'.repeat(2048 - 'spiffe://example.org/'.length + 1)}`, 'too_long'],
];

function problemOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MeshlessError, 'a MeshlessError');
    assert.equal(err.code, 'MESHLESS_E_SPIFFE_ID');
    return err.details?.problem;
  }
  assert.fail('expected an error');
}

describe('parseSpiffeId', () => {
  for (const [input, trustDomain, path] of VALID) {
    it(`accepts ${input.length > 60 ? input.slice(0, 60) + '...' : input}`, () => {
      const id = parseSpiffeId(input);
      assert.equal(id.trustDomain, trustDomain);
      assert.equal(id.path, path);
      assert.equal(id.toString(), input, 'round-trips to the same string');
      assert.equal(JSON.stringify({ id }), JSON.stringify({ id: input }));
    });
  }

  for (const [input, problem] of INVALID) {
    it(`rejects ${JSON.stringify(input.length > 60 ? input.slice(0, 60) + '...' : input)} (${problem})`, () => {
      assert.equal(
        problemOf(() => parseSpiffeId(input)),
        problem,
      );
      assert.equal(tryParseSpiffeId(input), undefined);
    });
  }

  it('accepts exactly 2048 bytes and names the input in errors', () => {
    const prefix = 'spiffe://example.org/';
    const id = prefix + 'p'.repeat(2048 - prefix.length);
    assert.equal(Buffer.byteLength(id), 2048);
    assert.equal(parseSpiffeId(id).toString(), id);
    assert.throws(
      () => parseSpiffeId('spiffe://example.org/a/'),
      /"spiffe:\/\/example\.org\/a\/".*end with "\/"/,
    );
  });

  it('compares exactly: path is case-sensitive', () => {
    const a = parseSpiffeId('spiffe://td/ns/a/sa/b');
    assert.ok(a.equals(parseSpiffeId('spiffe://td/ns/a/sa/b')));
    assert.ok(!a.equals(parseSpiffeId('spiffe://td/ns/a/sa/B')));
    assert.ok(Object.isFrozen(a));
  });
});

describe('workload IDs', () => {
  it('formats spiffe://<td>/ns/<ns>/sa/<sa> and reads it back', () => {
    const id = workloadSpiffeId('cluster.local', 'payments', 'api.v1');
    assert.equal(id.toString(), 'spiffe://cluster.local/ns/payments/sa/api.v1');
    assert.deepEqual(workloadNameOf(id), { namespace: 'payments', serviceAccount: 'api.v1' });
  });

  const bad: readonly [string, string, string, SpiffeIdProblem][] = [
    ['Cluster.local', 'ns', 'sa', 'bad_trust_domain_char'],
    ['', 'ns', 'sa', 'missing_trust_domain'],
    ['td', '', 'sa', 'empty_segment'],
    ['td', 'ns', '..', 'dot_segment'],
    ['td', 'a/b', 'sa', 'bad_path_segment_char'],
    ['td', 'ns', 'sa?x', 'bad_path_segment_char'],
  ];
  for (const [td, ns, sa, problem] of bad) {
    it(`refuses td=${JSON.stringify(td)} ns=${JSON.stringify(ns)} sa=${JSON.stringify(sa)}`, () => {
      assert.equal(
        problemOf(() => workloadSpiffeId(td, ns, sa)),
        problem,
      );
    });
  }

  it('workloadNameOf is undefined for other shapes', () => {
    for (const s of [
      'spiffe://td',
      'spiffe://td/ns/a',
      'spiffe://td/ns/a/sa/b/c',
      'spiffe://td/x/a/sa/b',
    ]) {
      assert.equal(workloadNameOf(parseSpiffeId(s)), undefined, s);
    }
  });

  it('builds trust domain IDs and validates trust domains', () => {
    const td = trustDomainSpiffeId('example.org');
    assert.equal(td.toString(), 'spiffe://example.org');
    assert.ok(td.isTrustDomainId);
    assert.equal(validateTrustDomain('a.b_c-d'), 'a.b_c-d');
    assert.equal(
      problemOf(() => validateTrustDomain('a:1')),
      'port',
    );
    assert.equal(spiffeIdFromParts('td', ['a', 'b']).toString(), 'spiffe://td/a/b');
    assert.equal(
      problemOf(() => spiffeIdFromParts('td', ['p'.repeat(2040)])),
      'too_long',
    );
  });
});
