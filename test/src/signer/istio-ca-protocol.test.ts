import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ProtocolError,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  frameMessage,
  unframeMessage,
} from '../../../src/signer/istio-ca-protocol.js';

describe('Istio CA protocol codec', () => {
  it('round-trips a request with ImpersonatedIdentity metadata', () => {
    const req = {
      csr: '-----BEGIN CERTIFICATE REQUEST-----\nabc\n-----END CERTIFICATE REQUEST-----\n',
      validityDurationSeconds: 3600,
      metadata: { ImpersonatedIdentity: 'spiffe://cluster.local/ns/a/sa/b' },
    };
    assert.deepEqual(decodeRequest(encodeRequest(req)), req);
  });

  it('encodes exactly as protoc does (golden bytes)', () => {
    // IstioCertificateRequest{csr:"x", validity_duration:60, metadata{fields{"k": string_value "v"}}}
    const bytes = encodeRequest({ csr: 'x', validityDurationSeconds: 60, metadata: { k: 'v' } });
    assert.equal(bytes.toString('hex'), '0a0178183c220a0a080a016b12031a0176');
  });

  it('round-trips a response chain', () => {
    const res = { certChain: ['leaf', 'root'] };
    assert.deepEqual(decodeResponse(encodeResponse(res)), res);
  });

  it('skips unknown fields and refuses broken messages', () => {
    const withUnknown = Buffer.concat([
      Buffer.from([0x28, 0x05]),
      encodeResponse({ certChain: ['a'] }),
    ]);
    assert.deepEqual(decodeResponse(withUnknown).certChain, ['a']);
    assert.throws(() => decodeResponse(Buffer.from([0x0a, 0x10, 0x41])), ProtocolError);
    assert.throws(() => decodeResponse(Buffer.from([0x0b])), ProtocolError);
    assert.throws(() => decodeRequest(Buffer.from([0x0a, 0x01, 0xff])), ProtocolError);
  });

  it('frames one message and refuses compressed, oversized or extra ones', () => {
    const m = Buffer.from('hello');
    assert.deepEqual(unframeMessage(frameMessage(m)), m);
    const compressed = frameMessage(m);
    compressed[0] = 1;
    assert.throws(() => unframeMessage(compressed), ProtocolError);
    assert.throws(
      () => unframeMessage(Buffer.concat([frameMessage(m), frameMessage(m)])),
      ProtocolError,
    );
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(1 << 20, 1);
    assert.throws(() => unframeMessage(huge), ProtocolError);
  });
});
