// Shared fixtures for identity tests: a root, a node CA, and a way to mint
// deliberately broken leaves with @peculiar/x509.
import { X509Certificate } from 'node:crypto';
import {
  generateRootCa,
  issueNodeCa,
  loadRootCa,
  type LoadedRoot,
  type SigningAuthority,
} from '../../../src/identity/certificate-authority.js';
import { generateP256Key, type GeneratedKey } from '../../../src/identity/keys.js';
import { certificateSigner, x509 } from './pkix.js';
import { randomSerialNumber } from '../../../src/identity/serial-number.js';

export const TD = 'cluster.local';
export const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
export const HOUR = 3_600_000;

export interface Pki extends LoadedRoot {
  readonly nodeCa: SigningAuthority;
}

/** A fresh root and node CA for trust domain `td`. */
export async function makePki(td = TD, now = NOW): Promise<Pki> {
  const material = await generateRootCa({ trustDomain: td, now });
  const root = await loadRootCa(material, { trustDomain: td, now });
  const nodeCa = await issueNodeCa(root.authority, { nodeName: 'node-a', now, ttlMs: 24 * HOUR });
  return { ...root, nodeCa };
}

export interface LeafSpec {
  readonly uris?: readonly string[];
  readonly dns?: readonly string[];
  readonly ca?: boolean;
  /** undefined = digitalSignature; null = no extension */
  readonly keyUsage?: number | null;
  /** undefined = serverAuth+clientAuth; null = no extension */
  readonly eku?: readonly string[] | null;
  readonly notBefore?: number;
  readonly notAfter?: number;
  readonly basicConstraints?: boolean;
  /** The leaf's key; default a fresh one (pass one to use the leaf in a TLS handshake). */
  readonly key?: GeneratedKey;
}

/** A leaf signed by `issuer` with exactly the fields of `spec`; returns DER. */
export async function makeLeaf(issuer: SigningAuthority, spec: LeafSpec = {}): Promise<Buffer> {
  const key = spec.key ?? generateP256Key();
  const extensions: x509.Extension[] = [];
  const uris = spec.uris ?? [`spiffe://${issuer.trustDomain}/ns/default/sa/web`];
  const names = [
    ...uris.map((value) => ({ type: 'url' as const, value })),
    ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, true));
  if (spec.basicConstraints !== false)
    extensions.push(new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true));
  if (spec.keyUsage !== null)
    extensions.push(
      new x509.KeyUsagesExtension(spec.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true),
    );
  if (spec.eku !== null)
    extensions.push(
      new x509.ExtendedKeyUsageExtension(
        [...(spec.eku ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])],
        false,
      ),
    );
  extensions.push(new x509.AuthorityKeyIdentifierExtension(issuer.keyId.toString('hex')));
  const signer = await certificateSigner(issuer.privateKey, 'issuer');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: names.length === 0 ? 'CN=no-san' : [],
    issuer: new x509.X509Certificate(issuer.certificate.raw).subjectName,
    notBefore: new Date(spec.notBefore ?? NOW - 60_000),
    notAfter: new Date(spec.notAfter ?? NOW + HOUR),
    publicKey: key.spki,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    extensions,
  });
  return Buffer.from(cert.rawData);
}

/** PEM of a DER certificate. */
export function pemOf(der: Buffer): string {
  return new X509Certificate(der).toString();
}
