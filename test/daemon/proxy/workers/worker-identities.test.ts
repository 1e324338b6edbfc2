import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  generateRootCa,
  issueNodeCa,
  loadRootCa,
} from '../../../../src/identity/certificate-authority.js';
import { parseSpiffeId } from '../../../../src/identity/spiffe-id.js';
import { issueX509Svid } from '../../../../src/identity/x509-svid.js';
import { MeshlessError } from '../../../../src/errors.js';
import { WorkerIdentities } from '../../../../daemon/proxy/workers/worker-identities.js';
import type { SvidMaterial } from '../../../../daemon/proxy/workers/protocol.js';

const TD = 'cluster.local';
const ID = `spiffe://${TD}/ns/secure/sa/web`;

async function authority(): Promise<{
  bundlePem: string;
  svid(): Promise<SvidMaterial>;
}> {
  const now = Date.now();
  const root = await generateRootCa({ trustDomain: TD, now });
  const { authority: signer } = await loadRootCa(root, { trustDomain: TD, now });
  const nodeCa = await issueNodeCa(signer, { nodeName: 'n1', now, ttlMs: 3_600_000 });
  return {
    bundlePem: root.certPem,
    async svid() {
      const s = await issueX509Svid(nodeCa, parseSpiffeId(ID), { now, ttlMs: 600_000 });
      return {
        spiffeId: ID,
        serialNumber: s.serialNumber,
        chainPem: s.chainPem,
        privateKeyPem: s.privateKeyPem,
      };
    },
  };
}

describe('WorkerIdentities', () => {
  it('acquire resolves only for an SVID the main thread sent', async () => {
    const ca = await authority();
    const ids = new WorkerIdentities(TD, ca.bundlePem);
    await assert.rejects(ids.acquire('c1', 'secure', 'web'), MeshlessError);
    ids.install(await ca.svid());
    await ids.acquire('c1', 'secure', 'web');
    assert.throws(() => ids.secureContextFor(`spiffe://${TD}/ns/secure/sa/other`), MeshlessError);
  });

  it('one TLS context per SVID: reused, replaced on rotation and on a new bundle', async () => {
    const ca = await authority();
    const ids = new WorkerIdentities(TD, ca.bundlePem);
    const first = await ca.svid();
    ids.install(first);
    const ctx = ids.secureContextFor(ID);
    assert.equal(ids.secureContextFor(ID), ctx);
    ids.install(first); // the same SVID again (a re-sent enrolment): kept
    assert.equal(ids.secureContextFor(ID), ctx);
    const rotated = await ca.svid();
    ids.install(rotated);
    assert.deepEqual(ids.serials(), new Map([[ID, rotated.serialNumber]]));
    const ctx2 = ids.secureContextFor(ID);
    assert.notEqual(ctx2, ctx);
    const other = await authority();
    ids.setTrustBundle(ca.bundlePem + other.bundlePem);
    assert.equal(ids.trustBundle.roots.length, 2);
    assert.notEqual(ids.secureContextFor(ID), ctx2);
    ids.drop(ID);
    assert.throws(() => ids.secureContextFor(ID), MeshlessError);
  });
});
