/**
 * The `GET /certs` document of the daemon's admin endpoint, shared by the
 * daemon (which builds it) and the CLI (which parses and prints it). Public
 * material only: certificates, never keys.
 */
import type { X509Certificate } from 'node:crypto';
import { MeshlessError } from '../errors.js';
import { readCertificateFields } from './certificate-fields.js';

/** One certificate, summarised. Times are ISO 8601 UTC. */
export interface CertSummary {
  readonly subject: string;
  /** Lowercase hex, no separators. */
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly fingerprintSha256: string;
  readonly pem: string;
}

/** One workload identity held by the node. */
export interface IdentityReport {
  readonly spiffeId: string;
  /** Registered workloads (containers) using it. */
  readonly workloads: number;
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** When it is due to be renewed. */
  readonly nextRotation: string;
  /** Failed renewal attempts since the last success. */
  readonly rotationFailures: number;
  /** Leaf first, then intermediates, PEM. */
  readonly chainPem: readonly string[];
}

/** The whole report. */
export interface CertsReport {
  readonly trustDomain: string;
  readonly nodeName: string;
  /** When the report was made. */
  readonly generatedAt: string;
  readonly trustBundle: readonly CertSummary[];
  /** The node intermediate CA; null with a cluster signer (the node holds no CA). */
  readonly nodeCa: (CertSummary & { readonly nextRotation: string }) | null;
  /** How the cluster signer has been answering; null in the unsafe local-root mode. */
  readonly signer?: {
    readonly address: string;
    readonly reachable: boolean;
    readonly consecutiveFailures: number;
    readonly lastError?: string | undefined;
    readonly lastSuccessAt?: string | undefined;
  } | null;
  readonly identities: readonly IdentityReport[];
}

/** ISO time of ms since the epoch. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Summary of a parsed certificate. */
export function summarizeCertificate(cert: X509Certificate): CertSummary {
  const fields = readCertificateFields(cert.raw);
  return {
    subject: cert.subject ? cert.subject.replace(/\n/g, ', ') : '',
    serialNumber: cert.serialNumber.toLowerCase(),
    notBefore: isoTime(fields.notBefore),
    notAfter: isoTime(fields.notAfter),
    fingerprintSha256: cert.fingerprint256,
    pem: cert.toString(),
  };
}

function reportError(path: string, expected: string): MeshlessError {
  return new MeshlessError(
    'MESHLESS_E_ADMIN_RESPONSE',
    `the daemon's /certs answer is not understood: ${path} should be ${expected} ` +
      '(is the CLI the same version as the daemon?)',
    { details: { path } },
  );
}

function field(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  kind: 'string' | 'number',
): void {
  if (typeof obj[key] !== kind) throw reportError(`${path}.${key}`, `a ${kind}`);
}

function record(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw reportError(path, 'an object');
  return value as Record<string, unknown>;
}

function checkSummary(value: unknown, path: string): void {
  const obj = record(value, path);
  for (const key of [
    'subject',
    'serialNumber',
    'notBefore',
    'notAfter',
    'fingerprintSha256',
    'pem',
  ])
    field(obj, key, path, 'string');
}

/** Checks an untrusted JSON value is a {@link CertsReport}. */
export function parseCertsReport(value: unknown): CertsReport {
  const obj = record(value, 'report');
  for (const key of ['trustDomain', 'nodeName', 'generatedAt']) field(obj, key, 'report', 'string');
  if (!Array.isArray(obj.trustBundle)) throw reportError('report.trustBundle', 'an array');
  obj.trustBundle.forEach((c, i) => checkSummary(c, `report.trustBundle[${i}]`));
  if (obj.nodeCa !== null) {
    checkSummary(obj.nodeCa, 'report.nodeCa');
    field(record(obj.nodeCa, 'report.nodeCa'), 'nextRotation', 'report.nodeCa', 'string');
  }
  if (!Array.isArray(obj.identities)) throw reportError('report.identities', 'an array');
  obj.identities.forEach((v, i) => {
    const path = `report.identities[${i}]`;
    const id = record(v, path);
    for (const key of ['spiffeId', 'serialNumber', 'notBefore', 'notAfter', 'nextRotation'])
      field(id, key, path, 'string');
    field(id, 'workloads', path, 'number');
    field(id, 'rotationFailures', path, 'number');
    if (!Array.isArray(id.chainPem) || !id.chainPem.every((p) => typeof p === 'string'))
      throw reportError(`${path}.chainPem`, 'an array of strings');
  });
  return value as CertsReport;
}
