import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  TrustBundle,
  derToPem,
  parsePemCertificates,
  pemCertificatesToDer,
} from '../../../src/identity/trust-bundle.js';
import { meshlessError } from '../../support/meshless-error.js';
import { makeLeaf, makePki, TD, type Pki } from './pki-fixtures.js';

describe('TrustBundle', () => {
  let a: Pki;
  let b: Pki;
  let leaf: X509Certificate;
  before(async () => {
    [a, b] = await Promise.all([makePki(), makePki()]);
    leaf = new X509Certificate(await makeLeaf(a.nodeCa));
  });

  it('holds several roots, without duplicates, as one PEM', () => {
    const pem = a.bundle.pem + '# comment\n' + b.bundle.pem + a.bundle.pem;
    const bundle = TrustBundle.fromPem(TD, pem);
    assert.equal(bundle.roots.length, 2);
    assert.equal(pemCertificatesToDer(bundle.pem).length, 2);
    assert.ok(bundle.has(a.authority.certificate));
    assert.ok(!a.bundle.has(b.authority.certificate));
    assert.equal(
      bundle.issuerOf(a.nodeCa.certificate)?.fingerprint256,
      a.authority.certificate.fingerprint256,
    );
    assert.equal(a.bundle.issuerOf(b.nodeCa.certificate), undefined);
  });

  it('round-trips DER and PEM, CRLF included', () => {
    const der = a.authority.certificate.raw;
    const pem = derToPem(der);
    assert.ok(pemCertificatesToDer(pem)[0]?.equals(der));
    assert.ok(pemCertificatesToDer(pem.replace(/\n/g, '\r\n'))[0]?.equals(der));
  });

  const refusals: readonly [string, () => unknown, RegExp][] = [
    [
      'no certificate',
      () => TrustBundle.fromPem(TD, 'nothing here', 'ca.crt'),
      /ca\.crt holds no PEM certificate/,
    ],
    ['an empty list', () => TrustBundle.of(TD, [], 'bundle'), /holds no root/],
    [
      'a leaf',
      () => TrustBundle.of(TD, [leaf], 'ca.crt'),
      /ca\.crt: certificate "\(empty subject\)" .* is not a CA/,
    ],
    [
      'garbage inside a PEM block',
      () =>
        parsePemCertificates(
          '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
          'f.pem',
        ),
      /f\.pem: certificate #1 cannot be parsed/,
    ],
  ];
  for (const [name, fn, message] of refusals) {
    it(`refuses ${name}`, () => {
      assert.throws(fn, meshlessError('MESHLESS_E_CA', message));
    });
  }
});
