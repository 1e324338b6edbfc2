// Identity layer benchmark (not a test): SVID issuance rate, a new pod's
// first-SVID latency, and the per-handshake cost of peer validation; then the
// same through the cluster signer (dist/meshless-ca.js in its own process,
// on loopback: run npm run build first).
//   node --import tsx bench/identity.bench.ts [count]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IdentityService } from '../daemon/identity/identity-service.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { buildSecureContext } from '../src/identity/secure-context.js';
import { workloadSpiffeId } from '../src/identity/spiffe-id.js';
import { validatePeer } from '../src/identity/svid-validation.js';
import { issueX509Svid } from '../src/identity/x509-svid.js';
import { generateRootCa } from '../src/identity/certificate-authority.js';
import { joinMacKey, makeJoinCredential, newJoinKey } from '../src/signer/join-credential.js';

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
      MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
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
  await throughSigner();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** The same measurements through the cluster signer, a separate process on loopback. */
async function throughSigner(): Promise<void> {
  const sdir = join(dir, 'signer');
  mkdirSync(sdir);
  const root = await generateRootCa({ trustDomain: 'cluster.local', now: Date.now() });
  writeFileSync(join(sdir, 'ca.crt'), root.certPem);
  writeFileSync(join(sdir, 'ca.key'), root.keyPem);
  const joinKey = newJoinKey();
  writeFileSync(join(sdir, 'join.key'), joinKey);
  const pods = Array.from({ length: count }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p${i}`, namespace: 'sig', uid: `u${i}` },
    spec: { nodeName: 'bench-node', serviceAccountName: `sa-${i}` },
  }));
  writeFileSync(
    join(sdir, 'cluster.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }),
  );
  const port = 20000 + (process.pid % 20000);
  writeFileSync(
    join(sdir, 'ca.json'),
    JSON.stringify({
      listen: `127.0.0.1:${port}`,
      root: { certFile: join(sdir, 'ca.crt'), keyFile: join(sdir, 'ca.key') },
      discovery: { file: join(sdir, 'cluster.json') },
      attestation: { joinCredentials: { keyFile: join(sdir, 'join.key') } },
      logLevel: 'warn',
    }),
  );
  writeFileSync(
    join(sdir, 'join.json'),
    JSON.stringify(
      makeJoinCredential({ node: 'bench-node', macKey: joinMacKey(joinKey), now: Date.now() }),
    ),
  );
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, '..', 'dist', 'meshless-ca.js'), '--config', join(sdir, 'ca.json')],
    { stdio: 'inherit' },
  );
  try {
    for (let up = false; !up;) {
      up = await new Promise<boolean>((resolve) => {
        const c = connect(port, '127.0.0.1', () => {
          c.destroy();
          resolve(true);
        });
        c.on('error', () => setTimeout(() => resolve(false), 50));
      });
    }
    const config = loadDaemonConfig({
      env: {
        MESHLESS_STATE_DIR: sdir,
        MESHLESS_DISCOVERY_FILE: join(sdir, 'cluster.json'),
        MESHLESS_NODE_NAME: 'bench-node',
        MESHLESS_SIGNER_ADDRESS: `127.0.0.1:${port}`,
        MESHLESS_SIGNER_TRUST_BUNDLE_FILE: join(sdir, 'ca.crt'),
        MESHLESS_SIGNER_JOIN_CREDENTIAL_FILE: join(sdir, 'join.json'),
      },
    });
    const svc = await IdentityService.create(config);
    for (let i = 0; i < 20; i++) {
      await svc.acquire(`w${i}`, 'sig', `sa-${i}`);
      svc.release(`w${i}`);
    }
    const first: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = performance.now();
      await svc.acquire(`s${i}`, 'sig', `sa-${i}`);
      first.push(performance.now() - s);
    }
    console.log(`through the signer: first SVID, new pod:  ${quantiles(first)}`);
    for (let i = 0; i < count; i++) svc.release(`s${i}`);
    let t = performance.now();
    for (let i = 0; i < count; i++) await svc.acquire(`q${i}`, 'sig', `sa-${i}`);
    const seqRate = count / ((performance.now() - t) / 1000);
    for (let i = 0; i < count; i++) svc.release(`q${i}`);
    t = performance.now();
    await Promise.all(
      Array.from({ length: count }, (_, i) => svc.acquire(`c${i}`, 'sig', `sa-${i}`)),
    );
    const parRate = count / ((performance.now() - t) / 1000);
    console.log(
      `through the signer: SVIDs per second:     ${seqRate.toFixed(0)} sequential, ${parRate.toFixed(0)} concurrent (one daemon, one signer process)`,
    );
    svc.close();
  } finally {
    child.kill();
  }
}
