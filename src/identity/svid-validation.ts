/**
 * Validating a peer's X509-SVID chain (X509-SVID §5): RFC 5280 path
 * validation to the trust bundle, then the SPIFFE leaf rules, then identity.
 *
 * Synchronous on purpose, so the HBONE proxy can call it from
 * `tls.connect({ checkServerIdentity })` or right after a server handshake:
 *
 * ```ts
 * checkServerIdentity: (_host, cert) => {
 *   try {
 *     validatePeer(chainFromPeerCertificate(cert), { bundle, expectedId, now: Date.now() });
 *   } catch (err) {
 *     return err as Error; // SvidValidationError; err.reason is a metric label
 *   }
 *   return undefined;
 * }
 * ```
 *
 * Order of checks: parse, path to a bundle root (signatures, CA flags, key
 * usage, path length), validity period of every certificate on the path,
 * leaf profile, SPIFFE ID. The first failure is reported.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { MeshlessError, errorMessage } from '../errors.js';
import { readCertificateFields, type CertificateFields } from './certificate-fields.js';
import { parseSpiffeId, toSpiffeId, type SpiffeId } from './spiffe-id.js';
import type { TrustBundle } from './trust-bundle.js';

/** Why a peer's SVID was rejected: stable, low-cardinality, usable as a metric label. */
export type SvidRejectReason =
  | 'empty_chain'
  | 'malformed'
  | 'untrusted'
  | 'bad_ca'
  | 'chain_too_long'
  | 'expired'
  | 'not_yet_valid'
  | 'ca_leaf'
  | 'bad_key_usage'
  | 'bad_extended_key_usage'
  | 'no_uri_san'
  | 'multiple_uri_sans'
  | 'bad_spiffe_id'
  | 'foreign_trust_domain'
  | 'identity_mismatch';

/** Every {@link SvidRejectReason}, e.g. to pre-register metric label values. */
export const SVID_REJECT_REASONS: readonly SvidRejectReason[] = [
  'empty_chain',
  'malformed',
  'untrusted',
  'bad_ca',
  'chain_too_long',
  'expired',
  'not_yet_valid',
  'ca_leaf',
  'bad_key_usage',
  'bad_extended_key_usage',
  'no_uri_san',
  'multiple_uri_sans',
  'bad_spiffe_id',
  'foreign_trust_domain',
  'identity_mismatch',
];

/** A rejected peer SVID. `code` is `MESHLESS_E_SVID_REJECTED`; `reason` says why. */
export class SvidValidationError extends MeshlessError {
  readonly reason: SvidRejectReason;

  constructor(reason: SvidRejectReason, message: string, options?: { cause?: unknown }) {
    super('MESHLESS_E_SVID_REJECTED', `peer X509-SVID rejected (${reason}): ${message}`, {
      cause: options?.cause,
      details: { reason },
    });
    this.name = 'SvidValidationError';
    this.reason = reason;
  }
}

/** Options for {@link validatePeer}. */
export interface ValidatePeerOptions {
  /** Roots to chain to. */
  readonly bundle: TrustBundle;
  /** Trust domain the peer must belong to; default the bundle's. */
  readonly trustDomain?: string;
  /** When set, the peer's SPIFFE ID must be exactly this. */
  readonly expectedId?: SpiffeId | string;
  /** Current time, ms since the epoch. */
  readonly now: number;
  /** Most intermediates accepted between leaf and root; default 4. */
  readonly maxIntermediates?: number;
}

// keyUsage bits (RFC 5280 §4.2.1.3) as read by readCertificateFields.
const DIGITAL_SIGNATURE = 1 << 0;
const KEY_CERT_SIGN = 1 << 5;
const CRL_SIGN = 1 << 6;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * CA certificates repeat on every connection from the same node, so what is
 * a pure function of their bytes is cached: the parsed certificate (by
 * SHA-256 of the DER), its fields, and "this issuer's key verified this
 * signature" (by both fingerprints). Times and the path are still checked
 * on every call. Bounded; the oldest entry goes first.
 */
const CACHE_SIZE = 256;
const caFactsCache = new Map<string, CertificateFields>();
const parsedCache = new Map<string, X509Certificate>();
const verifiedPairs = new Set<string>();

function remember<K, V>(cache: Map<K, V>, key: K, value: V): V {
  if (cache.size >= CACHE_SIZE) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
  return value;
}

/** Parses a CA certificate of a presented chain, reusing an earlier parse of the same bytes. */
function parseCa(der: Buffer | Uint8Array): X509Certificate {
  const key = createHash('sha256').update(der).digest('base64');
  return parsedCache.get(key) ?? remember(parsedCache, key, new X509Certificate(der));
}

/** True when `issuer` issued `cert`: names, key identifiers and signature. */
function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  const key = `${cert.fingerprint256}|${issuer.fingerprint256}`;
  if (verifiedPairs.has(key)) return true;
  if (!(cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) return false;
  if (verifiedPairs.size >= CACHE_SIZE) {
    const oldest = verifiedPairs.values().next().value;
    if (oldest !== undefined) verifiedPairs.delete(oldest);
  }
  verifiedPairs.add(key);
  return true;
}

function fieldsOf(cert: X509Certificate, what: string): CertificateFields {
  try {
    return readCertificateFields(cert.raw);
  } catch (err) {
    throw new SvidValidationError('malformed', `${what} ${describe(cert)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

function caFactsOf(cert: X509Certificate): CertificateFields {
  const key = cert.fingerprint256;
  const hit = caFactsCache.get(key);
  if (hit) return hit;
  return remember(caFactsCache, key, fieldsOf(cert, 'CA'));
}

function describe(cert: X509Certificate): string {
  return `"${cert.subject || '(empty subject)'}" serial ${cert.serialNumber}`;
}

function checkValidity(what: string, notBefore: number, notAfter: number, now: number): void {
  if (now < notBefore)
    throw new SvidValidationError(
      'not_yet_valid',
      `${what} is not valid before ${new Date(notBefore).toISOString()}`,
    );
  if (now > notAfter)
    throw new SvidValidationError(
      'expired',
      `${what} expired at ${new Date(notAfter).toISOString()}`,
    );
}

function checkSigningCert(cert: X509Certificate, below: number): CertificateFields {
  const facts = caFactsOf(cert);
  if (!cert.ca || facts.basicConstraints?.ca !== true)
    throw new SvidValidationError(
      'bad_ca',
      `issuer ${describe(cert)} is not a CA (cA is not true)`,
    );
  if (facts.keyUsage === undefined || (facts.keyUsage & KEY_CERT_SIGN) === 0)
    throw new SvidValidationError('bad_ca', `issuer ${describe(cert)} lacks keyUsage keyCertSign`);
  const pathLength = facts.basicConstraints?.pathLength;
  if (pathLength !== undefined && below > pathLength)
    throw new SvidValidationError(
      'bad_ca',
      `issuer ${describe(cert)} allows ${pathLength} intermediate(s) below it, found ${below}`,
    );
  return facts;
}

/**
 * Validates a peer's certificate chain (leaf first, as sent in TLS) and
 * returns its SPIFFE ID. Throws {@link SvidValidationError}.
 */
export function validatePeer(
  chainDer: readonly (Buffer | Uint8Array)[],
  options: ValidatePeerOptions,
): SpiffeId {
  const { bundle, now } = options;
  const trustDomain = options.trustDomain ?? bundle.trustDomain;
  const maxIntermediates = options.maxIntermediates ?? 4;
  if (chainDer.length === 0)
    throw new SvidValidationError('empty_chain', 'the peer presented no certificate');

  const chain = chainDer.map((der, i) => {
    try {
      return i === 0 ? new X509Certificate(der) : parseCa(der);
    } catch (err) {
      throw new SvidValidationError(
        'malformed',
        `certificate #${i + 1} of the chain cannot be parsed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  });
  const leaf = chain[0] as X509Certificate;
  const fields = fieldsOf(leaf, 'leaf');

  // 1. Path to a bundle root; every signature and CA constraint on the way.
  const pool = chain.slice(1);
  let current = leaf;
  let intermediates = 0;
  for (;;) {
    const root = bundle.roots.find((r) => issuedBy(current, r));
    if (root) {
      const facts = checkSigningCert(root, intermediates);
      checkValidity(`root ${describe(root)}`, facts.notBefore, facts.notAfter, now);
      break;
    }
    const issuer = pool.find((c) => c !== current && issuedBy(current, c));
    if (!issuer)
      throw new SvidValidationError(
        'untrusted',
        `no issuer of ${describe(current)} in the chain or the ${trustDomain} trust bundle ` +
          '(signed by another CA, or a certificate is missing from the chain)',
      );
    if (intermediates >= maxIntermediates)
      throw new SvidValidationError(
        'chain_too_long',
        `more than ${maxIntermediates} intermediate CAs between the leaf and a root`,
      );
    const facts = checkSigningCert(issuer, intermediates);
    checkValidity(`intermediate ${describe(issuer)}`, facts.notBefore, facts.notAfter, now);
    intermediates++;
    current = issuer;
    // A peer that also sends the root: stop at it once it is recognised as ours.
    if (bundle.has(current)) break;
  }

  // 2. The leaf: validity and profile.
  checkValidity(`leaf ${describe(leaf)}`, fields.notBefore, fields.notAfter, now);
  if (leaf.ca || fields.basicConstraints?.ca === true)
    throw new SvidValidationError(
      'ca_leaf',
      `leaf ${describe(leaf)} is a CA certificate (cA=true); CAs cannot authenticate`,
    );
  const keyUsage = fields.keyUsage;
  if (keyUsage === undefined)
    throw new SvidValidationError(
      'bad_key_usage',
      `leaf ${describe(leaf)} has no keyUsage extension`,
    );
  if ((keyUsage & (KEY_CERT_SIGN | CRL_SIGN)) !== 0)
    throw new SvidValidationError(
      'bad_key_usage',
      `leaf ${describe(leaf)} may sign certificates or CRLs (keyCertSign/cRLSign set)`,
    );
  if ((keyUsage & DIGITAL_SIGNATURE) === 0)
    throw new SvidValidationError('bad_key_usage', `leaf ${describe(leaf)} lacks digitalSignature`);
  const eku = fields.extendedKeyUsage;
  if (eku) {
    if (!eku.includes(SERVER_AUTH) || !eku.includes(CLIENT_AUTH))
      throw new SvidValidationError(
        'bad_extended_key_usage',
        `leaf ${describe(leaf)} extendedKeyUsage must hold both serverAuth and clientAuth`,
      );
  }

  // 3. The SPIFFE ID: exactly one URI SAN, valid, in our trust domain.
  const uris = fields.uriSans;
  if (uris.length === 0)
    throw new SvidValidationError('no_uri_san', `leaf ${describe(leaf)} has no URI SAN`);
  if (uris.length > 1)
    throw new SvidValidationError(
      'multiple_uri_sans',
      `leaf ${describe(leaf)} has ${uris.length} URI SANs; an X509-SVID has exactly one`,
    );
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0] as string);
  } catch (err) {
    throw new SvidValidationError('bad_spiffe_id', errorMessage(err), { cause: err });
  }
  if (id.isTrustDomainId)
    throw new SvidValidationError(
      'bad_spiffe_id',
      `leaf SPIFFE ID ${id} has no path; that ID belongs to a signing authority`,
    );
  if (id.trustDomain !== trustDomain)
    throw new SvidValidationError(
      'foreign_trust_domain',
      `peer ${id} is in trust domain "${id.trustDomain}", not "${trustDomain}"`,
    );
  if (options.expectedId !== undefined) {
    const expected = toSpiffeId(options.expectedId);
    if (!id.equals(expected))
      throw new SvidValidationError('identity_mismatch', `peer is ${id}, expected ${expected}`);
  }
  return id;
}

/**
 * The DER chain (leaf first) from `tlsSocket.getPeerCertificate(true)` or
 * the certificate a `checkServerIdentity` hook receives (typed as a plain
 * PeerCertificate, but Node passes the detailed one, with
 * `issuerCertificate` links). Stops at the self-issued end of the chain.
 */
export function chainFromPeerCertificate(
  cert: PeerCertificate | DetailedPeerCertificate | undefined,
): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<PeerCertificate>();
  let current: PeerCertificate | undefined = cert;
  while (current?.raw && !seen.has(current) && out.length < 10) {
    seen.add(current);
    out.push(current.raw);
    current =
      'issuerCertificate' in current
        ? (current as DetailedPeerCertificate).issuerCertificate
        : undefined;
  }
  return out;
}
