// Per-connection cost of the policy evaluators (not a test): authorize()
// and networkPolicyAllows() on an index of realistic size, and the cost of
// building the index once per snapshot.
//   node --import tsx bench/policy.bench.ts [namespaces]
import { performance } from 'node:perf_hooks';
import { authorizationPolicyFromObject } from '../src/policy/authorization-policy.js';
import { authorize, type AuthorizationRequest } from '../src/policy/authorize.js';
import { parseIpAddress, type IpAddress } from '../src/policy/ip-address.js';
import { networkPolicyFromObject } from '../src/policy/network-policy.js';
import { networkPolicyAllows } from '../src/policy/network-policy-check.js';
import { peerAuthenticationFromObject } from '../src/policy/peer-authentication.js';
import { buildPolicyIndex, type PolicyPod } from '../src/policy/policy-index.js';

const namespaces = Number(process.argv[2] ?? 200);
const ip = (t: string): IpAddress =>
  parseIpAddress(t) ??
  (() => {
    throw new Error(t);
  })();

// Per namespace: 20 pods, 3 AuthorizationPolicies (namespace ALLOW, selector ALLOW, selector DENY),
// one PeerAuthentication, 3 NetworkPolicies; plus 2 mesh-wide policies.
const pods = new Map<string, PolicyPod>();
const authz = new Map<string, ReturnType<typeof authorizationPolicyFromObject>>();
const peer = new Map<string, ReturnType<typeof peerAuthenticationFromObject>>();
const netpol = new Map<string, ReturnType<typeof networkPolicyFromObject>>();
const nsLabels = new Map<string, { labels: Record<string, string> }>();
for (let n = 0; n < namespaces; n++) {
  const ns = `ns-${n}`;
  nsLabels.set(ns, { labels: { team: `t${n % 10}` } });
  for (let p = 0; p < 20; p++)
    pods.set(`${ns}/pod-${p}`, {
      namespace: ns,
      name: `pod-${p}`,
      labels: { app: `app-${p % 5}`, tier: p % 2 ? 'web' : 'db' },
      ips: [`10.${Math.floor(n / 256)}.${n % 256}.${p + 1}`],
      hostNetwork: false,
      containerPorts: { http: 8080 },
    });
  const add = (o: Record<string, unknown>): void => {
    const a = authorizationPolicyFromObject(o);
    authz.set(`${a.namespace}/${a.name}`, a);
  };
  add({
    metadata: { namespace: ns, name: 'ns-allow' },
    spec: { rules: [{ from: [{ source: { namespaces: [ns, 'ingress'] } }] }] },
  });
  add({
    metadata: { namespace: ns, name: 'db' },
    spec: {
      selector: { matchLabels: { tier: 'db' } },
      rules: [
        {
          from: [{ source: { principals: [`cluster.local/ns/${ns}/sa/app-*`] } }],
          to: [{ operation: { ports: ['5432'] } }],
        },
      ],
    },
  });
  add({
    metadata: { namespace: ns, name: 'deny-legacy' },
    spec: {
      action: 'DENY',
      selector: { matchLabels: { app: 'app-1' } },
      rules: [{ from: [{ source: { ipBlocks: ['192.168.0.0/16'] } }] }],
    },
  });
  const pa = peerAuthenticationFromObject({
    metadata: { namespace: ns, name: 'strict' },
    spec: { mtls: { mode: 'STRICT' } },
  });
  peer.set(`${ns}/strict`, pa);
  for (const [name, spec] of [
    ['hbone', { podSelector: {}, ingress: [{ ports: [{ port: 15008 }] }] }],
    [
      'web',
      {
        podSelector: { matchLabels: { tier: 'web' } },
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { team: 't1' } } }],
            ports: [{ port: 'http' }],
          },
        ],
      },
    ],
    [
      'db',
      {
        podSelector: { matchLabels: { tier: 'db' } },
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { tier: 'web' } } },
              { ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.9.0/24'] } },
            ],
            ports: [{ port: 5432 }],
          },
        ],
      },
    ],
  ] as const) {
    const np = networkPolicyFromObject({ metadata: { namespace: ns, name }, spec });
    netpol.set(`${ns}/${name}`, np);
  }
}
for (const name of ['mesh-deny', 'mesh-allow-probes']) {
  const a = authorizationPolicyFromObject({
    metadata: { namespace: 'meshless-system', name },
    spec: {
      action: name === 'mesh-deny' ? 'DENY' : 'ALLOW',
      rules: [
        { from: [{ source: { notNamespaces: ['*'] } }], to: [{ operation: { ports: ['1'] } }] },
      ],
    },
  });
  authz.set(`meshless-system/${name}`, a);
}
const source = {
  namespaces: nsLabels,
  pods,
  authorizationPolicies: authz,
  peerAuthentications: peer,
  networkPolicies: netpol,
};

let t = performance.now();
const builds = 20;
let index = buildPolicyIndex(source);
for (let i = 1; i < builds; i++) index = buildPolicyIndex(source);
const buildMs = (performance.now() - t) / builds;

const requests: AuthorizationRequest[] = [];
for (let i = 0; i < 1000; i++) {
  const n = i % namespaces;
  const p = i % 20;
  requests.push({
    destination: {
      namespace: `ns-${n}`,
      labels: { app: `app-${p % 5}`, tier: p % 2 ? 'web' : 'db' },
    },
    principal:
      i % 7 === 0
        ? undefined
        : `spiffe://cluster.local/ns/ns-${i % 2 ? n : (n + 1) % namespaces}/sa/app-${p % 5}`,
    sourceIp: ip(`10.0.${(n + 1) % 256}.${(p % 20) + 1}`),
    destinationIp: ip(`10.0.${n % 256}.${p + 1}`),
    destinationPort: i % 3 === 0 ? 5432 : 8080,
  });
}
const npRequests = requests.map((r) => ({
  destination: { ...r.destination, containerPorts: { http: 8080 } },
  sourceIp: r.sourceIp,
  port: r.destinationPort,
}));
const iterations = 500_000;
let allowed = 0;
const heap0 = process.memoryUsage().heapUsed;
t = performance.now();
for (let i = 0; i < iterations; i++)
  if (authorize(requests[i % 1000] as AuthorizationRequest, index).allowed) allowed++;
const authzNs = ((performance.now() - t) * 1e6) / iterations;
t = performance.now();
let npAllowed = 0;
for (let i = 0; i < iterations; i++) {
  const d = networkPolicyAllows(npRequests[i % 1000] as (typeof npRequests)[number], index);
  if (d.allowed) npAllowed++;
}
const npNs = ((performance.now() - t) * 1e6) / iterations;
const heapGrowth = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
console.log(
  JSON.stringify(
    {
      namespaces,
      pods: pods.size,
      authorizationPolicies: authz.size,
      networkPolicies: netpol.size,
      indexBuildMs: Number(buildMs.toFixed(2)),
      authorizeNsPerCall: Math.round(authzNs),
      networkPolicyNsPerCall: Math.round(npNs),
      allowedShare: Number((allowed / iterations).toFixed(3)),
      networkPolicyAllowedShare: Number((npAllowed / iterations).toFixed(3)),
      heapGrowthMiB: Number(heapGrowth.toFixed(1)),
    },
    null,
    2,
  ),
);
