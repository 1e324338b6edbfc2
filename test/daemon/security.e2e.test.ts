/**
 * What the daemon leaks, checked on the real bundle (dist/meshlessd.js) in
 * a node netns of its own, through root generation, node CA and SVID
 * issuance with logLevel trace:
 * - no private key (PEM, JWK "d", or any run of the root key's base64) in
 *   its log output or in any admin answer;
 * - everything under stateDir holding a key is 0600 in 0700 directories,
 *   the registration socket is 0600, nothing is group/world-writable;
 * - identities are issued only for pods on this node: a pod scheduled
 *   elsewhere is refused (409) and its identity never appears in /certs.
 * - hostile pod names never reach a command: refused by the API's
 *   validation (400) before anything runs.
 */
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Netns } from '../../src/sim/netns.js';
import { startDaemonProcess, type DaemonHandle } from '../../src/sim/daemon-process.js';
import { callDaemon } from '../../src/registration/client.js';
import { API_VERSION, type AddResponse } from '../../src/registration/protocol.js';
import { testNetns } from '../support/netns.js';

const TD = 'cluster.local';
let dir = '';
let stateDir = '';
let node: Netns | undefined;
let pod: Netns | undefined;
let daemon: DaemonHandle | undefined;
const admin: Record<string, string> = {};
const HOSTILE = [
  'web; iptables -F',
  '$(touch /tmp/pwned)',
  '`id`',
  'web\n-A OUTPUT -j DROP',
  '../../etc/passwd',
  '-j ACCEPT',
  'WEB',
  'a'.repeat(300),
];
const hostile: string[] = [];

function clusterYaml(): string {
  const pod = (name: string, nodeName: string, sa: string): string =>
    `- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: ${name}\n    namespace: secure\n` +
    `    uid: uid-${name}\n  spec:\n    nodeName: ${nodeName}\n    serviceAccountName: ${sa}\n` +
    `  status:\n    podIP: 10.249.0.${name === 'web' ? 5 : 6}\n`;
  return (
    'apiVersion: v1\nkind: List\nitems:\n' +
    '- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: secure\n' +
    '    labels:\n      io.cilium/mtls-enabled: "true"\n' +
    pod('web', 'sec1', 'web-sa') +
    pod('elsewhere', 'sec2', 'elsewhere-sa')
  );
}

const socket = (): string => join(stateDir, 'cni.sock');

function addBody(containerId: string, name: string, netns: string): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    containerId,
    netns,
    ifname: 'eth0',
    network: 'sec-net',
    pod: { namespace: 'secure', name, uid: `uid-${name}` },
    addresses: [{ family: 4, ip: name === 'web' ? '10.249.0.5' : '10.249.0.6' }],
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshless-sec-'));
  stateDir = join(dir, 'state');
  node = testNetns('sec-node');
  pod = testNetns('sec-pod');
  writeFileSync(join(dir, 'cluster.yaml'), clusterYaml());
  daemon = await startDaemonProcess({
    dir,
    netns: node.name,
    config: {
      nodeName: 'sec1',
      trustDomain: TD,
      stateDir,
      discovery: { file: join(dir, 'cluster.yaml') },
      unsafeLocalRoot: { generate: true },
      logLevel: 'trace',
    },
  });
  const added = await callDaemon<AddResponse>(
    socket(),
    'POST',
    '/v1/add',
    addBody('sec-web', 'web', pod.path),
    10_000,
  );
  assert.equal(added.kind, 'ok', JSON.stringify(added));
  assert.equal(
    (added as { body: AddResponse }).body.identity,
    `spiffe://${TD}/ns/secure/sa/web-sa`,
  );
  const elsewhere = await callDaemon(
    socket(),
    'POST',
    '/v1/add',
    addBody('sec-elsewhere', 'elsewhere', pod.path),
    10_000,
  );
  assert.equal(elsewhere.kind === 'error' ? elsewhere.status : 0, 409);
  for (const name of HOSTILE) {
    for (const body of [
      addBody('sec-hostile', name, pod.path),
      { ...addBody('sec-hostile', 'web', pod.path), pod: { namespace: name, name: 'web' } },
    ]) {
      const o = await callDaemon(socket(), 'POST', '/v1/add', body, 5000);
      hostile.push(o.kind === 'error' ? `${o.status} ${o.code}` : o.kind);
    }
  }
  for (const path of [
    '/',
    '/status',
    '/certs',
    '/workloads',
    '/config',
    '/connections',
    '/workers',
  ])
    admin[path] = node.exec([
      'curl',
      '-sS',
      '--max-time',
      '5',
      `http://127.0.0.1:15000${path}`,
    ]).stdout;
  // SIGTERM: the log is complete once it has exited.
  await daemon.stop('SIGTERM');
});

after(async () => {
  await daemon?.stop('SIGKILL').catch(() => undefined);
  pod?.destroy();
  node?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The root's private scalar in every encoding it could be logged in
 * (base64url as in a JWK, base64, hex): none may appear anywhere. (The PEM
 * body as a whole is no test: its algorithm header is in every certificate.)
 */
function keyFragments(): string[] {
  const jwk = createPrivateKey(readFileSync(join(stateDir, 'ca', 'ca.key'), 'utf8')).export({
    format: 'jwk',
  });
  const d = Buffer.from(jwk.d ?? '', 'base64url');
  assert.equal(d.length, 32);
  return [d.toString('base64url'), d.toString('base64').slice(0, 40), d.toString('hex')];
}

function assertNoKeyMaterial(text: string, where: string): void {
  assert.doesNotMatch(text, /PRIVATE KEY/, `${where} holds a PEM private key`);
  assert.doesNotMatch(text, /"d"\s*:\s*"[A-Za-z0-9_-]{40,}"/, `${where} holds a JWK private key`);
  assert.doesNotMatch(text, /"(privateKey|keyPem|key)"\s*:\s*"/i, `${where} holds a key field`);
  for (const f of keyFragments()) assert.ok(!text.includes(f), `${where} holds root key bytes`);
}

describe('security: nothing secret leaks', () => {
  test('the trace-level log covers issuance and holds no key material', () => {
    const log = readFileSync(daemon?.logFile ?? '', 'utf8');
    assert.match(log, /"level":20/, 'debug lines were logged (nothing logs at trace)');
    assert.match(log, /node intermediate CA/);
    assert.match(log, /web-sa/);
    assertNoKeyMaterial(log, 'the daemon log');
  });

  test('admin answers hold no key material (and /certs has the local identity only)', () => {
    for (const [path, body] of Object.entries(admin)) {
      assert.notEqual(body, '', `admin ${path} answered`);
      assertNoKeyMaterial(body, `admin ${path}`);
    }
    assert.match(admin['/certs'] ?? '', /sa\/web-sa/);
    assert.doesNotMatch(admin['/certs'] ?? '', /elsewhere-sa/);
  });

  test('state dir: key files 0600, directories 0700, socket 0600, nothing group/world-writable', () => {
    const walk = (p: string): void => {
      const st = lstatSync(p);
      const mode = st.mode & 0o777;
      assert.equal(mode & 0o022, 0, `${p} is group/world-writable (${mode.toString(8)})`);
      if (st.isDirectory()) {
        assert.equal(mode, 0o700, `${p} is ${mode.toString(8)}`);
        for (const e of readdirSync(p)) walk(join(p, e));
      } else if (st.isSocket()) {
        assert.equal(mode, 0o600, `${p} is ${mode.toString(8)}`);
      } else if (st.isFile()) {
        const text = readFileSync(p, 'utf8');
        if (/PRIVATE KEY/.test(text) || p.endsWith('.key') || p.endsWith('registrations.json'))
          assert.equal(mode, 0o600, `${p} is ${mode.toString(8)}`);
        else assert.ok(p.endsWith('.crt'), `unexpected file ${p}`);
      }
    };
    walk(stateDir);
    assert.equal(lstatSync(join(stateDir, 'ca', 'ca.key')).mode & 0o777, 0o600);
  });
});

describe('security: hostile pod names never reach a command', () => {
  test('every hostile name or namespace was refused with 400 by the API validation', () => {
    assert.equal(hostile.length, HOSTILE.length * 2);
    for (const outcome of hostile) assert.equal(outcome, '400 MESHLESS_E_API_REQUEST');
  });
});
