/**
 * @peculiar/x509, a full X.509 library over WebCrypto, for the tests: they
 * read back the certificates src/identity/certificate-builder.ts makes
 * with an independent parser, and mint deliberately broken ones. Test-only:
 * the daemon does not load the library (it cost ~13 MB of idle RSS).
 *
 * @peculiar/x509 2.x depends on tsyringe, which needs the Reflect metadata
 * API at load time; `reflect-metadata` (its documented polyfill) is imported
 * first. Importing this module therefore patches the global `Reflect` once.
 */
import 'reflect-metadata';
import { webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { MeshlessError } from '../../../src/errors.js';

/** Node's WebCrypto. */
export const webCrypto: webcrypto.Crypto = webcrypto;

x509.cryptoProvider.set(webCrypto);

export { x509 };

/** A private key ready to sign certificates with @peculiar/x509. */
export interface CertificateSigner {
  readonly key: webcrypto.CryptoKey;
  /** The WebCrypto signing algorithm (with hash) matching the key. */
  readonly algorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
}

/**
 * Imports a private key for @peculiar/x509's certificate generator: EC P-256
 * (ECDSA SHA-256), EC P-384 (ECDSA SHA-384) or RSA (PKCS#1 v1.5 SHA-256).
 */
export async function certificateSigner(
  privateKey: KeyObject,
  origin: string,
): Promise<CertificateSigner> {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  let algorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
  let importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && curve === 'prime256v1') {
    importParams = { name: 'ECDSA', namedCurve: 'P-256' };
    algorithm = { name: 'ECDSA', hash: 'SHA-256' };
  } else if (type === 'ec' && curve === 'secp384r1') {
    importParams = { name: 'ECDSA', namedCurve: 'P-384' };
    algorithm = { name: 'ECDSA', hash: 'SHA-384' };
  } else if (type === 'rsa') {
    importParams = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    algorithm = importParams;
  } else {
    throw new MeshlessError('MESHLESS_E_CA', `${origin}: unsupported signing key type ${type}`);
  }
  const key = await webCrypto.subtle.importKey('pkcs8', pkcs8, importParams, false, ['sign']);
  return { key, algorithm };
}
