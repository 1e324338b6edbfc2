import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { readCertificateFields } from '../../../src/identity/certificate-fields.js';
import { x509 } from './pkix.js';
import { makeLeaf, makePki, NOW, TD, type Pki } from './pki-fixtures.js';

const KU = x509.KeyUsageFlags;

/** The same fields, read by @peculiar/x509 (the slow, full parser). */
function reference(der: Buffer) {
  const c = new x509.X509Certificate(der);
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
    keyUsage: c.getExtension(x509.KeyUsagesExtension)?.usages,
    basicConstraints: bc ? { ca: bc.ca, pathLength: bc.pathLength } : undefined,
    extendedKeyUsage: (() => {
      const eku = c.getExtension(x509.ExtendedKeyUsageExtension);
      return eku ? Array.from(eku.usages, String) : undefined;
    })(),
    uriSans: (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value),
  };
}

describe('readCertificateFields', () => {
  let pki: Pki;
  before(async () => {
    pki = await makePki();
  });

  const specs: readonly [string, Parameters<typeof makeLeaf>[1]][] = [
    ['an SVID', {}],
    ['two URIs and a DNS name', { uris: [`spiffe://${TD}/a`, `spiffe://${TD}/b`], dns: ['x.y'] }],
    ['every key usage bit', { keyUsage: 0x1ff }],
    ['keyAgreement|decipherOnly', { keyUsage: KU.keyAgreement | KU.decipherOnly }],
    [
      'no keyUsage, no EKU, no basicConstraints',
      { keyUsage: null, eku: null, basicConstraints: false },
    ],
    ['a CA flag', { ca: true }],
    ['a GeneralizedTime notAfter (year 2050+)', { notAfter: Date.UTC(2051, 5, 1) }],
  ];
  for (const [name, spec] of specs) {
    it(`agrees with @peculiar/x509 on ${name}`, async () => {
      const der = await makeLeaf(pki.nodeCa, spec);
      const { keyUsageCritical: _k, sanCritical: _s, ...fields } = readCertificateFields(der);
      assert.deepEqual(fields, reference(der));
    });
  }

  it('agrees on the CA certificates (pathLen 0, no pathLen)', () => {
    for (const der of [pki.nodeCa.certificate.raw, pki.authority.certificate.raw]) {
      const { keyUsageCritical, sanCritical: _s, ...fields } = readCertificateFields(der);
      assert.deepEqual(fields, reference(der));
      assert.equal(keyUsageCritical, true);
    }
    assert.equal(readCertificateFields(pki.nodeCa.certificate.raw).basicConstraints?.pathLength, 0);
    assert.ok(readCertificateFields(pki.nodeCa.certificate.raw).notBefore < NOW);
  });

  it('throws on truncated input', async () => {
    const der = await makeLeaf(pki.nodeCa);
    assert.throws(() => readCertificateFields(der.subarray(0, der.length - 80)));
    assert.throws(() => readCertificateFields(Buffer.from([0x30, 0x80, 0, 0])));
  });
});
