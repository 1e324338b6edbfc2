// A PodProxy running in the test's own netns (registration.netns empty):
// listeners on loopback port 0, peers' HBONE on a given port, and the
// original destination a REDIRECT would have recorded supplied by the test.
import type { Socket } from 'node:net';
import type { ConnectionRecord } from '../../../src/hbone/connection-record.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import { BufferBudget } from '../../../src/hbone/buffer-budget.js';
import { ConnectionManager, type ConnectionLimits } from '../../../src/proxy/connection-manager.js';
import type { Endpoint } from '../../../src/proxy/outbound-decision.js';
import type { WorkloadEntry, WorkloadIndex } from '../../../src/proxy/workload-index.js';
import { normalizeIp } from '../../../src/proxy/workload-index.js';
import type { X509Svid } from '../../../src/identity/x509-svid.js';
import type { SecureContext } from 'node:tls';
import { silentLogger } from '../../../src/logger.js';
import { PodProxy, type PodProxyDeps } from '../../../daemon/proxy/pod-proxy.js';
import type { Registration } from '../../../daemon/registration/registry.js';
import { TD, type TestPki } from '../../src/hbone/hbone-fixtures.js';

export { TD };

/** A workload the index knows: `ip` -> namespace/sa, enrolled or not. */
export interface KnownWorkload {
  readonly ip: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly enrolled: boolean;
}

export function indexOf(workloads: readonly KnownWorkload[]): WorkloadIndex {
  const map = new Map<string, WorkloadEntry>();
  for (const w of workloads)
    map.set(normalizeIp(w.ip), {
      namespace: w.namespace,
      name: `${w.namespace}-pod`,
      serviceAccount: w.serviceAccount,
      nodeName: 'node',
      enrolled: w.enrolled,
      identity: `spiffe://${TD}/ns/${w.namespace}/sa/${w.serviceAccount}`,
    });
  return { byIp: (ip) => map.get(normalizeIp(ip)), size: map.size };
}

export function registration(ip: string, namespace = 'a', serviceAccount = 'x'): Registration {
  return {
    containerId: `c-${ip}`,
    ifname: 'eth0',
    netns: '',
    network: 'test',
    namespace,
    podName: `${namespace}-pod`,
    podUid: undefined,
    addresses: [{ ip, family: 4 }],
    enrolled: true,
    reason: 'test',
    serviceAccount,
    registeredAt: new Date(0).toISOString(),
  };
}

export interface RunningPodProxy {
  readonly proxy: PodProxy;
  readonly pool: HbonePool;
  readonly records: ConnectionRecord[];
  readonly manager: ConnectionManager;
  /** Ports: outbound (15001), inbound plaintext (15006), HBONE (15008). */
  readonly outboundPort: number;
  readonly plaintextPort: number;
  readonly hbonePort: number;
  /** The next accepted connection's original destination. */
  destination: Endpoint;
  close(): Promise<void>;
}

export interface PodProxyOptions {
  readonly pki: TestPki;
  /** SVIDs by SPIFFE ID this node holds. */
  readonly svids: ReadonlyMap<string, X509Svid>;
  readonly ip: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly workloads: readonly KnownWorkload[];
  /** The peers' HBONE port (15008 in production). */
  readonly peerHbonePort: number;
  readonly poolConnectTimeoutMs?: number;
  readonly limits?: ConnectionLimits;
  /** A relay buffer budget of this many bytes; default none. */
  readonly relayBufferBytes?: number;
  readonly deps?: Partial<PodProxyDeps>;
}

export async function startPodProxy(o: PodProxyOptions): Promise<RunningPodProxy> {
  const contexts = new Map<string, SecureContext>();
  for (const [id, svid] of o.svids) contexts.set(id, o.pki.context(svid));
  const pool = new HbonePool({ connectTimeoutMs: o.poolConnectTimeoutMs ?? 2000 });
  const records: ConnectionRecord[] = [];
  const state: { destination: Endpoint } = { destination: { address: '127.0.0.1', port: 9 } };
  const index = indexOf(o.workloads);
  const manager = new ConnectionManager({
    log: silentLogger,
    onRecord: (r) => records.push(r),
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    ...(o.relayBufferBytes === undefined ? {} : { budget: new BufferBudget(o.relayBufferBytes) }),
  });
  const proxy = new PodProxy(registration(o.ip, o.namespace, o.serviceAccount), {
    trustDomain: TD,
    secureContext: (id) => {
      const c = contexts.get(id);
      if (!c) throw new Error(`no SVID for ${id}`);
      return c;
    },
    trustBundle: () => o.pki.bundle,
    index: () => index,
    pool,
    log: silentLogger,
    manager,
    opened: () => undefined,
    handshakeFailed: () => undefined,
    connectTimeoutMs: 2000,
    ports: { outbound: 0, inboundPlaintext: 0, inboundHbone: 0 },
    bindHost: o.ip,
    peerHbonePort: o.peerHbonePort,
    originalDestination: (_s: Socket) => state.destination,
    ...o.deps,
  });
  await proxy.start();
  const [outboundPort, plaintextPort, hbonePort] = proxy.listenerPorts();
  if (outboundPort === undefined || plaintextPort === undefined || hbonePort === undefined)
    throw new Error('listeners missing');
  return Object.assign(state, {
    proxy,
    pool,
    records,
    manager,
    outboundPort,
    plaintextPort,
    hbonePort,
    close: async () => {
      await proxy.stop(0);
      await pool.close();
    },
  });
}
