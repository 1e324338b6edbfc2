/**
 * The signer's own TLS server certificate, signed by the root it serves
 * with: daemons already trust that root (the bundle), so they need nothing
 * else to verify the signer. It is a plain server certificate (DNS SANs,
 * serverAuth, no URI SAN), so it can never pass as an X509-SVID.
 */
import { X509Certificate } from 'node:crypto';
import type { SigningAuthority } from '../identity/certificate-authority.js';
import {
  EKU,
  KEY_USAGE,
  authorityKeyIdentifier,
  basicConstraints,
  dnsSubjectAltName,
  extendedKeyUsage,
  keyUsage,
  organizationName,
  signCertificate,
  subjectKeyIdentifier,
} from '../identity/certificate-builder.js';
import { generateP256Key, privateKeyPem } from '../identity/keys.js';
import { randomSerialNumber } from '../identity/serial-number.js';

/** Lifetime of a serving certificate; the signer makes a new one at every start and daily. */
export const SERVING_CERT_TTL_MS = 7 * 86_400_000;

export interface ServingCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: number;
}

/** A serving certificate for `dnsNames`, signed by `root`. */
export function issueServingCertificate(
  root: SigningAuthority,
  dnsNames: readonly string[],
  now: number,
): ServingCertificate {
  const key = generateP256Key();
  const notAfter = Math.min(now + SERVING_CERT_TTL_MS, root.notAfter);
  const der = signCertificate(
    {
      serialNumber: randomSerialNumber(),
      subject: organizationName('meshless', 'meshless cluster signer'),
      issuer: root.subject,
      notBefore: Math.max(now - 60_000, root.notBefore),
      notAfter,
      spki: key.spki,
      extensions: [
        dnsSubjectAltName(dnsNames),
        basicConstraints(false),
        keyUsage(KEY_USAGE.digitalSignature),
        extendedKeyUsage([EKU.serverAuth]),
        subjectKeyIdentifier(key.keyId),
        authorityKeyIdentifier(root.keyId),
      ],
    },
    root.privateKey,
    root.signatureAlgorithm,
  );
  return {
    certPem: new X509Certificate(der).toString(),
    keyPem: privateKeyPem(key.privateKey),
    notAfter,
  };
}
