/**
 * Issuing workload X509-SVIDs (spiffe/spiffe `standards/X509-SVID.md`).
 *
 * Leaf profile, every field deliberate:
 * - key: fresh EC P-256 per SVID;
 * - subject: empty, so the URI SAN extension is critical (§3.1, RFC 5280
 *   §4.1.2.6), with exactly one URI SAN, the SPIFFE ID;
 * - basicConstraints critical cA=false (§4.1);
 * - keyUsage critical digitalSignature only: never keyCertSign or cRLSign,
 *   and no keyEncipherment (meaningless for ECDSA) (§4.3);
 * - extendedKeyUsage serverAuth + clientAuth (§4.4);
 * - serial: 16 random octets, positive;
 * - notBefore: issue time minus {@link SVID_BACKDATE_MS} for clock skew;
 *   notAfter: issue time plus the TTL, never after the signer's notAfter;
 * - subject and authority key identifiers.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';
import type { SigningAuthority } from './certificate-authority.js';
import {
  EKU,
  EMPTY_NAME,
  KEY_USAGE,
  authorityKeyIdentifier,
  basicConstraints,
  extendedKeyUsage,
  keyUsage,
  signCertificate,
  subjectKeyIdentifier,
  uriSubjectAltName,
} from './certificate-builder.js';
import { generateP256Key, keyIdOf, privateKeyPem, spkiOf } from './keys.js';
import { randomSerialNumber, type RandomBytes } from './serial-number.js';
import type { SpiffeId } from './spiffe-id.js';

/** How far notBefore of a leaf is set back, for clock skew between nodes. */
export const SVID_BACKDATE_MS = 60_000;
/** Default leaf lifetime (SPIRE's default): one hour. */
export const DEFAULT_SVID_TTL_MS = 3_600_000;
/** Shortest lifetime worth issuing: below this the signer is about to expire. */
export const MIN_SVID_TTL_MS = 60_000;

/** An issued X509-SVID with its private key. */
export interface X509Svid {
  readonly spiffeId: SpiffeId;
  /** The leaf, parsed. */
  readonly certificate: X509Certificate;
  /** Serial number, lowercase hex. */
  readonly serialNumber: string;
  /** Leaf then intermediates (never the root), PEM. */
  readonly chainPem: string;
  /** Leaf then intermediates, DER. */
  readonly chainDer: readonly Buffer[];
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM of the private key. Secret: never log or serve it. */
  readonly privateKeyPem: string;
  /** When it was issued, ms since the epoch (notBefore plus the backdate). */
  readonly issuedAt: number;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Options for {@link issueX509Svid}. */
export interface IssueSvidOptions {
  /** Current time, ms. */
  readonly now: number;
  readonly ttlMs?: number;
  readonly backdateMs?: number;
  readonly randomBytes?: RandomBytes;
}

const LEAF_EKU = [EKU.serverAuth, EKU.clientAuth];

function issueError(id: SpiffeId, why: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_SVID_ISSUE', `cannot issue an X509-SVID for ${id}: ${why}`, {
    cause,
    details: { spiffeId: id.toString() },
  });
}

/** A signed X509-SVID certificate, without its key (the signer's answer to a CSR). */
export interface SignedSvid {
  readonly spiffeId: SpiffeId;
  readonly certificate: X509Certificate;
  /** Serial number, lowercase hex. */
  readonly serialNumber: string;
  /** Leaf then intermediates (never the root), DER. */
  readonly chainDer: readonly Buffer[];
  readonly chainPem: string;
  readonly issuedAt: number;
  readonly notBefore: number;
  readonly notAfter: number;
}

/**
 * Signs a leaf X509-SVID for `id` over `publicKey` (a key the caller holds;
 * the signer never sees a private key), with `authority`. Every field comes
 * from the profile above and the arguments: nothing else is taken.
 */
export function signX509Svid(
  authority: SigningAuthority,
  id: SpiffeId,
  publicKey: KeyObject,
  options: IssueSvidOptions,
): SignedSvid {
  const { now } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_SVID_TTL_MS;
  const backdateMs = options.backdateMs ?? SVID_BACKDATE_MS;
  if (id.isTrustDomainId)
    throw issueError(id, 'a leaf SVID needs a path; the bare trust domain ID belongs to CAs');
  if (id.trustDomain !== authority.trustDomain)
    throw issueError(id, `the signer is authoritative for "${authority.trustDomain}" only`);
  if (!(ttlMs >= MIN_SVID_TTL_MS))
    throw issueError(id, `a TTL of ${ttlMs} ms is below the ${MIN_SVID_TTL_MS} ms minimum`);
  const notAfter = Math.min(now + ttlMs, authority.notAfter);
  if (notAfter - now < MIN_SVID_TTL_MS)
    throw issueError(
      id,
      `the signing CA expires at ${new Date(authority.notAfter).toISOString()}, too soon to issue`,
    );
  const notBefore = Math.max(now - backdateMs, authority.notBefore);
  const serialNumber = randomSerialNumber(options.randomBytes);
  let der: Buffer;
  try {
    der = signCertificate(
      {
        serialNumber,
        subject: EMPTY_NAME,
        issuer: authority.subject,
        notBefore,
        notAfter,
        spki: spkiOf(publicKey),
        extensions: [
          uriSubjectAltName([id.toString()], true),
          basicConstraints(false),
          keyUsage(KEY_USAGE.digitalSignature),
          extendedKeyUsage(LEAF_EKU),
          subjectKeyIdentifier(keyIdOf(publicKey)),
          authorityKeyIdentifier(authority.keyId),
        ],
      },
      authority.privateKey,
      authority.signatureAlgorithm,
    );
  } catch (err) {
    throw issueError(id, errorMessage(err), err);
  }
  const certificate = new X509Certificate(der);
  return {
    spiffeId: id,
    certificate,
    serialNumber,
    chainPem: certificate.toString() + authority.chainPem,
    chainDer: [der, ...authority.chainDer],
    issuedAt: now,
    notBefore: Math.floor(notBefore / 1000) * 1000,
    notAfter: Math.floor(notAfter / 1000) * 1000,
  };
}

/** Issues a leaf X509-SVID for `id` with a fresh key, signed by `authority` (the node CA). */
export async function issueX509Svid(
  authority: SigningAuthority,
  id: SpiffeId,
  options: IssueSvidOptions,
): Promise<X509Svid> {
  const key = generateP256Key();
  const signed = signX509Svid(authority, id, key.publicKey, options);
  return {
    ...signed,
    privateKey: key.privateKey,
    privateKeyPem: privateKeyPem(key.privateKey),
  };
}
