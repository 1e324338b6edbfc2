import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUNDLE_KEY, publishTrustBundle } from '../../../src/signer/bundle-publisher.js';
import { KubeRequester } from '../../../src/signer/kube-attestation-client.js';
import { FakeKubeApiServer, writeKubeconfig } from '../../support/fake-kube-apiserver.js';

describe('publishing the trust bundle ConfigMap, against the API double', () => {
  let api: FakeKubeApiServer;
  let dir: string;
  let kube: KubeRequester;
  const REF = 'meshless-system/meshless-trust-bundle';
  const data = () => api.configMap('meshless-system', 'meshless-trust-bundle')?.['data'];

  before(async () => {
    api = await FakeKubeApiServer.start({ token: 't' });
    dir = mkdtempSync(join(tmpdir(), 'meshless-publish-'));
    kube = new KubeRequester(writeKubeconfig(dir, api.url, 't'));
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates it, then writes only when the bundle changed', async () => {
    assert.equal(await publishTrustBundle(kube, REF, 'A'), 'created');
    assert.deepEqual(data(), { [BUNDLE_KEY]: 'A' });
    assert.equal(await publishTrustBundle(kube, REF, 'A'), 'unchanged');
    assert.equal(await publishTrustBundle(kube, REF, 'A+B'), 'updated');
    assert.deepEqual(data(), { [BUNDLE_KEY]: 'A+B' });
  });

  it('a replica that lost a race reads again instead of overwriting blindly', async () => {
    api.touchConfigMap('meshless-system', 'meshless-trust-bundle', { [BUNDLE_KEY]: 'B' });
    assert.equal(await publishTrustBundle(kube, REF, 'B'), 'unchanged');
    assert.equal(await publishTrustBundle(kube, REF, 'B+C'), 'updated');
    assert.deepEqual(data(), { [BUNDLE_KEY]: 'B+C' });
  });
});
