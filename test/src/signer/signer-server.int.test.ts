/**
 * The signer's gRPC endpoint against malformed or unauthorised calls, with
 * a raw node:http2 client: every one gets a gRPC status, none an SVID.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileDiscoverySource } from '../../../src/discovery/file-source.js';
import { generateRootCa, loadRootCa } from '../../../src/identity/certificate-authority.js';
import { buildCsr, csrToPem } from '../../../src/identity/csr.js';
import { generateP256Key } from '../../../src/identity/keys.js';
import { silentLogger } from '../../../src/logger.js';
import { ClusterSigner } from '../../../src/signer/cluster-signer.js';
import {
  CREATE_CERTIFICATE_PATH,
  GRPC_STATUS,
  MAX_MESSAGE_BYTES,
  encodeRequest,
  frameMessage,
} from '../../../src/signer/istio-ca-protocol.js';
import {
  JoinCredentialAttestor,
  joinBearer,
  joinMacKey,
  makeJoinCredential,
  newJoinKey,
} from '../../../src/signer/join-credential.js';
import { issueServingCertificate } from '../../../src/signer/serving-certificate.js';
import {
  startSignerServer,
  type RunningSignerServer,
  type SignerOutcome,
} from '../../../src/signer/signer-server.js';
import { podObject } from '../../support/fake-kube-apiserver.js';

describe('signer gRPC endpoint: refusals', () => {
  let dir: string;
  let discovery: FileDiscoverySource;
  let server: RunningSignerServer;
  let session: ClientHttp2Session;
  const outcomes: SignerOutcome[] = [];
  const joinKey = newJoinKey();
  const credential = makeJoinCredential({
    node: 'node-a',
    macKey: joinMacKey(joinKey),
    now: Date.now(),
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-signer-server-'));
    const items = [
      podObject({ namespace: 'shop', name: 'web-1', serviceAccount: 'web', nodeName: 'node-a' }),
    ];
    writeFileSync(
      join(dir, 'cluster.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    );
    discovery = new FileDiscoverySource(join(dir, 'cluster.json'), silentLogger);
    await discovery.start();
    const material = await generateRootCa({ trustDomain: 'cluster.local', now: Date.now() });
    const root = await loadRootCa(material, { trustDomain: 'cluster.local', now: Date.now() });
    const signer = new ClusterSigner({
      trustDomain: 'cluster.local',
      root,
      attestors: [new JoinCredentialAttestor({ macKey: joinMacKey(joinKey) })],
      discovery,
    });
    const serving = issueServingCertificate(root.authority, ['meshless-ca'], Date.now());
    server = await startSignerServer(
      {
        signer,
        certPem: serving.certPem,
        keyPem: serving.keyPem,
        onOutcome: (o) => outcomes.push(o),
      },
      '127.0.0.1',
      0,
    );
    session = connect(`https://127.0.0.1:${server.port}`, {
      ca: material.certPem,
      servername: 'meshless-ca',
    });
  });
  after(async () => {
    session.close();
    await server.close();
    discovery.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One call; resolves with its grpc-status and message. */
  function call(
    path: string,
    body: Buffer,
    authorization?: string,
  ): Promise<{ status: number; message: string; data: number }> {
    return new Promise((resolve, reject) => {
      const stream = session.request({
        [h2.HTTP2_HEADER_METHOD]: 'POST',
        [h2.HTTP2_HEADER_PATH]: path,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        ...(authorization ? { authorization } : {}),
      });
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      let data = 0;
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => (data += c.length));
      stream.on('error', reject);
      stream.on('close', () =>
        resolve({
          status: Number(trailers['grpc-status'] ?? headers['grpc-status']),
          message: decodeURIComponent(
            String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''),
          ),
          data,
        }),
      );
      stream.end(body);
    });
  }

  const request = (identity: string, csr: string): Buffer =>
    frameMessage(
      encodeRequest({
        csr,
        validityDurationSeconds: 3600,
        metadata: { ImpersonatedIdentity: identity },
      }),
    );
  const key = generateP256Key();
  const csr = csrToPem(buildCsr(key.privateKey, key.publicKey));

  it('issues for a good request (the baseline the refusals differ from)', async () => {
    const r = await call(
      CREATE_CERTIFICATE_PATH,
      request('spiffe://cluster.local/ns/shop/sa/web', csr),
      `Bearer ${joinBearer(credential, csr, Date.now())}`,
    );
    assert.equal(r.status, GRPC_STATUS.ok, r.message);
    assert.ok(r.data > 0);
  });

  it('an unknown method: UNIMPLEMENTED', async () => {
    const r = await call('/istio.v1.auth.IstioCertificateService/Other', Buffer.alloc(0));
    assert.equal(r.status, GRPC_STATUS.unimplemented);
  });

  it('no credential: UNAUTHENTICATED, nothing signed', async () => {
    const r = await call(
      CREATE_CERTIFICATE_PATH,
      request('spiffe://cluster.local/ns/shop/sa/web', csr),
    );
    assert.equal(r.status, GRPC_STATUS.unauthenticated);
    assert.equal(r.data, 0);
    assert.equal(outcomes.at(-1)?.reason, 'attestation_no_credential');
  });

  it('a malformed body: INVALID_ARGUMENT', async () => {
    const r = await call(CREATE_CERTIFICATE_PATH, Buffer.from([1, 2, 3]), 'Bearer x');
    assert.equal(r.status, GRPC_STATUS.invalidArgument);
  });

  it('a CSR signed by another key: INVALID_ARGUMENT (proof of possession)', async () => {
    const other = generateP256Key();
    const bad = csrToPem(buildCsr(other.privateKey, key.publicKey));
    const r = await call(
      CREATE_CERTIFICATE_PATH,
      request('spiffe://cluster.local/ns/shop/sa/web', bad),
      `Bearer ${joinBearer(credential, bad, Date.now())}`,
    );
    assert.equal(r.status, GRPC_STATUS.invalidArgument);
    assert.match(r.message, /proof of possession/);
  });

  it('an identity without a pod on the node: PERMISSION_DENIED', async () => {
    const r = await call(
      CREATE_CERTIFICATE_PATH,
      request('spiffe://cluster.local/ns/shop/sa/db', csr),
      `Bearer ${joinBearer(credential, csr, Date.now())}`,
    );
    assert.equal(r.status, GRPC_STATUS.permissionDenied);
    assert.equal(outcomes.at(-1)?.reason, 'not_on_node');
  });

  it('a body over the cap: RESOURCE_EXHAUSTED', async () => {
    const r = await call(CREATE_CERTIFICATE_PATH, Buffer.alloc(MAX_MESSAGE_BYTES + 64), 'Bearer x');
    assert.equal(r.status, GRPC_STATUS.resourceExhausted);
  });
});
