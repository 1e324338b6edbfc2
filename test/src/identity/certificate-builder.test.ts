import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueNodeCa, loadRootCa } from '../../../src/identity/certificate-authority.js';
import { readCertificateFields } from '../../../src/identity/certificate-fields.js';
import { workloadSpiffeId } from '../../../src/identity/spiffe-id.js';
import { issueX509Svid } from '../../../src/identity/x509-svid.js';
import { x509 } from './pkix.js';
import { meshlessError } from '../../support/meshless-error.js';
import { HOUR, NOW, TD, makePki } from './pki-fixtures.js';

const OPENSSL = '/usr/bin/openssl';

/** A root as an operator makes it with openssl: self-signed CA, SPIFFE trust domain URI SAN. */
function opensslRoot(dir: string, name: string, keyArgs: readonly string[]) {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  execFileSync(OPENSSL, ['genpkey', ...keyArgs, '-out', keyFile]);
  execFileSync(OPENSSL, [
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-out',
    certFile,
    '-days',
    '7300',
    '-subj',
    `/O=operator/CN=${name} root`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-addext',
    `subjectAltName=URI:spiffe://${TD}`,
  ]);
  return {
    certPem: readFileSync(certFile, 'utf8'),
    keyPem: readFileSync(keyFile, 'utf8'),
    origin: certFile,
  };
}

describe('certificate-builder through the CA hierarchy', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-builder-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const roots: readonly [string, readonly string[], string][] = [
    ['EC P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'ecdsa-with-SHA256'],
    ['EC P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'ecdsa-with-SHA384'],
    [
      'RSA 2048',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      'sha256WithRSAEncryption',
    ],
  ];
  for (const [name, keyArgs, algorithm] of roots) {
    it(`signs a node CA with an operator's ${name} root, and SVIDs under it`, async () => {
      const material = opensslRoot(dir, name.replace(/\W/g, ''), keyArgs);
      // After openssl: its notBefore is the second it signed, and RSA key
      // generation can take past the next second boundary.
      const now = Date.now();
      const root = await loadRootCa(material, { trustDomain: TD, now });
      assert.equal(root.authority.signatureAlgorithm.name, algorithm);
      const nodeCa = await issueNodeCa(root.authority, { nodeName: 'n1', now, ttlMs: HOUR });
      // The issuer is the root's subject byte for byte, and the signature checks out.
      assert.ok(nodeCa.certificate.checkIssued(root.authority.certificate));
      assert.ok(nodeCa.certificate.verify(root.authority.certificate.publicKey));
      assert.equal(nodeCa.certificate.issuer, root.authority.certificate.subject);
      const text = execFileSync(OPENSSL, ['x509', '-noout', '-text'], { input: nodeCa.pem });
      assert.match(String(text), new RegExp(`Signature Algorithm: ${algorithm}`));
      // @peculiar/x509, an independent parser, reads it too.
      assert.equal(
        new x509.X509Certificate(nodeCa.certificate.raw).issuer,
        new x509.X509Certificate(root.authority.certificate.raw).subject,
      );
      const svid = await issueX509Svid(nodeCa, workloadSpiffeId(TD, 'ns', 'sa'), { now });
      writeFileSync(join(dir, 'root.pem'), material.certPem);
      writeFileSync(join(dir, 'chain.pem'), svid.chainPem);
      execFileSync(OPENSSL, [
        'verify',
        '-x509_strict',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'chain.pem'),
        join(dir, 'chain.pem'),
      ]);
    });
  }

  it('refuses a root key it cannot sign with (Ed25519)', async () => {
    const material = opensslRoot(dir, 'ed', ['-algorithm', 'ED25519']);
    await assert.rejects(
      loadRootCa(material, { trustDomain: TD, now: Date.now() }),
      meshlessError(
        'MESHLESS_E_CA',
        /unsupported signing key type ed25519; use EC P-256, EC P-384 or RSA/,
      ),
    );
  });

  it('keeps whole seconds of the validity it is given', async () => {
    const pki = await makePki();
    const svid = await issueX509Svid(pki.nodeCa, workloadSpiffeId(TD, 'ns', 'sa'), {
      now: NOW + 123,
    });
    const fields = readCertificateFields(svid.chainDer[0] as Buffer);
    assert.equal(fields.notBefore, svid.notBefore);
    assert.equal(fields.notAfter, svid.notAfter);
    assert.equal(fields.notBefore % 1000, 0);
  });

  it("gives each certificate its own memory, not a slice of Node's Buffer pool", async () => {
    const pki = await makePki();
    const svid = await issueX509Svid(pki.nodeCa, workloadSpiffeId(TD, 'ns', 'sa'), { now: NOW });
    const der = svid.chainDer[0] as Buffer;
    assert.equal(der.buffer.byteLength, der.length);
  });
});
