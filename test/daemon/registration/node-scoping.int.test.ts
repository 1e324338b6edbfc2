/**
 * Node scoping of the registration path, in process (the production
 * RegistrationService, Registry and file discovery): a pod gets enrolled
 * (and so an identity) only when discovery says it is scheduled on this
 * node, and an ADD can never take over another pod's container ID, netns or
 * addresses. An identity failure that means "try again" stays NOT_READY, so
 * the plugin answers CNI 11.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  RegistrationService,
  type WorkloadObserver,
} from '../../../daemon/registration/registration-service.js';
import { Registry, type Registration } from '../../../daemon/registration/registry.js';
import { MeshlessError } from '../../../src/errors.js';
import { FileDiscoverySource } from '../../../src/discovery/file-source.js';
import { silentLogger } from '../../../src/logger.js';
import { API_VERSION, type AddRequest } from '../../../src/registration/protocol.js';
import { podObject } from '../../support/fake-kube-apiserver.js';

const NODE = 'node-a';

/** Records enrolments; fails on demand, as the identity service does when the signer is down. */
class Observer implements WorkloadObserver {
  readonly enrolled = new Set<string>();
  failWith: Error | undefined;
  workloadEnrolled(r: Registration): Promise<void> {
    if (this.failWith) return Promise.reject(this.failWith);
    this.enrolled.add(r.containerId);
    return Promise.resolve();
  }
  workloadReleased(r: Registration): Promise<void> {
    this.enrolled.delete(r.containerId);
    return Promise.resolve();
  }
}

function code(c: string, match?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, c, err.message);
    if (match) assert.match(err.message, match);
    return true;
  };
}

describe('registration: node scoping', () => {
  let dir: string;
  let discovery: FileDiscoverySource;
  let service: RegistrationService;
  const observer = new Observer();

  const add = (
    containerId: string,
    pod: string,
    ip: string,
    netns = containerId,
  ): Promise<unknown> => {
    const path = join(dir, 'netns', netns);
    writeFileSync(path, '');
    const req: AddRequest = {
      apiVersion: API_VERSION,
      containerId,
      netns: path,
      ifname: 'eth0',
      network: 'k8s-pod-network',
      pod: { namespace: 'shop', name: pod, uid: `uid-shop-${pod}` },
      addresses: [{ family: 4, ip }],
    };
    return service.add(req);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-scoping-'));
    mkdirSync(join(dir, 'netns'));
    mkdirSync(join(dir, 'state'));
    const items = [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop', labels: { 'io.cilium/mtls-enabled': 'true' } },
      },
      podObject({ namespace: 'shop', name: 'web', nodeName: NODE, ips: ['10.1.0.5'] }),
      podObject({ namespace: 'shop', name: 'api', nodeName: NODE }),
      podObject({ namespace: 'shop', name: 'db', nodeName: NODE, ips: ['10.1.0.7'] }),
      podObject({ namespace: 'shop', name: 'pending' }),
      podObject({ namespace: 'shop', name: 'remote', nodeName: 'node-b' }),
    ];
    writeFileSync(
      join(dir, 'cluster.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    );
    discovery = new FileDiscoverySource(join(dir, 'cluster.json'), silentLogger);
    await discovery.start();
    const registry = new Registry(join(dir, 'state'), silentLogger);
    await registry.load();
    service = new RegistrationService({
      nodeName: NODE,
      trustDomain: 'cluster.local',
      policy: { label: { key: 'io.cilium/mtls-enabled', value: 'true' }, excludeNamespaces: [] },
      discovery,
      registry,
      log: silentLogger,
    });
    service.addObserver(observer);
  });
  after(() => {
    discovery.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a pod with no nodeName (pending) gets no identity: NOT_READY', async () => {
    await assert.rejects(
      add('c-pending', 'pending', '10.1.0.9'),
      code('MESHLESS_E_NOT_READY', /not scheduled on node-a/),
    );
    assert.equal(observer.enrolled.has('c-pending'), false);
  });

  it('a pod scheduled on another node is refused', async () => {
    await assert.rejects(add('c-remote', 'remote', '10.1.0.9'), code('MESHLESS_E_WRONG_NODE'));
  });

  it('enrols a pod of this node with its own address', async () => {
    await add('c-web', 'web', '10.1.0.5');
    assert.ok(observer.enrolled.has('c-web'));
  });

  it('a container ID already registered cannot come back as another pod', async () => {
    await assert.rejects(
      add('c-web', 'api', '10.1.0.6'),
      code('MESHLESS_E_REGISTRATION_CONFLICT', /registered as pod shop\/web/),
    );
    assert.ok(observer.enrolled.has('c-web'), 'the first registration stands');
  });

  it("a new container ID cannot claim another pod's netns", async () => {
    await assert.rejects(
      add('c-evil', 'api', '10.1.0.6', 'c-web'),
      code('MESHLESS_E_REGISTRATION_CONFLICT', /netns .* is registered to pod shop\/web/),
    );
  });

  it('an address discovery gives another pod, or not this one, is refused', async () => {
    await assert.rejects(
      add('c-api', 'api', '10.1.0.5'),
      code('MESHLESS_E_REGISTRATION_CONFLICT', /belongs to pod shop\/web/),
    );
    await assert.rejects(
      add('c-db', 'db', '10.1.0.8'),
      code('MESHLESS_E_REGISTRATION_CONFLICT', /not one of shop\/db's/),
    );
    // Discovery does not know api's IP yet (the kubelet reports it after ADD): accepted.
    await add('c-api', 'api', '10.1.0.6');
  });

  it('the same pod with a new sandbox (new container ID, new netns) is fine', async () => {
    await add('c-web-2', 'web', '10.1.0.5');
    assert.ok(observer.enrolled.has('c-web-2'));
  });

  it('an identity that must wait (signer unreachable) stays NOT_READY for the plugin (CNI 11)', async () => {
    observer.failWith = new MeshlessError(
      'MESHLESS_E_NOT_READY',
      'the cluster signer did not issue it within 3 s',
    );
    try {
      await assert.rejects(
        add('c-db', 'db', '10.1.0.7'),
        code('MESHLESS_E_NOT_READY', /must wait: the cluster signer/),
      );
      observer.failWith = new MeshlessError('MESHLESS_E_SIGNER_REFUSED', 'not_on_node');
      await assert.rejects(add('c-db', 'db', '10.1.0.7'), code('MESHLESS_E_ENROL'));
    } finally {
      observer.failWith = undefined;
    }
    await add('c-db', 'db', '10.1.0.7');
  });
});
