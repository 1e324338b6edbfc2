/**
 * The CA hierarchy: a cluster root (operator-supplied or generated once) and
 * a short-lived node intermediate, signed by the root, that alone issues the
 * node's workload SVIDs.
 *
 * Profiles (X509-SVID §3.2, §4):
 * - root: self-signed; basicConstraints critical cA=true; keyUsage critical
 *   keyCertSign|cRLSign; URI SAN `spiffe://<td>` (no path); 10 years when
 *   generated.
 * - node intermediate: basicConstraints critical cA=true pathLen=0; keyUsage
 *   critical keyCertSign; URI SAN `spiffe://<td>`; never outlives the root.
 * Both carry subject and authority key identifiers so validators can build
 * the chain across rotations.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';
import {
  certificateSigner,
  generateP256Key,
  keyIdOf,
  parsePrivateKeyPem,
  privateKeyPem,
  type CertificateSigner,
} from './keys.js';
import { x509 } from './pkix.js';
import { randomSerialNumber, type RandomBytes } from './serial-number.js';
import { trustDomainSpiffeId } from './spiffe-id.js';
import { TrustBundle, parsePemCertificates } from './trust-bundle.js';

/** How far notBefore of a CA certificate is set back, for clock skew between nodes. */
export const CA_BACKDATE_MS = 5 * 60_000;
/** Lifetime of a generated root. */
export const GENERATED_ROOT_TTL_MS = 10 * 365 * 86_400_000;

/** A CA certificate with its key, able to sign certificates. */
export interface SigningAuthority {
  /** Trust domain it issues for. */
  readonly trustDomain: string;
  readonly certificate: X509Certificate;
  /** PEM of this certificate. */
  readonly pem: string;
  /** Its subject, encoded exactly as in the certificate: the issuer of what it signs. */
  readonly subjectName: x509.Name;
  /** Subject key identifier: the authority key identifier of what it signs. */
  readonly keyId: Buffer;
  readonly signer: CertificateSigner;
  readonly privateKey: KeyObject;
  /** Validity, ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /**
   * PEM certificates a leaf it signs must carry after itself: this CA for an
   * intermediate, nothing for a root (peers hold the root in their bundle).
   */
  readonly chainPem: string;
  readonly chainDer: readonly Buffer[];
}

/** PEM text of a root certificate (possibly several: the bundle) and its key. */
export interface RootMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  /** Where it came from (file path, `secret ns/name`), for messages. */
  readonly origin: string;
}

/** A loaded root: the authority that signs intermediates and the bundle peers trust. */
export interface LoadedRoot {
  readonly authority: SigningAuthority;
  readonly bundle: TrustBundle;
}

function caError(message: string, origin: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_CA', message, { cause, details: { origin } });
}

/** A DN attribute value capped at the X.520 upper bound of 64 characters. */
function dnValue(value: string): string {
  return value.length <= 64 ? value : value.slice(0, 64);
}

function keyUsageOf(cert: x509.X509Certificate): number | undefined {
  return cert.getExtension(x509.KeyUsagesExtension)?.usages;
}

async function authorityFrom(
  trustDomain: string,
  pem: string,
  privateKey: KeyObject,
  includeInChain: boolean,
  origin: string,
): Promise<SigningAuthority> {
  const certificate = new X509Certificate(pem);
  const parsed = new x509.X509Certificate(certificate.raw);
  const ski = parsed.getExtension(x509.SubjectKeyIdentifierExtension);
  const keyId = ski ? Buffer.from(ski.keyId, 'hex') : keyIdOf(certificate.publicKey);
  return {
    trustDomain,
    certificate,
    pem: certificate.toString(),
    subjectName: parsed.subjectName,
    keyId,
    signer: await certificateSigner(privateKey, origin),
    privateKey,
    notBefore: parsed.notBefore.getTime(),
    notAfter: parsed.notAfter.getTime(),
    chainPem: includeInChain ? certificate.toString() : '',
    chainDer: includeInChain ? [certificate.raw] : [],
  };
}

/** Options for {@link generateRootCa}. */
export interface GenerateRootOptions {
  readonly trustDomain: string;
  /** Current time, ms. */
  readonly now: number;
  readonly ttlMs?: number;
  readonly randomBytes?: RandomBytes;
}

/**
 * Generates a self-signed EC P-256 root for a trust domain. Returns PEM
 * texts, ready to persist and to load with {@link loadRootCa}.
 */
export async function generateRootCa(options: GenerateRootOptions): Promise<RootMaterial> {
  const { trustDomain, now } = options;
  const key = generateP256Key();
  const signer = await certificateSigner(key.privateKey, 'generated root');
  const keyIdHex = key.keyId.toString('hex');
  const name: x509.JsonName = [
    { O: ['meshless'] },
    { CN: [dnValue(`meshless root ${trustDomain}`)] },
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(options.randomBytes),
    subject: name,
    issuer: name,
    notBefore: new Date(now - CA_BACKDATE_MS),
    notAfter: new Date(now + (options.ttlMs ?? GENERATED_ROOT_TTL_MS)),
    publicKey: key.spki,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      new x509.SubjectAlternativeNameExtension(
        [{ type: 'url', value: trustDomainSpiffeId(trustDomain).toString() }],
        false,
      ),
      new x509.SubjectKeyIdentifierExtension(keyIdHex),
      new x509.AuthorityKeyIdentifierExtension(keyIdHex),
    ],
  });
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: privateKeyPem(key.privateKey),
    origin: 'generated root',
  };
}

/** Options for {@link loadRootCa}. */
export interface LoadRootOptions {
  readonly trustDomain: string;
  /** Current time, ms. */
  readonly now: number;
}

/**
 * Checks and loads a root. The certificate text may hold several roots (the
 * trust bundle, e.g. old and new during a root rotation); the one whose
 * public key matches the private key signs. It must be a self-signed CA
 * certificate allowed to sign certificates and valid now.
 */
export async function loadRootCa(
  material: RootMaterial,
  options: LoadRootOptions,
): Promise<LoadedRoot> {
  const { origin } = material;
  const certs = parsePemCertificates(material.certPem, origin);
  const privateKey = parsePrivateKeyPem(material.keyPem, `${origin} (key)`);
  const signing = certs.find((c) => {
    try {
      return c.checkPrivateKey(privateKey);
    } catch {
      return false;
    }
  });
  if (!signing)
    throw caError(
      `${origin}: the private key matches none of its ${certs.length} certificate(s); ` +
        'the certificate and key files must belong together',
      origin,
    );
  const what = `${origin}: root "${signing.subject}" (serial ${signing.serialNumber})`;
  if (!signing.ca)
    throw caError(`${what} is not a CA certificate (basicConstraints cA is not true)`, origin);
  if (!(signing.checkIssued(signing) && signing.verify(signing.publicKey)))
    throw caError(
      `${what} is not self-signed; meshless needs the root itself, not an intermediate`,
      origin,
    );
  let parsed: x509.X509Certificate;
  try {
    parsed = new x509.X509Certificate(signing.raw);
  } catch (err) {
    throw caError(`${what} cannot be parsed: ${errorMessage(err)}`, origin, err);
  }
  const usage = keyUsageOf(parsed);
  if (usage !== undefined && (usage & x509.KeyUsageFlags.keyCertSign) === 0)
    throw caError(
      `${what} has a keyUsage without keyCertSign: it may not sign certificates`,
      origin,
    );
  if (options.now >= parsed.notAfter.getTime())
    throw caError(`${what} expired at ${parsed.notAfter.toISOString()}`, origin);
  if (options.now < parsed.notBefore.getTime())
    throw caError(
      `${what} is not valid before ${parsed.notBefore.toISOString()}; is this node's clock right?`,
      origin,
    );
  const authority = await authorityFrom(
    options.trustDomain,
    signing.toString(),
    privateKey,
    false,
    origin,
  );
  const bundle = TrustBundle.of(options.trustDomain, certs, origin);
  return { authority, bundle };
}

/** Options for {@link issueNodeCa}. */
export interface IssueNodeCaOptions {
  readonly nodeName: string;
  /** Current time, ms. */
  readonly now: number;
  readonly ttlMs: number;
  readonly randomBytes?: RandomBytes;
}

/**
 * Signs a fresh node intermediate CA (new EC P-256 key) with the root. Its
 * notAfter is capped at the root's.
 */
export async function issueNodeCa(
  root: SigningAuthority,
  options: IssueNodeCaOptions,
): Promise<SigningAuthority> {
  const { now, ttlMs, nodeName } = options;
  if (now >= root.notAfter)
    throw caError(`the root expired at ${new Date(root.notAfter).toISOString()}`, 'root');
  const key = generateP256Key();
  const notAfter = Math.min(now + ttlMs, root.notAfter);
  let cert: x509.X509Certificate;
  try {
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialNumber(options.randomBytes),
      subject: [{ O: ['meshless'] }, { CN: [dnValue(`meshless node ${nodeName}`)] }],
      issuer: root.subjectName,
      notBefore: new Date(Math.max(now - CA_BACKDATE_MS, root.notBefore)),
      notAfter: new Date(notAfter),
      publicKey: key.spki,
      signingKey: root.signer.key,
      signingAlgorithm: root.signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
        new x509.SubjectAlternativeNameExtension(
          [{ type: 'url', value: trustDomainSpiffeId(root.trustDomain).toString() }],
          false,
        ),
        new x509.SubjectKeyIdentifierExtension(key.keyId.toString('hex')),
        new x509.AuthorityKeyIdentifierExtension(root.keyId.toString('hex')),
      ],
    });
  } catch (err) {
    throw caError(`cannot sign the node CA for ${nodeName}: ${errorMessage(err)}`, 'root', err);
  }
  return authorityFrom(
    root.trustDomain,
    cert.toString('pem'),
    key.privateKey,
    true,
    `node CA ${nodeName}`,
  );
}
