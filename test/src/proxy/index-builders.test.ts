// The builders that reuse what did not change (WorkloadIndexBuilder,
// ServiceIndexBuilder as DestinationView drives them, PolicyIndexBuilder) must give the same
// answers as a build from scratch, over a random (seeded) sequence of
// changes to a generated cluster, applied as the file source applies them
// (keepUnchanged: unchanged models and maps keep their identity).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keepUnchanged,
  snapshotFromObjects,
  type ClusterSnapshot,
} from '../../../src/discovery/cluster-state.js';
import { PolicyIndexBuilder, buildPolicyIndex } from '../../../src/policy/policy-index.js';
import { decideOutbound } from '../../../src/proxy/outbound-decision.js';
import { clusterAddressSpace } from '../../../src/proxy/pod-address-space.js';
import { ServiceIndexBuilder, buildServiceIndex } from '../../../src/proxy/service-index.js';
import { WorkloadIndexBuilder, buildWorkloadIndex } from '../../../src/proxy/workload-index.js';
import {
  SCALE_ENROLMENT_LABEL,
  generateScaleCluster,
  scaleEndpointSlice,
  scaleNamespaceName,
  scalePod,
  scaleService,
  seededRandom,
} from '../../../src/sim/scale-cluster.js';

type Obj = Record<string, unknown>;
const policy = { label: SCALE_ENROLMENT_LABEL, excludeNamespaces: ['team-3'] };
const TD = 'cluster.local';

const meta = (o: Obj): { name: string; namespace?: string; labels?: Record<string, string> } =>
  o['metadata'] as { name: string; namespace?: string; labels?: Record<string, string> };

/** Every address and port a decision could be asked about in `s` (and a few unknown ones). */
function probes(s: ClusterSnapshot): { address: string; port: number }[] {
  const out: { address: string; port: number }[] = [];
  for (const pod of s.pods.values())
    for (const ip of pod.ips) out.push({ address: ip, port: 8080 });
  for (const svc of s.services.values())
    for (const ip of [...svc.clusterIps, ...svc.externalIps])
      for (const p of [...svc.ports.map((sp) => sp.port), 1]) out.push({ address: ip, port: p });
  for (const n of s.nodes.values())
    for (const ip of n.addresses)
      for (const svc of s.services.values())
        for (const sp of svc.ports)
          if (sp.nodePort !== undefined) out.push({ address: ip, port: sp.nodePort });
  out.push({ address: '10.64.0.250', port: 80 }, { address: '10.96.200.1', port: 80 });
  return out;
}

/** The answers of every index for every probe: what the outbound decision reads. */
function answers(
  s: ClusterSnapshot,
  w: ReturnType<typeof buildWorkloadIndex>,
  svc: ReturnType<typeof buildServiceIndex>,
): unknown[] {
  const space = clusterAddressSpace(
    { podCidrs: [], serviceCidrs: [] },
    { nodes: s.nodes.values(), serviceCidrs: s.serviceCidrs.values() },
  ).space;
  return probes(s).map((dst) => ({
    dst,
    pod: w.byIp(dst.address),
    frontend: svc.frontend(dst.address, dst.port),
    serviceAt: svc.serviceAt(dst.address),
    decision: decideOutbound(dst, w, space, svc, () => 0),
    sizes: [w.size, svc.size],
  }));
}

/** One random change to the objects (in place); returns what it did, for failure messages. */
function change(objects: Obj[], rand: () => number, step: number): string {
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(rand() * xs.length)];
  const ofKind = (kind: string): number[] =>
    objects.flatMap((o, i) => (o['kind'] === kind ? [i] : []));
  const r = rand();
  const ns = scaleNamespaceName(Math.floor(rand() * 6));
  if (r < 0.2) {
    const node = Math.floor(rand() * 8);
    // Slots 0-9 collide with existing pods at times: two pods on one address.
    const ip = `10.64.${node}.${2 + Math.floor(rand() * 12)}`;
    objects.push(scalePod({ namespace: ns, name: `p${step}`, app: 'x', node, ip, rand }));
    return `pod added on ${ip}`;
  }
  if (r < 0.3) {
    const i = pick(ofKind('Pod'));
    if (i !== undefined) objects.splice(i, 1);
    return 'pod removed';
  }
  if (r < 0.4) {
    const i = pick(ofKind('Pod'));
    const o = i === undefined ? undefined : objects[i];
    if (i === undefined || o === undefined) return 'nothing';
    const copy = structuredClone(o);
    const status = copy['status'] as { podIP: string; podIPs: { ip: string }[] };
    const ip = `10.64.${Math.floor(rand() * 8)}.${2 + Math.floor(rand() * 12)}`;
    status.podIP = ip;
    status.podIPs = [{ ip }];
    if (rand() < 0.3) (copy['spec'] as Obj)['hostNetwork'] = true;
    const containers = (copy['spec'] as { containers: { ports: { containerPort: number }[] }[] })
      .containers;
    const http = containers[0]?.ports[0];
    if (http !== undefined && rand() < 0.6) http.containerPort = 7000 + step;
    objects[i] = copy;
    return `pod changed to ${ip}`;
  }
  if (r < 0.5) {
    const i = pick(ofKind('Namespace'));
    const o = i === undefined ? undefined : objects[i];
    if (i === undefined || o === undefined) return 'nothing';
    const copy = structuredClone(o);
    const labels = meta(copy).labels ?? {};
    const { key, value } = SCALE_ENROLMENT_LABEL;
    (copy['metadata'] as Obj)['labels'] =
      labels[key] === undefined
        ? { ...labels, [key]: value }
        : Object.fromEntries(Object.entries(labels).filter(([k]) => k !== key));
    objects[i] = copy;
    return `namespace ${meta(copy).name} enrolment flipped`;
  }
  if (r < 0.65) {
    const slices = ofKind('EndpointSlice');
    const i = pick(slices);
    const o = i === undefined ? undefined : objects[i];
    if (i === undefined || o === undefined) return 'nothing';
    const m0 = meta(o);
    // Backends of the slice's namespace, so its targetRefs name real pods.
    const pods = objects.filter((p) => p['kind'] === 'Pod' && meta(p).namespace === m0.namespace);
    const backends = [pick(pods), pick(pods)].flatMap((p) =>
      p === undefined
        ? []
        : [
            {
              name: meta(p).name,
              ip: (p['status'] as { podIP: string }).podIP,
              node: 0,
            },
          ],
    );
    const m = meta(o);
    const slice = scaleEndpointSlice(
      m.namespace ?? 'default',
      m.labels?.['kubernetes.io/service-name'] ?? '',
      backends,
    );
    // A slice without port numbers: the Service's named targetPort resolves through the pods.
    if (rand() < 0.4) slice['ports'] = [{ name: 'http', protocol: 'TCP' }];
    objects[i] = slice;
    return 'slice changed';
  }
  if (r < 0.75) {
    const name = `s${step}`;
    const ip = `10.96.${1 + Math.floor(rand() * 2)}.${Math.floor(rand() * 20)}`;
    const svc = scaleService(ns, name, ip);
    if (rand() < 0.5) {
      (svc['spec'] as Obj)['type'] = 'NodePort';
      ((svc['spec'] as { ports: Obj[] }).ports[0] as Obj)['nodePort'] = 30000 + step;
    }
    objects.push(svc);
    if (rand() < 0.8) objects.push(scaleEndpointSlice(ns, name, []));
    return `service added on ${ip}`;
  }
  if (r < 0.85) {
    const i = pick(ofKind('Service'));
    if (i !== undefined) objects.splice(i, 1);
    return 'service removed';
  }
  if (r < 0.92) {
    const i = pick(ofKind('Node'));
    const o = i === undefined ? undefined : objects[i];
    if (i === undefined || o === undefined) return 'nothing';
    const copy = structuredClone(o);
    (copy['status'] as { addresses: Obj[] }).addresses.push({
      type: 'ExternalIP',
      address: `203.0.113.${step % 250}`,
    });
    objects[i] = copy;
    return 'node address added';
  }
  if (r < 0.96) {
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `np${step}`, namespace: ns },
      spec: { podSelector: { matchLabels: { app: 'x' } }, policyTypes: ['Ingress'] },
    });
    return 'NetworkPolicy added';
  }
  // Nothing changed at all (a resync): the builders must return what they had.
  return 'no change';
}

describe('index builders with history', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`equal a build from scratch over 60 random changes (seed ${seed})`, () => {
      const rand = seededRandom(seed);
      const cluster = generateScaleCluster(
        { nodes: 8, namespaces: 6, pods: 60, services: 12, policies: 1 },
        seed,
      );
      const objects = [...cluster.objects];
      const workloads = new WorkloadIndexBuilder(policy, TD);
      const services = new ServiceIndexBuilder();
      const policies = new PolicyIndexBuilder();
      let snapshot = snapshotFromObjects(objects);
      for (let step = 0; step < 60; step++) {
        const what = change(objects, rand, step);
        snapshot = keepUnchanged(snapshot, snapshotFromObjects(objects));
        const incremental = answers(snapshot, workloads.build(snapshot), services.build(snapshot));
        const scratch = answers(
          snapshot,
          buildWorkloadIndex(snapshot, policy, TD),
          buildServiceIndex(snapshot),
        );
        assert.deepEqual(incremental, scratch, `step ${step}: ${what}`);
        assert.deepEqual(
          policies.build(snapshot),
          buildPolicyIndex(snapshot),
          `step ${step}: ${what}`,
        );
      }
    });
  }

  it('returns the same index when nothing it reads changed', () => {
    const objects = [
      ...generateScaleCluster({ nodes: 4, namespaces: 2, pods: 8, services: 2, policies: 1 })
        .objects,
    ];
    const s1 = snapshotFromObjects(objects);
    const workloads = new WorkloadIndexBuilder(policy, TD);
    const services = new ServiceIndexBuilder();
    const [w1, v1] = [workloads.build(s1), services.build(s1)];
    // A policy edit: pods, namespaces, Services, slices and nodes unchanged.
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'new', namespace: 'team-0' },
      spec: { podSelector: {} },
    });
    const s2 = keepUnchanged(s1, snapshotFromObjects(objects));
    assert.equal(s2.pods, s1.pods);
    assert.notEqual(s2.networkPolicies, s1.networkPolicies);
    assert.equal(workloads.build(s2), w1);
    assert.equal(services.build(s2), v1);
  });
});
