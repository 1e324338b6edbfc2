/**
 * The plugin's daemon client (callDaemon) against raw Unix-socket servers:
 * what it sends, answers in pieces, every way a daemon can fail to answer,
 * and that it never throws. The real API server is covered by
 * test/daemon/registration/cni-api-server.int.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callDaemon } from '../../../src/registration/client.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshless-client-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
/** A server that hands each connection, with what it received so far, to `onRequest`. */
async function serve(
  onRequest: (socket: Socket, request: string) => void,
): Promise<{ path: string; server: Server; requests: string[] }> {
  const path = join(dir, `s${serial++}.sock`);
  const requests: string[] = [];
  const server = createServer((socket) => {
    let text = '';
    let answered = false;
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      if (answered || headEnd < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (text.length - headEnd - 4 < length) return;
      answered = true;
      requests.push(Buffer.from(text, 'latin1').toString('utf8'));
      onRequest(socket, text);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  after(() => server.close());
  return { path, server, requests };
}

describe('callDaemon', () => {
  it('sends one HTTP/1.1 request with a JSON body and reads a JSON answer', async () => {
    const s = await serve((socket) =>
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{"enrolled":true}'),
    );
    const r = await callDaemon(s.path, 'POST', '/v1/add', { a: 'é' }, 2000);
    assert.deepEqual(r, { kind: 'ok', body: { enrolled: true } });
    const req = s.requests[0] ?? '';
    assert.match(req, /^POST \/v1\/add HTTP\/1\.1\r\n/);
    assert.match(req, /\r\nContent-Type: application\/json\r\n/);
    assert.match(req, /\r\nContent-Length: 10\r\n/);
    assert.match(req, /\r\nConnection: close\r\n/);
    assert.ok(req.endsWith('\r\n\r\n{"a":"é"}'));
  });

  it('a GET has no body', async () => {
    const s = await serve((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
    assert.deepEqual(await callDaemon(s.path, 'GET', '/v1/status', undefined, 2000), {
      kind: 'ok',
      body: {},
    });
    assert.doesNotMatch(s.requests[0] ?? '', /content-length/i);
  });

  it('an answer trickled byte by byte, chunked, kept open: complete as soon as it is whole', async () => {
    const answer =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"x"\r\n3\r\n:1}\r\n0\r\n\r\n';
    const s = await serve((socket) => {
      let i = 0;
      const next = (): void => {
        if (i < answer.length) socket.write(answer[i++] ?? '', () => setTimeout(next, 1));
      };
      next(); // never ended: the client must not wait for the close
    });
    assert.deepEqual(await callDaemon(s.path, 'POST', '/v1/del', {}, 5000), {
      kind: 'ok',
      body: { x: 1 },
    });
  });

  it('an error status carries the daemon code and message', async () => {
    const body = JSON.stringify({ error: { code: 'MESHLESS_E_NOT_READY', message: 'not synced' } });
    const s = await serve((socket) =>
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ),
    );
    assert.deepEqual(await callDaemon(s.path, 'POST', '/v1/add', {}, 2000), {
      kind: 'error',
      status: 503,
      code: 'MESHLESS_E_NOT_READY',
      message: 'not synced',
    });
  });

  it('invalid JSON is an error of the daemon, not unreachable', async () => {
    const s = await serve((socket) => socket.end('HTTP/1.1 500 x\r\nContent-Length: 3\r\n\r\nnot'));
    const r = await callDaemon(s.path, 'POST', '/v1/add', {}, 2000);
    assert.equal(r.kind, 'error');
    assert.equal(r.kind === 'error' && r.code, 'MESHLESS_E_API_RESPONSE');
  });

  const unreachable: { name: string; answer: (s: Socket) => void; reason: RegExp }[] = [
    { name: 'closed without a word', answer: (s) => s.end(), reason: /closed before a response/ },
    { name: 'destroyed', answer: (s) => s.destroy(), reason: /closed before a response/ },
    {
      name: 'cut mid-body',
      answer: (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"a":'),
      reason: /cut short/,
    },
    { name: 'not HTTP', answer: (s) => s.end('hello\r\n\r\n'), reason: /status line/ },
    {
      name: 'too large',
      answer: (s) =>
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n${'x'.repeat(1.2e6)}`),
      reason: /too large/,
    },
    { name: 'silent', answer: () => undefined, reason: /no answer from the daemon within 300 ms/ },
  ];
  for (const c of unreachable)
    it(`unreachable: ${c.name}`, async () => {
      const s = await serve(c.answer);
      const r = await callDaemon(s.path, 'POST', '/v1/add', {}, 300);
      assert.equal(r.kind, 'unreachable', JSON.stringify(r));
      assert.match(r.kind === 'unreachable' ? r.reason : '', c.reason);
    });

  it('unreachable: no socket, or nothing listening, with a hint', async () => {
    const r = await callDaemon(join(dir, 'missing.sock'), 'GET', '/v1/status', undefined, 500);
    assert.equal(r.kind, 'unreachable');
    assert.match(r.kind === 'unreachable' ? r.reason : '', /does not exist \(is meshlessd running/);
    const dead = await serve(() => undefined);
    await new Promise((resolve) => dead.server.close(resolve));
    const r2 = await callDaemon(dead.path, 'GET', '/v1/status', undefined, 500);
    assert.equal(r2.kind, 'unreachable');
  });
});
