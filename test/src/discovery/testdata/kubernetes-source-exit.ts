/**
 * Run as its own process by kubernetes-source.int.test.ts: syncs a
 * KubernetesDiscoverySource against the API server test double, closes it,
 * then closes one that is still retrying against a down API. It never calls
 * process.exit: if the source left a socket or timer behind, this process
 * would not end and the test would time out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesDiscoverySource } from '../../../../src/discovery/kubernetes-source.js';
import {
  FakeKubeApiServer,
  namespaceObject,
  podObject,
  writeKubeconfig,
} from '../../../support/fake-kube-apiserver.js';

const dir = mkdtempSync(join(tmpdir(), 'meshless-kube-exit-'));
const api = await FakeKubeApiServer.start({ token: 't' });
const kubeconfig = writeKubeconfig(dir, api.url, 't');
api.put('namespaces', namespaceObject('a'));
api.put('namespaces', namespaceObject('b'));
api.put('pods', podObject({ namespace: 'a', name: 'p', ips: ['10.0.0.1'] }));

const options = { kubeconfig, backoff: { initialMs: 20, maxMs: 100 } };
const synced = new KubernetesDiscoverySource(options);
await synced.start();
api.put('pods', podObject({ namespace: 'a', name: 'q' })); // a snapshot build pending at close
const snap = synced.snapshot();
synced.close();
await api.waitForOpenWatches(0);
process.stdout.write(`synced ${snap.namespaces.size} namespaces ${snap.pods.size} pods; closed\n`);

api.setDown(true);
const retrying = new KubernetesDiscoverySource(options);
const starting = retrying.start();
await api.waitForRequests((r) => r.filter((q) => q.status === 500).length >= 3);
retrying.close();
await starting.catch((err: unknown) => {
  if ((err as { code?: unknown }).code === 'MESHLESS_E_DISCOVERY_CLOSED')
    process.stdout.write('closed while starting\n');
});

await api.close();
rmSync(dir, { recursive: true, force: true });
