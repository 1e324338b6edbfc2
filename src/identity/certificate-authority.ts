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
  KEY_USAGE,
  authorityKeyIdentifier,
  basicConstraints,
  keyUsage,
  organizationName,
  signCertificate,
  signatureAlgorithmOf,
  subjectKeyIdentifier,
  uriSubjectAltName,
  type SignatureAlgorithm,
} from './certificate-builder.js';
import { readAuthorityFields, readCertificateFields } from './certificate-fields.js';
import { generateP256Key, keyIdOf, parsePrivateKeyPem, privateKeyPem } from './keys.js';
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
  /** Its subject Name, DER, exactly as in the certificate: the issuer of what it signs. */
  readonly subject: Buffer;
  /** Subject key identifier: the authority key identifier of what it signs. */
  readonly keyId: Buffer;
  /** How its key signs (from the key type). */
  readonly signatureAlgorithm: SignatureAlgorithm;
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

/**
 * The signature algorithm of a CA key: EC P-256 (ECDSA SHA-256), EC P-384
 * (ECDSA SHA-384) or RSA (PKCS#1 v1.5 SHA-256). `origin` names where the key
 * came from, for the error.
 */
function signingAlgorithm(privateKey: KeyObject, origin: string): SignatureAlgorithm {
  const algorithm = signatureAlgorithmOf(privateKey);
  if (algorithm) return algorithm;
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  throw caError(
    `${origin}: unsupported signing key type ${type ?? 'unknown'}${curve ? ` (${curve})` : ''}; ` +
      'use EC P-256, EC P-384 or RSA',
    origin,
  );
}

function authorityFrom(
  trustDomain: string,
  certificate: X509Certificate,
  privateKey: KeyObject,
  includeInChain: boolean,
  origin: string,
): SigningAuthority {
  const { notBefore, notAfter } = readCertificateFields(certificate.raw);
  const { subject, subjectKeyId } = readAuthorityFields(certificate.raw);
  const pem = certificate.toString();
  return {
    trustDomain,
    certificate,
    pem,
    subject,
    keyId: subjectKeyId ?? keyIdOf(certificate.publicKey),
    signatureAlgorithm: signingAlgorithm(privateKey, origin),
    privateKey,
    notBefore,
    notAfter,
    chainPem: includeInChain ? pem : '',
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
  const name = organizationName('meshless', dnValue(`meshless root ${trustDomain}`));
  const der = signCertificate(
    {
      serialNumber: randomSerialNumber(options.randomBytes),
      subject: name,
      issuer: name,
      notBefore: now - CA_BACKDATE_MS,
      notAfter: now + (options.ttlMs ?? GENERATED_ROOT_TTL_MS),
      spki: key.spki,
      extensions: [
        basicConstraints(true),
        keyUsage(KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign),
        uriSubjectAltName([trustDomainSpiffeId(trustDomain).toString()], false),
        subjectKeyIdentifier(key.keyId),
        authorityKeyIdentifier(key.keyId),
      ],
    },
    key.privateKey,
    signingAlgorithm(key.privateKey, 'generated root'),
  );
  return {
    certPem: new X509Certificate(der).toString(),
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
  let fields: ReturnType<typeof readCertificateFields>;
  try {
    fields = readCertificateFields(signing.raw);
    readAuthorityFields(signing.raw);
  } catch (err) {
    throw caError(`${what} cannot be parsed: ${errorMessage(err)}`, origin, err);
  }
  if (fields.keyUsage !== undefined && (fields.keyUsage & KEY_USAGE.keyCertSign) === 0)
    throw caError(
      `${what} has a keyUsage without keyCertSign: it may not sign certificates`,
      origin,
    );
  if (options.now >= fields.notAfter)
    throw caError(`${what} expired at ${new Date(fields.notAfter).toISOString()}`, origin);
  if (options.now < fields.notBefore)
    throw caError(
      `${what} is not valid before ${new Date(fields.notBefore).toISOString()}; is this node's clock right?`,
      origin,
    );
  const authority = authorityFrom(options.trustDomain, signing, privateKey, false, origin);
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
  let der: Buffer;
  try {
    der = signCertificate(
      {
        serialNumber: randomSerialNumber(options.randomBytes),
        subject: organizationName('meshless', dnValue(`meshless node ${nodeName}`)),
        issuer: root.subject,
        notBefore: Math.max(now - CA_BACKDATE_MS, root.notBefore),
        notAfter,
        spki: key.spki,
        extensions: [
          basicConstraints(true, 0),
          keyUsage(KEY_USAGE.keyCertSign),
          uriSubjectAltName([trustDomainSpiffeId(root.trustDomain).toString()], false),
          subjectKeyIdentifier(key.keyId),
          authorityKeyIdentifier(root.keyId),
        ],
      },
      root.privateKey,
      root.signatureAlgorithm,
    );
  } catch (err) {
    throw caError(`cannot sign the node CA for ${nodeName}: ${errorMessage(err)}`, 'root', err);
  }
  return authorityFrom(
    root.trustDomain,
    new X509Certificate(der),
    key.privateKey,
    true,
    `node CA ${nodeName}`,
  );
}
