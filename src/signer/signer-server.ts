/**
 * The signer's gRPC endpoint over node:http2 (TLS 1.3, ALPN h2): the one
 * unary method `IstioCertificateService/CreateCertificate`
 * (istio-ca-protocol.ts), answered by a ClusterSigner. Anything else gets a
 * gRPC status, never a hang: unknown path UNIMPLEMENTED, a body over the cap
 * RESOURCE_EXHAUSTED, a malformed one INVALID_ARGUMENT, and the request is
 * cut after {@link REQUEST_TIMEOUT_MS}.
 */
import { once } from 'node:events';
import {
  constants as h2,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.js';
import { SignerRefusal, type ClusterSigner, type SignerAnswer } from './cluster-signer.js';
import {
  CREATE_CERTIFICATE_PATH,
  GRPC_STATUS,
  MAX_MESSAGE_BYTES,
  TRUST_BUNDLE_HEADER,
  decodeRequest,
  encodeResponse,
  frameMessage,
  unframeMessage,
} from './istio-ca-protocol.js';

/** How long one request may take to arrive, ms. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** What the server reports per request (log and metrics). */
export interface SignerOutcome {
  readonly outcome: 'issued' | 'refused';
  readonly reason: string;
  readonly grpcStatus: number;
  readonly node?: string;
  readonly spiffeId?: string;
  readonly serialNumber?: string;
  readonly message?: string;
  readonly identity?: string;
  readonly seconds: number;
}

export interface SignerServerOptions {
  readonly signer: ClusterSigner;
  /** Serving certificate and key, PEM (serving-certificate.ts). */
  readonly certPem: string;
  readonly keyPem: string;
  readonly onOutcome?: (o: SignerOutcome) => void;
}

export interface RunningSignerServer {
  readonly server: Http2SecureServer;
  readonly port: number;
  /** Replaces the serving certificate for new connections. */
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

function trailersOnly(stream: ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    {
      [h2.HTTP2_HEADER_STATUS]: 200,
      [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      'grpc-status': String(status),
      'grpc-message': encodeURIComponent(message),
    },
    { endStream: true },
  );
}

function bearerOf(headers: IncomingHttpHeaders): string {
  const auth = headers[h2.HTTP2_HEADER_AUTHORIZATION];
  const value = Array.isArray(auth) ? auth[0] : auth;
  const m = /^Bearer\s+(\S+)$/i.exec(value ?? '');
  return m?.[1] ?? '';
}

async function readBody(stream: ServerHttp2Stream): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the cap the rest is read and dropped (the request timeout bounds
  // it): leaving the loop would destroy the stream before the answer.
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    size += b.length;
    if (size <= MAX_MESSAGE_BYTES + 5) chunks.push(b);
  }
  return size > MAX_MESSAGE_BYTES + 5 ? undefined : Buffer.concat(chunks);
}

/** Starts the server on `host:port` (port 0: any). */
export async function startSignerServer(
  o: SignerServerOptions,
  host: string,
  port: number,
): Promise<RunningSignerServer> {
  const server = createSecureServer({
    cert: o.certPem,
    key: o.keyPem,
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['h2'],
    allowHTTP1: false,
  });
  const report = (x: SignerOutcome): void => {
    try {
      o.onOutcome?.(x);
    } catch {
      // a reporting failure never changes an answer
    }
  };
  server.on('stream', (stream, headers) => {
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    stream.on('error', () => undefined);
    stream.setTimeout(REQUEST_TIMEOUT_MS, () => {
      trailersOnly(stream, GRPC_STATUS.unavailable, 'request timed out');
      stream.close(h2.NGHTTP2_CANCEL);
    });
    const path = headers[h2.HTTP2_HEADER_PATH];
    const type = String(headers[h2.HTTP2_HEADER_CONTENT_TYPE] ?? '');
    if (headers[h2.HTTP2_HEADER_METHOD] !== 'POST' || path !== CREATE_CERTIFICATE_PATH) {
      stream.resume();
      return trailersOnly(stream, GRPC_STATUS.unimplemented, `unknown method ${String(path)}`);
    }
    if (!type.startsWith('application/grpc')) {
      stream.resume();
      return trailersOnly(
        stream,
        GRPC_STATUS.invalidArgument,
        'content-type must be application/grpc',
      );
    }
    const credential = bearerOf(headers);
    void (async () => {
      let identity: string | undefined;
      try {
        const body = await readBody(stream);
        if (body === undefined)
          throw new SignerRefusal(GRPC_STATUS.resourceExhausted, 'too_large', 'request too large');
        let request;
        try {
          request = decodeRequest(unframeMessage(body));
        } catch (err) {
          throw new SignerRefusal(GRPC_STATUS.invalidArgument, 'malformed', errorMessage(err), err);
        }
        identity = request.metadata['ImpersonatedIdentity'];
        const answer: SignerAnswer = await o.signer.createCertificate(credential, request);
        if (stream.destroyed) return;
        stream.respond(
          {
            [h2.HTTP2_HEADER_STATUS]: 200,
            [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
            [TRUST_BUNDLE_HEADER]: Buffer.from(answer.trustBundlePem).toString('base64'),
          },
          { waitForTrailers: true },
        );
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frameMessage(encodeResponse({ certChain: answer.certChain })));
        report({
          outcome: 'issued',
          reason: 'issued',
          grpcStatus: 0,
          node: answer.node,
          spiffeId: answer.spiffeId,
          serialNumber: answer.serialNumber,
          seconds: seconds(),
        });
      } catch (err) {
        const refusal =
          err instanceof SignerRefusal
            ? err
            : new SignerRefusal(GRPC_STATUS.internal, 'internal', errorMessage(err), err);
        trailersOnly(stream, refusal.grpcStatus, refusal.message);
        report({
          outcome: 'refused',
          reason: refusal.reason,
          grpcStatus: refusal.grpcStatus,
          message: refusal.message,
          ...(identity === undefined ? {} : { identity }),
          seconds: seconds(),
        });
      }
    })();
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
  });
  server.on('sessionError', () => undefined);
  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    setCertificate(certPem, keyPem) {
      server.setSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        // Sessions still open (clients keep theirs) would hold close() forever.
        for (const s of sessions) s.destroy();
      });
    },
  };
}
