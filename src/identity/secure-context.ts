/**
 * TLS contexts for HBONE. One `tls.SecureContext` is built per SVID (by the
 * identity service, lazily, soon after issuance) and shared by every
 * connection that presents that SVID: building one per connection costs a
 * quarter or more of the handshake rate. On rotation a new context is built
 * and swapped in; connections already established keep the old one until
 * they close.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TrustBundle } from './trust-bundle.js';
import type { X509Svid } from './x509-svid.js';

/** TLS 1.3 suites HBONE allows (istio/ztunnel `src/tls`). */
export const HBONE_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384';

/**
 * A TLS 1.3-only context presenting `svid` (leaf plus intermediates) and
 * trusting `bundle` for the peer's certificate.
 */
export function buildSecureContext(
  svid: Pick<X509Svid, 'chainPem' | 'privateKeyPem'>,
  bundle: TrustBundle,
): SecureContext {
  return createSecureContext({
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: HBONE_CIPHERSUITES,
    cert: svid.chainPem,
    key: svid.privateKeyPem,
    ca: bundle.pem,
  });
}
