import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readCertificateFields } from '../../../src/identity/certificate-fields.js';
import { issueNodeCa } from '../../../src/identity/certificate-authority.js';
import { parseSpiffeId, workloadSpiffeId } from '../../../src/identity/spiffe-id.js';
import { issueX509Svid, SVID_BACKDATE_MS, type X509Svid } from '../../../src/identity/x509-svid.js';
import { HOUR, makePki, NOW, TD, type Pki } from './pki-fixtures.js';

const OPENSSL = '/usr/bin/openssl';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

describe('issueX509Svid', () => {
  let pki: Pki;
  let svid: X509Svid;
  let dir: string;
  const id = workloadSpiffeId(TD, 'payments', 'api');

  before(async () => {
    pki = await makePki();
    svid = await issueX509Svid(pki.nodeCa, id, { now: NOW, ttlMs: HOUR });
    dir = mkdtempSync(join(tmpdir(), 'meshless-svid-'));
    writeFileSync(join(dir, 'root.pem'), pki.bundle.pem);
    writeFileSync(join(dir, 'node-ca.pem'), pki.nodeCa.pem);
    writeFileSync(join(dir, 'leaf.pem'), svid.certificate.toString());
    writeFileSync(join(dir, 'chain.pem'), svid.chainPem);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has the SVID profile, read by Node X509Certificate', () => {
    const leaf = new X509Certificate(svid.chainDer[0] as Buffer);
    assert.ok(!leaf.subject, 'empty subject');
    assert.equal(leaf.subjectAltName, `URI:${id}`, 'exactly one SAN, the URI');
    assert.equal(leaf.ca, false);
    assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), [SERVER_AUTH, CLIENT_AUTH].sort(), 'EKU');
    assert.equal(leaf.issuer, pki.nodeCa.certificate.subject);
    assert.ok(leaf.checkIssued(pki.nodeCa.certificate));
    assert.ok(leaf.verify(pki.nodeCa.certificate.publicKey));
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(leaf.checkPrivateKey(svid.privateKey), 'the key belongs to the certificate');
    assert.equal(Date.parse(leaf.validFrom), NOW - SVID_BACKDATE_MS);
    assert.equal(Date.parse(leaf.validTo), NOW + HOUR);
    assert.equal(svid.notBefore, NOW - SVID_BACKDATE_MS);
    assert.equal(svid.notAfter, NOW + HOUR);
    assert.equal(svid.issuedAt, NOW);
    // Serial: 16 octets, positive (top bit clear), no leading zero octet.
    assert.match(leaf.serialNumber, /^[4-7][0-9A-F]{31}$/);
    assert.equal(leaf.serialNumber.toLowerCase(), svid.serialNumber);
    assert.ok(svid.privateKeyPem.startsWith('-----BEGIN PRIVATE KEY-----'));
    assert.equal(svid.chainDer.length, 2, 'leaf + node CA, never the root');
    assert.ok(svid.chainDer[1]?.equals(pki.nodeCa.certificate.raw));
  });

  it('marks the right extensions critical (read from DER)', () => {
    const f = readCertificateFields(svid.chainDer[0] as Buffer);
    assert.deepEqual(f.uriSans, [id.toString()]);
    assert.equal(f.sanCritical, true, 'SAN critical because the subject is empty');
    assert.equal(f.keyUsage, 1, 'digitalSignature only');
    assert.equal(f.keyUsageCritical, true);
    assert.deepEqual(f.basicConstraints, { ca: false, pathLength: undefined });
    assert.deepEqual(f.extendedKeyUsage, [SERVER_AUTH, CLIENT_AUTH]);
  });

  it('has the SVID profile, read by openssl x509 -text', () => {
    const text = execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')], {
      encoding: 'utf8',
    });
    const expectLines: readonly RegExp[] = [
      /Signature Algorithm: ecdsa-with-SHA256/,
      /Subject: *\n/,
      /ASN1 OID: prime256v1/,
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api\n/,
      /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/,
      /X509v3 Key Usage: critical\n\s+Digital Signature\n/,
      /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
      /X509v3 Subject Key Identifier/,
      /X509v3 Authority Key Identifier/,
    ];
    for (const re of expectLines) assert.match(text, re);
    assert.doesNotMatch(text, /Certificate Sign|CRL Sign|Key Encipherment/);
    assert.equal(text.match(/URI:/g)?.length, 1, 'exactly one URI SAN');
  });

  it('chains to the root according to openssl verify (strict, both TLS purposes)', () => {
    for (const purpose of ['sslserver', 'sslclient']) {
      const out = execFileSync(
        OPENSSL,
        [
          'verify',
          '-x509_strict',
          '-purpose',
          purpose,
          '-attime',
          String(NOW / 1000),
          '-CAfile',
          join(dir, 'root.pem'),
          '-untrusted',
          join(dir, 'node-ca.pem'),
          join(dir, 'leaf.pem'),
        ],
        { encoding: 'utf8' },
      );
      assert.match(out, /leaf\.pem: OK/);
    }
  });

  it('does not verify without the node CA, or after expiry (openssl)', () => {
    const noIntermediate = spawnSync(
      OPENSSL,
      [
        'verify',
        '-attime',
        String(NOW / 1000),
        '-CAfile',
        join(dir, 'root.pem'),
        join(dir, 'leaf.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(noIntermediate.status, 0);
    const expired = spawnSync(
      OPENSSL,
      [
        'verify',
        '-attime',
        String((NOW + 2 * HOUR) / 1000),
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'node-ca.pem'),
        join(dir, 'leaf.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(expired.status, 0);
    assert.match(expired.stdout + expired.stderr, /expired/);
  });

  it('gives the CAs their profiles (openssl x509 -text)', () => {
    const nodeCa = execFileSync(
      OPENSSL,
      ['x509', '-noout', '-text', '-in', join(dir, 'node-ca.pem')],
      {
        encoding: 'utf8',
      },
    );
    assert.match(nodeCa, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    assert.match(nodeCa, /X509v3 Key Usage: critical\n\s+Certificate Sign\n/);
    assert.match(nodeCa, /URI:spiffe:\/\/cluster\.local\n/);
    const root = execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', join(dir, 'root.pem')], {
      encoding: 'utf8',
    });
    assert.match(root, /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(root, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    assert.match(root, /URI:spiffe:\/\/cluster\.local\n/);
    const nodeCaFields = readCertificateFields(pki.nodeCa.certificate.raw);
    assert.ok(nodeCaFields.notAfter <= pki.authority.notAfter);
  });

  it('uses a fresh key and a fresh random serial every time', async () => {
    const again = await issueX509Svid(pki.nodeCa, id, { now: NOW });
    assert.notEqual(again.serialNumber, svid.serialNumber);
    assert.notEqual(again.privateKeyPem, svid.privateKeyPem);
  });

  it('never outlives the node CA', async () => {
    const shortCa = await issueNodeCa(pki.authority, {
      nodeName: 'n',
      now: NOW,
      ttlMs: 30 * 60_000,
    });
    const s = await issueX509Svid(shortCa, id, { now: NOW, ttlMs: HOUR });
    assert.equal(s.notAfter, shortCa.notAfter);
  });

  const refusals: readonly [string, () => Promise<unknown>, RegExp][] = [
    [
      'a trust domain ID',
      () => issueX509Svid(pki.nodeCa, parseSpiffeId(`spiffe://${TD}`), { now: NOW }),
      /needs a path/,
    ],
    [
      'another trust domain',
      () => issueX509Svid(pki.nodeCa, parseSpiffeId('spiffe://other.td/ns/a/sa/b'), { now: NOW }),
      /authoritative for "cluster\.local"/,
    ],
    [
      'a TTL under a minute',
      () => issueX509Svid(pki.nodeCa, id, { now: NOW, ttlMs: 1000 }),
      /below/,
    ],
    [
      'a signer about to expire',
      () => issueX509Svid(pki.nodeCa, id, { now: pki.nodeCa.notAfter - 1000 }),
      /too soon/,
    ],
  ];
  for (const [name, fn, message] of refusals) {
    it(`refuses ${name}`, async () => {
      await assert.rejects(fn, (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MESHLESS_E_SVID_ISSUE');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
