// Identity layer benchmark (not a test): SVID issuance rate, a new pod's
// first-SVID latency, and the per-handshake cost of peer validation.
//   node --import tsx bench/identity.bench.ts [count]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IdentityService } from '../daemon/identity/identity-service.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { buildSecureContext } from '../src/identity/secure-context.js';
import { workloadSpiffeId } from '../src/identity/spiffe-id.js';
import { validatePeer } from '../src/identity/svid-validation.js';
import { issueX509Svid } from '../src/identity/x509-svid.js';

const count = Number(process.argv[2] ?? 500);

function quantiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): string =>
    (s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN).toFixed(2);
  return `p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms, max ${(s.at(-1) ?? NaN).toFixed(2)} ms`;
}

const dir = mkdtempSync(join(tmpdir(), 'meshless-bench-'));
try {
  const config = loadDaemonConfig({
    env: {
      MESHLESS_STATE_DIR: dir,
      MESHLESS_DISCOVERY_FILE: join(dir, 'cluster.yaml'),
      MESHLESS_NODE_NAME: 'bench-node',
      MESHLESS_CA_GENERATE: 'true',
    },
  });
  console.log(
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${count} identities per run`,
  );

  let t = performance.now();
  const cold = await IdentityService.create(config);
  console.log(`start-up, generating the root + node CA:  ${(performance.now() - t).toFixed(1)} ms`);
  cold.close();
  t = performance.now();
  const svc = await IdentityService.create(config);
  console.log(`start-up, loading the root + node CA:     ${(performance.now() - t).toFixed(1)} ms`);

  // Warm up the JIT.
  for (let i = 0; i < 50; i++) await svc.acquire(`warm-${i}`, 'warm', `sa-${i}`);
  for (let i = 0; i < 50; i++) svc.release(`warm-${i}`);

  // A new pod's first SVID: acquire() for an identity the node does not hold
  // yet (key + certificate + TLS context), one at a time.
  const first: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await svc.acquire(`pod-${i}`, 'first', `sa-${i}`);
    first.push(performance.now() - s);
  }
  console.log(`first SVID for a new pod (acquire):       ${quantiles(first)}`);

  // A pod whose identity the node already holds.
  const again: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await svc.acquire(`pod-b-${i}`, 'first', `sa-${i}`);
    again.push(performance.now() - s);
  }
  console.log(`second pod, same identity (acquire):      ${quantiles(again)}`);

  // Throughput, sequential and with everything in flight at once (a node
  // start re-registering every pod).
  t = performance.now();
  for (let i = 0; i < count; i++) await svc.acquire(`seq-${i}`, 'seq', `sa-${i}`);
  const seqRate = count / ((performance.now() - t) / 1000);
  t = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) => svc.acquire(`par-${i}`, 'par', `sa-${i}`)),
  );
  const parRate = count / ((performance.now() - t) / 1000);
  console.log(
    `SVIDs issued per second (acquire):        ${seqRate.toFixed(0)} sequential, ${parRate.toFixed(0)} concurrent`,
  );

  // The parts.
  const id = workloadSpiffeId(config.trustDomain, 'parts', 'web');
  t = performance.now();
  const nodeCa = svc.nodeCa;
  if (!nodeCa) throw new Error('the bench runs the unsafe local-root mode');
  let svid = await issueX509Svid(nodeCa, id, { now: Date.now() });
  for (let i = 1; i < count; i++) svid = await issueX509Svid(nodeCa, id, { now: Date.now() });
  const issueMs = (performance.now() - t) / count;
  t = performance.now();
  for (let i = 0; i < count; i++) buildSecureContext(svid, svc.trustBundle);
  const ctxMs = (performance.now() - t) / count;
  console.log(
    `  of which certificate issuance:          ${issueMs.toFixed(2)} ms (${(1000 / issueMs).toFixed(0)}/s)`,
  );
  console.log(`  of which tls.createSecureContext:       ${ctxMs.toFixed(2)} ms`);

  // Peer validation, as on every handshake: warm (same node CA, cached) and
  // with a new leaf each time.
  const opts = { bundle: svc.trustBundle, now: Date.now(), expectedId: id };
  const n = count * 10;
  t = performance.now();
  for (let i = 0; i < n; i++) validatePeer(svid.chainDer, opts);
  const sameMs = (performance.now() - t) / n;
  const leaves = await Promise.all(
    Array.from({ length: count }, () => issueX509Svid(nodeCa, id, { now: Date.now() })),
  );
  t = performance.now();
  for (const l of leaves) validatePeer(l.chainDer, opts);
  const newLeafMs = (performance.now() - t) / leaves.length;
  console.log(
    `validatePeer per handshake:               ${(sameMs * 1000).toFixed(0)} us same peer, ${(newLeafMs * 1000).toFixed(0)} us new peer leaf ` +
      `(${(1000 / newLeafMs).toFixed(0)}/s)`,
  );
  svc.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
