import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo, type Server } from 'node:net';
import { peerOfGreeting, startPodServer } from '../../../src/demo/pod-server.js';

function converse(port: number, data: string, halfClose = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      if (halfClose) s.end(data);
      else s.write(data);
    });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(chunks).toString());
    });
    s.on('error', reject);
  });
}

describe('demo pod server', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = await startPodServer(
      0,
      { pod: 'api', namespace: 'secure', node: 'node2' },
      '127.0.0.1',
    );
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('GET / names the pod and the peer it sees', async () => {
    const answer = await converse(port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    const body = answer.split('\r\n\r\n')[1] ?? '';
    assert.match(body, /^pod: secure\/api on node2\npeer: 127\.0\.0\.1:\d+\n$/);
    assert.match(peerOfGreeting(body) ?? '', /^127\.0\.0\.1:\d+$/);
  });

  test('other methods and paths', async () => {
    assert.match(await converse(port, 'POST / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 405/);
    assert.match(await converse(port, 'GET /x HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 404/);
  });

  test('anything else is echoed, up to the half-close', async () => {
    assert.equal(await converse(port, 'MARKER-1\nmore\n'), 'MARKER-1\nmore\n');
    assert.equal(await converse(port, 'no newline'), 'no newline');
    const big = 'x'.repeat(100_000);
    assert.equal(await converse(port, big), big);
  });
});
