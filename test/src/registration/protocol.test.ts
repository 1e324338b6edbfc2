import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import {
  API_VERSION,
  parseAddRequest,
  parseCheckRequest,
  parseDelRequest,
  parseGcRequest,
} from '../../../src/registration/protocol.js';

const ADD = {
  apiVersion: API_VERSION,
  containerId: 'abc123',
  netns: '/var/run/netns/cni-1',
  ifname: 'eth0',
  network: 'k8s-pod-network',
  pod: { namespace: 'demo', name: 'web-0', uid: 'u-1', infraContainerId: 'abc123' },
  addresses: [
    { family: 4, ip: '10.22.0.5' },
    { family: 6, ip: 'fd00::5' },
  ],
};

function rejects(fn: () => unknown, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, 'MESHLESS_E_API_REQUEST');
    assert.ok(err.message.includes(mentions), `"${err.message}" should mention ${mentions}`);
    return true;
  });
}

describe('parseAddRequest', () => {
  it('accepts a full request', () => {
    assert.deepEqual(parseAddRequest(ADD), ADD);
  });

  it('optional pod fields and addresses may be left out', () => {
    const r = parseAddRequest({
      ...ADD,
      pod: { namespace: 'demo', name: 'web-0' },
      addresses: undefined,
    });
    assert.deepEqual(r.pod, {
      namespace: 'demo',
      name: 'web-0',
      uid: undefined,
      infraContainerId: undefined,
    });
    assert.deepEqual(r.addresses, []);
  });

  const bad: [string, unknown, string][] = [
    ['not an object', [], 'request body'],
    ['no apiVersion', { ...ADD, apiVersion: undefined }, 'apiVersion'],
    ['another apiVersion', { ...ADD, apiVersion: 'meshless.dev/cni/v2' }, 'apiVersion'],
    ['bad containerId', { ...ADD, containerId: 'a/b' }, 'containerId'],
    ['containerId too long', { ...ADD, containerId: 'a'.repeat(256) }, 'containerId'],
    ['empty ifname', { ...ADD, ifname: '' }, 'ifname'],
    ['ifname too long', { ...ADD, ifname: 'x'.repeat(16) }, 'ifname'],
    ['relative netns', { ...ADD, netns: 'netns/x' }, 'netns'],
    ['netns with NUL', { ...ADD, netns: '/proc/1/ns/net\0x' }, 'netns'],
    ['missing netns', { ...ADD, netns: undefined }, 'netns'],
    ['no pod', { ...ADD, pod: undefined }, 'pod'],
    ['uppercase namespace', { ...ADD, pod: { namespace: 'Demo', name: 'p' } }, 'pod.namespace'],
    ['pod name with a slash', { ...ADD, pod: { namespace: 'demo', name: 'a/b' } }, 'pod.name'],
    ['uid not a string', { ...ADD, pod: { namespace: 'demo', name: 'p', uid: 1 } }, 'uid'],
    ['addresses not a list', { ...ADD, addresses: {} }, 'addresses'],
    [
      '17 addresses',
      { ...ADD, addresses: Array(17).fill({ family: 4, ip: '10.0.0.1' }) },
      'addresses',
    ],
    ['family 5', { ...ADD, addresses: [{ family: 5, ip: '10.0.0.1' }] }, 'addresses[0].family'],
    [
      'family as a string',
      { ...ADD, addresses: [{ family: '4', ip: '10.0.0.1' }] },
      'addresses[0].family',
    ],
    ['ip not an address', { ...ADD, addresses: [{ family: 4, ip: 'banana' }] }, 'addresses[0]'],
    [
      'IPv6 address as family 4',
      { ...ADD, addresses: [{ family: 4, ip: 'fd00::1' }] },
      'addresses[0]',
    ],
    [
      'IPv4 address as family 6',
      { ...ADD, addresses: [{ family: 6, ip: '10.0.0.1' }] },
      'addresses[0]',
    ],
    ['no network', { ...ADD, network: undefined }, 'network'],
  ];
  for (const [what, body, mentions] of bad)
    it(`rejects ${what}`, () => {
      rejects(() => parseAddRequest(body), mentions);
    });
});

describe('parseCheckRequest / parseDelRequest', () => {
  it('CHECK needs a netns', () => {
    assert.equal(parseCheckRequest(ADD).netns, ADD.netns);
    rejects(() => parseCheckRequest({ ...ADD, netns: undefined }), 'netns');
  });
  it('DEL takes an optional netns', () => {
    const base = { apiVersion: API_VERSION, containerId: 'c', ifname: 'eth0' };
    assert.deepEqual(parseDelRequest(base), { ...base, netns: undefined });
    assert.deepEqual(parseDelRequest({ ...base, netns: '' }), { ...base, netns: undefined });
    assert.deepEqual(parseDelRequest({ ...base, netns: '/n' }), { ...base, netns: '/n' });
    rejects(() => parseDelRequest({ ...base, netns: 'n' }), 'netns');
    rejects(() => parseDelRequest({ ...base, ifname: undefined }), 'ifname');
  });
});

describe('parseGcRequest', () => {
  const GC = {
    apiVersion: API_VERSION,
    network: 'k8s-pod-network',
    validAttachments: [{ containerId: 'c1', ifname: 'eth0' }],
  };
  it('accepts a request', () => {
    assert.deepEqual(parseGcRequest(GC), GC);
    assert.deepEqual(parseGcRequest({ ...GC, validAttachments: [] }).validAttachments, []);
  });
  const bad: [string, unknown, string][] = [
    ['another apiVersion', { ...GC, apiVersion: 'x' }, 'apiVersion'],
    ['no list', { ...GC, validAttachments: undefined }, 'validAttachments'],
    ['entry not an object', { ...GC, validAttachments: ['c1'] }, 'validAttachments[0]'],
    ['entry without ifname', { ...GC, validAttachments: [{ containerId: 'c1' }] }, 'ifname'],
    ['no network', { ...GC, network: '' }, 'network'],
  ];
  for (const [what, body, mentions] of bad)
    it(`rejects ${what}`, () => {
      rejects(() => parseGcRequest(body), mentions);
    });
});
