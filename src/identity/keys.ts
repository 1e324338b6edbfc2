/**
 * Keys: workload and node-CA keys are EC P-256 (the SPIFFE/SPIRE default),
 * generated with Node's crypto. A root loaded from an operator's files may
 * also be EC P-384 or RSA; it only ever signs node intermediates.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';

/** A freshly generated key pair, with the encodings certificate building needs. */
export interface GeneratedKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of the public key. */
  readonly spki: Buffer;
  /** RFC 5280 §4.2.1.2 method 1 key identifier: SHA-1 of the public key bits. */
  readonly keyId: Buffer;
}

/**
 * Generates an EC P-256 key pair. Synchronous on purpose: it takes tens of
 * microseconds, less than a thread-pool round trip.
 */
export function generateP256Key(): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, spki: spkiOf(publicKey), keyId: keyIdOf(publicKey) };
}

/** DER SubjectPublicKeyInfo of a public key. */
export function spkiOf(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

/**
 * Key identifier per RFC 5280 §4.2.1.2 (1): SHA-1 over the BIT STRING
 * subjectPublicKey, without tag, length and unused-bits octets. The key bits
 * are the tail of the SPKI, so parse the outer SEQUENCE just enough to skip
 * the AlgorithmIdentifier.
 */
export function keyIdOf(publicKey: KeyObject): Buffer {
  const spki = spkiOf(publicKey);
  return createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}

/** Reads a DER length at `offset`; returns [length, offset after it]. */
function derLength(der: Buffer, offset: number): [number, number] {
  const first = der[offset];
  if (first === undefined) throw new RangeError('truncated DER');
  if (first < 0x80) return [first, offset + 1];
  const octets = first & 0x7f;
  let length = 0;
  for (let i = 1; i <= octets; i++) {
    const b = der[offset + i];
    if (b === undefined) throw new RangeError('truncated DER');
    length = length * 256 + b;
  }
  return [length, offset + 1 + octets];
}

function subjectPublicKeyBits(spki: Buffer): Buffer {
  // SEQUENCE { AlgorithmIdentifier SEQUENCE, BIT STRING }
  let [, p] = derLength(spki, 1);
  const [algLength, algBody] = derLength(spki, p + 1);
  p = algBody + algLength;
  if (spki[p] !== 0x03) throw new RangeError('SPKI without a BIT STRING');
  const [bitsLength, bitsBody] = derLength(spki, p + 1);
  // Skip the unused-bits octet.
  return spki.subarray(bitsBody + 1, bitsBody + bitsLength);
}

/** PEM PKCS#8 of a private key (for tls.createSecureContext and persisting roots). */
export function privateKeyPem(privateKey: KeyObject): string {
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Parses a PEM private key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1).
 * `origin` names where it came from, for the error.
 */
export function parsePrivateKeyPem(pem: string, origin: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new MeshlessError(
      'MESHLESS_E_CA',
      `${origin} does not hold a PEM private key: ${errorMessage(err)}`,
      { cause: err, details: { origin } },
    );
  }
}
