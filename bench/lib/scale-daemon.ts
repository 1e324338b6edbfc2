// The daemon's discovery side in a process of its own, for bench/scale.bench.ts:
// a discovery source (file or Kubernetes API), the ProxyService's
// DestinationView and the PolicyView, as meshlessd wires them. Driven over IPC:
//   { op: 'mem' }                      -> memory after a full GC
//   { op: 'cpu' }                      -> process.cpuUsage()
//   { op: 'expect', id, dst, target }  -> 'armed', then 'seen' with the time
//                                         decideOutbound(dst) first targets `target`
//   node --expose-gc --import tsx bench/lib/scale-daemon.ts file <path>
//   node --expose-gc --import tsx bench/lib/scale-daemon.ts kubernetes <kubeconfig>
import { performance } from 'node:perf_hooks';
import { PolicyView } from '../../daemon/policy/policy-view.js';
import type { DiscoverySource } from '../../src/discovery/discovery-source.js';
import { FileDiscoverySource } from '../../src/discovery/file-source.js';
import { KubernetesDiscoverySource } from '../../src/discovery/kubernetes-source.js';
import { silentLogger } from '../../src/logger.js';
import { DestinationView } from '../../src/proxy/destination-view.js';
import { decideOutbound, type Endpoint } from '../../src/proxy/outbound-decision.js';
import { SCALE_ENROLMENT_LABEL } from '../../src/sim/scale-cluster.js';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export type ScaleDaemonRequest =
  | { readonly op: 'mem' }
  | { readonly op: 'cpu' }
  | { readonly op: 'expect'; readonly id: number; readonly dst: Endpoint; readonly target: string };

export type ScaleDaemonReply =
  | { readonly op: 'ready'; readonly syncMs: number }
  | {
      readonly op: 'mem';
      readonly rss: number;
      readonly heapUsed: number;
      readonly external: number;
    }
  | { readonly op: 'cpu'; readonly user: number; readonly system: number }
  | { readonly op: 'armed'; readonly id: number }
  | { readonly op: 'seen'; readonly id: number; readonly at: number }
  | { readonly op: 'timeout'; readonly id: number; readonly decision: string };

function send(m: ScaleDaemonReply): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  const [kind, path] = process.argv.slice(2);
  if (path === undefined) throw new Error('usage: scale-daemon.ts file|kubernetes <path>');
  const started = performance.now();
  const discovery: DiscoverySource =
    kind === 'file'
      ? new FileDiscoverySource(path)
      : new KubernetesDiscoverySource({ kubeconfig: path, resyncMs: 0 });
  await discovery.start();
  const view = new DestinationView(discovery, {
    policy: { label: SCALE_ENROLMENT_LABEL, excludeNamespaces: ['kube-system'] },
    trustDomain: 'cluster.local',
  });
  const policies = new PolicyView(discovery, {
    rootNamespace: 'meshless-system',
    log: silentLogger,
  });
  const targetOf = (dst: Endpoint): string => {
    const d = decideOutbound(dst, view.workloads, view.addressSpace.space, view.services, () => 0);
    return d.kind === 'hbone' || d.kind === 'passthrough' ? d.target.address : d.kind;
  };
  process.on('message', (m: ScaleDaemonRequest) => {
    if (m.op === 'mem') {
      globalThis.gc?.();
      const u = process.memoryUsage();
      send({ op: 'mem', rss: u.rss, heapUsed: u.heapUsed, external: u.external });
    } else if (m.op === 'cpu') {
      const c = process.cpuUsage();
      send({ op: 'cpu', user: c.user, system: c.system });
    } else {
      void (async () => {
        send({ op: 'armed', id: m.id });
        const deadline = Date.now() + 300_000;
        while (targetOf(m.dst) !== m.target) {
          if (Date.now() > deadline) {
            send({ op: 'timeout', id: m.id, decision: targetOf(m.dst) });
            return;
          }
          await view.changed(1000);
        }
        send({ op: 'seen', id: m.id, at: wallMs() });
      })();
    }
  });
  // Keep the policy index alive (the daemon holds it for every inbound check).
  process.on('disconnect', () => {
    void policies.index;
    discovery.close();
    process.exit(0);
  });
  send({ op: 'ready', syncMs: performance.now() - started });
}

if (process.send !== undefined) void main();
