import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  KubeAttestationClient,
  KubeRequester,
} from '../../../src/signer/kube-attestation-client.js';
import {
  EXTRA_NODE_NAME,
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  KubernetesAttestor,
} from '../../../src/signer/kubernetes-attestor.js';
import { AttestationError } from '../../../src/signer/node-attestation.js';
import { authorizeNode } from '../../../src/signer/node-authorizer.js';
import { parseClusterDocument } from '../../../src/discovery/file-source.js';
import {
  FakeKubeApiServer,
  podObject,
  writeKubeconfig,
} from '../../support/fake-kube-apiserver.js';

const AUDIENCE = 'meshless-ca';
const DAEMON_SA = 'system:serviceaccount:meshless-system:meshless';

/** A token shaped as a projected service-account JWT (the fake checks it by value). */
function jwt(name: string, exp: number): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256', kid: name })}.${b({ exp, sub: name })}.c2ln`;
}

describe('Kubernetes node attestation (TokenReview + bound pod), against the API double', () => {
  let api: FakeKubeApiServer;
  let dir: string;
  let attestor: KubernetesAttestor;
  const soon = Math.floor(Date.now() / 1000) + 600;
  const daemonPod = (name: string, node: string) =>
    podObject({ namespace: 'meshless-system', name, serviceAccount: 'meshless', nodeName: node });
  const bound = (pod: string, extraNode?: string) => ({
    [EXTRA_POD_NAME]: [pod],
    [EXTRA_POD_UID]: [`uid-meshless-system-${pod}`],
    ...(extraNode ? { [EXTRA_NODE_NAME]: [extraNode] } : {}),
  });

  before(async () => {
    api = await FakeKubeApiServer.start({ token: 'signer-token' });
    dir = mkdtempSync(join(tmpdir(), 'meshless-attest-'));
    api.put('pods', daemonPod('meshless-a', 'node-a'));
    api.put('pods', daemonPod('meshless-b', 'node-b'));
    api.put(
      'pods',
      podObject({ namespace: 'shop', name: 'web-1', serviceAccount: 'web', nodeName: 'node-a' }),
    );
    attestor = new KubernetesAttestor({
      api: new KubeAttestationClient(
        new KubeRequester(writeKubeconfig(dir, api.url, 'signer-token')),
      ),
      audience: AUDIENCE,
      daemonServiceAccounts: ['meshless-system/meshless'],
    });
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const attest = (credential: string) => attestor.attest({ credential, csr: '', now: Date.now() });
  async function refused(credential: string, reason: string): Promise<void> {
    await assert.rejects(attest(credential), (err: unknown) => {
      assert.ok(err instanceof AttestationError, String(err));
      assert.equal(err.reason, reason, err.message);
      return true;
    });
  }

  it('valid: the node comes from the bound pod, and the review asked our audience', async () => {
    const t = jwt('valid', soon);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: soon,
      extra: bound('meshless-a'),
    });
    const node = await attest(t);
    assert.equal(node.node, 'node-a');
    assert.deepEqual(api.tokenReviews.at(-1)?.audiences, [AUDIENCE]);
  });

  it('another service account is refused', async () => {
    const t = jwt('other-sa', soon);
    api.addToken(t, {
      username: 'system:serviceaccount:shop:web',
      audiences: [AUDIENCE],
      exp: soon,
      extra: { [EXTRA_POD_NAME]: ['web-1'], [EXTRA_POD_UID]: ['uid-shop-web-1'] },
    });
    await refused(t, 'wrong_service_account');
  });

  it("another audience (the API server's own) is refused", async () => {
    const t = jwt('apiserver-aud', soon);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: ['https://kubernetes.default.svc'],
      exp: soon,
      extra: bound('meshless-a'),
    });
    await refused(t, 'unauthenticated');
  });

  it('an expired token is refused before asking the API server', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    const t = jwt('expired', past);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: past,
      extra: bound('meshless-a'),
    });
    const before = api.tokenReviews.length;
    await refused(t, 'expired');
    assert.equal(api.tokenReviews.length, before);
  });

  it('a token of a deleted pod is refused (gone, or recreated with another UID)', async () => {
    const t = jwt('deleted', soon);
    api.put('pods', daemonPod('meshless-old', 'node-a'));
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: soon,
      extra: bound('meshless-old'),
    });
    api.delete('pods', 'meshless-system/meshless-old');
    await refused(t, 'pod_not_found');
    api.put('pods', {
      ...daemonPod('meshless-old', 'node-a'),
      metadata: { name: 'meshless-old', namespace: 'meshless-system', uid: 'new-uid' },
    });
    await refused(t, 'pod_not_found');
  });

  it('a token naming a node its pod is not on is refused', async () => {
    const t = jwt('node-mismatch', soon);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: soon,
      extra: bound('meshless-b', 'node-a'),
    });
    await refused(t, 'pod_mismatch');
  });

  it("a daemon bound to a pod on node-b cannot get node-a's identities", async () => {
    const t = jwt('node-b', soon);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: soon,
      extra: bound('meshless-b'),
    });
    const node = await attest(t);
    assert.equal(node.node, 'node-b');
    const snapshot = parseClusterDocument(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          podObject({
            namespace: 'shop',
            name: 'web-1',
            serviceAccount: 'web',
            nodeName: 'node-a',
          }),
        ],
      }),
      'test',
    );
    const d = authorizeNode(
      snapshot,
      'cluster.local',
      node.node,
      'spiffe://cluster.local/ns/shop/sa/web',
    );
    assert.equal(d.allowed, false);
  });

  it('the API server unreachable is "unavailable", not a refusal', async () => {
    const t = jwt('down', soon);
    api.addToken(t, {
      username: DAEMON_SA,
      audiences: [AUDIENCE],
      exp: soon,
      extra: bound('meshless-a'),
    });
    const broken = new KubernetesAttestor({
      api: new KubeAttestationClient(
        new KubeRequester(
          writeKubeconfig(mkdtempSync(join(dir, 'down-')), 'http://127.0.0.1:1', 'x'),
        ),
      ),
      audience: AUDIENCE,
      daemonServiceAccounts: ['meshless-system/meshless'],
    });
    await assert.rejects(
      broken.attest({ credential: t, csr: '', now: Date.now() }),
      (err: unknown) => {
        assert.ok(err instanceof AttestationError);
        assert.equal(err.reason, 'api_unavailable');
        return true;
      },
    );
  });
});
