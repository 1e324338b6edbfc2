// Mutual TLS 1.3 with SVID contexts on loopback: both sides validate the
// peer with validatePeer, and swapping the server's context (rotation)
// leaves an established connection working while new ones get the new SVID.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TLSSocket, connect, type SecureContext } from 'node:tls';
import { buildSecureContext } from '../../../src/identity/secure-context.js';
import { workloadSpiffeId, type SpiffeId } from '../../../src/identity/spiffe-id.js';
import { chainFromPeerCertificate, validatePeer } from '../../../src/identity/svid-validation.js';
import { issueX509Svid, type X509Svid } from '../../../src/identity/x509-svid.js';
import { makePki, TD, type Pki } from './pki-fixtures.js';

describe('SVID secure contexts over TLS 1.3', () => {
  let pki: Pki;
  let server: Server;
  let port: number;
  let current: SecureContext;
  let serverOld: X509Svid;
  let serverNew: X509Svid;
  let client: X509Svid;
  const sockets = new Set<Socket>();
  const serverId = workloadSpiffeId(TD, 'shop', 'db');
  const clientId = workloadSpiffeId(TD, 'shop', 'web');
  const seenClients: string[] = [];

  before(async () => {
    pki = await makePki(TD, Date.now());
    const now = Date.now();
    [serverOld, serverNew, client] = await Promise.all([
      issueX509Svid(pki.nodeCa, serverId, { now }),
      issueX509Svid(pki.nodeCa, serverId, { now }),
      issueX509Svid(pki.nodeCa, clientId, { now }),
    ]);
    current = buildSecureContext(serverOld, pki.bundle);
    server = createServer((raw) => {
      sockets.add(raw);
      // The context current at accept time, as the HBONE listener does.
      const tls = new TLSSocket(raw, {
        isServer: true,
        secureContext: current,
        requestCert: true,
        rejectUnauthorized: true,
      });
      tls.on('secure', () => {
        const peer = validatePeer(chainFromPeerCertificate(tls.getPeerCertificate(true)), {
          bundle: pki.bundle,
          now: Date.now(),
        });
        seenClients.push(peer.toString());
        tls.pipe(tls);
      });
      tls.on('error', () => tls.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  function dial(expectedId: SpiffeId): Promise<TLSSocket> {
    const ctx = buildSecureContext(client, pki.bundle);
    return new Promise((resolve, reject) => {
      const s = connect({
        host: '127.0.0.1',
        port,
        secureContext: ctx,
        ALPNProtocols: ['h2'],
        checkServerIdentity: (_host, cert) => {
          try {
            validatePeer(chainFromPeerCertificate(cert), {
              bundle: pki.bundle,
              expectedId,
              now: Date.now(),
            });
            return undefined;
          } catch (err) {
            return err as Error;
          }
        },
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
  }

  function echo(s: TLSSocket, text: string): Promise<string> {
    return new Promise((resolve) => {
      s.once('data', (d: Buffer) => resolve(d.toString()));
      s.write(text);
    });
  }

  it('handshakes TLS 1.3 with both identities verified', async () => {
    const s = await dial(serverId);
    assert.equal(s.getProtocol(), 'TLSv1.3');
    assert.match(s.getCipher().name, /^TLS_AES_(128|256)_GCM_SHA(256|384)$/);
    assert.equal(await echo(s, 'ping'), 'ping');
    assert.equal(seenClients.at(-1), clientId.toString());
    s.destroy();
  });

  it('fails the handshake when the server is not the expected identity', async () => {
    await assert.rejects(() => dial(workloadSpiffeId(TD, 'shop', 'other')), {
      code: 'MESHLESS_E_SVID_REJECTED',
      reason: 'identity_mismatch',
    });
  });

  it('keeps an established connection across rotation; new ones get the new SVID', async () => {
    const before = await dial(serverId);
    const oldSerial = before.getPeerX509Certificate()?.serialNumber.toLowerCase();
    assert.equal(oldSerial, serverOld.serialNumber);

    current = buildSecureContext(serverNew, pki.bundle); // the rotation swap

    const afterRotation = await dial(serverId);
    assert.equal(
      afterRotation.getPeerX509Certificate()?.serialNumber.toLowerCase(),
      serverNew.serialNumber,
    );
    assert.equal(await echo(before, 'still here'), 'still here');
    assert.equal(await echo(afterRotation, 'new'), 'new');
    before.destroy();
    afterRotation.destroy();
  });
});
