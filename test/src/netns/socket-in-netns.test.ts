/**
 * Argument validation of the netns socket wrapper: pure, no root, no
 * namespace. Invalid options are rejected before the addon is touched.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { MeshlessError } from '../../../src/errors.js';
import { addonCandidates } from '../../../src/netns/native-binding.js';
import { SocketReserve } from '../../../src/netns/socket-reserve.js';
import {
  connectFromNetns,
  listenInNetns,
  migrateListenerQueues,
  originalDestination,
  socketFd,
  type ConnectFromNetnsOptions,
  type ListenInNetnsOptions,
} from '../../../src/netns/socket-in-netns.js';

/** Asserts a MeshlessError MESHLESS_E_NETNS about `field`. */
async function rejectsField(promise: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, 'MESHLESS_E_NETNS');
    assert.equal(err.details?.['field'], field, err.message);
    assert.match(err.message, new RegExp(field));
    return true;
  });
}

// Options as a caller with bad data (parsed JSON, config) could pass them.
const loose = <T>(o: Record<string, unknown>): T => o as T;

describe('listenInNetns argument validation', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['port out of range', { port: 65536 }, 'port'],
    ['negative port', { port: -1 }, 'port'],
    ['fractional port', { port: 1.5 }, 'port'],
    ['missing port', {}, 'port'],
    ['host not an IP literal', { host: 'localhost', port: 0 }, 'host'],
    ['scoped IPv6 host', { host: 'fe80::1%eth0', port: 0 }, 'host'],
    ['family not 4 or 6', { family: 5, port: 0 }, 'family'],
    ['family not matching host', { host: '::', family: 4, port: 0 }, 'family'],
    ['negative backlog', { port: 0, backlog: -1 }, 'backlog'],
    ['zero backlog', { port: 0, backlog: 0 }, 'backlog'],
    ['mark too large', { port: 0, mark: 2 ** 32 }, 'mark'],
    ['netns path with NUL', { netnsPath: '/var/run/netns/a\0b', port: 0 }, 'netnsPath'],
    ['netns path not a string', { netnsPath: 42, port: 0 }, 'netnsPath'],
    ['zero receive buffer', { port: 0, receiveBufferBytes: 0 }, 'receiveBufferBytes'],
    ['receive buffer of 1 GiB', { port: 0, receiveBufferBytes: 2 ** 30 }, 'receiveBufferBytes'],
  ];
  for (const [name, options, field] of cases) {
    it(`rejects ${name}`, async () => {
      await rejectsField(listenInNetns(loose<ListenInNetnsOptions>(options)), field);
    });
  }
});

describe('connectFromNetns argument validation', () => {
  const base = { host: '10.0.0.1', port: 80 };
  const cases: [string, Record<string, unknown>, string][] = [
    ['port 0', { ...base, port: 0 }, 'port'],
    ['port out of range', { ...base, port: 70000 }, 'port'],
    ['host name instead of IP', { ...base, host: 'example.com' }, 'host'],
    ['missing host', { port: 80 }, 'host'],
    ['bind address of another family', { ...base, bindAddress: '::1' }, 'bindAddress'],
    ['bind address not an IP', { ...base, bindAddress: 'me' }, 'bindAddress'],
    ['bind port out of range', { ...base, bindPort: 65536 }, 'bindPort'],
    ['negative mark', { ...base, mark: -1 }, 'mark'],
    ['zero timeout', { ...base, timeoutMs: 0 }, 'timeoutMs'],
    ['infinite timeout', { ...base, timeoutMs: Infinity }, 'timeoutMs'],
    ['fractional receive buffer', { ...base, receiveBufferBytes: 1.5 }, 'receiveBufferBytes'],
  ];
  for (const [name, options, field] of cases) {
    it(`rejects ${name}`, async () => {
      await rejectsField(connectFromNetns(loose<ConnectFromNetnsOptions>(options)), field);
    });
  }
});

describe('migrateListenerQueues argument validation', () => {
  for (const [name, path] of [
    ["an empty netns path (the caller's own: the node's setting)", ''],
    ['a netns path with NUL', '/var/run/netns/a\0b'],
  ] as const) {
    it(`rejects ${name}`, async () => {
      await rejectsField(
        Promise.resolve().then(() => migrateListenerQueues(path)),
        'netnsPath',
      );
    });
  }
});

describe('originalDestination and socketFd', () => {
  it('finds no fd on a socket that was never connected', () => {
    const socket = new net.Socket();
    assert.equal(socketFd(socket), undefined);
    assert.throws(
      () => originalDestination(socket),
      (err: unknown) => err instanceof MeshlessError && err.code === 'MESHLESS_E_NETNS',
    );
  });
});

describe('native addon location', () => {
  it('looks beside the bundle first, then in build/Release', () => {
    const [beside, fromDist, fromSrc] = addonCandidates('/opt/meshless/dist/meshlessd.js');
    assert.equal(beside, '/opt/meshless/dist/meshless_netns.node');
    assert.equal(fromDist, '/opt/meshless/build/Release/meshless_netns.node');
    assert.equal(fromSrc, '/opt/build/Release/meshless_netns.node');
    const repo = fileURLToPath(new URL('../../../', import.meta.url));
    const source = fileURLToPath(new URL('../../../src/netns/native-binding.ts', import.meta.url));
    assert.equal(addonCandidates(source)[2], `${repo}build/Release/meshless_netns.node`);
  });
});

describe('SocketReserve', () => {
  for (const batch of [0, 257, 1.5, Number.NaN])
    it(`refuses a batch of ${batch}`, () => {
      assert.throws(() => new SocketReserve({ family: 4 }, batch), /batch .* is not in \[1, 256\]/);
    });
  it('is empty until first used, and refuses to hand out sockets once closed', () => {
    const r = new SocketReserve({ family: 4 });
    assert.equal(r.size, 0);
    assert.equal(r.batch, 16);
    r.close();
    assert.throws(() => r.take(), /reserve is closed/);
  });
});
