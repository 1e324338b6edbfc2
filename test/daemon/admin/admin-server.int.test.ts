import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createAdminServer,
  isLoopbackHost,
  type AdminServer,
} from '../../../daemon/admin/admin-server.js';
import { IdentityService } from '../../../daemon/identity/identity-service.js';
import { getAdminJson } from '../../../cli/admin-client.js';
import { renderCertsTable } from '../../../cli/commands/certs.js';
import { loadDaemonConfig } from '../../../src/config/daemon-config.js';
import { MeshlessError } from '../../../src/errors.js';
import { parseCertsReport } from '../../../src/identity/certs-report.js';

function call(
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text ? JSON.parse(text) : undefined,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin server', () => {
  let dir: string;
  let identity: IdentityService;
  let admin: AdminServer;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-admin-'));
    const config = loadDaemonConfig({
      env: {
        MESHLESS_STATE_DIR: dir,
        MESHLESS_DISCOVERY_FILE: join(dir, 'cluster.yaml'),
        MESHLESS_NODE_NAME: 'node-a',
        MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
      },
    });
    identity = await IdentityService.create(config);
    await identity.acquire('ctr-1', 'shop', 'web');
    await identity.acquire('ctr-2', 'shop', 'web');
    await identity.acquire('ctr-3', 'shop', 'db');
    admin = createAdminServer({
      address: '127.0.0.1:0',
      routes: {
        '/certs': () => identity.report(),
        '/slow': async () => {
          await new Promise((r) => setTimeout(r, 5));
          return { ok: true };
        },
        '/broken': () => {
          throw new MeshlessError('MESHLESS_E_INTERNAL', 'route exploded');
        },
      },
    });
    ({ port } = await admin.listen());
  });

  after(async () => {
    await admin.close();
    await admin.close();
    identity.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves GET /certs as JSON the CLI understands', async () => {
    const res = await call(port, 'GET', '/certs?verbose=1');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const report = parseCertsReport(res.body);
    assert.deepEqual(
      report.identities.map((i) => [i.spiffeId, i.workloads, i.chainPem.length]),
      [
        ['spiffe://cluster.local/ns/shop/sa/db', 1, 2],
        ['spiffe://cluster.local/ns/shop/sa/web', 2, 2],
      ],
    );
    assert.doesNotMatch(JSON.stringify(res.body), /PRIVATE KEY/);

    const viaClient = parseCertsReport(await getAdminJson(`127.0.0.1:${port}`, '/certs'));
    const text = renderCertsTable(viaClient, Date.now());
    assert.match(text, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\s+2\s+[0-9a-f]{32}/);
  });

  it('answers async routes, lists routes at /, 404 for unknown paths', async () => {
    assert.deepEqual((await call(port, 'GET', '/slow')).body, { ok: true });
    const index = await call(port, 'GET', '/');
    assert.deepEqual(index.body, { paths: ['/broken', '/certs', '/slow'] });
    const missing = await call(port, 'GET', '/nope');
    assert.equal(missing.status, 404);
    assert.match(String((missing.body as { error: string }).error), /no such path \/nope/);
  });

  it('accepts routes added after creation', async () => {
    admin.route('/later', () => ({ added: true }));
    assert.deepEqual((await call(port, 'GET', '/later')).body, { added: true });
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
    it(`refuses ${method} with 405 and Allow: GET`, async () => {
      const res = await call(port, method, '/certs');
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, 'GET');
    });
  }

  it('gives a route its query; MESHLESS_E_ADMIN_REQUEST is a 400', async () => {
    admin.route('/echo', (query) => {
      const x = query.get('x');
      if (x === null) throw new MeshlessError('MESHLESS_E_ADMIN_REQUEST', 'give x=');
      return { x };
    });
    assert.deepEqual((await call(port, 'GET', '/echo?x=a%2Fb')).body, { x: 'a/b' });
    const res = await call(port, 'GET', '/echo');
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, { error: 'give x=', code: 'MESHLESS_E_ADMIN_REQUEST' });
  });

  it('turns a throwing route into 500 with its message and code', async () => {
    const res = await call(port, 'GET', '/broken');
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { error: 'route exploded', code: 'MESHLESS_E_INTERNAL' });
  });

  it('binds loopback for ":port" and refuses non-loopback addresses', async () => {
    const any = createAdminServer({ address: ':0' });
    const bound = await any.listen();
    assert.equal(bound.host, '127.0.0.1');
    await any.close();
    assert.throws(() => createAdminServer({ address: '0.0.0.0:15000' }), {
      code: 'MESHLESS_E_ADMIN',
    });
    assert.throws(() => createAdminServer({ address: '10.1.2.3:15000' }), /not a loopback address/);
    assert.ok(isLoopbackHost('127.0.0.53') && isLoopbackHost('::1') && !isLoopbackHost('::'));
  });

  it('says so when the port is taken', async () => {
    const second = createAdminServer({ address: `127.0.0.1:${port}` });
    await assert.rejects(
      () => second.listen(),
      /cannot listen on admin address .*another meshless daemon/,
    );
  });
});
