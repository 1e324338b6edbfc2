/**
 * The one place that loads `@peculiar/x509`, the certificate builder.
 *
 * Node's `crypto` can generate keys, sign and parse certificates but cannot
 * build one; node-forge can build certificates but not ECDSA ones. So
 * certificates are assembled with @peculiar/x509 over Node's WebCrypto.
 *
 * @peculiar/x509 2.x depends on tsyringe, which needs the Reflect metadata
 * API at load time; `reflect-metadata` (its documented polyfill) is imported
 * first. Importing this module therefore patches the global `Reflect` once;
 * every other identity module reaches @peculiar/x509 through here.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Node's WebCrypto. */
export const webCrypto: webcrypto.Crypto = webcrypto;

x509.cryptoProvider.set(webCrypto);

export { x509 };
