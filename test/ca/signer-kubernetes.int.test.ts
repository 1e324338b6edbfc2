/**
 * The cluster signer as deployed in Kubernetes, on loopback against the API
 * server double: Kubernetes discovery, TokenReview attestation of the node
 * daemon's projected token (read from its file per request, as the kubelet
 * rotates it), the trust bundle published as a ConfigMap, and the daemon's
 * real IdentityService in signer mode.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSigner, type RunningSigner } from '../../ca/signer.js';
import { IdentityService } from '../../daemon/identity/identity-service.js';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';
import { MeshlessError } from '../../src/errors.js';
import { generateRootCa } from '../../src/identity/certificate-authority.js';
import { silentLogger } from '../../src/logger.js';
import { EXTRA_POD_NAME, EXTRA_POD_UID } from '../../src/signer/kubernetes-attestor.js';
import { parseSignerConfig } from '../../src/signer/signer-config.js';
import {
  FakeKubeApiServer,
  namespaceObject,
  podObject,
  writeKubeconfig,
} from '../support/fake-kube-apiserver.js';
import { until } from '../support/until.js';

const NS = 'meshless-system';
const AUDIENCE = 'meshless-ca';

function jwt(name: string, exp: number): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256', kid: name })}.${b({ exp, sub: name })}.c2ln`;
}

describe('cluster signer with Kubernetes attestation (API double)', () => {
  let api: FakeKubeApiServer;
  let dir: string;
  let signer: RunningSigner;
  let identity: IdentityService;
  let rootPem = '';
  const tokenFile = () => join(dir, 'node-a', 'token');

  before(async () => {
    api = await FakeKubeApiServer.start({ token: 'signer-token' });
    dir = mkdtempSync(join(tmpdir(), 'meshless-signer-kube-'));
    const root = await generateRootCa({ trustDomain: 'cluster.local', now: Date.now() });
    rootPem = root.certPem;
    mkdirSync(join(dir, 'root'));
    mkdirSync(join(dir, 'node-a'));
    writeFileSync(join(dir, 'root', 'ca.crt'), root.certPem);
    writeFileSync(join(dir, 'root', 'ca.key'), root.keyPem);
    api.put('namespaces', namespaceObject(NS));
    api.put('namespaces', namespaceObject('shop'));
    api.put(
      'pods',
      podObject({
        namespace: NS,
        name: 'meshless-a',
        serviceAccount: 'meshless-node',
        nodeName: 'node-a',
      }),
    );
    api.put(
      'pods',
      podObject({ namespace: 'shop', name: 'web-1', serviceAccount: 'web', nodeName: 'node-a' }),
    );
    api.put(
      'pods',
      podObject({ namespace: 'shop', name: 'db-1', serviceAccount: 'db', nodeName: 'node-b' }),
    );
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = jwt('daemon-a', exp);
    api.addToken(token, {
      username: `system:serviceaccount:${NS}:meshless-node`,
      audiences: [AUDIENCE],
      exp,
      extra: { [EXTRA_POD_NAME]: ['meshless-a'], [EXTRA_POD_UID]: [`uid-${NS}-meshless-a`] },
    });
    writeFileSync(tokenFile(), token);
    const kubeconfig = writeKubeconfig(dir, api.url, 'signer-token');
    signer = await startSigner(
      parseSignerConfig(
        JSON.stringify({
          listen: '127.0.0.1:0',
          root: { certFile: join(dir, 'root', 'ca.crt'), keyFile: join(dir, 'root', 'ca.key') },
          discovery: { kubernetes: { kubeconfig } },
          attestation: {
            kubernetes: { audience: AUDIENCE, daemonServiceAccounts: [`${NS}/meshless-node`] },
          },
          publishTrustBundle: `${NS}/meshless-trust-bundle`,
        }),
        'test',
      ),
      silentLogger,
    );
    // The daemon starts from the bundle the signer published (the ConfigMap).
    await until(
      'the bundle ConfigMap',
      () => api.configMap(NS, 'meshless-trust-bundle') !== undefined,
    );
    const data = api.configMap(NS, 'meshless-trust-bundle')?.['data'] as Record<string, string>;
    writeFileSync(join(dir, 'node-a', 'bundle.pem'), data['ca.crt'] ?? '');
    identity = await IdentityService.create(
      loadDaemonConfig({
        env: {
          MESHLESS_NODE_NAME: 'node-a',
          MESHLESS_STATE_DIR: join(dir, 'node-a'),
          MESHLESS_DISCOVERY_FILE: join(dir, 'unused.yaml'),
          MESHLESS_SIGNER_ADDRESS: `127.0.0.1:${signer.port}`,
          MESHLESS_SIGNER_TRUST_BUNDLE_FILE: join(dir, 'node-a', 'bundle.pem'),
          MESHLESS_SIGNER_TOKEN_FILE: tokenFile(),
          MESHLESS_SIGNER_ENROL_WAIT_SECONDS: '1',
        },
      }),
    );
  });
  after(async () => {
    identity?.close();
    await signer?.stop();
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes the bundle: the root the daemon verifies the signer with', () => {
    const data = api.configMap(NS, 'meshless-trust-bundle')?.['data'] as Record<string, string>;
    assert.equal(data['ca.crt'], rootPem);
  });

  it("issues the node its own pod's identity, attested by the daemon's projected token", async () => {
    const svid = await identity.acquire('c-web', 'shop', 'web');
    assert.equal(svid.spiffeId.toString(), 'spiffe://cluster.local/ns/shop/sa/web');
    assert.deepEqual(api.tokenReviews.at(-1)?.audiences, [AUDIENCE]);
  });

  it('refuses the identity of a pod on another node', async () => {
    await assert.rejects(identity.acquire('c-db', 'shop', 'db'), (err: unknown) => {
      assert.ok(err instanceof MeshlessError);
      assert.equal(err.code, 'MESHLESS_E_NOT_READY', 'retried (signer discovery may lag), then 11');
      assert.match(err.message, /node node-a may not obtain/);
      return true;
    });
  });

  it('a token the daemon no longer holds validly (expired) is refused', async () => {
    writeFileSync(tokenFile(), jwt('old', Math.floor(Date.now() / 1000) - 5));
    api.put(
      'pods',
      podObject({ namespace: 'shop', name: 'api-1', serviceAccount: 'api', nodeName: 'node-a' }),
    );
    // Attestation comes first: refused whatever discovery says of api-1.
    await assert.rejects(identity.acquire('c-api', 'shop', 'api'), /service-account token expired/);
  });
});
