/**
 * The plugin's HTTP/1.1 response reader (src/registration/client.ts), table
 * driven: every framing the daemon (Node's http server) may use, responses
 * arriving in pieces, and the malformed ones.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseResponse } from '../../../src/registration/client.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('parseResponse', () => {
  const complete: { name: string; raw: string; ended?: boolean; status: number; body: string }[] = [
    {
      name: 'content-length',
      raw: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
      status: 200,
      body: '{}',
    },
    {
      name: 'header names in any case, bytes after the body ignored',
      raw: 'HTTP/1.1 503 Service Unavailable\r\ncontent-LENGTH: 4\r\n\r\n{"a"}',
      status: 503,
      body: '{"a"',
    },
    {
      name: 'chunked, with a chunk extension',
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n',
      status: 200,
      body: '{"a":1}',
    },
    {
      name: 'chunked with a trailer',
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n',
      status: 200,
      body: '{}',
    },
    {
      name: 'no length: the body runs to the end of the connection',
      raw: 'HTTP/1.0 200 OK\r\n\r\n{"x":2}',
      ended: true,
      status: 200,
      body: '{"x":2}',
    },
    { name: '204 has no body', raw: 'HTTP/1.1 204 No Content\r\n\r\n', status: 204, body: '' },
    {
      name: 'status line without a reason phrase',
      raw: 'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n',
      status: 404,
      body: '',
    },
  ];
  for (const c of complete)
    it(`complete: ${c.name}`, () => {
      const r = parseResponse(b(c.raw), c.ended ?? false);
      assert.equal(r.kind, 'complete');
      if (r.kind !== 'complete') return;
      assert.equal(r.status, c.status);
      assert.equal(r.body.toString('latin1'), c.body);
    });

  it('every prefix of a response is partial, never complete nor invalid', () => {
    for (const raw of complete.filter((c) => c.ended !== true).map((c) => c.raw)) {
      const whole = parseResponse(b(raw), false);
      assert.equal(whole.kind, 'complete');
      // A prefix ends before the last byte that completes the response.
      const needed = raw.length - (raw.startsWith('HTTP/1.1 503') ? 1 : 0);
      for (let n = 0; n < needed; n++)
        assert.equal(parseResponse(b(raw.slice(0, n)), false).kind, 'partial', `${n} bytes`);
    }
  });

  const invalid: { name: string; raw: string; ended?: boolean }[] = [
    { name: 'not HTTP', raw: 'SSH-2.0-OpenSSH\r\n\r\n' },
    { name: 'bad status code', raw: 'HTTP/1.1 2000 OK\r\n\r\n' },
    { name: 'header without a colon', raw: 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n' },
    { name: 'bad content-length', raw: 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n' },
    {
      name: 'bad chunk size',
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    },
    { name: 'closed before the head', raw: 'HTTP/1.1 200 OK\r\n', ended: true },
    {
      name: 'closed before the whole body',
      raw: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}',
      ended: true,
    },
    {
      name: 'closed before the last chunk',
      raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n',
      ended: true,
    },
    { name: 'a head that never ends', raw: `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}` },
  ];
  for (const c of invalid)
    it(`invalid: ${c.name}`, () => {
      assert.equal(parseResponse(b(c.raw), c.ended ?? false).kind, 'invalid');
    });
});
