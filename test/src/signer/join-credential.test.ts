import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateP256Key } from '../../../src/identity/keys.js';
import {
  JoinCredentialAttestor,
  PROOF_WINDOW_MS,
  joinBearer,
  joinMacKey,
  makeJoinCredential,
  newJoinKey,
  parseJoinCredential,
} from '../../../src/signer/join-credential.js';
import { AttestationError } from '../../../src/signer/node-attestation.js';

const NOW = Date.UTC(2026, 0, 1);
const macKey = joinMacKey(newJoinKey());

async function refused(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AttestationError, String(err));
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

describe('join credentials', () => {
  const cred = makeJoinCredential({ node: 'node-a', macKey, now: NOW, ttlMs: 3_600_000 });

  it('attest the node they were issued for', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const csr = 'csr-1';
    const node = await a.attest({ credential: joinBearer(cred, csr, NOW), csr, now: NOW });
    assert.equal(node.node, 'node-a');
    assert.equal(node.method, 'join-credential');
  });

  it('need a join key of 32 random bytes', () => {
    assert.throws(() => joinMacKey('c2hvcnQ='), /at least 32/);
  });

  it('survive the file format', () => {
    const back = parseJoinCredential(JSON.stringify(cred), 'test');
    assert.deepEqual(back, cred);
    assert.throws(() => parseJoinCredential('{"node":"x"}', 'f'), /join credential/);
  });

  it('refuse a replayed request: same proof again, or the proof with another CSR', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const bearer = joinBearer(cred, 'csr-1', NOW);
    await a.attest({ credential: bearer, csr: 'csr-1', now: NOW });
    await refused(a.attest({ credential: bearer, csr: 'csr-1', now: NOW + 1000 }), 'replayed');
    // On another replica (no shared memory) the captured proof is still bound to its CSR.
    const other = new JoinCredentialAttestor({ macKey });
    await refused(
      other.attest({ credential: bearer, csr: 'attacker-csr', now: NOW }),
      'bad_signature',
    );
  });

  it('refuse a proof older than the window', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const bearer = joinBearer(cred, 'c', NOW);
    await refused(
      a.attest({ credential: bearer, csr: 'c', now: NOW + PROOF_WINDOW_MS + 1 }),
      'expired',
    );
  });

  it('refuse an expired credential', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const later = NOW + 3_600_000;
    await refused(
      a.attest({ credential: joinBearer(cred, 'c', later), csr: 'c', now: later }),
      'expired',
    );
  });

  it('refuse a credential of another root, or with its node name changed', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const foreign = makeJoinCredential({
      node: 'node-a',
      macKey: joinMacKey(newJoinKey()),
      now: NOW,
    });
    await refused(
      a.attest({ credential: joinBearer(foreign, 'c', NOW), csr: 'c', now: NOW }),
      'bad_signature',
    );
    const [p, claims, tag] = cred.token.split('.');
    const edited = JSON.parse(Buffer.from(claims ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    edited['node'] = 'node-b';
    const forged = {
      ...cred,
      token: `${p}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${tag}`,
    };
    await refused(
      a.attest({ credential: joinBearer(forged, 'c', NOW), csr: 'c', now: NOW }),
      'bad_signature',
    );
  });

  it('refuse a stolen token without the node key', async () => {
    const a = new JoinCredentialAttestor({ macKey });
    const thief = {
      ...cred,
      key: generateP256Key().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    await refused(
      a.attest({ credential: joinBearer(thief, 'c', NOW), csr: 'c', now: NOW }),
      'bad_signature',
    );
  });
});
