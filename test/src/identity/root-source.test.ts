import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateRootCa, type RootMaterial } from '../../../src/identity/certificate-authority.js';
import {
  KubernetesSecretRootSource,
  decodeRootSecret,
} from '../../../src/identity/kubernetes-root-source.js';
import {
  FileRootSource,
  GeneratedRootStore,
  resolveRoot,
} from '../../../src/identity/root-source.js';
import { meshlessError } from '../../support/meshless-error.js';
import { NOW, TD } from './pki-fixtures.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('decodeRootSecret', () => {
  let root: RootMaterial;
  before(async () => {
    root = await generateRootCa({ trustDomain: TD, now: NOW });
  });

  it('decodes ca.crt and ca.key (base64, line-wrapped or not)', () => {
    const wrapped = b64(root.certPem).replace(/(.{76})/g, '$1\n');
    const m = decodeRootSecret(
      { 'ca.crt': wrapped, 'ca.key': b64(root.keyPem), 'tls.crt': 'x' },
      'meshless/ca',
    );
    assert.equal(m.certPem, root.certPem);
    assert.equal(m.keyPem, root.keyPem);
    assert.equal(m.origin, 'Secret meshless/ca');
  });

  const bad: readonly [string, () => unknown, RegExp][] = [
    ['no data', () => decodeRootSecret(undefined, 'ns/s'), /Secret ns\/s: has no data/],
    [
      'a missing ca.key',
      () => decodeRootSecret({ 'ca.crt': b64(root.certPem) }, 'ns/s'),
      /has no "ca\.key" key/,
    ],
    [
      'a non-string',
      () => decodeRootSecret({ 'ca.crt': 42, 'ca.key': b64(root.keyPem) }, 'ns/s'),
      /"ca\.crt" is not a base64 string/,
    ],
    [
      'bad base64',
      () => decodeRootSecret({ 'ca.crt': 'not*base64', 'ca.key': b64(root.keyPem) }, 'ns/s'),
      /"ca\.crt" is not valid base64/,
    ],
    [
      'key and cert swapped',
      () => decodeRootSecret({ 'ca.crt': b64(root.keyPem), 'ca.key': b64(root.certPem) }, 'ns/s'),
      /"ca\.crt" does not decode to the expected PEM/,
    ],
  ];
  for (const [name, fn, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(fn, meshlessError('MESHLESS_E_CA', message));
    });
  }

  it('reads through an injected API call: found, absent (404), forbidden (403)', async () => {
    const found = new KubernetesSecretRootSource('meshless/ca', {
      readSecret: async (ns, name) => {
        assert.deepEqual([ns, name], ['meshless', 'ca']);
        return { 'ca.crt': b64(root.certPem), 'ca.key': b64(root.keyPem) };
      },
    });
    assert.equal((await found.load())?.certPem, root.certPem);
    const absent = new KubernetesSecretRootSource('meshless/ca', {
      readSecret: async () => undefined,
    });
    assert.equal(await absent.load(), undefined);
    const forbidden = new KubernetesSecretRootSource('meshless/ca', {
      readSecret: async () => {
        throw Object.assign(new Error('HTTP 403 Forbidden'), { code: 403 });
      },
    });
    await assert.rejects(
      () => forbidden.load(),
      /Secret meshless\/ca: cannot be read: .*ServiceAccount "get" Secrets in namespace meshless/,
    );
    assert.throws(() => new KubernetesSecretRootSource('just-a-name'), /not "namespace\/name"/);
  });
});

describe('root sources on disk', () => {
  let dir: string;
  let root: RootMaterial;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-root-'));
    root = await generateRootCa({ trustDomain: TD, now: NOW });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a file source with neither file is absent, not an error', async () => {
    assert.equal(
      await new FileRootSource(join(dir, 'nope.crt'), join(dir, 'nope.key')).load(),
      undefined,
    );
  });

  it('persists atomically once; a concurrent second writer gets the first root', async () => {
    const store = new GeneratedRootStore(join(dir, 'state'));
    const other = await generateRootCa({ trustDomain: TD, now: NOW });
    const [a, b] = await Promise.all([store.persist(root), store.persist(other)]);
    assert.equal(a.certPem, b.certPem, 'both see the same root');
    assert.equal(readFileSync(store.certFile, 'utf8'), a.certPem);
    assert.equal(statSync(store.keyFile).mode & 0o777, 0o600);
    assert.equal((await store.load())?.keyPem, a.keyPem);
  });

  it('resolveRoot prefers configured sources, then the store, then generation', async () => {
    const store = new GeneratedRootStore(join(dir, 'resolve'));
    let generated = 0;
    const generateRoot = async () => {
      generated++;
      return root;
    };
    const absent = { description: 'nothing', load: async () => undefined };
    const present = { description: 'configured', load: async () => root };
    assert.equal(
      (await resolveRoot({ configured: [absent, present], store, generate: true, generateRoot }))
        .source,
      'configured',
    );
    await assert.rejects(
      () => resolveRoot({ configured: [absent], store, generate: false, generateRoot }),
      /no cluster root CA found \(tried: nothing; generated root in .*\)/,
    );
    const first = await resolveRoot({ configured: [absent], store, generate: true, generateRoot });
    assert.equal(first.generated, true);
    const second = await resolveRoot({ configured: [absent], store, generate: true, generateRoot });
    assert.equal(second.generated, false);
    assert.equal(generated, 1);
  });
});
