import assert from 'node:assert/strict';
import type { DetailedPeerCertificate } from 'node:tls';
import { before, describe, it } from 'node:test';
import { issueNodeCa } from '../../../src/identity/certificate-authority.js';
import { generateP256Key } from '../../../src/identity/keys.js';
import { certificateSigner, x509 } from './pkix.js';
import { parseSpiffeId, workloadSpiffeId } from '../../../src/identity/spiffe-id.js';
import {
  SVID_REJECT_REASONS,
  SvidValidationError,
  chainFromPeerCertificate,
  validatePeer,
  type SvidRejectReason,
} from '../../../src/identity/svid-validation.js';
import { issueX509Svid } from '../../../src/identity/x509-svid.js';
import { HOUR, makeLeaf, makePki, NOW, TD, type Pki } from './pki-fixtures.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const KU = x509.KeyUsageFlags;

function reasonOf(fn: () => unknown): SvidRejectReason {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SvidValidationError, `a SvidValidationError, got ${String(err)}`);
    assert.equal(err.code, 'MESHLESS_E_SVID_REJECTED');
    assert.equal(err.details?.reason, err.reason);
    assert.ok(SVID_REJECT_REASONS.includes(err.reason));
    return err.reason;
  }
  assert.fail('expected the chain to be rejected');
}

describe('validatePeer', () => {
  let pki: Pki;
  let other: Pki;
  let otherTd: Pki;
  let good: Buffer[];

  before(async () => {
    [pki, other, otherTd] = await Promise.all([makePki(), makePki(), makePki('other.example')]);
    const svid = await issueX509Svid(pki.nodeCa, parseSpiffeId(WEB), { now: NOW });
    good = [...svid.chainDer];
  });

  it('accepts an SVID of the node CA and returns its SPIFFE ID', () => {
    const opts = { bundle: pki.bundle, now: NOW };
    assert.equal(validatePeer(good, opts).toString(), WEB);
    assert.equal(validatePeer(good, { ...opts, expectedId: WEB }).toString(), WEB);
    assert.equal(validatePeer(good, { ...opts, expectedId: parseSpiffeId(WEB) }).toString(), WEB);
    assert.equal(validatePeer(good, opts).toString(), WEB, 'again, through the caches');
  });

  it('accepts a chain that also carries the root, and other SAN types beside the URI', async () => {
    const root = pki.authority.certificate.raw;
    assert.equal(validatePeer([...good, root], { bundle: pki.bundle, now: NOW }).toString(), WEB);
    const withDns = await makeLeaf(pki.nodeCa, { dns: ['web.default.svc'] });
    assert.equal(
      validatePeer([withDns, pki.nodeCa.certificate.raw], {
        bundle: pki.bundle,
        now: NOW,
      }).toString(),
      WEB,
    );
  });

  it('accepts a leaf without extendedKeyUsage (optional in X509-SVID §4.4)', async () => {
    const leaf = await makeLeaf(pki.nodeCa, { eku: null });
    assert.equal(
      validatePeer([leaf, pki.nodeCa.certificate.raw], { bundle: pki.bundle, now: NOW }).toString(),
      WEB,
    );
  });

  it('trusts any root of a multi-root bundle (root rotation)', () => {
    const both = other.bundle.with(pki.bundle.roots);
    assert.equal(both.roots.length, 2);
    assert.equal(validatePeer(good, { bundle: both, now: NOW }).toString(), WEB);
  });

  // [name, chain builder, reason, options]
  const cases: readonly [
    string,
    () => Promise<Buffer[]>,
    SvidRejectReason,
    { now?: number; expectedId?: string; maxIntermediates?: number }?,
  ][] = [
    ['an empty chain', async () => [], 'empty_chain'],
    ['garbage bytes', async () => [Buffer.from('not a certificate')], 'malformed'],
    [
      'a leaf of another root, same trust domain',
      async () => {
        const s = await issueX509Svid(other.nodeCa, parseSpiffeId(WEB), { now: NOW });
        return [...s.chainDer];
      },
      'untrusted',
    ],
    [
      'a leaf of a foreign trust domain and root',
      async () => {
        const s = await issueX509Svid(
          otherTd.nodeCa,
          parseSpiffeId('spiffe://other.example/ns/default/sa/web'),
          { now: NOW },
        );
        return [...s.chainDer];
      },
      'untrusted',
    ],
    ['a leaf without its node CA', async () => good.slice(0, 1), 'untrusted'],
    [
      'a foreign trust domain ID signed by our CA',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: ['spiffe://evil.example/ns/default/sa/web'] }),
        pki.nodeCa.certificate.raw,
      ],
      'foreign_trust_domain',
    ],
    [
      'two URI SANs',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: [WEB, `spiffe://${TD}/ns/default/sa/admin`] }),
        pki.nodeCa.certificate.raw,
      ],
      'multiple_uri_sans',
    ],
    [
      'no URI SAN',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: [], dns: ['web'] }),
        pki.nodeCa.certificate.raw,
      ],
      'no_uri_san',
    ],
    [
      'no SAN at all',
      async () => [await makeLeaf(pki.nodeCa, { uris: [] }), pki.nodeCa.certificate.raw],
      'no_uri_san',
    ],
    [
      'a CA certificate as leaf',
      async () => [
        await makeLeaf(pki.nodeCa, { ca: true, keyUsage: KU.digitalSignature }),
        pki.nodeCa.certificate.raw,
      ],
      'ca_leaf',
    ],
    [
      'a leaf with keyCertSign',
      async () => [
        await makeLeaf(pki.nodeCa, { keyUsage: KU.digitalSignature | KU.keyCertSign }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_key_usage',
    ],
    [
      'a leaf with cRLSign',
      async () => [
        await makeLeaf(pki.nodeCa, { keyUsage: KU.digitalSignature | KU.cRLSign }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_key_usage',
    ],
    [
      'a leaf without keyUsage',
      async () => [await makeLeaf(pki.nodeCa, { keyUsage: null }), pki.nodeCa.certificate.raw],
      'bad_key_usage',
    ],
    [
      'a leaf without digitalSignature',
      async () => [
        await makeLeaf(pki.nodeCa, { keyUsage: KU.keyAgreement }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_key_usage',
    ],
    [
      'EKU without clientAuth',
      async () => [
        await makeLeaf(pki.nodeCa, { eku: [x509.ExtendedKeyUsage.serverAuth] }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_extended_key_usage',
    ],
    ['an expired leaf', async () => good, 'expired', { now: NOW + 2 * HOUR }],
    ['a not-yet-valid leaf', async () => good, 'not_yet_valid', { now: NOW - 5 * 60_000 }],
    [
      'an expired node CA',
      async () => {
        const ca = await issueNodeCa(pki.authority, {
          nodeName: 'old',
          now: NOW - 2 * HOUR,
          ttlMs: HOUR,
        });
        return [await makeLeaf(ca), ca.certificate.raw];
      },
      'expired',
    ],
    [
      'a non-SPIFFE URI',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: ['https://web.example'] }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_spiffe_id',
    ],
    [
      'a trailing slash ID',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: [`spiffe://${TD}/ns/a/`] }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_spiffe_id',
    ],
    [
      'the trust domain ID on a leaf',
      async () => [
        await makeLeaf(pki.nodeCa, { uris: [`spiffe://${TD}`] }),
        pki.nodeCa.certificate.raw,
      ],
      'bad_spiffe_id',
    ],
    [
      'another identity than expected',
      async () => good,
      'identity_mismatch',
      { expectedId: `spiffe://${TD}/ns/default/sa/db` },
    ],
    [
      'an intermediate below a pathLen:0 node CA',
      async () => {
        const sub = await issueNodeCa(pki.nodeCa, { nodeName: 'sub', now: NOW, ttlMs: HOUR });
        return [await makeLeaf(sub), sub.certificate.raw, pki.nodeCa.certificate.raw];
      },
      'bad_ca',
    ],
    [
      'more intermediates than allowed',
      async () => good,
      'chain_too_long',
      { maxIntermediates: 0 },
    ],
  ];

  for (const [name, build, reason, opts] of cases) {
    it(`rejects ${name}: ${reason}`, async () => {
      const chain = await build();
      assert.equal(
        reasonOf(() => validatePeer(chain, { bundle: pki.bundle, now: NOW, ...opts })),
        reason,
      );
    });
  }

  it('rejects a leaf signed by another leaf (not a CA)', async () => {
    const middle = await issueX509Svid(pki.nodeCa, workloadSpiffeId(TD, 'a', 'b'), { now: NOW });
    const forged = await x509.X509CertificateGenerator.create({
      serialNumber: '4001',
      subject: [],
      issuer: new x509.X509Certificate(middle.certificate.raw).subjectName,
      notBefore: new Date(NOW - 1000),
      notAfter: new Date(NOW + HOUR),
      publicKey: generateP256Key().spki,
      signingKey: (await certificateSigner(middle.privateKey, 'middle')).key,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }], true)],
    });
    const chain = [Buffer.from(forged.rawData), ...middle.chainDer];
    assert.ok(
      ['untrusted', 'bad_ca'].includes(
        reasonOf(() => validatePeer(chain, { bundle: pki.bundle, now: NOW })),
      ),
    );
  });

  it('messages name what is wrong', () => {
    assert.throws(
      () => validatePeer(good, { bundle: pki.bundle, now: NOW + 2 * HOUR }),
      /peer X509-SVID rejected \(expired\): leaf .* expired at /,
    );
  });
});

describe('chainFromPeerCertificate', () => {
  it('walks issuerCertificate until the self-issued end', () => {
    const root = { raw: Buffer.from('root') } as DetailedPeerCertificate;
    root.issuerCertificate = root;
    const mid = { raw: Buffer.from('mid'), issuerCertificate: root } as DetailedPeerCertificate;
    const leaf = { raw: Buffer.from('leaf'), issuerCertificate: mid } as DetailedPeerCertificate;
    assert.deepEqual(chainFromPeerCertificate(leaf).map(String), ['leaf', 'mid', 'root']);
    assert.deepEqual(chainFromPeerCertificate(undefined), []);
  });
});
