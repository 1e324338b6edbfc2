/**
 * The cluster signer end to end on loopback: the real signer program
 * (ca/signer.ts: gRPC server, join attestation, file discovery, root files)
 * and the daemon's real IdentityService in signer mode.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSigner, type RunningSigner } from '../../ca/signer.js';
import { IdentityService } from '../../daemon/identity/identity-service.js';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';
import { MeshlessError } from '../../src/errors.js';
import { generateRootCa, type RootMaterial } from '../../src/identity/certificate-authority.js';
import { validatePeer } from '../../src/identity/svid-validation.js';
import { TrustBundle } from '../../src/identity/trust-bundle.js';
import { silentLogger } from '../../src/logger.js';
import { joinMacKey, makeJoinCredential, newJoinKey } from '../../src/signer/join-credential.js';
import { parseSignerConfig } from '../../src/signer/signer-config.js';
import { podObject } from '../support/fake-kube-apiserver.js';
import { until } from '../support/until.js';

const TD = 'cluster.local';

function code(c: string, match?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, c, err.message);
    if (match) assert.match(err.message, match);
    return true;
  };
}

describe('cluster signer + node daemon identity (loopback)', () => {
  let dir: string;
  let rootA: RootMaterial;
  let signer: RunningSigner;
  let port = 0;
  const services: IdentityService[] = [];
  let pods: Record<string, unknown>[] = [];
  const joinKey = newJoinKey();

  const signerConfig = (p: number) =>
    parseSignerConfig(
      JSON.stringify({
        trustDomain: TD,
        listen: `127.0.0.1:${p}`,
        serverNames: ['meshless-ca'],
        root: { certFile: join(dir, 'root', 'ca.crt'), keyFile: join(dir, 'root', 'ca.key') },
        discovery: { file: join(dir, 'cluster.json') },
        attestation: { joinCredentials: { keyFile: join(dir, 'join.key') } },
      }),
      'test',
    );

  function writeRoot(certPem: string, keyPem: string): void {
    // Both at once as far as the signer can tell: it reloads after a quiet 200 ms.
    writeFileSync(join(dir, 'root', 'ca.crt'), certPem);
    writeFileSync(join(dir, 'root', 'ca.key'), keyPem);
  }

  async function daemon(node: string): Promise<IdentityService> {
    const nodeDir = mkdtempSync(join(dir, `${node}-`));
    const credential = makeJoinCredential({
      node,
      macKey: joinMacKey(joinKey),
      now: Date.now(),
    });
    writeFileSync(join(nodeDir, 'join.json'), JSON.stringify(credential));
    writeFileSync(join(nodeDir, 'bundle.pem'), rootA.certPem);
    const config = loadDaemonConfig({
      env: {
        MESHLESS_NODE_NAME: node,
        MESHLESS_STATE_DIR: nodeDir,
        MESHLESS_DISCOVERY_FILE: join(dir, 'cluster.json'),
        MESHLESS_SIGNER_ADDRESS: `127.0.0.1:${port}`,
        MESHLESS_SIGNER_TRUST_BUNDLE_FILE: join(nodeDir, 'bundle.pem'),
        MESHLESS_SIGNER_JOIN_CREDENTIAL_FILE: join(nodeDir, 'join.json'),
        MESHLESS_SIGNER_ENROL_WAIT_SECONDS: '1',
      },
    });
    const s = await IdentityService.create(config);
    services.push(s);
    return s;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-signer-'));
    rootA = await generateRootCa({ trustDomain: TD, now: Date.now() });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'root'));
    writeRoot(rootA.certPem, rootA.keyPem);
    writeFileSync(join(dir, 'join.key'), joinKey, { mode: 0o600 });
    pods = [
      podObject({ namespace: 'shop', name: 'web-1', serviceAccount: 'web', nodeName: 'node-a' }),
      podObject({ namespace: 'shop', name: 'api-1', serviceAccount: 'api', nodeName: 'node-a' }),
      podObject({ namespace: 'shop', name: 'db-1', serviceAccount: 'db', nodeName: 'node-b' }),
      podObject({ namespace: 'shop', name: 'pending', serviceAccount: 'batch' }),
      ...[1, 2, 3].map((i) =>
        podObject({ namespace: 'rot', name: `p${i}`, serviceAccount: `r${i}`, nodeName: 'node-a' }),
      ),
    ];
    writeFileSync(
      join(dir, 'cluster.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }),
    );
    signer = await startSigner(signerConfig(0), silentLogger);
    port = signer.port;
  });
  after(async () => {
    for (const s of services) s.close();
    await signer.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let webSvid: ReturnType<IdentityService['svidFor']>;

  it("issues a node its own pod's identity over a key the node made; the SVID chains to the root", async () => {
    const a = await daemon('node-a');
    webSvid = await a.acquire('ctr-web', 'shop', 'web');
    assert.equal(
      webSvid.chainDer.length,
      1,
      'the leaf alone: the root is in the bundle, not the chain',
    );
    const bundle = TrustBundle.fromPem(TD, rootA.certPem);
    const id = validatePeer(webSvid.chainDer, {
      bundle,
      now: Date.now(),
      expectedId: 'spiffe://cluster.local/ns/shop/sa/web',
    });
    assert.equal(id.toString(), 'spiffe://cluster.local/ns/shop/sa/web');
    assert.equal(a.nodeCa, undefined, 'the node holds no CA');
    assert.equal(a.report().nodeCa, null);
    assert.equal(a.signerStatus?.reachable, true);
    assert.ok(signer.counts.issued >= 1);
  });

  it('refuses an identity of a pod on another node, with the reason', async () => {
    const a = services[0] as IdentityService;
    // Refused, retried for enrolWaitSeconds (the signer's discovery could lag ours), then
    // NOT_READY: the plugin answers CNI 11 and the pod never starts unprotected.
    await assert.rejects(
      a.acquire('ctr-x', 'shop', 'db'),
      code(
        'MESHLESS_E_NOT_READY',
        /node node-a may not obtain .*no pod of shop with service account db is scheduled on node node-a/,
      ),
    );
    await assert.rejects(
      a.acquire('ctr-y', 'shop', 'batch'),
      code('MESHLESS_E_NOT_READY', /may not obtain .*batch/),
    );
    assert.throws(
      () => a.svidFor('spiffe://cluster.local/ns/shop/sa/db'),
      code('MESHLESS_E_IDENTITY_NOT_ON_NODE'),
    );
  });

  it("node-b (its own join credential) cannot obtain node-a's identity, but gets its own", async () => {
    const b = await daemon('node-b');
    await assert.rejects(
      b.acquire('ctr-b-web', 'shop', 'web'),
      code('MESHLESS_E_NOT_READY', /node node-b may not obtain/),
    );
    await b.acquire('ctr-b-db', 'shop', 'db');
  });

  it("a pod the signer's discovery sees late is issued once it does (within the wait)", async () => {
    const a = services[0] as IdentityService;
    const pending = a.acquire('ctr-late', 'shop', 'late');
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(
      join(dir, 'cluster.json'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          ...pods,
          podObject({
            namespace: 'shop',
            name: 'late-1',
            serviceAccount: 'late',
            nodeName: 'node-a',
          }),
        ],
      }),
    );
    const svid = await pending;
    assert.equal(svid.spiffeId.toString(), 'spiffe://cluster.local/ns/shop/sa/late');
  });

  it('signer down: issued SVIDs keep serving, a new identity waits then is NOT_READY; signer back: issued', async () => {
    const a = services[0] as IdentityService;
    await signer.stop();
    assert.equal(
      a.svidFor('spiffe://cluster.local/ns/shop/sa/web').serialNumber,
      webSvid.serialNumber,
    );
    const t0 = Date.now();
    await assert.rejects(
      a.acquire('ctr-api', 'shop', 'api'),
      code('MESHLESS_E_NOT_READY', /did not issue .* within 1 s/),
    );
    assert.ok(Date.now() - t0 >= 500, 'it waited for the signer');
    assert.equal(a.signerStatus?.reachable, false);
    signer = await startSigner(signerConfig(port), silentLogger);
    const svid = await a.acquire('ctr-api', 'shop', 'api');
    assert.equal(svid.spiffeId.toString(), 'spiffe://cluster.local/ns/shop/sa/api');
    assert.equal(a.signerStatus?.reachable, true);
  });

  it('rotates the root without an outage: add B to the bundle, sign with B, drop A', async () => {
    const a = services[0] as IdentityService;
    const rootB = await generateRootCa({ trustDomain: TD, now: Date.now() });
    const oldSvid = webSvid;
    // 1. Publish A+B, still signing with A.
    writeRoot(rootA.certPem + rootB.certPem, rootA.keyPem);
    await until('the signer publishes A+B', () => signer.signer.root.bundle.roots.length === 2);
    await a.acquire('ctr-r1', 'rot', 'r1');
    assert.equal(a.trustBundle.roots.length, 2, 'the daemon took the bundle from the answer');
    // 2. Sign with B: new SVIDs chain to B, old ones (A) still verify.
    writeRoot(rootA.certPem + rootB.certPem, rootB.keyPem);
    await until(
      'the signer signs with B',
      () => signer.signer.root.authority.pem === rootB.certPem,
    );
    const onB = await a.acquire('ctr-r2', 'rot', 'r2');
    const now = Date.now();
    const bundleB = TrustBundle.fromPem(TD, rootB.certPem);
    validatePeer(onB.chainDer, { bundle: bundleB, now });
    validatePeer(onB.chainDer, { bundle: a.trustBundle, now });
    validatePeer(oldSvid.chainDer, { bundle: a.trustBundle, now });
    // 3. Once every A-signed SVID has expired, drop A.
    writeRoot(rootB.certPem, rootB.keyPem);
    await until('the signer drops A', () => signer.signer.root.bundle.roots.length === 1);
    await a.acquire('ctr-r3', 'rot', 'r3');
    assert.equal(a.trustBundle.roots.length, 1);
    assert.throws(
      () => validatePeer(oldSvid.chainDer, { bundle: a.trustBundle, now }),
      /untrusted|chain/,
    );
    validatePeer(onB.chainDer, { bundle: a.trustBundle, now });
  });
});
