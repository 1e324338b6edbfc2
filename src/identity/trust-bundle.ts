/**
 * The trust bundle: the root certificates a trust domain's SVIDs chain to.
 * It may hold several roots at once, so a root can be rotated by first
 * distributing a bundle with both the old and the new one.
 */
import { X509Certificate } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/**
 * Every `CERTIFICATE` block of a PEM text as DER, in order. Other blocks
 * (keys, comments) are skipped.
 */
export function pemCertificatesToDer(pem: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(PEM_CERTIFICATE)) {
    out.push(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

/** DER certificate as PEM, 64 columns, trailing newline. */
export function derToPem(der: Buffer | Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Parses every certificate in a PEM text. `origin` names the file or Secret
 * for the error message.
 */
export function parsePemCertificates(pem: string, origin: string): X509Certificate[] {
  const ders = pemCertificatesToDer(pem);
  if (ders.length === 0)
    throw new MeshlessError('MESHLESS_E_CA', `${origin} holds no PEM certificate`, {
      details: { origin },
    });
  return ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (err) {
      throw new MeshlessError(
        'MESHLESS_E_CA',
        `${origin}: certificate #${i + 1} cannot be parsed: ${errorMessage(err)}`,
        { cause: err, details: { origin } },
      );
    }
  });
}

/** An immutable set of trusted root certificates for one trust domain. */
export class TrustBundle {
  /** The trust domain these roots are authoritative for. */
  readonly trustDomain: string;
  /** The roots, without duplicates, in the order first seen. */
  readonly roots: readonly X509Certificate[];
  /** The roots as one PEM text: the `ca` option of a TLS context. */
  readonly pem: string;
  readonly #fingerprints: ReadonlySet<string>;

  private constructor(trustDomain: string, roots: readonly X509Certificate[]) {
    const seen = new Set<string>();
    const unique: X509Certificate[] = [];
    for (const root of roots) {
      if (seen.has(root.fingerprint256)) continue;
      seen.add(root.fingerprint256);
      unique.push(root);
    }
    this.trustDomain = trustDomain;
    this.roots = Object.freeze(unique);
    this.pem = unique.map((r) => r.toString()).join('');
    this.#fingerprints = seen;
  }

  /**
   * A bundle of the given roots. Each must be a CA certificate; an empty
   * bundle is refused (it would trust nothing and fail every handshake).
   */
  static of(
    trustDomain: string,
    roots: readonly X509Certificate[],
    origin = 'trust bundle',
  ): TrustBundle {
    if (roots.length === 0)
      throw new MeshlessError('MESHLESS_E_CA', `${origin} holds no root certificate`, {
        details: { origin },
      });
    for (const root of roots) {
      if (!root.ca)
        throw new MeshlessError(
          'MESHLESS_E_CA',
          `${origin}: certificate "${root.subject || '(empty subject)'}" (serial ${root.serialNumber}) is not a CA ` +
            '(basicConstraints cA is not true); a trust bundle holds only CA certificates',
          { details: { origin } },
        );
    }
    return new TrustBundle(trustDomain, roots);
  }

  /** A bundle from a PEM text holding one or more root certificates. */
  static fromPem(trustDomain: string, pem: string, origin = 'trust bundle'): TrustBundle {
    return TrustBundle.of(trustDomain, parsePemCertificates(pem, origin), origin);
  }

  /** A new bundle holding these roots and `more` (for root rotation). */
  with(more: readonly X509Certificate[]): TrustBundle {
    return TrustBundle.of(this.trustDomain, [...this.roots, ...more]);
  }

  /** True when `cert` is byte-for-byte one of the roots. */
  has(cert: X509Certificate): boolean {
    return this.#fingerprints.has(cert.fingerprint256);
  }

  /** The root whose name and key issued `cert` (signature checked), if any. */
  issuerOf(cert: X509Certificate): X509Certificate | undefined {
    return this.roots.find((root) => cert.checkIssued(root) && cert.verify(root.publicKey));
  }
}
