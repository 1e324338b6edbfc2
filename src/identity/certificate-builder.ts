/**
 * Building and signing X.509 v3 certificates (RFC 5280 §4.1) with Node's
 * `crypto.sign`, over the DER encoder of `der-writer.ts`.
 *
 * Our certificates use a handful of fields and extensions, all encoded
 * here; the profiles (which extension, critical or not) live with their
 * issuers (`certificate-authority.ts`, `x509-svid.ts`). A general library
 * (@peculiar/x509 with asn1js, tsyringe and reflect-metadata) did this
 * before: loading it cost the daemon ~13 MB of idle resident memory for
 * work that is a few hundred bytes of DER. The tests read every certificate
 * built here back with @peculiar/x509 and Node's X509Certificate.
 */
import { sign, type KeyObject } from 'node:crypto';
import {
  NULL,
  boolean,
  bitString,
  explicit,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from './der-writer.js';

/** RFC 5280 keyUsage bits (bit i of the BIT STRING is `1 << i`), as @peculiar/x509 numbers them. */
export const KEY_USAGE = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

/** extendedKeyUsage purposes (RFC 5280 §4.2.1.12). */
export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** How a CA key signs: the digest for `crypto.sign` and the AlgorithmIdentifier, DER. */
export interface SignatureAlgorithm {
  /** e.g. `ecdsa-with-SHA256`, for messages. */
  readonly name: string;
  readonly hash: 'sha256' | 'sha384';
  /** AlgorithmIdentifier as it appears in the TBSCertificate and the Certificate. */
  readonly identifier: Buffer;
}

/** A signing key's algorithm: EC P-256, EC P-384 or RSA; undefined for anything else. */
export function signatureAlgorithmOf(privateKey: KeyObject): SignatureAlgorithm | undefined {
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && curve === 'prime256v1')
    return {
      name: 'ecdsa-with-SHA256',
      hash: 'sha256',
      identifier: sequence(oid('1.2.840.10045.4.3.2')),
    };
  if (type === 'ec' && curve === 'secp384r1')
    return {
      name: 'ecdsa-with-SHA384',
      hash: 'sha384',
      identifier: sequence(oid('1.2.840.10045.4.3.3')),
    };
  if (type === 'rsa')
    return {
      name: 'sha256WithRSAEncryption',
      hash: 'sha256',
      identifier: sequence(oid('1.2.840.113549.1.1.11'), NULL),
    };
  return undefined;
}

/** A distinguished name of `O` then `CN` attributes, UTF8String values. */
export function organizationName(organization: string, commonName: string): Buffer {
  return sequence(
    set(sequence(oid('2.5.4.10'), utf8String(organization))),
    set(sequence(oid('2.5.4.3'), utf8String(commonName))),
  );
}

/** The empty name (an X509-SVID's subject). */
export const EMPTY_NAME: Buffer = sequence();

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** basicConstraints (2.5.29.19), critical. cA FALSE is the DEFAULT, so it is omitted. */
export function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  const items = ca ? [boolean(true)] : [];
  if (ca && pathLength !== undefined) items.push(smallInteger(pathLength));
  return extension('2.5.29.19', true, sequence(...items));
}

/** keyUsage (2.5.29.15), critical. */
export function keyUsage(flags: number): Buffer {
  return extension('2.5.29.15', true, namedBits(flags));
}

/** extendedKeyUsage (2.5.29.37), not critical. */
export function extendedKeyUsage(purposes: readonly string[]): Buffer {
  return extension('2.5.29.37', false, sequence(...purposes.map(oid)));
}

/** subjectAltName (2.5.29.17) of uniformResourceIdentifier names. */
export function uriSubjectAltName(uris: readonly string[], critical: boolean): Buffer {
  const names = uris.map((u) => implicitPrimitive(6, Buffer.from(u, 'latin1')));
  return extension('2.5.29.17', critical, sequence(...names));
}

/** subjectAltName (2.5.29.17) of dNSName names, not critical (a server certificate's). */
export function dnsSubjectAltName(names: readonly string[]): Buffer {
  return extension(
    '2.5.29.17',
    false,
    sequence(...names.map((n) => implicitPrimitive(2, Buffer.from(n, 'latin1')))),
  );
}

/** subjectKeyIdentifier (2.5.29.14). */
export function subjectKeyIdentifier(keyId: Buffer): Buffer {
  return extension('2.5.29.14', false, octetString(keyId));
}

/** authorityKeyIdentifier (2.5.29.35) with keyIdentifier only. */
export function authorityKeyIdentifier(keyId: Buffer): Buffer {
  return extension('2.5.29.35', false, sequence(implicitPrimitive(0, keyId)));
}

/** What a certificate says. Times are ms since the epoch (whole seconds are kept). */
export interface CertificateContents {
  /** Serial number, hex, positive. */
  readonly serialNumber: string;
  /** The issuer's subject Name, DER, exactly as in the issuer's certificate. */
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  /** Encoded extensions, in order (see the helpers above). */
  readonly extensions: readonly Buffer[];
}

/** Builds the TBSCertificate and signs it; returns the certificate, DER. */
export function signCertificate(
  contents: CertificateContents,
  signerKey: KeyObject,
  algorithm: SignatureAlgorithm,
): Buffer {
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(Buffer.from(contents.serialNumber, 'hex')),
    algorithm.identifier,
    contents.issuer,
    sequence(time(contents.notBefore), time(contents.notAfter)),
    contents.subject,
    contents.spki,
    explicit(3, sequence(...contents.extensions)),
  );
  const signature = sign(algorithm.hash, tbs, signerKey);
  const der = sequence(tbs, algorithm.identifier, bitString(signature));
  // Small Buffers are slices of Node's shared 8 KiB pool: a certificate kept
  // for an SVID's lifetime would keep its whole slab. Give it its own memory.
  const own = Buffer.allocUnsafeSlow(der.length);
  der.copy(own);
  return own;
}
