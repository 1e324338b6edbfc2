import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import { parseSignerConfig } from '../../../src/signer/signer-config.js';

const BASE = {
  root: { certFile: '/r/ca.crt', keyFile: '/r/ca.key' },
  discovery: { kubernetes: {} },
  attestation: { kubernetes: { daemonServiceAccounts: ['meshless-system/meshless-node'] } },
};

function refused(doc: unknown, key: string): void {
  assert.throws(
    () => parseSignerConfig(JSON.stringify(doc), 'test'),
    (err: unknown) => {
      assert.ok(err instanceof MeshlessError, String(err));
      assert.equal(err.code, 'MESHLESS_E_SIGNER_CONFIG');
      assert.ok(err.message.includes(`"${key}"`), `${err.message} should name ${key}`);
      return true;
    },
  );
}

describe('parseSignerConfig', () => {
  it('fills the defaults', () => {
    const c = parseSignerConfig(JSON.stringify(BASE), 'test');
    assert.equal(c.trustDomain, 'cluster.local');
    assert.deepEqual([c.listenHost, c.listenPort], ['0.0.0.0', 15012]);
    assert.deepEqual(c.serverNames, ['meshless-ca']);
    assert.equal(c.kubernetesAttestation?.audience, 'meshless-ca');
    assert.equal(c.joinKeyFile, undefined);
    assert.equal(c.svidTtlSeconds, 3600);
  });

  const cases: [string, unknown, string][] = [
    ['an unknown key', { ...BASE, extra: 1 }, 'extra'],
    ['no root', { ...BASE, root: undefined }, 'root'],
    [
      'a relative root path',
      { ...BASE, root: { certFile: 'ca.crt', keyFile: '/k' } },
      'root.certFile',
    ],
    ['no discovery', { ...BASE, discovery: undefined }, 'discovery'],
    ['no attestation method', { ...BASE, attestation: {} }, 'attestation'],
    [
      'a daemon account not namespace/name',
      { ...BASE, attestation: { kubernetes: { daemonServiceAccounts: ['meshless'] } } },
      'attestation.kubernetes.daemonServiceAccounts',
    ],
    [
      'join credentials without a key file',
      { ...BASE, attestation: { joinCredentials: {} } },
      'attestation.joinCredentials.keyFile',
    ],
    [
      'publishing the bundle without Kubernetes',
      {
        ...BASE,
        discovery: { file: '/c.yaml' },
        attestation: { joinCredentials: { keyFile: '/j' } },
        publishTrustBundle: 'ns/b',
      },
      'publishTrustBundle',
    ],
    ['an SVID lifetime above a day', { ...BASE, svidTtlSeconds: 86401 }, 'svidTtlSeconds'],
    ['a listen address without a port', { ...BASE, listen: '0.0.0.0' }, 'listen'],
  ];
  for (const [name, doc, key] of cases) it(`refuses ${name}`, () => refused(doc, key));
});
