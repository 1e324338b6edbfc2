// HBONE end to end in-process on loopback: pool -> server -> upstream.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { TrustBundle } from '../../../src/identity/trust-bundle.js';
import type { X509Svid } from '../../../src/identity/x509-svid.js';
import { connectHbone } from '../../../src/hbone/hbone-client.js';
import { HboneError } from '../../../src/hbone/hbone-error.js';
import { HbonePool } from '../../../src/hbone/pool.js';
import {
  ID_X,
  closedPort,
  connectTcp,
  echo,
  eventually,
  makeTestPki,
  readAll,
  startHbone,
  startUpstream,
  tunnelRequest,
  type RunningHbone,
  type TestPki,
  type Upstream,
} from './hbone-fixtures.js';

const T = { timeout: 30_000 };

let pki: TestPki;
let svidX: X509Svid;
let svidY: X509Svid;
let ctxX: tls.SecureContext;
let ctxY: tls.SecureContext;
let server: RunningHbone;
let echoUp: Upstream;
const toClose: { close(): Promise<void> }[] = [];

function pool(options: ConstructorParameters<typeof HbonePool>[0] = {}): HbonePool {
  const p = new HbonePool(options);
  toClose.push(p);
  return p;
}

async function expectHboneError(
  promise: Promise<unknown>,
  reason: string,
  message?: RegExp,
): Promise<HboneError> {
  const err = await promise.then(
    () => assert.fail(`expected a rejection with reason ${reason}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HboneError, `not an HboneError: ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

const MiB = 1024 * 1024;

/**
 * Opens `streams` tunnels at once, sends `size` random bytes up each while
 * an upstream sends `size` down, and checks every digest both ways.
 */
async function bulkBothWays(p: HbonePool, streams: number, size: number): Promise<void> {
  const chunk = MiB;
  const upstreamDigests = new Map<string, { received: string; sent: string }>();
  const up = await startUpstream((s) => {
    const hin = createHash('sha256');
    const hout = createHash('sha256');
    const key = String(s.remotePort);
    const entry = { received: '', sent: '' };
    upstreamDigests.set(key, entry);
    s.on('data', (c: Buffer) => hin.update(c));
    s.on('end', () => (entry.received = hin.digest('hex')));
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const c = randomBytes(chunk);
        hout.update(c);
        sent += c.length;
        if (!s.write(c)) {
          s.once('drain', pump);
          return;
        }
      }
      entry.sent = hout.digest('hex');
      s.end();
    };
    pump();
  });
  toClose.push(up);
  const one = async (): Promise<{ sent: string; received: string; bytes: number }> => {
    const tunnel = await p.openTunnel(tunnelRequest(pki, ctxX, server.port, up.port));
    const hsent = createHash('sha256');
    const hrecv = createHash('sha256');
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      tunnel.on('data', (c: Buffer) => {
        hrecv.update(c);
        received += c.length;
      });
      tunnel.on('end', resolve);
      tunnel.on('error', reject);
    });
    let sent = 0;
    while (sent < size) {
      const c = randomBytes(chunk);
      hsent.update(c);
      sent += c.length;
      if (!tunnel.write(c)) await new Promise((r) => tunnel.once('drain', r));
    }
    tunnel.end();
    await done;
    return { sent: hsent.digest('hex'), received: hrecv.digest('hex'), bytes: received };
  };
  const results = await Promise.all(Array.from({ length: streams }, one));
  await eventually(
    () =>
      upstreamDigests.size === streams &&
      [...upstreamDigests.values()].every((d) => d.received !== ''),
    10_000,
    'upstream ends',
  );
  const upstream = [...upstreamDigests.values()];
  for (const r of results) {
    assert.equal(r.bytes, size);
    assert.ok(
      upstream.some((u) => u.received === r.sent),
      'client -> upstream digest',
    );
    assert.ok(
      upstream.some((u) => u.sent === r.received),
      'upstream -> client digest',
    );
  }
}

async function roundTrip(tunnel: Duplex, payload: string): Promise<string> {
  tunnel.end(payload);
  return (await readAll(tunnel)).toString();
}

before(async () => {
  pki = await makeTestPki();
  svidX = await pki.svid('a', 'x');
  svidY = await pki.svid('b', 'y');
  ctxX = pki.context(svidX);
  ctxY = pki.context(svidY);
  server = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
  echoUp = await startUpstream(echo);
  toClose.push(server, echoUp);
});

after(async () => {
  for (const c of toClose.reverse()) await c.close();
});

describe('HBONE round trip', () => {
  it('carries bytes both ways and records the connection', T, async () => {
    const p = pool();
    const tunnel = await p.openTunnel(tunnelRequest(pki, ctxX, server.port, echoUp.port));
    assert.equal(await roundTrip(tunnel, 'hello over hbone'), 'hello over hbone');
    await eventually(() => server.records.some((r) => r.bytesSent === 16), 3000, 'record');
    const rec = server.records.find((r) => r.bytesSent === 16);
    assert.ok(rec);
    assert.equal(rec.direction, 'inbound');
    assert.equal(rec.outcome, 'ok');
    assert.equal(rec.source.identity, ID_X);
    // The source is the TCP peer; the client's `forwarded` claim is its own field.
    assert.equal(rec.source.address, '127.0.0.1');
    assert.notEqual(rec.source.port, 40000);
    assert.equal(rec.forwarded, '127.0.0.1:40000');
    assert.equal(rec.destination.port, echoUp.port);
    assert.equal(rec.bytesReceived, 16);
  });

  it('moves 100 MiB each way intact (sha256)', { timeout: 120_000 }, async () => {
    await bulkBothWays(pool(), 1, 100 * MiB);
  });

  // Node's HTTP/2 session stops reading while its socket write is pending:
  // with both directions full on one connection, each end waits for the
  // other to read. HBONE_RECEIVE_BUFFER_BYTES on both sockets keeps that
  // from closing into a deadlock (it did, before, within the first 4 MiB).
  it(
    'moves bulk data both ways on 4 streams of one connection at once (no mutual-write deadlock)',
    {
      timeout: 120_000,
    },
    async () => {
      const p = pool();
      await bulkBothWays(p, 4, 32 * MiB);
      assert.equal(p.stats().connections, 1);
    },
  );

  it('propagates half-close from the client; the upstream keeps sending', T, async () => {
    const up = await startUpstream((s) => {
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => got.push(c));
      s.on('end', () => {
        // The client is done writing; answer after its FIN.
        setTimeout(() => s.end(`late reply to ${Buffer.concat(got).toString()}`), 50);
      });
    });
    toClose.push(up);
    const p = pool();
    const tunnel = await p.openTunnel(tunnelRequest(pki, ctxX, server.port, up.port));
    tunnel.end('question');
    assert.equal((await readAll(tunnel)).toString(), 'late reply to question');
  });

  it('propagates half-close from the upstream; the client keeps sending', T, async () => {
    let upstreamGot = '';
    const up = await startUpstream((s) => {
      s.end('bye first');
      s.on('data', (c: Buffer) => (upstreamGot += c.toString()));
      s.on('end', () => (upstreamGot += '<EOF>'));
    });
    toClose.push(up);
    const p = pool();
    const tunnel = await p.openTunnel(tunnelRequest(pki, ctxX, server.port, up.port));
    const received = readAll(tunnel);
    assert.equal((await received).toString(), 'bye first');
    tunnel.write('still ');
    tunnel.end('talking');
    await eventually(() => upstreamGot.endsWith('<EOF>'), 3000, 'upstream EOF');
    assert.equal(upstreamGot, 'still talking<EOF>');
  });
});

describe('HBONE pool', () => {
  it('runs 200 concurrent tunnels over one connection (one handshake)', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const p = pool({ maxStreamsPerConnection: 250 });
    const tunnels = await Promise.all(
      Array.from({ length: 200 }, () =>
        p.openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port)),
      ),
    );
    assert.deepEqual(p.stats(), { connections: 1, streams: 200, connecting: 0 });
    assert.equal(srv.hbone.stats().handshakes, 1);
    assert.equal(srv.hbone.stats().streams, 200);
    const answers = await Promise.all(tunnels.map((t, i) => roundTrip(t, `tunnel ${i}`)));
    answers.forEach((a, i) => assert.equal(a, `tunnel ${i}`));
    await eventually(() => p.stats().streams === 0, 3000, 'streams released');
    assert.equal(p.stats().connections, 1);
  });

  it(
    'opens another connection past maxStreamsPerConnection, one attempt at a time',
    T,
    async () => {
      const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
      toClose.push(srv);
      let dials = 0;
      const p = pool({ maxStreamsPerConnection: 5 });
      const req = tunnelRequest(pki, ctxX, srv.port, echoUp.port, {
        connectSocket: () => {
          dials++;
          return connectTcp('127.0.0.1', srv.port);
        },
      });
      const tunnels = await Promise.all(Array.from({ length: 12 }, () => p.openTunnel(req)));
      assert.equal(dials, 3, 'ceil(12 / 5) connections dialled');
      assert.equal(p.stats().connections, 3);
      assert.equal(srv.hbone.stats().handshakes, 3);
      const answers = await Promise.all(tunnels.map((t, i) => roundTrip(t, `n${i}`)));
      answers.forEach((a, i) => assert.equal(a, `n${i}`));
    },
  );

  it('reuses one connection for sequential tunnels of the same key', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const p = pool();
    for (let i = 0; i < 20; i++) {
      const t = await p.openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port));
      assert.equal(await roundTrip(t, `seq ${i}`), `seq ${i}`);
    }
    assert.equal(srv.hbone.stats().handshakes, 1);
    // Another source IP is another key, hence another connection.
    const t = await p.openTunnel(
      tunnelRequest(pki, ctxX, srv.port, echoUp.port, { sourceIp: '127.0.0.9' }),
    );
    assert.equal(await roundTrip(t, 'other key'), 'other key');
    assert.equal(srv.hbone.stats().handshakes, 2);
  });

  it('closes a connection idle for idleTimeoutMs', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const p = pool({ idleTimeoutMs: 150 });
    const t = await p.openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(p.stats().connections, 1, 'not idle while a stream is open');
    assert.equal(await roundTrip(t, 'x'), 'x');
    await eventually(() => p.stats().connections === 0, 3000, 'idle release');
    await eventually(() => srv.hbone.stats().connections === 0, 3000, 'server side closed');
    // The next tunnel dials again.
    const t2 = await p.openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port));
    assert.equal(await roundTrip(t2, 'y'), 'y');
    assert.equal(srv.hbone.stats().handshakes, 2);
  });

  it('evicts a connection the server closed and dials a new one', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    const p = pool();
    const t = await p.openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port));
    assert.equal(await roundTrip(t, 'a'), 'a');
    await srv.hbone.close();
    await eventually(() => p.stats().connections === 0, 3000, 'eviction');
    const srv2 = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv, srv2);
    const t2 = await p.openTunnel(tunnelRequest(pki, ctxX, srv2.port, echoUp.port));
    assert.equal(await roundTrip(t2, 'b'), 'b');
  });
});

describe('HBONE identity and TLS', () => {
  it('sends no SNI in the ClientHello', T, async () => {
    const hello = new Promise<Buffer>((resolve) => {
      const sniff = net.createServer((s) => s.once('data', (d: Buffer) => resolve(d)));
      sniff.listen(0, '127.0.0.1', () => {
        const port = (sniff.address() as net.AddressInfo).port;
        toClose.push({
          close: () => new Promise<void>((r) => sniff.close(() => r())),
        });
        connectHbone(tunnelRequest(pki, ctxX, port, 1), { connectTimeoutMs: 500 }).catch(
          () => undefined,
        );
      });
    });
    const types = clientHelloExtensions(await hello);
    assert.ok(types.includes(16), 'ALPN extension present');
    assert.ok(!types.includes(0), 'server_name extension absent');
  });

  it('rejects a server with another identity', T, async () => {
    const p = pool();
    const err = await expectHboneError(
      p.openTunnel(
        tunnelRequest(pki, ctxX, server.port, echoUp.port, {
          destinationIdentity: 'spiffe://cluster.local/ns/b/sa/other',
        }),
      ),
      'peer-identity',
    );
    assert.equal(err.code, 'MESHLESS_E_HBONE_PEER_IDENTITY');
    assert.equal(err.details?.['svidReason'], 'identity_mismatch');
    assert.equal(p.stats().connections, 0);
  });

  it('rejects a server whose certificate comes from another CA', T, async () => {
    const foreign = await makeTestPki();
    const fakeY = await foreign.svid('b', 'y');
    const srv = await startHbone({
      secureContext: () => foreign.context(fakeY),
      trustBundle: () => foreign.bundle,
    });
    toClose.push(srv);
    const err = await expectHboneError(
      pool().openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port)),
      'peer-identity',
    );
    assert.equal(err.details?.['svidReason'], 'untrusted');
  });

  it('server refuses a client certificate from another CA', T, async () => {
    const foreign = await makeTestPki();
    const fakeX = foreign.context(await foreign.svid('a', 'x'));
    const before = echoUp.accepted;
    await assert.rejects(pool().openTunnel(tunnelRequest(pki, fakeX, server.port, echoUp.port)));
    await eventually(() => (server.hbone.stats().rejectedHandshakes.untrusted ?? 0) >= 1);
    assert.equal(echoUp.accepted, before, 'nothing delivered upstream');
  });

  it('server refuses a valid identity of another trust domain', T, async () => {
    const other = await makeTestPki('other.local');
    const otherX = other.context(await other.svid('a', 'x'));
    // The server trusts both roots (federation), yet only serves its own domain.
    const federated = TrustBundle.of('cluster.local', [...pki.bundle.roots, ...other.bundle.roots]);
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => federated });
    toClose.push(srv);
    await assert.rejects(
      pool().openTunnel(
        tunnelRequest(pki, otherX, srv.port, echoUp.port, {
          sourceIdentity: 'spiffe://other.local/ns/a/sa/x',
        }),
      ),
    );
    await eventually(() => srv.hbone.stats().rejectedHandshakes.foreign_trust_domain === 1);
    assert.equal(srv.hbone.stats().handshakes, 0);
  });

  it('server refuses a TLS 1.2-only client', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const raw = await connectTcp('127.0.0.1', srv.port);
    const err = await new Promise<Error>((resolve) => {
      const t = tls.connect({
        socket: raw,
        cert: svidX.chainPem,
        key: svidX.privateKeyPem,
        maxVersion: 'TLSv1.2',
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      });
      t.once('error', resolve);
      t.once('secureConnect', () => resolve(new Error('handshake unexpectedly succeeded')));
    });
    assert.match(err.message, /protocol|version/i);
    await eventually(() => srv.hbone.stats().rejectedHandshakes['tls-handshake'] === 1);
  });

  it('server refuses a client without a certificate', T, async () => {
    const srv = await startHbone({ secureContext: () => ctxY, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const raw = await connectTcp('127.0.0.1', srv.port);
    raw.allowHalfOpen = false;
    const t = tls.connect({ socket: raw, ALPNProtocols: ['h2'], rejectUnauthorized: false });
    t.on('error', () => undefined);
    await new Promise((r) => t.once('close', r));
    assert.equal(srv.hbone.stats().rejectedHandshakes.empty_chain, 1);
    assert.equal(srv.hbone.stats().handshakes, 0);
  });
});

describe('HBONE requests', () => {
  it('answers 400 to a request that is not CONNECT', T, async () => {
    const { session } = await connectHbone(tunnelRequest(pki, ctxX, server.port, echoUp.port));
    try {
      const req = session.request({ ':method': 'GET', ':path': '/' });
      const status = await new Promise((resolve) =>
        req.once('response', (h) => resolve(h[':status'])),
      );
      assert.equal(status, 400);
      req.resume();
    } finally {
      session.destroy();
    }
    assert.ok((server.hbone.stats().refusedStreams['not-connect'] ?? 0) >= 1);
  });

  it('answers 400 when the authority is not an address of the pod', T, async () => {
    await expectHboneError(
      pool().openTunnel(
        tunnelRequest(pki, ctxX, server.port, echoUp.port, {
          target: { host: '127.0.0.2', port: echoUp.port },
        }),
      ),
      'http-status-400',
    );
  });

  it('answers 400 when the authority port is the HBONE port', T, async () => {
    const err = await expectHboneError(
      pool().openTunnel(
        tunnelRequest(pki, ctxX, server.port, echoUp.port, {
          target: { host: '127.0.0.1', port: 15008 },
        }),
      ),
      'http-status-400',
    );
    assert.equal(err.code, 'MESHLESS_E_HBONE_STATUS');
    assert.equal(err.details?.['status'], 400);
  });

  it('answers 503 when the upstream refuses', T, async () => {
    const port = await closedPort();
    await expectHboneError(
      pool().openTunnel(tunnelRequest(pki, ctxX, server.port, port)),
      'http-status-503',
    );
    await eventually(() =>
      server.records.some((r) => r.destination.port === port && r.outcome === 'refused'),
    );
  });

  it('answers 401 when authorization denies', T, async () => {
    const srv = await startHbone({
      secureContext: () => ctxY,
      trustBundle: () => pki.bundle,
      authorize: (peer) => peer.identity !== ID_X,
    });
    toClose.push(srv);
    await expectHboneError(
      pool().openTunnel(tunnelRequest(pki, ctxX, srv.port, echoUp.port)),
      'http-status-401',
    );
  });

  it(
    'times out a 15008 that accepts TCP but never answers TLS, naming NetworkPolicy',
    T,
    async () => {
      const silent = net.createServer(() => undefined);
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const sockets = new Set<net.Socket>();
      silent.on('connection', (s) => sockets.add(s));
      toClose.push({
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            silent.close(() => r());
          }),
      });
      const port = (silent.address() as net.AddressInfo).port;
      const started = Date.now();
      const err = await expectHboneError(
        pool({ connectTimeoutMs: 300 }).openTunnel(tunnelRequest(pki, ctxX, port, echoUp.port)),
        'connect-timeout',
        /maybe a NetworkPolicy is blocking HBONE port/,
      );
      assert.equal(err.code, 'MESHLESS_E_HBONE_CONNECT');
      assert.ok(Date.now() - started < 3000);
    },
  );
});

describe('server SVID rotation', () => {
  it('presents the current SVID to new connections; old connections stay up', T, async () => {
    let current = ctxY;
    const srv = await startHbone({ secureContext: () => current, trustBundle: () => pki.bundle });
    toClose.push(srv);
    const req = tunnelRequest(pki, ctxX, srv.port, echoUp.port);
    const first = await connectHbone(req);
    const rotated = await pki.svid('b', 'y');
    current = pki.context(rotated);
    const second = await connectHbone(req);
    try {
      const serial = (s: http2.ClientHttp2Session): string =>
        (s.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toLowerCase();
      assert.equal(serial(first.session), svidY.serialNumber.toLowerCase());
      assert.equal(serial(second.session), rotated.serialNumber.toLowerCase());
      assert.notEqual(serial(first.session), serial(second.session));
      // The first connection still carries tunnels.
      for (const { session } of [first, second]) {
        const stream = session.request({
          ':method': 'CONNECT',
          ':authority': `127.0.0.1:${echoUp.port}`,
        });
        const status = await new Promise((r) => stream.once('response', (h) => r(h[':status'])));
        assert.equal(status, 200);
        assert.equal(await roundTrip(stream, 'after rotation'), 'after rotation');
      }
    } finally {
      first.session.destroy();
      second.session.destroy();
    }
  });
});

/** Extension types of a TLS ClientHello record. */
function clientHelloExtensions(record: Buffer): number[] {
  let p = 5 + 4 + 2 + 32; // record header, handshake header, version, random
  p += 1 + (record[p] ?? 0); // session id
  p += 2 + record.readUInt16BE(p); // cipher suites
  p += 1 + (record[p] ?? 0); // compression methods
  const end = p + 2 + record.readUInt16BE(p);
  p += 2;
  const types: number[] = [];
  while (p < end) {
    types.push(record.readUInt16BE(p));
    p += 4 + record.readUInt16BE(p + 2);
  }
  return types;
}
