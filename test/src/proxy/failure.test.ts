// The one failure taxonomy: outcome and reason from codes, never message text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import { HboneError } from '../../../src/hbone/hbone-error.js';
import { ERRNO_FAILURES, classifyFailure } from '../../../src/proxy/failure.js';

const errno = (code: string, message = `connect ${code}`): NodeJS.ErrnoException =>
  Object.assign(new Error(message), { code });

/** As connectFromNetns rejects: MESHLESS_E_NETNS, the errno in details and cause. */
const netnsError = (
  code: string,
  netns = '/var/run/netns/cni-401-denied-rejected',
): MeshlessError =>
  new MeshlessError(
    'MESHLESS_E_NETNS',
    `cannot connect to 10.0.0.9:80 in netns ${netns}: ${code}`,
    {
      cause: errno(code),
      details: { netnsPath: netns, errno: code },
    },
  );

describe('classifyFailure', () => {
  const table: [string, unknown, string, string][] = [
    ['HBONE connect timeout', new HboneError('connect-timeout', 'x'), 'timeout', 'connect-timeout'],
    [
      'HBONE response timeout',
      new HboneError('response-timeout', 'x'),
      'timeout',
      'response-timeout',
    ],
    [
      'HBONE dial refused',
      new HboneError('connect-failed', 'x', { cause: netnsError('ECONNREFUSED') }),
      'refused',
      'connect-refused',
    ],
    [
      'HBONE dial unreachable',
      new HboneError('connect-failed', 'x', { cause: netnsError('EHOSTUNREACH') }),
      'error',
      'unreachable',
    ],
    [
      'HBONE dial failed, no errno',
      new HboneError('connect-failed', 'x'),
      'refused',
      'connect-failed',
    ],
    ['503', new HboneError('http-status-503', 'x'), 'refused', 'http-status-503'],
    ['401', new HboneError('http-status-401', 'x'), 'denied', 'http-status-401'],
    ['400', new HboneError('http-status-400', 'x'), 'error', 'http-status-400'],
    ['peer identity', new HboneError('peer-identity', 'x'), 'denied', 'peer-identity'],
    ['TLS handshake', new HboneError('tls-handshake', 'x'), 'denied', 'tls-handshake'],
    ['ALPN', new HboneError('alpn', 'x'), 'denied', 'alpn'],
    ['stream reset', new HboneError('reset', 'x'), 'reset', 'reset'],
    ['GOAWAY', new HboneError('goaway', 'x'), 'reset', 'goaway'],
    ['session closed', new HboneError('session-closed', 'x'), 'reset', 'session-closed'],
    ['pool closed', new HboneError('pool-closed', 'x'), 'error', 'pool-closed'],
    // The netns path says "401", "denied", "rejected": the code decides.
    ['unreachable from a netns named 401', netnsError('EHOSTUNREACH'), 'error', 'unreachable'],
    ['refused from a netns named 401', netnsError('ECONNREFUSED'), 'refused', 'connect-refused'],
    ['timeout', netnsError('ETIMEDOUT'), 'timeout', 'connect-timeout'],
    ['reset', errno('ECONNRESET', 'read ECONNRESET'), 'reset', 'upstream-reset'],
    ['netns gone', netnsError('ENOENT'), 'error', 'netns-missing'],
    ['fd exhaustion', netnsError('EMFILE'), 'error', 'fd-exhausted'],
    [
      'a message that says everything',
      new Error('ETIMEDOUT refused reset 401 identity denied'),
      'error',
      'internal',
    ],
    ['not an error', 'ECONNREFUSED', 'error', 'internal'],
  ];
  for (const [what, err, outcome, reason] of table)
    it(what, () => assert.deepEqual(classifyFailure(err), { outcome, reason }));

  it('maps every errno of its table to itself', () => {
    for (const [code, f] of Object.entries(ERRNO_FAILURES))
      assert.deepEqual(classifyFailure(errno(code)), f, code);
  });
});
