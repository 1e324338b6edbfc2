// NetworkPolicy for tunnelled traffic: table tests of the parser and
// evaluator, and a fast-check property test of the evaluator against a small
// reference model written straight from the Kubernetes API documentation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import fc from 'fast-check';
import { parseIpAddress } from '../../../src/policy/ip-address.js';
import { networkPolicyFromObject } from '../../../src/policy/network-policy.js';
import { networkPolicyAllows } from '../../../src/policy/network-policy-check.js';
import { buildPolicyIndex, type PolicyPod } from '../../../src/policy/policy-index.js';

type Labels = Record<string, string>;
interface Pod {
  namespace: string;
  name: string;
  labels: Labels;
  ip: string;
}
interface World {
  namespaces: Record<string, Labels>;
  pods: Pod[];
  policies: Record<string, unknown>[];
}

const DEST_PORTS: Record<string, number> = { http: 80, metrics: 9090 };

function indexOf(world: World) {
  const pods = new Map<string, PolicyPod>(
    world.pods.map((p) => [
      `${p.namespace}/${p.name}`,
      { ...p, ips: [p.ip], hostNetwork: false, containerPorts: DEST_PORTS },
    ]),
  );
  return buildPolicyIndex({
    namespaces: new Map(
      Object.entries(world.namespaces).map(([name, labels]) => [name, { labels }]),
    ),
    pods,
    authorizationPolicies: new Map(),
    peerAuthentications: new Map(),
    networkPolicies: new Map(
      world.policies.map((o) => {
        const p = networkPolicyFromObject(o);
        return [`${p.namespace}/${p.name}`, p];
      }),
    ),
  });
}

function check(world: World, dest: Pod, sourceIp: string, port: number) {
  return networkPolicyAllows(
    {
      destination: { namespace: dest.namespace, labels: dest.labels, containerPorts: DEST_PORTS },
      sourceIp: parseIpAddress(sourceIp) ?? assert.fail(sourceIp),
      port,
    },
    indexOf(world),
  );
}

// ---- The reference model: the API reference's words, one function each. ----
type Raw = Record<string, unknown>;
const rec = (v: unknown): Raw => (typeof v === 'object' && v !== null ? (v as Raw) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** "A label selector is a label query over a set of resources. The result of matchLabels and matchExpressions are ANDed. An empty label selector matches all objects." */
function refSelects(selector: unknown, labels: Labels): boolean {
  const s = rec(selector);
  for (const [k, v] of Object.entries(rec(s['matchLabels']))) if (labels[k] !== v) return false;
  for (const e of arr(s['matchExpressions'])) {
    const { key, operator, values } = rec(e) as {
      key: string;
      operator: string;
      values?: string[];
    };
    const has = key in labels;
    const value = labels[key];
    if (operator === 'In' && !(has && (values ?? []).includes(value as string))) return false;
    if (operator === 'NotIn' && has && (values ?? []).includes(value as string)) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}
function refInCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipToInt(ip) / size) === Math.floor(ipToInt(base) / size);
}

function refAllows(world: World, dest: Pod, sourceIp: string, port: number): boolean {
  const source = world.pods.find((p) => p.ip === sourceIp);
  // "policyTypes ... If this field is not specified, it will default based on the existence of ingress or egress rules; policies that contain an egress section are assumed to affect egress, and all policies (whether or not they contain an egress section) are assumed to affect ingress."
  const affectsIngress = (p: Raw): boolean => {
    const types = rec(p['spec'])['policyTypes'];
    return types === undefined ? true : arr(types).includes('Ingress');
  };
  const selecting = world.policies.filter(
    (p) =>
      rec(p['metadata'])['namespace'] === dest.namespace &&
      affectsIngress(p) &&
      refSelects(rec(p['spec'])['podSelector'], dest.labels),
  );
  // "If no NetworkPolicy objects in a namespace select a particular pod, ... all traffic is allowed."
  if (selecting.length === 0) return true;
  return selecting.some((p) => {
    const ns = rec(p['metadata'])['namespace'];
    return arr(rec(p['spec'])['ingress']).some((ruleRaw) => {
      const rule = rec(ruleRaw);
      // "If this field is empty or missing, this rule matches all ports"
      const ports = arr(rule['ports']);
      const portOk =
        ports.length === 0 ||
        ports.some((pr) => {
          const x = rec(pr);
          if ((x['protocol'] ?? 'TCP') !== 'TCP') return false;
          if (x['port'] === undefined) return true;
          if (typeof x['port'] === 'string') return DEST_PORTS[x['port']] === port;
          const start = x['port'] as number;
          const end = (x['endPort'] as number | undefined) ?? start;
          return port >= start && port <= end;
        });
      if (!portOk) return false;
      // "If this field is empty or missing, this rule matches all sources"
      const from = arr(rule['from']);
      if (from.length === 0) return true;
      return from.some((peerRaw) => {
        const peer = rec(peerRaw);
        if (peer['ipBlock'] !== undefined) {
          const b = rec(peer['ipBlock']);
          return (
            refInCidr(sourceIp, b['cidr'] as string) &&
            !arr(b['except']).some((e) => refInCidr(sourceIp, e as string))
          );
        }
        if (source === undefined) return false;
        const nsOk =
          peer['namespaceSelector'] === undefined
            ? source.namespace === ns
            : refSelects(peer['namespaceSelector'], world.namespaces[source.namespace] ?? {});
        const podOk =
          peer['podSelector'] === undefined || refSelects(peer['podSelector'], source.labels);
        return nsOk && podOk;
      });
    });
  });
}

// ---- Generators over a small universe, so that matches happen often. ----
const KEYS = ['app', 'tier'];
const VALUES = ['a', 'b', 'c'];
const labelsArb = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), {
  maxKeys: 2,
});
const selectorArb = fc.record(
  {
    matchLabels: labelsArb,
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: fc.constantFrom(...KEYS),
          operator: fc.constantFrom('In', 'NotIn'),
          values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }),
        }),
        fc.record({
          key: fc.constantFrom(...KEYS),
          operator: fc.constantFrom('Exists', 'DoesNotExist'),
        }),
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);
const NAMESPACES = ['ns-a', 'ns-b'];
const IPS = ['10.0.0.1', '10.0.0.2', '10.0.1.1', '10.0.1.2', '192.168.5.5'];
const cidrArb = fc.constantFrom(
  '10.0.0.0/16',
  '10.0.0.0/24',
  '10.0.1.0/24',
  '10.0.0.2/32',
  '0.0.0.0/0',
);
const peerArb = fc.oneof(
  fc.record({ podSelector: selectorArb }),
  fc.record({ namespaceSelector: selectorArb }),
  fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }),
  fc.record({
    ipBlock: fc.record(
      {
        cidr: cidrArb,
        except: fc.array(fc.constantFrom('10.0.0.1/32', '10.0.1.0/25'), { maxLength: 1 }),
      },
      { requiredKeys: ['cidr'] },
    ),
  }),
);
const portArb = fc.oneof(
  fc.record(
    { protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom(80, 81, 9090) },
    { requiredKeys: ['port'] },
  ),
  fc.record({ port: fc.constantFrom('http', 'metrics', 'nope') }),
  fc.record({ port: fc.constantFrom(79, 80), endPort: fc.constantFrom(81, 9000) }),
  fc.constant({ protocol: 'TCP' }),
);
const ruleArb = fc.record(
  { from: fc.array(peerArb, { maxLength: 2 }), ports: fc.array(portArb, { maxLength: 2 }) },
  { requiredKeys: [] },
);
const policyArb = (i: number) =>
  fc
    .record(
      {
        namespace: fc.constantFrom(...NAMESPACES),
        podSelector: selectorArb,
        policyTypes: fc.constantFrom(undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']),
        ingress: fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: undefined }),
      },
      { requiredKeys: ['namespace', 'podSelector'] },
    )
    .map(({ namespace, podSelector, policyTypes, ingress }) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace, name: `np-${i}` },
      spec: {
        podSelector,
        ...(policyTypes ? { policyTypes } : {}),
        ...(ingress ? { ingress } : {}),
      },
    }));
const worldArb = fc.record({
  namespaces: fc.record({ 'ns-a': labelsArb, 'ns-b': labelsArb }),
  pods: fc.tuple(
    ...IPS.slice(0, 4).map((ip, i) =>
      fc.record({
        namespace: fc.constantFrom(...NAMESPACES),
        name: fc.constant(`pod-${i}`),
        labels: labelsArb,
        ip: fc.constant(ip),
      }),
    ),
  ),
  policies: fc
    .array(fc.nat(), { maxLength: 4 })
    .chain((ns) => fc.tuple(...ns.map((_, i) => policyArb(i)))),
});

describe('networkPolicyAllows against the reference model', () => {
  it('agrees on every generated cluster, destination, source and port', () => {
    fc.assert(
      fc.property(
        worldArb,
        fc.nat(3),
        fc.constantFrom(...IPS),
        fc.constantFrom(80, 81, 443, 9090),
        (world, destIndex, sourceIp, port) => {
          const w = world as unknown as World;
          const dest = w.pods[destIndex] as Pod;
          const got = check(w, dest, sourceIp, port);
          assert.equal(got.allowed, refAllows(w, dest, sourceIp, port));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('networkPolicyAllows: cases', () => {
  const web: Pod = { namespace: 'app', name: 'web', labels: { app: 'web' }, ip: '10.0.0.10' };
  const client: Pod = {
    namespace: 'client',
    name: 'c',
    labels: { role: 'client' },
    ip: '10.0.0.20',
  };
  const np = (name: string, spec: unknown) => ({ metadata: { namespace: 'app', name }, spec });
  const world = (...policies: Record<string, unknown>[]): World => ({
    namespaces: { app: {}, client: { team: 'blue' } },
    pods: [web, client],
    policies,
  });

  it('no policy: not isolated', () => {
    const d = check(world(), web, client.ip, 8080);
    assert.deepEqual([d.allowed, d.reason], [true, 'not_isolated']);
  });
  it('deny-all ingress names the selecting policy', () => {
    const d = check(
      world(np('deny', { podSelector: {}, policyTypes: ['Ingress'] })),
      web,
      client.ip,
      8080,
    );
    assert.deepEqual(
      [d.allowed, d.reason, d.selecting.map((s) => s.name)],
      [false, 'not_allowed', ['deny']],
    );
  });
  it('an Egress-only policy does not isolate for ingress', () => {
    assert.equal(
      check(world(np('e', { podSelector: {}, policyTypes: ['Egress'] })), web, client.ip, 1)
        .allowed,
      true,
    );
  });
  it('the app port of a tunnelled connection is restricted, 15008 aside', () => {
    const w = world(
      np('allow-hbone-and-http', {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [
          { ports: [{ port: 15008 }] },
          {
            from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }],
            ports: [{ port: 'http' }],
          },
        ],
      }),
    );
    const http = 80;
    assert.equal(check(w, web, client.ip, http).allowed, true);
    assert.equal(check(w, web, client.ip, http).policy?.name, 'allow-hbone-and-http');
    assert.equal(check(w, web, client.ip, 9090).allowed, false);
    assert.equal(
      check(w, web, '10.9.9.9', http).allowed,
      false,
      'an unknown source matches no selector',
    );
  });
  it('ipBlock with except; IPv4-mapped source', () => {
    const w = world(
      np('ip', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.20/32'] } }] }],
      }),
    );
    assert.equal(check(w, web, '10.0.0.21', 1).allowed, true);
    assert.equal(check(w, web, '::ffff:10.0.0.21', 1).allowed, true);
    assert.equal(check(w, web, client.ip, 1).allowed, false);
  });
  it('a malformed policy isolates and allows nothing', () => {
    const p = networkPolicyFromObject(
      np('bad', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }] }] }),
    );
    assert.equal(p.invalid, 'spec.ingress[0].ports[0].endPort is below port');
    assert.equal(
      check(
        world(np('bad', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }] }] })),
        web,
        client.ip,
        80,
      ).allowed,
      false,
    );
  });
});

describe('docs/examples/networkpolicy-allow-hbone.yaml', () => {
  it('allows 15008 from anywhere and no app port', () => {
    const path = fileURLToPath(
      new URL('../../../docs/examples/networkpolicy-allow-hbone.yaml', import.meta.url),
    );
    const obj = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const p = networkPolicyFromObject(obj);
    assert.equal(p.invalid, undefined);
    const dest: Pod = {
      namespace: p.namespace,
      name: 'web',
      labels: { app: 'web' },
      ip: '10.0.0.10',
    };
    const w: World = { namespaces: { [p.namespace]: {} }, pods: [dest], policies: [obj] };
    assert.equal(check(w, dest, '10.9.9.9', 15008).allowed, true);
    assert.equal(check(w, dest, '10.9.9.9', 8080).allowed, false);
  });
});
