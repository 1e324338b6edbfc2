import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { basicConstraints, uriSubjectAltName } from '../../../src/identity/certificate-builder.js';
import { CsrError, buildCsr, checkCsr, csrFromPem, csrToPem } from '../../../src/identity/csr.js';
import { generateP256Key, spkiOf } from '../../../src/identity/keys.js';

function refusal(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CsrError, String(err));
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('CSR (PKCS#10)', () => {
  it('round-trips: the checked key is the key that signed it', () => {
    const key = generateP256Key();
    const der = buildCsr(key.privateKey, key.publicKey, { uriSans: ['spiffe://td/ns/a/sa/b'] });
    const back = checkCsr(csrFromPem(csrToPem(der)));
    assert.deepEqual(spkiOf(back), key.spki);
  });

  it('refuses a CSR whose signature is by another key (no proof of possession)', () => {
    const claimed = generateP256Key();
    const other = generateP256Key();
    refusal(() => checkCsr(buildCsr(other.privateKey, claimed.publicKey)), 'proof_of_possession');
  });

  it('refuses a CSR whose signature was altered', () => {
    const key = generateP256Key();
    const der = buildCsr(key.privateKey, key.publicKey);
    der[der.length - 3] = (der[der.length - 3] as number) ^ 0xff;
    assert.throws(() => checkCsr(der), CsrError);
  });

  it('refuses keys other than EC P-256', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    refusal(() => checkCsr(buildCsr(p384.privateKey, p384.publicKey)), 'key_type');
  });

  it('refuses garbage and other PEM blocks', () => {
    refusal(() => checkCsr(Buffer.from('not der')), 'malformed');
    refusal(
      () => csrFromPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      'malformed',
    );
  });

  it('accepts requested SANs and CA:TRUE as mere words: only the key comes out', () => {
    const key = generateP256Key();
    const der = buildCsr(key.privateKey, key.publicKey, {
      uriSans: ['spiffe://td/ns/kube-system/sa/admin'],
      extensions: [basicConstraints(true), uriSubjectAltName(['spiffe://other/x'], false)],
    });
    const back = checkCsr(der);
    assert.deepEqual(spkiOf(back), key.spki);
  });
});
