/**
 * The client end of HBONE: one mutual-TLS 1.3 + HTTP/2 connection to a
 * peer's port 15008 ({@link connectHbone}), and CONNECT streams over it
 * ({@link openConnectStream}). {@link HbonePool} decides which connection a
 * tunnel uses; this file only knows how to build them.
 *
 * Verified on Node 20: `tls.connect({ socket })` sends no SNI unless
 * `servername` is given (the `host` option is ignored for an existing
 * socket), and `http2.connect` with `createConnection` never sets one; the
 * test suite checks the ClientHello. Peer verification is ours, not
 * OpenSSL's (`rejectUnauthorized: false`): {@link validatePeer} with the
 * destination's SPIFFE ID as the only acceptable identity.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type net from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import { errorMessage, isErrno } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  chainFromPeerCertificate,
  SvidValidationError,
  validatePeer,
} from '../identity/svid-validation.js';
import type { TrustBundle } from '../identity/trust-bundle.js';
import { HboneError, statusReason } from './hbone-error.js';
import {
  CLIENT_HTTP2_SETTINGS,
  CONNECTION_WINDOW_BYTES,
  SESSION_MEMORY_MB,
  connectRequestHeaders,
  formatAuthority,
  type HostPort,
} from './hbone-protocol.js';

/** Everything needed to open one HBONE tunnel. */
export interface TunnelRequest {
  /** SPIFFE ID of the source workload (the client certificate's). */
  readonly sourceIdentity: string;
  /** SPIFFE ID the destination must present, exactly. */
  readonly destinationIdentity: string;
  /** Source pod IP the connection is opened from (part of the pool key). */
  readonly sourceIp: string;
  /** Destination pod IP and 15008. */
  readonly hboneAddress: HostPort;
  /** The CONNECT `:authority`: destination pod IP and application port. */
  readonly target: HostPort;
  /** The application client's address, sent as `forwarded: for="..."`. */
  readonly forwardedFor: { readonly ip: string; readonly port: number };
  /** W3C baggage to send, if any. */
  readonly baggage?: string;
  /** TLS context presenting the source SVID (the current one). */
  readonly secureContext: SecureContext;
  /** Trust domain the destination must belong to. */
  readonly trustDomain: string;
  /** The current trust bundle. */
  readonly trustBundle: () => TrustBundle;
  /**
   * A raw TCP socket, already connected to `hboneAddress` (the daemon opens
   * it inside the source pod's netns, marked). Called only when the pool
   * needs a new connection.
   */
  readonly connectSocket: () => Promise<net.Socket>;
}

/** Options of {@link connectHbone}. */
export interface HboneConnectOptions {
  /** Deadline for TCP connect + TLS handshake + HTTP/2 preface; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Streams the client allows itself before the peer's SETTINGS arrive. */
  readonly maxStreams?: number;
  /** Wall clock for certificate validity, ms. */
  readonly now?: () => number;
  readonly log?: Logger;
}

/** An established HBONE connection. */
export interface HboneConnection {
  readonly session: ClientHttp2Session;
  /** The verified SPIFFE ID of the peer. */
  readonly peerIdentity: string;
}

function connectTimeoutError(address: HostPort, ms: number, phase: string): HboneError {
  return new HboneError(
    'connect-timeout',
    `HBONE connection to ${formatAuthority(address)} timed out after ${ms} ms (${phase}); ` +
      `maybe a NetworkPolicy is blocking HBONE port ${address.port}`,
    { details: { address: formatAuthority(address), phase } },
  );
}

/**
 * Opens one HBONE connection for `req`: raw socket from `req.connectSocket`,
 * TLS 1.3 with the source SVID, ALPN h2, the peer's SVID validated against
 * `req.destinationIdentity`, then an HTTP/2 session with HBONE settings.
 * Rejects with {@link HboneError}; everything opened is destroyed on failure.
 */
export function connectHbone(
  req: TunnelRequest,
  options: HboneConnectOptions = {},
): Promise<HboneConnection> {
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const address = req.hboneAddress;
  const where = formatAuthority(address);

  return new Promise<HboneConnection>((resolve, reject) => {
    let phase = 'tcp';
    let raw: net.Socket | undefined;
    let tlsSocket: tls.TLSSocket | undefined;
    let session: ClientHttp2Session | undefined;
    let done = false;

    const fail = (err: HboneError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session?.destroy();
      tlsSocket?.destroy();
      raw?.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(connectTimeoutError(address, timeoutMs, phase)), timeoutMs);

    req.connectSocket().then(
      (socket) => {
        if (done) {
          socket.destroy();
          return;
        }
        raw = socket;
        startTls(socket);
      },
      (err: unknown) =>
        fail(
          new HboneError(
            isErrno(err, 'ETIMEDOUT') ? 'connect-timeout' : 'connect-failed',
            `cannot connect to HBONE ${where}: ${errorMessage(err)}` +
              (isErrno(err, 'ETIMEDOUT')
                ? `; maybe a NetworkPolicy is blocking HBONE port ${address.port}`
                : ''),
            { cause: err, details: { address: where } },
          ),
        ),
    );

    const startTls = (socket: net.Socket): void => {
      phase = 'tls';
      socket.setNoDelay(true);
      const t = tls.connect({
        socket,
        secureContext: req.secureContext,
        ALPNProtocols: ['h2'],
        // Our own verification below; OpenSSL's would also demand a hostname.
        rejectUnauthorized: false,
        // No SNI: Node sends none for an existing socket without servername.
      });
      tlsSocket = t;
      // A TLS socket inherits allowHalfOpen from the raw one; HTTP/2 only
      // notices a peer's FIN when the socket closes, so never stay half-open.
      t.allowHalfOpen = false;
      t.once('error', (err) => {
        fail(
          new HboneError('tls-handshake', `TLS handshake with ${where} failed: ${err.message}`, {
            cause: err,
            details: { address: where },
          }),
        );
      });
      t.once('close', () => {
        fail(
          new HboneError(
            'tls-handshake',
            `HBONE peer ${where} closed the connection during the handshake`,
            {
              details: { address: where },
            },
          ),
        );
      });
      t.once('secureConnect', () => onSecure(t));
    };

    const onSecure = (t: tls.TLSSocket): void => {
      if (done) return;
      if (t.alpnProtocol !== 'h2') {
        fail(
          new HboneError('alpn', `HBONE peer ${where} did not negotiate ALPN h2`, {
            details: { address: where, alpn: t.alpnProtocol },
          }),
        );
        return;
      }
      let peerIdentity: string;
      try {
        peerIdentity = validatePeer(chainFromPeerCertificate(t.getPeerCertificate(true)), {
          bundle: req.trustBundle(),
          trustDomain: req.trustDomain,
          expectedId: req.destinationIdentity,
          now: now(),
        }).toString();
      } catch (err) {
        const svidReason = err instanceof SvidValidationError ? err.reason : 'malformed';
        fail(
          new HboneError(
            'peer-identity',
            `HBONE peer ${where} is not ${req.destinationIdentity}: ${errorMessage(err)}`,
            { cause: err, details: { address: where, svidReason } },
          ),
        );
        return;
      }
      phase = 'http2';
      t.removeAllListeners('close');
      t.removeAllListeners('error');
      // Errors after the handshake surface through the session.
      t.on('error', () => undefined);
      const s = http2.connect(`https://${where}`, {
        createConnection: () => t,
        settings: CLIENT_HTTP2_SETTINGS,
        maxSessionMemory: SESSION_MEMORY_MB,
        peerMaxConcurrentStreams: options.maxStreams ?? 100,
      });
      session = s;
      s.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      s.once('error', (err) =>
        fail(
          new HboneError('session-closed', `HTTP/2 session with ${where} failed: ${err.message}`, {
            cause: err,
            details: { address: where },
          }),
        ),
      );
      s.once('close', () =>
        fail(
          new HboneError(
            'session-closed',
            `HTTP/2 session with ${where} closed before it started`,
            {
              details: { address: where },
            },
          ),
        ),
      );
      s.once('connect', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.removeAllListeners('close');
        options.log?.debug({ address: where, peer: peerIdentity }, 'HBONE connection established');
        resolve({ session: s, peerIdentity });
      });
    };
  });
}

/** Options of {@link openConnectStream}. */
export interface OpenStreamOptions {
  /** Deadline for the response headers; default 10 s. */
  readonly responseTimeoutMs?: number;
}

/**
 * Sends the HBONE CONNECT for `req.target` on `session` and resolves with
 * the stream once the peer answered 200. Any other status, a reset, or no
 * answer within the deadline rejects with {@link HboneError}; the stream
 * is then closed.
 */
export function openConnectStream(
  session: ClientHttp2Session,
  req: Pick<TunnelRequest, 'target' | 'forwardedFor' | 'baggage' | 'hboneAddress'>,
  options: OpenStreamOptions = {},
): Promise<ClientHttp2Stream> {
  const timeoutMs = options.responseTimeoutMs ?? 10_000;
  const authority = formatAuthority(req.target);
  const via = formatAuthority(req.hboneAddress);
  return new Promise<ClientHttp2Stream>((resolve, reject) => {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        connectRequestHeaders({
          target: req.target,
          forwardedFor: req.forwardedFor,
          ...(req.baggage === undefined ? {} : { baggage: req.baggage }),
        }),
        { endStream: false },
      );
    } catch (err) {
      reject(
        new HboneError(
          session.destroyed || session.closed ? 'session-closed' : 'reset',
          `cannot open an HBONE stream to ${authority} via ${via}: ${errorMessage(err)}`,
          { cause: err, details: { authority } },
        ),
      );
      return;
    }
    let settled = false;
    const settle = (err: HboneError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.removeListener('close', onClose);
      stream.removeListener('error', onError);
      // Errors after this point are the relay's business (it reads
      // `stream.errored`); until it attaches, none may go unhandled.
      stream.on('error', () => undefined);
      if (err) {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      } else resolve(stream);
    };
    const onError = (err: Error): void =>
      settle(
        new HboneError('reset', `HBONE stream to ${authority} via ${via} failed: ${err.message}`, {
          cause: err,
          details: { authority },
        }),
      );
    const onClose = (): void =>
      settle(
        new HboneError(
          'reset',
          `HBONE stream to ${authority} via ${via} was reset before a response (code ${stream.rstCode ?? 'none'})`,
          { details: { authority, rstCode: stream.rstCode } },
        ),
      );
    const timer = setTimeout(
      () =>
        settle(
          new HboneError(
            'response-timeout',
            `HBONE peer ${via} did not answer the CONNECT to ${authority} within ${timeoutMs} ms`,
            { details: { authority } },
          ),
        ),
      timeoutMs,
    );
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('response', (headers) => {
      const status = Number(headers[':status']);
      if (status === 200) {
        settle(undefined);
        return;
      }
      settle(
        new HboneError(
          statusReason(status),
          `HBONE peer ${via} answered ${status} to the CONNECT to ${authority}`,
          { details: { authority, status } },
        ),
      );
    });
  });
}
