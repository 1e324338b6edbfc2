/**
 * The node daemon's side of the signer protocol: make a workload key, send
 * its CSR with the node's credential, get the SVID chain and the trust
 * bundle back. The private key never leaves this process.
 *
 * One HTTP/2 session to the signer, opened on demand and re-opened after it
 * closes; TLS 1.3 verifying the signer's certificate against the current
 * trust bundle and its DNS name (`serverName`). Each call is bounded by
 * `timeoutMs`.
 *
 * Errors: `MESHLESS_E_SIGNER_UNAVAILABLE` (cannot connect, timed out, gRPC
 * UNAVAILABLE: retry later) or `MESHLESS_E_SIGNER_REFUSED` (the signer said
 * no; `details.grpcStatus` and the signer's message say why).
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { MeshlessError, errorMessage } from '../errors.js';
import { buildCsr, csrToPem } from '../identity/csr.js';
import { generateP256Key, privateKeyPem } from '../identity/keys.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { pemCertificatesToDer } from '../identity/trust-bundle.js';
import type { X509Svid } from '../identity/x509-svid.js';
import {
  CREATE_CERTIFICATE_PATH,
  GRPC_STATUS,
  IMPERSONATED_IDENTITY,
  TRUST_BUNDLE_HEADER,
  decodeResponse,
  encodeRequest,
  frameMessage,
  unframeMessage,
} from './istio-ca-protocol.js';

/** The credential for one request (a join proof is bound to the CSR). */
export type NodeCredential = (csrPem: string, now: number) => Promise<string> | string;

export interface SignerClientOptions {
  /** `host:port` of the signer. */
  readonly address: string;
  /** DNS name in the signer's certificate. */
  readonly serverName: string;
  /** The roots to verify the signer with (PEM); called per connection. */
  readonly trustBundlePem: () => string;
  readonly credential: NodeCredential;
  /** Per request, ms; default 10 s. */
  readonly timeoutMs?: number;
  readonly clock?: () => number;
}

/** An issued SVID with the bundle the signer sent. */
export interface SignerIssued {
  readonly svid: X509Svid;
  /** Every root the signer publishes, PEM; undefined when it sent none. */
  readonly trustBundlePem: string | undefined;
}

function unavailable(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_SIGNER_UNAVAILABLE', message, { cause });
}

export class SignerClient {
  readonly #o: SignerClientOptions;
  #session: ClientHttp2Session | undefined;
  #closed = false;

  constructor(o: SignerClientOptions) {
    this.#o = o;
  }

  #connect(): ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const session = connect(`https://${this.#o.address}`, {
      ca: this.#o.trustBundlePem(),
      servername: this.#o.serverName,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
    });
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    session.unref();
    this.#session = session;
    return session;
  }

  /** Drops the connection (after the trust bundle changed, or to stop). */
  reset(): void {
    const s = this.#session;
    this.#session = undefined;
    s?.close();
  }

  close(): void {
    this.#closed = true;
    this.reset();
  }

  /**
   * Makes a key for `id`, asks the signer to sign it and returns the SVID
   * (key, leaf, chain without the root) and the published bundle.
   */
  async issue(id: SpiffeId, ttlMs: number): Promise<SignerIssued> {
    if (this.#closed) throw unavailable('the signer client is closed');
    const key = generateP256Key();
    const csr = csrToPem(buildCsr(key.privateKey, key.publicKey, { uriSans: [id.toString()] }));
    const now = (this.#o.clock ?? Date.now)();
    const bearer = await this.#o.credential(csr, now);
    const body = frameMessage(
      encodeRequest({
        csr,
        validityDurationSeconds: Math.floor(ttlMs / 1000),
        metadata: { [IMPERSONATED_IDENTITY]: id.toString() },
      }),
    );
    const { chain, bundle } = await this.#call(body, bearer);
    return { svid: svidFrom(id, key.privateKey, chain, now), trustBundlePem: bundle };
  }

  #call(body: Buffer, bearer: string): Promise<{ chain: string[]; bundle: string | undefined }> {
    const timeoutMs = this.#o.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let session: ClientHttp2Session;
      try {
        session = this.#connect();
      } catch (err) {
        return reject(
          unavailable(`cannot connect to the signer ${this.#o.address}: ${errorMessage(err)}`, err),
        );
      }
      let settled = false;
      const done = (
        err: Error | undefined,
        value?: { chain: string[]; bundle: string | undefined },
      ) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else if (value) resolve(value);
      };
      // A session error destroys its streams: each call hears it on its own
      // stream ('error', then 'close' without a status), never through a
      // listener per call on the shared session.
      const timer = setTimeout(() => {
        stream.close(h2.NGHTTP2_CANCEL);
        done(unavailable(`signer ${this.#o.address} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const stream = session.request({
        [h2.HTTP2_HEADER_METHOD]: 'POST',
        [h2.HTTP2_HEADER_PATH]: CREATE_CERTIFICATE_PATH,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        te: 'trailers',
        [h2.HTTP2_HEADER_AUTHORIZATION]: `Bearer ${bearer}`,
      });
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err) =>
        done(unavailable(`signer ${this.#o.address}: ${errorMessage(err)}`, err)),
      );
      stream.on('close', () => {
        const statusText = trailers['grpc-status'] ?? headers['grpc-status'];
        if (statusText === undefined)
          return done(unavailable(`signer ${this.#o.address} closed the call without a status`));
        const status = Number(statusText);
        const message = decodeURIComponent(
          String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''),
        );
        if (status !== GRPC_STATUS.ok) {
          const code =
            status === GRPC_STATUS.unavailable
              ? 'MESHLESS_E_SIGNER_UNAVAILABLE'
              : 'MESHLESS_E_SIGNER_REFUSED';
          return done(
            new MeshlessError(code, `the signer refused: ${message || `gRPC status ${status}`}`, {
              details: { grpcStatus: status },
            }),
          );
        }
        try {
          const response = decodeResponse(unframeMessage(Buffer.concat(chunks)));
          const bundleB64 = headers[TRUST_BUNDLE_HEADER];
          done(undefined, {
            chain: [...response.certChain],
            bundle:
              typeof bundleB64 === 'string'
                ? Buffer.from(bundleB64, 'base64').toString('utf8')
                : undefined,
          });
        } catch (err) {
          done(
            new MeshlessError(
              'MESHLESS_E_SIGNER_REFUSED',
              `the signer's answer cannot be read: ${errorMessage(err)}`,
              { cause: err },
            ),
          );
        }
      });
      stream.end(body);
    });
  }
}

/**
 * The SVID from the signer's chain: the leaf must carry exactly our key and
 * identity (checked here, so a wrong answer never reaches TLS); the last
 * self-signed element (the root) is dropped from what we present.
 */
function svidFrom(
  id: SpiffeId,
  privateKey: KeyObject,
  chainPem: readonly string[],
  now: number,
): X509Svid {
  // Own memory for each DER: small Buffers are slices of Node's shared 8 KiB
  // pool, and one kept for an SVID's lifetime would keep its whole slab.
  const ders = chainPem
    .flatMap((p) => pemCertificatesToDer(p))
    .map((d) => {
      const own = Buffer.allocUnsafeSlow(d.length);
      d.copy(own);
      return own;
    });
  const leafDer = ders[0];
  if (!leafDer)
    throw new MeshlessError('MESHLESS_E_SIGNER_REFUSED', 'the signer sent no certificate');
  const certificate = new X509Certificate(leafDer);
  if (!certificate.checkPrivateKey(privateKey))
    throw new MeshlessError('MESHLESS_E_SIGNER_REFUSED', 'the signer answered for another key');
  const san = certificate.subjectAltName ?? '';
  if (san !== `URI:${id.toString()}`)
    throw new MeshlessError(
      'MESHLESS_E_SIGNER_REFUSED',
      `the signer answered with identity "${san}", asked for ${id.toString()}`,
    );
  const chainDer = ders.filter((d, i) => {
    if (i === 0) return true;
    const c = new X509Certificate(d);
    return !(c.checkIssued(c) && c.verify(c.publicKey));
  });
  const notBefore = Date.parse(certificate.validFrom);
  const notAfter = Date.parse(certificate.validTo);
  return {
    spiffeId: id,
    certificate,
    serialNumber: certificate.serialNumber.toLowerCase(),
    chainDer,
    chainPem: chainDer.map((d) => new X509Certificate(d).toString()).join(''),
    privateKey,
    privateKeyPem: privateKeyPem(privateKey),
    issuedAt: now,
    notBefore,
    notAfter,
  };
}
