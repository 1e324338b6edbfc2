/**
 * The TLS half of the HBONE server (port 15008): mutual TLS 1.3 with the
 * pod's SVID over an accepted TCP socket, ending in a verified peer or a
 * counted rejection. The HTTP/2 half (hbone-server.ts) takes the socket only
 * once the peer is verified.
 *
 * - A `tls.TLSSocket` is made here with the context the caller passes now,
 *   so a rotated SVID applies to the next handshake while established
 *   connections keep theirs. (A `tls.Server` has one shared context and,
 *   without SNI, no per-connection choice.)
 * - Client certificate requested; OpenSSL's verdict ignored;
 *   {@link validatePeer} decides (chain to the current bundle, SVID profile,
 *   our trust domain). ALPN must be h2.
 * - `onVerified` runs synchronously inside the 'secure' event, so the
 *   HTTP/2 session takes the socket over before any byte after the
 *   handshake is read (Node 20's session waits for 'secureConnect' while
 *   `secureConnecting` is true, and a hand-made server TLSSocket never
 *   clears it; we clear it here, as `tls.Server` does).
 * - The socket has an 'error' handler from creation to close: before
 *   'secure' an error is a failed handshake; after it, the session's.
 */
import type net from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import { errorMessage } from '../errors.js';
import {
  chainFromPeerCertificate,
  SvidValidationError,
  validatePeer,
} from '../identity/svid-validation.js';
import type { TrustBundle } from '../identity/trust-bundle.js';

/** The authenticated client of an HBONE connection. */
export interface HbonePeer {
  /** Verified SPIFFE ID from the client certificate. */
  readonly identity: string;
  /** Remote address of the TLS connection. */
  readonly address: string;
  readonly port: number;
  /** The `for=` node of the `forwarded` header (`ip:port`, `[v6]:port`), if sent. */
  readonly forwardedFor?: string;
}

/** Why a handshake was refused: TLS-level, or the SVID reason of {@link validatePeer}. */
export type HandshakeRejectReason =
  'tls-handshake' | 'handshake-timeout' | 'alpn' | SvidValidationError['reason'];

export interface HboneHandshakeOptions {
  /** The pod's SVID context for this handshake. */
  readonly secureContext: SecureContext;
  readonly trustDomain: string;
  readonly trustBundle: TrustBundle;
  readonly timeoutMs: number;
  /** Wall clock for certificate validity, ms. */
  readonly now: number;
  /** The peer is verified: take the socket over now (synchronously). */
  onVerified(socket: tls.TLSSocket, peer: HbonePeer): void;
  /** The handshake failed; the socket is destroyed right after. */
  onRejected(reason: HandshakeRejectReason, detail: string): void;
}

/** Starts the server handshake on `raw`; returns the TLS socket (closed on rejection). */
export function acceptHboneTls(raw: net.Socket, o: HboneHandshakeOptions): tls.TLSSocket {
  raw.setNoDelay(true);
  const address = raw.remoteAddress ?? '';
  const port = raw.remotePort ?? 0;
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    secureContext: o.secureContext,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
  });
  // Inherited from the listener's socket; HTTP/2 needs a FIN to close it.
  socket.allowHalfOpen = false;
  let secure = false;
  let rejected = false;
  const reject = (reason: HandshakeRejectReason, detail: string): void => {
    if (rejected) return;
    rejected = true;
    o.onRejected(reason, detail);
    socket.destroy();
  };
  const timer = setTimeout(() => reject('handshake-timeout', `${o.timeoutMs} ms`), o.timeoutMs);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', (err) => {
    if (!secure) reject('tls-handshake', err.message);
  });
  socket.once('secure', () => {
    secure = true;
    clearTimeout(timer);
    if (socket.alpnProtocol !== 'h2') {
      reject('alpn', String(socket.alpnProtocol));
      return;
    }
    let identity: string;
    try {
      identity = validatePeer(chainFromPeerCertificate(socket.getPeerCertificate(true)), {
        bundle: o.trustBundle,
        trustDomain: o.trustDomain,
        now: o.now,
      }).toString();
    } catch (err) {
      reject(err instanceof SvidValidationError ? err.reason : 'malformed', errorMessage(err));
      return;
    }
    Reflect.set(socket, 'secureConnecting', false);
    o.onVerified(socket, { identity, address, port });
  });
  return socket;
}
