// Table tests of the authorization evaluator, ported from istio/ztunnel
// src/rbac.rs (tests module) and src/state.rs (assert_rbac_* tests), then
// meshless's own: policy parsing (the L4 subset, fail-safe DENY), scope
// (namespace, root namespace, selector), dry-run and STRICT PeerAuthentication.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EMPTY_MATCH,
  authorizationPolicyFromObject,
  stringMatchOf,
  stringMatches,
  type AuthorizationPolicy,
  type RbacMatch,
  type RbacRule,
} from '../../../src/policy/authorization-policy.js';
import {
  authorize,
  explainAuthorization,
  policyMatches,
  type AuthorizationRequest,
} from '../../../src/policy/authorize.js';
import { parseIpAddress, parseIpBlock, type IpAddress } from '../../../src/policy/ip-address.js';
import { peerAuthenticationFromObject } from '../../../src/policy/peer-authentication.js';
import { buildPolicyIndex } from '../../../src/policy/policy-index.js';

const ip = (t: string): IpAddress => parseIpAddress(t) ?? assert.fail(t);
const block = (t: string) => parseIpBlock(t) ?? assert.fail(t);

const conn = (
  principal: string | undefined,
  src: string,
  dst: string,
  port: number,
  destination = { namespace: 'namespace', labels: {} },
): AuthorizationRequest => ({
  destination,
  principal,
  sourceIp: ip(src),
  destinationIp: ip(dst),
  destinationPort: port,
});

// rbac.rs plaintext_conn, tls_conn, tls_conn_alt
const plaintext = conn(undefined, '127.0.0.1', '127.0.0.2', 8080);
const tls = conn('spiffe://td/ns/namespace/sa/account', '127.0.0.1', '127.0.0.2', 8080);
const tlsAlt = conn('spiffe://td-alt/ns/ns-alt/sa/sa=alt', '127.0.0.3', '127.0.0.4', 9090);

const allowPolicy = (rules: RbacRule[], name = 'p'): AuthorizationPolicy => ({
  namespace: 'namespace',
  name,
  action: 'ALLOW',
  selector: undefined,
  rules,
  dryRun: false,
  unsupported: undefined,
});
const single = (m: Partial<RbacMatch>): AuthorizationPolicy =>
  allowPolicy([[[{ ...EMPTY_MATCH, ...m }]]]);

describe('policyMatches (ztunnel rbac.rs)', () => {
  it('rbac_empty_policy', () => {
    assert.equal(policyMatches(allowPolicy([[[EMPTY_MATCH]]]), plaintext), false);
    assert.equal(policyMatches(allowPolicy([[[]]]), plaintext), true);
    assert.equal(policyMatches(allowPolicy([[]]), plaintext), true);
    assert.equal(policyMatches(allowPolicy([]), plaintext), false);
  });

  const spiffe = (ns: string): string => `spiffe://td/ns/${ns}/sa/account`;
  it('rbac_nesting', () => {
    const pol = allowPolicy([
      [
        [
          { ...EMPTY_MATCH, namespaces: [stringMatchOf('a')] },
          { ...EMPTY_MATCH, namespaces: [stringMatchOf('b')] },
        ],
        [{ ...EMPTY_MATCH, destinationPorts: [80] }],
      ],
    ]);
    assert.equal(policyMatches(pol, conn(spiffe('a'), '127.0.0.1', '127.0.0.2', 80)), true);
    assert.equal(policyMatches(pol, conn(spiffe('b'), '127.0.0.1', '127.0.0.2', 80)), true);
    assert.equal(policyMatches(pol, conn(spiffe('bad'), '127.0.0.1', '127.0.0.2', 80)), false);
    assert.equal(policyMatches(pol, conn(spiffe('b'), '127.0.0.1', '127.0.0.2', 12345)), false);
  });

  it('rbac_multi_rule', () => {
    const pol = allowPolicy([
      [[{ ...EMPTY_MATCH, namespaces: [stringMatchOf('a')] }]],
      [[{ ...EMPTY_MATCH, namespaces: [stringMatchOf('b')] }]],
    ]);
    assert.equal(policyMatches(pol, conn(spiffe('a'), '127.0.0.1', '127.0.0.2', 80)), true);
    assert.equal(policyMatches(pol, conn(spiffe('b'), '127.0.0.1', '127.0.0.2', 80)), true);
    assert.equal(policyMatches(pol, conn(spiffe('bad'), '127.0.0.1', '127.0.0.2', 80)), false);
  });

  // rbac_test! cases: [field, values, plaintext, tls, tls_alt]
  const cases: [string, Partial<RbacMatch>, boolean, boolean, boolean][] = [
    ['namespaces', { namespaces: [stringMatchOf('namespace')] }, false, true, false],
    ['not_namespaces', { notNamespaces: [stringMatchOf('namespace')] }, true, false, true],
    [
      'principals',
      { principals: [stringMatchOf('td/ns/namespace/sa/account')] },
      false,
      true,
      false,
    ],
    [
      'not_principals',
      { notPrincipals: [stringMatchOf('td/ns/namespace/sa/account')] },
      true,
      false,
      true,
    ],
    ['source_ips', { sourceIps: [block('127.0.0.1/32')] }, true, true, false],
    ['not_source_ips', { notSourceIps: [block('127.0.0.1/32')] }, false, false, true],
    ['destination_ips', { destinationIps: [block('127.0.0.2/32')] }, true, true, false],
    ['not_destination_ips', { notDestinationIps: [block('127.0.0.2/32')] }, false, false, true],
    ['cidr_range', { destinationIps: [block('127.0.0.1/24')] }, true, true, true],
    ['destination_ports', { destinationPorts: [8080] }, true, true, false],
    ['not_destination_ports', { notDestinationPorts: [8080] }, false, false, true],
  ];
  for (const [name, m, p, t, a] of cases)
    it(name, () => {
      const pol = single(m);
      assert.equal(policyMatches(pol, plaintext), p, 'plaintext');
      assert.equal(policyMatches(pol, tls), t, 'tls');
      assert.equal(policyMatches(pol, tlsAlt), a, 'tls_alt');
    });

  const strings: [string, string, boolean][] = [
    ['foo', 'foo', true],
    ['foo', 'not', false],
    ['foo', '', false],
    ['foo*', 'foobar', true],
    ['foo*', 'notfoo', false],
    ['foo*', '', false],
    ['*foo', 'barfoo', true],
    ['*foo', 'foonot', false],
    ['*foo', '', false],
    ['*', 'foo', true],
    ['*', '', false],
  ];
  for (const [pattern, value, expect] of strings)
    it(`string_match ${pattern} ~ "${value}"`, () =>
      assert.equal(stringMatches(stringMatchOf(pattern), value), expect));

  it('a principal without spiffe:// never matches a principal value', () => {
    const pol = single({ principals: [stringMatchOf('*')] });
    assert.equal(
      policyMatches(pol, conn('td/ns/namespace/sa/account', '1.1.1.1', '2.2.2.2', 80)),
      false,
    );
  });
});

/** A snapshot's policy source from objects. */
function indexOf(
  objects: { authz?: unknown[]; peer?: unknown[] },
  rootNamespace = 'meshless-system',
) {
  const authorizationPolicies = new Map(
    (objects.authz ?? []).map((o) => {
      const p = authorizationPolicyFromObject(o);
      return [`${p.namespace}/${p.name}`, p] as const;
    }),
  );
  const peerAuthentications = new Map(
    (objects.peer ?? []).map((o) => {
      const p = peerAuthenticationFromObject(o);
      return [`${p.namespace}/${p.name}`, p] as const;
    }),
  );
  return buildPolicyIndex(
    {
      namespaces: new Map(),
      pods: new Map(),
      authorizationPolicies,
      peerAuthentications,
      networkPolicies: new Map(),
    },
    { rootNamespace },
  );
}

const ap = (
  namespace: string,
  name: string,
  spec: unknown,
  annotations?: Record<string, string>,
) => ({
  apiVersion: 'security.meshless.dev/v1alpha1',
  kind: 'AuthorizationPolicy',
  metadata: { namespace, name, ...(annotations ? { annotations } : {}) },
  spec,
});
const principalRule = (p: string) => ({ from: [{ source: { principals: [p] } }] });

describe('authorize (ztunnel state.rs assert_rbac)', () => {
  // create_workload(n): namespace ns<n>, IP 192.168.0.<n>; source default/<sa> from 192.168.1.1.
  const to = (n: number, sa: string, principal = `spiffe://cluster.local/ns/default/sa/${sa}`) =>
    conn(principal, '192.168.1.1', `192.168.0.${n}`, 8080, { namespace: `ns${n}`, labels: {} });

  it('assert_rbac_logic_deny_allow', () => {
    const index = indexOf({
      authz: [
        ap(
          'ns1',
          'wildcard-allow',
          { action: 'ALLOW', rules: [{}] },
          { 'istio.io/dry-run': 'true' },
        ),
        ap('ns1', 'wildcard-deny', { action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'true' }),
        ap('ns1', 'foo', {
          action: 'ALLOW',
          rules: [principalRule('cluster.local/ns/default/sa/defaultacct')],
        }),
        ap('ns1', 'deny', {
          action: 'DENY',
          rules: [principalRule('cluster.local/ns/default/sa/denyacct')],
        }),
      ],
    });
    // 3. no ALLOW policies for the workload: allow
    assert.equal(authorize(to(2, 'not-defaultacct'), index).allowed, true);
    assert.equal(authorize(to(2, 'not-defaultacct'), index).reason, 'no_allow_policies');
    // 4. an ALLOW policy matches: allow
    const ok = authorize(to(1, 'defaultacct'), index);
    assert.deepEqual(
      [ok.allowed, ok.reason, ok.policy?.name],
      [true, 'allow_policy_matched', 'foo'],
    );
    // 5. otherwise deny
    const no = authorize(to(1, 'not-defaultacct'), index);
    assert.deepEqual(
      [no.allowed, no.reason, no.policy],
      [false, 'no_allow_policy_matched', undefined],
    );
    // 2. a DENY policy matches: deny, naming it
    const denied = authorize(to(1, 'denyacct'), index);
    assert.deepEqual(
      [denied.allowed, denied.reason, denied.policy],
      [
        false,
        'deny_policy_matched',
        { kind: 'AuthorizationPolicy', namespace: 'ns1', name: 'deny' },
      ],
    );
  });

  it('assert_rbac_with_dest_workload_info: no policies at all allows', () => {
    assert.equal(authorize(to(1, 'defaultacct'), indexOf({})).allowed, true);
  });

  it('assert_rbac_dry_run_with_real_policies: dry-run matches are reported, never decide', () => {
    const dry = { 'istio.io/dry-run': 'true' };
    const index = indexOf({
      authz: [
        ap('ns1', 'real-deny', {
          action: 'DENY',
          rules: [principalRule('cluster.local/ns/default/sa/denyacct')],
        }),
        ap(
          'ns1',
          'dry-run-deny',
          {
            action: 'DENY',
            rules: [
              principalRule('cluster.local/ns/default/sa/defaultacct'),
              principalRule('cluster.local/ns/default/sa/denyacct'),
            ],
          },
          dry,
        ),
        ap('ns1', 'real-allow', {
          action: 'ALLOW',
          rules: [principalRule('cluster.local/ns/default/sa/defaultacct')],
        }),
        ap(
          'ns1',
          'dry-run-allow',
          { action: 'ALLOW', rules: [principalRule('cluster.local/ns/default/sa/defaultacct')] },
          dry,
        ),
      ],
    });
    const d = authorize(to(1, 'defaultacct'), index);
    assert.equal(d.allowed, true);
    assert.deepEqual(
      d.dryRun.map((r) => `${r.action} ${r.policy.namespace}/${r.policy.name}`).sort(),
      ['ALLOW ns1/dry-run-allow', 'DENY ns1/dry-run-deny'],
    );
  });

  it('only dry-run ALLOW policies: allowed (no enforced ALLOW policy)', () => {
    const index = indexOf({
      authz: [
        ap(
          'ns1',
          'a',
          { rules: [principalRule('nobody')] },
          { 'security.meshless.dev/dry-run': 'true' },
        ),
      ],
    });
    assert.equal(authorize(to(1, 'x'), index).allowed, true);
  });
});

describe('authorize: scope', () => {
  const dest = (namespace: string, labels: Record<string, string> = {}) =>
    conn('spiffe://cluster.local/ns/client/sa/c', '10.0.0.1', '10.0.0.2', 80, {
      namespace,
      labels,
    });
  const denyAll = (namespace: string, name: string, selector?: Record<string, string>) =>
    ap(namespace, name, {
      action: 'DENY',
      rules: [{}],
      ...(selector ? { selector: { matchLabels: selector } } : {}),
    });

  const cases: {
    name: string;
    policies: unknown[];
    destination: [string, Record<string, string>];
    denied: string | undefined;
  }[] = [
    {
      name: 'namespace-wide applies to its namespace',
      policies: [denyAll('app', 'd')],
      destination: ['app', {}],
      denied: 'app/d',
    },
    {
      name: 'namespace-wide does not apply elsewhere',
      policies: [denyAll('app', 'd')],
      destination: ['other', {}],
      denied: undefined,
    },
    {
      name: 'root namespace applies everywhere',
      policies: [denyAll('meshless-system', 'mesh')],
      destination: ['other', {}],
      denied: 'meshless-system/mesh',
    },
    {
      name: 'selector matching the labels',
      policies: [denyAll('app', 's', { app: 'web' })],
      destination: ['app', { app: 'web', x: 'y' }],
      denied: 'app/s',
    },
    {
      name: 'selector not matching',
      policies: [denyAll('app', 's', { app: 'web' })],
      destination: ['app', { app: 'db' }],
      denied: undefined,
    },
    {
      name: 'selector of another namespace',
      policies: [denyAll('app', 's', { app: 'web' })],
      destination: ['other', { app: 'web' }],
      denied: undefined,
    },
    {
      name: 'root namespace selector applies in every namespace',
      policies: [denyAll('meshless-system', 's', { app: 'web' })],
      destination: ['other', { app: 'web' }],
      denied: 'meshless-system/s',
    },
    {
      name: 'a custom root namespace',
      policies: [denyAll('istio-system', 'm')],
      destination: ['app', {}],
      denied: undefined,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = authorize(dest(...c.destination), indexOf({ authz: c.policies }));
      assert.equal(d.policy ? `${d.policy.namespace}/${d.policy.name}` : undefined, c.denied);
      assert.equal(d.allowed, c.denied === undefined);
    });

  it('rootNamespace is configurable', () => {
    const d = authorize(
      dest('app'),
      indexOf({ authz: [denyAll('istio-system', 'm')] }, 'istio-system'),
    );
    assert.equal(d.allowed, false);
  });

  it('the empty ALLOW policy denies everything; rules: [{}] allows everything', () => {
    assert.equal(
      authorize(dest('app'), indexOf({ authz: [ap('app', 'none', {})] })).allowed,
      false,
    );
    assert.equal(
      authorize(dest('app'), indexOf({ authz: [ap('app', 'all', { rules: [{}] })] })).allowed,
      true,
    );
  });
});

describe('authorizationPolicyFromObject: the L4 subset', () => {
  const d = (spec: unknown) => authorizationPolicyFromObject(ap('app', 'p', spec));
  it('translates from, to and when as istiod does for ztunnel', () => {
    const p = d({
      action: 'ALLOW',
      rules: [
        {
          from: [
            { source: { principals: ['cluster.local/ns/a/sa/*'], notNamespaces: ['kube-*'] } },
            { source: { ipBlocks: ['10.0.0.0/8', '192.168.1.1'] } },
          ],
          to: [{ operation: { ports: ['8080', '9090'] } }],
          when: [{ key: 'destination.port', notValues: ['9090'] }],
        },
      ],
    });
    assert.equal(p.unsupported, undefined);
    const rule = p.rules[0] ?? assert.fail();
    assert.equal(rule.length, 3);
    const r = (principal: string | undefined, src: string, port: number) =>
      policyMatches(p, conn(principal, src, '10.1.1.1', port, { namespace: 'app', labels: {} }));
    assert.equal(r('spiffe://cluster.local/ns/a/sa/x', '1.1.1.1', 8080), true);
    assert.equal(r('spiffe://cluster.local/ns/a/sa/x', '1.1.1.1', 9090), false, 'when notValues');
    assert.equal(r('spiffe://cluster.local/ns/b/sa/x', '1.1.1.1', 8080), false);
    assert.equal(r(undefined, '10.2.3.4', 8080), true, 'second source: ipBlocks');
    assert.equal(r(undefined, '192.168.1.2', 8080), false);
    assert.equal(r(undefined, '192.168.1.1', 7000), false, 'port not listed');
  });

  const unsupported: [string, unknown, string][] = [
    [
      'L7 operation',
      { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
      'spec.rules[0].to[0].operation.methods',
    ],
    [
      'request principals',
      { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
      'spec.rules[0].from[0].source.requestPrincipals',
    ],
    [
      'L7 when key',
      { rules: [{ when: [{ key: 'request.headers[x]', values: ['1'] }] }] },
      'spec.rules[0].when[0].key "request.headers[x]"',
    ],
    ['CUSTOM action', { action: 'CUSTOM', provider: { name: 'x' } }, 'spec.provider'],
    ['AUDIT action', { action: 'AUDIT' }, 'spec.action "AUDIT"'],
    ['targetRefs', { targetRefs: [{ kind: 'Service', name: 'x' }] }, 'spec.targetRefs'],
    [
      'malformed ipBlock',
      { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] },
      'spec.rules[0].from[0].source.ipBlocks[0]',
    ],
    [
      'malformed port',
      { rules: [{ to: [{ operation: { ports: ['http'] } }] }] },
      'spec.rules[0].to[0].operation.ports[0]',
    ],
  ];
  for (const [name, spec, field] of unsupported)
    it(`${name} becomes a DENY of everything, naming ${field}`, () => {
      const p = d({ selector: { matchLabels: { app: 'web' } }, ...(spec as object) });
      assert.equal(p.unsupported, field);
      assert.equal(p.action, 'DENY');
      assert.deepEqual(p.selector?.requirements, [{ key: 'app', operator: 'In', values: ['web'] }]);
      const index = buildPolicyIndex({
        namespaces: new Map(),
        pods: new Map(),
        authorizationPolicies: new Map([['app/p', p]]),
        peerAuthentications: new Map(),
        networkPolicies: new Map(),
      });
      assert.equal(
        authorize(
          conn('spiffe://td/ns/app/sa/a', '1.1.1.1', '2.2.2.2', 80, {
            namespace: 'app',
            labels: { app: 'web' },
          }),
          index,
        ).allowed,
        false,
      );
      assert.equal(
        authorize(
          conn('spiffe://td/ns/app/sa/a', '1.1.1.1', '2.2.2.2', 80, {
            namespace: 'app',
            labels: { app: 'db' },
          }),
          index,
        ).allowed,
        true,
      );
      assert.match(index.problems[0]?.problem ?? '', /outside the L4 subset/);
    });
});

describe('authorize: STRICT PeerAuthentication', () => {
  const pa = (
    namespace: string,
    name: string,
    spec: unknown,
    created = '2026-01-01T00:00:00Z',
  ) => ({
    apiVersion: 'security.meshless.dev/v1alpha1',
    kind: 'PeerAuthentication',
    metadata: { namespace, name, creationTimestamp: created },
    spec,
  });
  const req = (
    principal: string | undefined,
    port = 80,
    labels: Record<string, string> = { app: 'web' },
  ) => conn(principal, '10.0.0.1', '10.0.0.2', port, { namespace: 'app', labels });
  const mtls = (mode: string) => ({ mtls: { mode } });
  const sel = { selector: { matchLabels: { app: 'web' } } };

  const cases: {
    name: string;
    peer: unknown[];
    principal?: string;
    port?: number;
    labels?: Record<string, string>;
    denied: string | undefined;
  }[] = [
    { name: 'default PERMISSIVE accepts plaintext', peer: [], denied: undefined },
    {
      name: 'mesh-wide STRICT refuses plaintext',
      peer: [pa('meshless-system', 'mesh', mtls('STRICT'))],
      denied: 'meshless-system/mesh',
    },
    {
      name: 'STRICT accepts a principal',
      peer: [pa('meshless-system', 'mesh', mtls('STRICT'))],
      principal: 'spiffe://td/ns/x/sa/y',
      denied: undefined,
    },
    {
      name: 'namespace PERMISSIVE overrides mesh STRICT',
      peer: [pa('meshless-system', 'mesh', mtls('STRICT')), pa('app', 'ns', mtls('PERMISSIVE'))],
      denied: undefined,
    },
    {
      name: 'namespace UNSET inherits mesh STRICT',
      peer: [pa('meshless-system', 'mesh', mtls('STRICT')), pa('app', 'ns', {})],
      denied: 'meshless-system/mesh',
    },
    {
      name: 'workload STRICT over namespace PERMISSIVE',
      peer: [pa('app', 'ns', mtls('PERMISSIVE')), pa('app', 'w', { ...sel, ...mtls('STRICT') })],
      denied: 'app/w',
    },
    {
      name: 'workload selector not matching',
      peer: [pa('app', 'w', { ...sel, ...mtls('STRICT') })],
      labels: { app: 'db' },
      denied: undefined,
    },
    {
      name: 'portLevelMtls PERMISSIVE on the port',
      peer: [
        pa('app', 'w', {
          ...sel,
          ...mtls('STRICT'),
          portLevelMtls: { '80': { mode: 'PERMISSIVE' } },
        }),
      ],
      denied: undefined,
    },
    {
      name: 'portLevelMtls on another port',
      peer: [
        pa('app', 'w', {
          ...sel,
          ...mtls('STRICT'),
          portLevelMtls: { '80': { mode: 'PERMISSIVE' } },
        }),
      ],
      port: 81,
      denied: 'app/w',
    },
    {
      name: 'portLevelMtls STRICT under PERMISSIVE',
      peer: [
        pa('app', 'w', {
          ...sel,
          ...mtls('PERMISSIVE'),
          portLevelMtls: { '80': { mode: 'STRICT' } },
        }),
      ],
      denied: 'app/w',
    },
    {
      name: 'DISABLE is ignored (inherits)',
      peer: [pa('meshless-system', 'mesh', mtls('STRICT')), pa('app', 'ns', mtls('DISABLE'))],
      denied: 'meshless-system/mesh',
    },
    {
      name: 'the oldest of two namespace policies wins',
      peer: [
        pa('app', 'b-new', mtls('PERMISSIVE'), '2026-02-01T00:00:00Z'),
        pa('app', 'z-old', mtls('STRICT'), '2026-01-01T00:00:00Z'),
      ],
      denied: 'app/z-old',
    },
    {
      name: 'an unknown field counts as STRICT',
      peer: [pa('app', 'odd', { mtls: { mode: 'STRICT_ISH' } })],
      denied: 'app/odd',
    },
    {
      name: 'a mesh-wide policy with a selector is a workload policy of the root namespace only',
      peer: [pa('meshless-system', 'w', { ...sel, ...mtls('STRICT') })],
      denied: undefined,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const index = indexOf({ peer: c.peer });
      const d = authorize(req(c.principal, c.port, c.labels), index);
      assert.equal(d.allowed, c.denied === undefined);
      assert.equal(d.policy ? `${d.policy.namespace}/${d.policy.name}` : undefined, c.denied);
      if (c.denied !== undefined) assert.equal(d.reason, 'strict_mtls');
    });
});

describe('explainAuthorization', () => {
  it('lists every applicable policy, whether it matched, and the mTLS mode', () => {
    const index = indexOf({
      authz: [
        ap('app', 'allow-a', { rules: [principalRule('td/ns/a/sa/*')] }),
        ap('app', 'deny-b', { action: 'DENY', rules: [principalRule('td/ns/b/sa/*')] }),
        ap('meshless-system', 'l7', {
          action: 'DENY',
          rules: [{ to: [{ operation: { paths: ['/x'] } }] }],
          selector: { matchLabels: { app: 'other' } },
        }),
      ],
    });
    const e = explainAuthorization(
      conn('spiffe://td/ns/a/sa/s', '1.1.1.1', '2.2.2.2', 80, { namespace: 'app', labels: {} }),
      index,
    );
    assert.deepEqual(
      e.steps.map((s) => `${s.action} ${s.policy.name} ${s.scope} ${s.matched}`),
      ['DENY deny-b namespace false', 'ALLOW allow-a namespace true'],
    );
    assert.deepEqual(
      [e.allowed, e.reason, e.policy?.name, e.mtls.mode],
      [true, 'allow_policy_matched', 'allow-a', 'PERMISSIVE'],
    );
  });
});
