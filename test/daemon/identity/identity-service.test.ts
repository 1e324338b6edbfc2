import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  IdentityService,
  type IdentityEvents,
  type IdentityServiceDeps,
  type Scheduler,
} from '../../../daemon/identity/identity-service.js';
import { loadDaemonConfig, type DaemonConfig } from '../../../src/config/daemon-config.js';
import { MeshlessError } from '../../../src/errors.js';
import {
  generateRootCa,
  type SigningAuthority,
} from '../../../src/identity/certificate-authority.js';
import { parseCertsReport } from '../../../src/identity/certs-report.js';
import {
  SvidValidationError,
  chainFromPeerCertificate,
  validatePeer,
} from '../../../src/identity/svid-validation.js';

const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
const MIN = 60_000;
const TD = 'cluster.local';

/** A manual clock and scheduler: timers fire only when the test advances time. */
class FakeTime {
  now = NOW;
  #seq = 0;
  readonly timers = new Map<number, { due: number; fn: () => void }>();
  readonly clock = (): number => this.now;
  readonly scheduler: Scheduler = {
    setTimeout: (fn, ms) => {
      const id = ++this.#seq;
      this.timers.set(id, { due: this.now + ms, fn });
      return id;
    },
    clearTimeout: (h) => {
      this.timers.delete(h as number);
    },
  };

  /** Fires the most recently armed timer now, whatever its due time. */
  fireLatest(): void {
    const last = [...this.timers.keys()].pop();
    if (last === undefined) throw new Error('no timer');
    const timer = this.timers.get(last);
    this.timers.delete(last);
    timer?.fn();
  }

  /**
   * Steps the wall clock by `ms` without moving the timers' (monotonic)
   * clock: every armed timer keeps its remaining delay, as after an NTP
   * step or a VM resume.
   */
  jumpWall(ms: number): void {
    this.now += ms;
    for (const t of this.timers.values()) t.due += ms;
  }

  /** Moves the clock to `t`, firing due timers in order. */
  advanceTo(t: number): void {
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= t && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = Math.max(this.now, next[1].due);
      next[1].fn();
    }
    this.now = t;
  }
}

/** The node CA of a local-root service (always present in that mode). */
function nodeCaOf(s: IdentityService): SigningAuthority {
  const ca = s.nodeCa;
  assert.ok(ca, 'the unsafe local-root mode has a node CA');
  return ca;
}

function configFor(stateDir: string, env: Record<string, string> = {}): DaemonConfig {
  return loadDaemonConfig({
    env: {
      MESHLESS_STATE_DIR: stateDir,
      MESHLESS_DISCOVERY_FILE: join(stateDir, 'discovery.yaml'),
      MESHLESS_NODE_NAME: 'node-a',
      MESHLESS_TRUST_DOMAIN: TD,
      MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
      ...env,
    },
  });
}

/** Resolves with the arguments of the next `event`. */
function nextEvent<E extends keyof IdentityEvents>(
  s: IdentityService,
  event: E,
): Promise<Parameters<IdentityEvents[E]>> {
  return new Promise((resolve) => {
    const listener = ((...args: Parameters<IdentityEvents[E]>) => {
      s.off(event, listener);
      resolve(args);
    }) as IdentityEvents[E];
    s.on(event, listener);
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MeshlessError, String(err));
    return err.code;
  }
  assert.fail('expected an error');
}

describe('IdentityService', () => {
  let dir: string;
  let time: FakeTime;
  let services: IdentityService[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-identity-'));
    time = new FakeTime();
    services = [];
  });
  afterEach(() => {
    for (const s of services) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(
    config = configFor(dir),
    deps: IdentityServiceDeps = {},
  ): Promise<IdentityService> {
    const s = await IdentityService.create(config, {
      clock: time.clock,
      scheduler: time.scheduler,
      random: () => 0.5,
      ...deps,
    });
    services.push(s);
    return s;
  }

  describe('root CA', () => {
    it('generates a root once, persists it privately, and reloads it', async () => {
      const first = await start();
      const keyFile = join(dir, 'ca', 'ca.key');
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'ca')).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'ca', 'ca.crt')).mode & 0o777, 0o644);
      const second = await start(configFor(dir, { MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'false' }));
      assert.equal(
        second.trustBundle.roots[0]?.fingerprint256,
        first.trustBundle.roots[0]?.fingerprint256,
      );
      assert.notEqual(
        nodeCaOf(second).certificate.serialNumber,
        nodeCaOf(first).certificate.serialNumber,
      );
    });

    it('refuses to start without a root when generation is off', async () => {
      await assert.rejects(
        () => start(configFor(dir, { MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'false' })),
        (err: MeshlessError) => {
          assert.equal(err.code, 'MESHLESS_E_CA');
          assert.match(err.message, /no cluster root CA found .*unsafeLocalRoot\.generate: true/);
          return true;
        },
      );
    });

    it('uses configured files, whose bundle may hold several roots', async () => {
      const signing = await generateRootCa({ trustDomain: TD, now: NOW });
      const previous = await generateRootCa({ trustDomain: TD, now: NOW });
      writeFileSync(join(dir, 'ca.crt'), previous.certPem + signing.certPem);
      writeFileSync(join(dir, 'ca.key'), signing.keyPem, { mode: 0o600 });
      const s = await start(
        configFor(dir, {
          MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE: join(dir, 'ca.crt'),
          MESHLESS_UNSAFE_LOCAL_ROOT_KEY_FILE: join(dir, 'ca.key'),
          MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'false',
        }),
      );
      assert.equal(s.trustBundle.roots.length, 2);
      const signingRoot = s.trustBundle.roots[1];
      assert.ok(signingRoot && nodeCaOf(s).certificate.checkIssued(signingRoot));
    });

    it('says which file is missing when only one of the pair exists', async () => {
      const root = await generateRootCa({ trustDomain: TD, now: NOW });
      writeFileSync(join(dir, 'ca.crt'), root.certPem);
      await assert.rejects(
        () =>
          start(
            configFor(dir, {
              MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE: join(dir, 'ca.crt'),
              MESHLESS_UNSAFE_LOCAL_ROOT_KEY_FILE: join(dir, 'ca.key'),
              MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'false',
            }),
          ),
        /ca\.key is missing while .*ca\.crt exists/,
      );
    });
  });

  describe('acquire and release', () => {
    it('builds the TLS context of an SVID once, on first use or shortly after issuing', async () => {
      const s = await start();
      const a = await s.acquire('ctr-a', 'shop', 'web');
      const first = a.secureContext;
      assert.equal(a.secureContext, first, 'the same context every time');
      assert.equal({ ...a }.secureContext, first, 'copies share it');
      const b = await s.acquire('ctr-b', 'shop', 'api');
      await new Promise((resolve) => setTimeout(resolve, 60)); // the warm-up
      assert.equal(s.secureContextFor(b.spiffeId), b.secureContext);
      assert.ok(b.secureContext.context, 'a real tls.SecureContext');
    });

    it('issues one SVID per service account and refcounts workloads', async () => {
      const s = await start();
      const a = await s.acquire('ctr-a', 'shop', 'web');
      const b = await s.acquire('ctr-b', 'shop', 'web');
      const c = await s.acquire('ctr-c', 'shop', 'db');
      assert.equal(a.spiffeId.toString(), `spiffe://${TD}/ns/shop/sa/web`);
      assert.equal(b.serialNumber, a.serialNumber, 'same identity, same SVID');
      assert.notEqual(c.serialNumber, a.serialNumber);
      assert.deepEqual(s.size, { workloads: 3, identities: 2 });
      assert.equal(s.secureContextFor(a.spiffeId), a.secureContext);
      assert.equal(s.secureContextFor(`spiffe://${TD}/ns/shop/sa/web`), a.secureContext);
      assert.equal(
        validatePeer(a.chainDer, { bundle: s.trustBundle, now: NOW }).toString(),
        a.spiffeId.toString(),
      );

      const released: string[] = [];
      s.on('released', (id) => released.push(id.toString()));
      assert.equal(s.release('ctr-a'), true);
      assert.equal(s.svidFor(a.spiffeId), a, 'still held by ctr-b');
      assert.equal(s.release('ctr-b'), true);
      assert.deepEqual(released, [a.spiffeId.toString()]);
      assert.equal(
        codeOf(() => s.secureContextFor(a.spiffeId)),
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
      );
      assert.equal(s.release('ctr-b'), false, 'release is idempotent');
      assert.equal(s.release('never-seen'), false);
      assert.deepEqual(s.size, { workloads: 1, identities: 1 });
    });

    it('is idempotent per workload key and issues once under concurrency', async () => {
      const s = await start();
      const [x, y, z] = await Promise.all([
        s.acquire('ctr-a', 'shop', 'web'),
        s.acquire('ctr-a', 'shop', 'web'),
        s.acquire('ctr-b', 'shop', 'web'),
      ]);
      assert.equal(x, y);
      assert.equal(x, z);
      assert.deepEqual(s.size, { workloads: 2, identities: 1 });
    });

    it('moves a workload key that comes back with another identity', async () => {
      const s = await start();
      await s.acquire('ctr-a', 'shop', 'web');
      await s.acquire('ctr-a', 'shop', 'api');
      assert.deepEqual(s.size, { workloads: 1, identities: 1 });
      assert.equal(
        codeOf(() => s.svidFor(`spiffe://${TD}/ns/shop/sa/web`)),
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
      );
      assert.ok(s.svidFor(`spiffe://${TD}/ns/shop/sa/api`));
    });

    it('drops an identity released while it was being issued', async () => {
      const s = await start();
      const pending = s.acquire('ctr-a', 'shop', 'web');
      s.release('ctr-a');
      await pending;
      assert.deepEqual(s.size, { workloads: 0, identities: 0 });
      assert.equal(
        codeOf(() => s.svidFor(`spiffe://${TD}/ns/shop/sa/web`)),
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
      );
      assert.equal(time.timers.size, 1, 'only the node CA timer is left');
    });

    const refusals: readonly [string, string, string][] = [
      [
        'another pod on another node',
        `spiffe://${TD}/ns/shop/sa/other`,
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
      ],
      [
        'a foreign trust domain',
        'spiffe://evil.example/ns/shop/sa/web',
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
      ],
      ['a non-workload ID', `spiffe://${TD}`, 'MESHLESS_E_IDENTITY_NOT_ON_NODE'],
      ['a malformed ID', 'spiffe://cluster.local/ns/shop/sa/web/', 'MESHLESS_E_SPIFFE_ID'],
    ];
    for (const [name, id, code] of refusals) {
      it(`refuses the SVID of ${name} (node scoping)`, async () => {
        const s = await start();
        await s.acquire('ctr-a', 'shop', 'web');
        assert.equal(
          codeOf(() => s.secureContextFor(id)),
          code,
        );
        assert.throws(
          () => s.svidFor(id),
          new RegExp(
            code === 'MESHLESS_E_SPIFFE_ID'
              ? 'not a valid SPIFFE ID'
              : 'no workload registered on this node',
          ),
        );
      });
    }

    it('refuses bad namespace or service account names and empty keys', async () => {
      const s = await start();
      await assert.rejects(() => s.acquire('ctr', 'a/b', 'web'), { code: 'MESHLESS_E_SPIFFE_ID' });
      await assert.rejects(() => s.acquire('ctr', 'shop', '..'), { code: 'MESHLESS_E_SPIFFE_ID' });
      await assert.rejects(() => s.acquire('', 'shop', 'web'), { code: 'MESHLESS_E_IDENTITY' });
      assert.deepEqual(s.size, { workloads: 0, identities: 0 });
    });
  });

  describe('rotation', () => {
    it('renews at half life (random 0.5), swaps the context, keeps the old one intact', async () => {
      const s = await start();
      const first = await s.acquire('ctr-a', 'shop', 'web');
      assert.equal(first.notAfter - first.issuedAt, 60 * MIN);
      assert.equal(first.rotateAt, NOW + 30 * MIN);

      const seen = nextEvent(s, 'rotated');
      time.advanceTo(NOW + 30 * MIN - 1);
      assert.equal(s.svidFor(first.spiffeId), first, 'not yet');
      time.advanceTo(NOW + 30 * MIN);
      const [next, previous] = await seen;
      assert.equal(previous, first);
      assert.notEqual(next.serialNumber, first.serialNumber);
      assert.equal(next.issuedAt, NOW + 30 * MIN);
      assert.equal(next.rotateAt, NOW + 60 * MIN);
      assert.equal(s.svidFor(first.spiffeId), next);
      assert.notEqual(
        s.secureContextFor(first.spiffeId),
        first.secureContext,
        'new context for new connections',
      );
      assert.ok(
        first.secureContext.context,
        'the old context still exists for established connections',
      );
    });

    it('applies jitter within ±10 % of the half life', async () => {
      const early = await start(configFor(dir), { random: () => 0 });
      const late = await start(configFor(dir), { random: () => 0.9999999 });
      const e = await early.acquire('c', 'shop', 'web');
      const l = await late.acquire('c', 'shop', 'web');
      assert.equal(e.rotateAt - e.issuedAt, 27 * MIN);
      assert.ok(Math.abs(l.rotateAt - l.issuedAt - 33 * MIN) <= 1);
    });

    it('honours a configured SVID TTL', async () => {
      const s = await start(configFor(dir, { MESHLESS_IDENTITY_SVID_TTL_SECONDS: '600' }));
      const svid = await s.acquire('c', 'shop', 'web');
      assert.equal(svid.notAfter - svid.issuedAt, 10 * MIN);
      assert.equal(svid.rotateAt, NOW + 5 * MIN);
    });

    it('renews the node CA at half its life; later SVIDs chain to the new one', async () => {
      const s = await start();
      const before = nodeCaOf(s);
      assert.equal(before.notAfter, NOW + 24 * 60 * MIN);
      const svid = await s.acquire('c', 'shop', 'web');
      // The SVID renews every 30 min on the way (random 0.5); the node CA at 12 h.
      for (let t = NOW + 30 * MIN; t < NOW + 12 * 60 * MIN; t += 30 * MIN) {
        const rotated = nextEvent(s, 'rotated');
        time.advanceTo(t);
        await rotated;
      }
      assert.equal(nodeCaOf(s), before);
      const caRotated = nextEvent(s, 'node-ca-rotated');
      const svidRotated = nextEvent(s, 'rotated');
      time.advanceTo(NOW + 12 * 60 * MIN);
      await Promise.all([caRotated, svidRotated]);
      assert.notEqual(nodeCaOf(s).certificate.serialNumber, before.certificate.serialNumber);
      const afterCa = nextEvent(s, 'rotated');
      time.advanceTo(NOW + 12 * 60 * MIN + 30 * MIN);
      await afterCa;
      const renewed = s.svidFor(svid.spiffeId);
      assert.ok(renewed.certificate.checkIssued(nodeCaOf(s).certificate));
      assert.ok(renewed.chainDer[1]?.equals(nodeCaOf(s).certificate.raw));
      assert.equal(
        validatePeer(renewed.chainDer, { bundle: s.trustBundle, now: time.now }).toString(),
        svid.spiffeId.toString(),
      );
    });

    it('keeps the current SVID and retries with backoff when renewal fails', async () => {
      const s = await start();
      const first = await s.acquire('c', 'shop', 'web');
      // Jump to where the node CA is too close to expiry to sign, then run the
      // SVID's renewal timer (the latest armed) alone.
      time.now = nodeCaOf(s).notAfter - 30_000;
      const failed = nextEvent(s, 'rotation-failed');
      time.fireLatest();
      const [subject, error, retryAt] = await failed;
      assert.equal(String(subject), first.spiffeId.toString());
      assert.match(String(error), /too soon to issue/);
      assert.equal(retryAt, time.now + 1000, 'first retry after 1 s');
      assert.equal(s.svidFor(first.spiffeId), first, 'the current SVID stays in use');
      assert.equal(s.report().identities[0]?.rotationFailures, 1);
      const again = nextEvent(s, 'rotation-failed');
      time.advanceTo(retryAt);
      assert.equal((await again)[2], time.now + 2000, 'then 2 s');
    });

    it('renews an SVID expired by a forward wall-clock jump within 60 s', async () => {
      const s = await start();
      const first = await s.acquire('c', 'shop', 'web');
      // The wall clock steps 2 h forward; the renewal timer (due at 30 min on
      // the wall clock) keeps its monotonic delay.
      time.jumpWall(120 * MIN);
      assert.ok(time.now > first.notAfter, 'the SVID is now expired');
      assert.equal(s.svidFor(first.spiffeId), first, 'not renewed by the jump itself');
      const rotated = nextEvent(s, 'rotated');
      time.advanceTo(time.now + 60_000);
      const [next, previous] = await rotated;
      assert.equal(previous, first);
      assert.notEqual(next.serialNumber, first.serialNumber);
      assert.ok(next.notAfter > time.now, 'the new SVID is valid after the jump');
      assert.equal(s.svidFor(first.spiffeId), next);
      assert.equal(
        validatePeer(next.chainDer, { bundle: s.trustBundle, now: time.now }).toString(),
        first.spiffeId.toString(),
      );
      assert.ok(
        [...time.timers.values()].every((t) => t.due - time.now <= 60_000),
        'no wait longer than 60 s',
      );
    });

    it('keeps an open TLS connection across rotation and past the old notAfter', async () => {
      const s = await start();
      const server = await s.acquire('srv', 'shop', 'web');
      const client = await s.acquire('cli', 'shop', 'db');
      const validate = (t: tls.TLSSocket): string =>
        validatePeer(chainFromPeerCertificate(t.getPeerCertificate(true)), {
          bundle: s.trustBundle,
          now: time.now,
        }).toString();
      // Chain checks use the injected clock (validatePeer), as the data plane does.
      const listener = net.createServer((raw) => {
        const socket = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: server.secureContext,
          requestCert: true,
          rejectUnauthorized: false,
        });
        socket.on('error', () => undefined);
        socket.pipe(socket);
      });
      listener.listen(0, '127.0.0.1');
      await once(listener, 'listening');
      const conn = tls.connect({
        host: '127.0.0.1',
        port: (listener.address() as AddressInfo).port,
        secureContext: client.secureContext,
        rejectUnauthorized: false,
      });
      try {
        await once(conn, 'secureConnect');
        assert.equal(validate(conn), server.spiffeId.toString());
        const roundTrip = async (text: string): Promise<string> => {
          conn.write(text);
          const [chunk] = (await once(conn, 'data')) as [Buffer];
          return chunk.toString();
        };
        assert.equal(await roundTrip('before'), 'before');

        const rotated = nextEvent(s, 'rotated');
        time.advanceTo(server.rotateAt);
        await rotated;
        assert.notEqual(s.svidFor(server.spiffeId).serialNumber, server.serialNumber);
        assert.equal(await roundTrip('rotated'), 'rotated');

        // Past the old certificates' notAfter: a new handshake with them
        // would fail, the established session is not re-validated.
        time.advanceTo(Math.max(server.notAfter, client.notAfter) + 1000);
        assert.throws(
          () => validate(conn),
          (err: unknown) => err instanceof SvidValidationError && err.reason === 'expired',
        );
        assert.equal(await roundTrip('expired'), 'expired');
        assert.ok(!conn.destroyed);
      } finally {
        conn.destroy();
        await new Promise<void>((resolve) => listener.close(() => resolve()));
      }
    });

    it('drops the timer with the identity, and close() stops everything', async () => {
      const s = await start();
      assert.equal(time.timers.size, 1, 'node CA');
      await s.acquire('a', 'shop', 'web');
      await s.acquire('b', 'shop', 'db');
      assert.equal(time.timers.size, 3);
      s.release('a');
      assert.equal(time.timers.size, 2);
      s.close();
      s.close();
      assert.equal(time.timers.size, 0);
      await assert.rejects(() => s.acquire('c', 'shop', 'web'), {
        code: 'MESHLESS_E_IDENTITY_CLOSED',
      });
    });
  });

  describe('report', () => {
    it('lists each identity with its chain, serial, validity and next rotation, no keys', async () => {
      const s = await start();
      const svid = await s.acquire('a', 'shop', 'web');
      await s.acquire('b', 'shop', 'web');
      const report = parseCertsReport(JSON.parse(JSON.stringify(s.report())));
      assert.equal(report.trustDomain, TD);
      assert.equal(report.nodeName, 'node-a');
      assert.equal(report.trustBundle.length, 1);
      assert.equal(report.identities.length, 1);
      const [id] = report.identities;
      assert.equal(id?.spiffeId, svid.spiffeId.toString());
      assert.equal(id?.workloads, 2);
      assert.equal(id?.serialNumber, svid.serialNumber);
      assert.equal(id?.notAfter, new Date(NOW + 60 * MIN).toISOString());
      assert.equal(id?.nextRotation, new Date(NOW + 30 * MIN).toISOString());
      assert.equal(id?.chainPem.length, 2);
      assert.equal(id?.chainPem[0], svid.certificate.toString());
      assert.equal(report.nodeCa?.nextRotation, new Date(NOW + 12 * 60 * MIN).toISOString());
      assert.doesNotMatch(JSON.stringify(report), /PRIVATE KEY/);
    });
  });
});
