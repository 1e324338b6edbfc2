import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { getAdminJson } from '../../cli/admin-client.js';

describe('getAdminJson', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/ok') res.end('{"a":1}');
      else if (req.url === '/html') res.end('<html>');
      else if (req.url === '/hang') return;
      else {
        res.statusCode = 404;
        res.end('{"error":"no such path"}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('returns the parsed JSON', async () => {
    assert.deepEqual(await getAdminJson(`127.0.0.1:${port}`, '/ok'), { a: 1 });
    assert.deepEqual(await getAdminJson(`:${port}`, '/ok'), { a: 1 });
  });

  const failures: readonly [string, () => Promise<unknown>, string, RegExp][] = [
    [
      'a daemon that is not running',
      async () => {
        const s = createServer();
        await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
        const free = (s.address() as AddressInfo).port;
        await new Promise((r) => s.close(r));
        return getAdminJson(`127.0.0.1:${free}`, '/certs');
      },
      'MESHLESS_E_ADMIN_UNREACHABLE',
      /cannot reach the meshless daemon's admin endpoint at http:\/\/127\.0\.0\.1:\d+\/certs \(connection refused\); is the daemon running/,
    ],
    [
      'a non-200 answer',
      () => getAdminJson(`127.0.0.1:${port}`, '/x'),
      'MESHLESS_E_ADMIN_RESPONSE',
      /answered 404: no such path/,
    ],
    [
      'a non-JSON answer',
      () => getAdminJson(`127.0.0.1:${port}`, '/html'),
      'MESHLESS_E_ADMIN_RESPONSE',
      /not JSON/,
    ],
    [
      'a hung daemon',
      () => getAdminJson(`127.0.0.1:${port}`, '/hang', { timeoutMs: 100 }),
      'MESHLESS_E_ADMIN_UNREACHABLE',
      /no answer within 100 ms/,
    ],
  ];
  for (const [name, fn, code, message] of failures) {
    it(`explains ${name}`, async () => {
      await assert.rejects(fn, (err: Error & { code?: string }) => {
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('refuses a malformed --admin', async () => {
    await assert.rejects(() => getAdminJson('localhost', '/certs'), { code: 'MESHLESS_E_USAGE' });
  });
});
