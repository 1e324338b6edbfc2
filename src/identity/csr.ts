/**
 * PKCS#10 certificate signing requests (RFC 2986), the two halves the
 * cluster signer protocol needs: the node daemon builds one per workload key
 * (the key never leaves the node), the signer checks proof of possession.
 *
 * Invariants:
 * - The signer uses nothing of a CSR but its public key: subject, attributes
 *   and requested extensions (SANs, basicConstraints cA) are never read
 *   into a certificate. {@link checkCsr} returns the key alone.
 * - A CSR is accepted only when its signature verifies with its own
 *   public key (proof of possession), that key is EC P-256 and the signature
 *   algorithm is ecdsa-with-SHA256: the one profile of our workload keys.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';
import { children, decodeOid, readTlv, type Tlv } from './certificate-fields.js';
import { EMPTY_NAME, uriSubjectAltName } from './certificate-builder.js';
import { bitString, element, oid, sequence, set, smallInteger } from './der-writer.js';
import { spkiOf } from './keys.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** Why a CSR was refused (the signer's answer and its metric label). */
export type CsrRefusal = 'malformed' | 'signature_algorithm' | 'key_type' | 'proof_of_possession';

/** A CSR the signer refused; `reason` is stable. */
export class CsrError extends MeshlessError {
  readonly reason: CsrRefusal;
  constructor(reason: CsrRefusal, message: string, cause?: unknown) {
    super('MESHLESS_E_CSR', message, { cause, details: { reason } });
    this.reason = reason;
  }
}

/** Options for {@link buildCsr}. */
export interface BuildCsrOptions {
  /**
   * URI SANs to request (the SPIFFE ID, as istio-agent and ztunnel do). The
   * signer ignores them; they only make the request self-describing.
   */
  readonly uriSans?: readonly string[];
  /** Extra requested extensions, DER (certificate-builder helpers). */
  readonly extensions?: readonly Buffer[];
}

/** A DER PKCS#10 request for `privateKey`'s public key, signed by it. */
export function buildCsr(
  privateKey: KeyObject,
  publicKey: KeyObject,
  options: BuildCsrOptions = {},
): Buffer {
  const extensions = [
    ...(options.uriSans && options.uriSans.length > 0
      ? [uriSubjectAltName(options.uriSans, false)]
      : []),
    ...(options.extensions ?? []),
  ];
  const attributes =
    extensions.length === 0
      ? element(0xa0)
      : element(0xa0, sequence(oid(EXTENSION_REQUEST), set(sequence(...extensions))));
  const info = sequence(smallInteger(0), EMPTY_NAME, spkiOf(publicKey), attributes);
  const signature = sign('sha256', info, privateKey);
  return sequence(info, sequence(oid(ECDSA_WITH_SHA256)), bitString(signature));
}

/** PEM `CERTIFICATE REQUEST` of a DER CSR. */
export function csrToPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

const PEM_CSR =
  /^\s*-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END (?:NEW )?CERTIFICATE REQUEST-----\s*$/;

/** DER of a PEM CSR; throws CsrError `malformed`. */
export function csrFromPem(pem: string): Buffer {
  const m = PEM_CSR.exec(pem);
  if (!m) throw new CsrError('malformed', 'the CSR is not one PEM CERTIFICATE REQUEST block');
  return Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
}

function slice(der: Buffer, tlv: Tlv, whole = true): Buffer {
  return der.subarray(whole ? tlv.offset : tlv.start, tlv.end);
}

/**
 * Checks a DER CSR and returns its public key: structure, signature
 * algorithm ecdsa-with-SHA256, key EC P-256, and the signature by that key
 * over the request info (proof of possession). Throws CsrError.
 */
export function checkCsr(der: Buffer): KeyObject {
  let info: Tlv;
  let algorithm: string;
  let signature: Buffer;
  let spki: Buffer;
  try {
    const outer = readTlv(der, 0, der.length);
    if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not one SEQUENCE');
    const [i, alg, sig, ...extra] = children(der, outer);
    if (!i || !alg || !sig || extra.length > 0 || i.tag !== 0x30 || alg.tag !== 0x30)
      throw new Error('CertificationRequest is not {info, algorithm, signature}');
    if (sig.tag !== 0x03 || der[sig.start] !== 0) throw new Error('signature is not a BIT STRING');
    const algOid = children(der, alg)[0];
    if (!algOid || algOid.tag !== 0x06) throw new Error('signatureAlgorithm without an OID');
    const [version, subject, keyInfo, attributes] = children(der, i);
    if (
      !version ||
      version.tag !== 0x02 ||
      version.end - version.start !== 1 ||
      der[version.start] !== 0
    )
      throw new Error('version is not 0');
    if (!subject || subject.tag !== 0x30) throw new Error('subject is not a Name');
    if (!keyInfo || keyInfo.tag !== 0x30) throw new Error('no SubjectPublicKeyInfo');
    if (!attributes || attributes.tag !== 0xa0) throw new Error('no attributes');
    info = i;
    algorithm = decodeOid(der, algOid);
    signature = der.subarray(sig.start + 1, sig.end);
    spki = slice(der, keyInfo);
  } catch (err) {
    throw new CsrError('malformed', `the CSR is not a PKCS#10 request: ${errorMessage(err)}`, err);
  }
  if (algorithm !== ECDSA_WITH_SHA256)
    throw new CsrError(
      'signature_algorithm',
      `the CSR is signed with ${algorithm}; only ecdsa-with-SHA256 (EC P-256 keys) is accepted`,
    );
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new CsrError(
      'malformed',
      `the CSR's public key cannot be read: ${errorMessage(err)}`,
      err,
    );
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1')
    throw new CsrError(
      'key_type',
      `the CSR's key is ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}; workload keys must be EC P-256`,
    );
  let ok = false;
  try {
    ok = verify('sha256', slice(der, info), key, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new CsrError(
      'proof_of_possession',
      'the CSR signature does not verify with its own public key (no proof of possession)',
    );
  return key;
}
