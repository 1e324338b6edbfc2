import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  envNameOf,
  loadDaemonConfig,
  parseListenAddress,
  type DaemonConfig,
} from '../../../src/config/daemon-config.js';
import { MeshlessError } from '../../../src/errors.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshless-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** Writes `text` to a fresh file in the temp dir and returns its path. */
function configFile(text: string, ext = 'yaml'): string {
  const path = join(dir, `config-${n++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/** Only the discovery source, which is mandatory. */
const MIN_ENV = { MESHLESS_DISCOVERY_FILE: '/etc/meshless/cluster.yaml' };

function assertConfigError(fn: () => unknown, key: string, mentions?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MeshlessError, String(err));
    assert.equal(err.code, 'MESHLESS_E_CONFIG');
    assert.ok(err.message.includes(`"${key}"`), `"${err.message}" should name "${key}"`);
    if (mentions) assert.match(err.message, mentions);
    return true;
  });
}

describe('loadDaemonConfig: defaults', () => {
  it('fills every default from the environment alone', () => {
    const c = loadDaemonConfig({ env: MIN_ENV, usableCpus: () => 2 });
    assert.deepEqual(JSON.parse(JSON.stringify(c)) as unknown, {
      nodeName: hostname(),
      trustDomain: 'cluster.local',
      stateDir: '/var/run/meshless',
      cniSocket: '/var/run/meshless/cni.sock',
      discovery: { source: 'file', file: '/etc/meshless/cluster.yaml' },
      enrolmentLabel: { key: 'io.cilium/mtls-enabled', value: 'true' },
      excludeNamespaces: ['kube-system'],
      unsafeLocalRoot: { generate: false },
      identity: { svidTtlSeconds: 3600, intermediateTtlSeconds: 86400 },
      adminAddress: '127.0.0.1:15000',
      metricsAddress: '127.0.0.1:15020',
      readinessAddress: '127.0.0.1:15021',
      procSysNetPath: '/proc/sys/net',
      logLevel: 'info',
      drainTimeoutSeconds: 25,
      probeSnat: true,
      podCidrs: [],
      serviceCidrs: [],
      rootNamespace: 'meshless-system',
      enforceNetworkPolicy: true,
      limits: {
        connectionsPerPodOutbound: 512,
        connectionsPerPodInbound: 512,
        connectionsPerNode: 4096,
        relayBufferBytes: 128 * 1024 * 1024,
      },
      dataPlane: { workers: 2 },
    });
  });

  it('probeSnat: on by default, off from the file or MESHLESS_PROBE_SNAT=false', () => {
    const env = { ...MIN_ENV, MESHLESS_PROBE_SNAT: 'false' };
    assert.equal(loadDaemonConfig({ env }).probeSnat, false);
  });

  it('podCidrs: a list of CIDRs, from the file or MESHLESS_POD_CIDRS', () => {
    const env = { ...MIN_ENV, MESHLESS_POD_CIDRS: '10.244.0.0/16, fd00:10:244::/56' };
    assert.deepEqual(loadDaemonConfig({ env }).podCidrs, ['10.244.0.0/16', 'fd00:10:244::/56']);
  });

  it('is frozen', () => {
    const c = loadDaemonConfig({ env: MIN_ENV });
    assert.ok(
      Object.isFrozen(c) && Object.isFrozen(c.unsafeLocalRoot) && Object.isFrozen(c.identity),
    );
    assert.ok(Object.isFrozen(c.excludeNamespaces) && Object.isFrozen(c.discovery));
  });

  it('cniSocket follows stateDir', () => {
    const c = loadDaemonConfig({ env: { ...MIN_ENV, MESHLESS_STATE_DIR: '/run/m' } });
    assert.equal(c.cniSocket, '/run/m/cni.sock');
  });

  it('requires a discovery source', () => {
    assertConfigError(() => loadDaemonConfig({ env: {} }), 'discovery', /required/);
  });
});

const FULL_YAML = `# meshlessd
nodeName: node-a
trustDomain: example.org
stateDir: /var/lib/meshless
cniSocket: /run/meshless/cni.sock
discovery:
  kubernetes:
    kubeconfig: /etc/kubernetes/kubelet.conf
enrolmentLabel: example.org/mtls=on
excludeNamespaces: [kube-system, monitoring]
unsafeLocalRoot:
  certFile: /etc/meshless/ca.crt
  keyFile: /etc/meshless/ca.key
  generate: false
identity:
  svidTtlSeconds: 1800
  intermediateTtlSeconds: 43200
adminAddress: 127.0.0.1:16000
metricsAddress: "[::]:16020"
readinessAddress: 0.0.0.0:16021
logLevel: debug
drainTimeoutSeconds: 10
probeSnat: false
podCidrs: [10.244.0.0/16]
hostProcPath: /host/proc
rootNamespace: istio-system
enforceNetworkPolicy: false
limits:
  connectionsPerPodOutbound: 100
  connectionsPerPodInbound: 200
  connectionsPerNode: 1000
  relayBufferBytes: 67108864
procSysNetPath: /host/proc-sys-net
dataPlane:
  workers: 3
`;

const FULL: DaemonConfig = {
  nodeName: 'node-a',
  trustDomain: 'example.org',
  stateDir: '/var/lib/meshless',
  cniSocket: '/run/meshless/cni.sock',
  discovery: { source: 'kubernetes', kubeconfig: '/etc/kubernetes/kubelet.conf' },
  enrolmentLabel: { key: 'example.org/mtls', value: 'on' },
  excludeNamespaces: ['kube-system', 'monitoring'],
  signer: undefined,
  unsafeLocalRoot: {
    certFile: '/etc/meshless/ca.crt',
    keyFile: '/etc/meshless/ca.key',
    secret: undefined,
    generate: false,
  },
  identity: { svidTtlSeconds: 1800, intermediateTtlSeconds: 43200 },
  adminAddress: '127.0.0.1:16000',
  metricsAddress: '[::]:16020',
  readinessAddress: '0.0.0.0:16021',
  logLevel: 'debug',
  drainTimeoutSeconds: 10,
  probeSnat: false,
  hostProcPath: '/host/proc',
  procSysNetPath: '/host/proc-sys-net',
  podCidrs: ['10.244.0.0/16'],
  serviceCidrs: [],
  rootNamespace: 'istio-system',
  enforceNetworkPolicy: false,
  limits: {
    connectionsPerPodOutbound: 100,
    connectionsPerPodInbound: 200,
    connectionsPerNode: 1000,
    relayBufferBytes: 64 * 1024 * 1024,
  },
  dataPlane: { workers: 3 },
};

describe('loadDaemonConfig: dataPlane.workers', () => {
  const base = { MESHLESS_DISCOVERY_FILE: '/d.yaml' };
  it('defaults from the usable CPUs', () => {
    assert.equal(loadDaemonConfig({ env: base, usableCpus: () => 16 }).dataPlane.workers, 4);
    assert.equal(loadDaemonConfig({ env: base, usableCpus: () => 1 }).dataPlane.workers, 1);
  });
  it('MESHLESS_DATA_PLANE_WORKERS overrides', () => {
    assert.equal(
      loadDaemonConfig({ env: { ...base, MESHLESS_DATA_PLANE_WORKERS: '5' }, usableCpus: () => 2 })
        .dataPlane.workers,
      5,
    );
  });
  it('refuses 0', () =>
    assertConfigError(
      () => loadDaemonConfig({ env: { ...base, MESHLESS_DATA_PLANE_WORKERS: '0' } }),
      'dataPlane.workers',
      /at least 1/,
    ));
});

describe('loadDaemonConfig: files', () => {
  it('reads every key from YAML', () => {
    assert.deepEqual(loadDaemonConfig({ file: configFile(FULL_YAML), env: {} }), FULL);
  });

  it('reads the same from JSON', () => {
    const json = JSON.stringify({
      ...FULL,
      discovery: { kubernetes: { kubeconfig: '/etc/kubernetes/kubelet.conf' } },
      enrolmentLabel: 'example.org/mtls=on',
      unsafeLocalRoot: {
        certFile: FULL.unsafeLocalRoot?.certFile,
        keyFile: FULL.unsafeLocalRoot?.keyFile,
        generate: false,
      },
    });
    assert.deepEqual(loadDaemonConfig({ file: configFile(json, 'json'), env: {} }), FULL);
  });

  for (const [what, text] of [
    ['an empty map', 'discovery:\n  kubernetes: {}\n'],
    ['true', 'discovery:\n  kubernetes: true\n'],
  ] as const)
    it(`discovery.kubernetes as ${what} means in-cluster credentials`, () => {
      const c = loadDaemonConfig({ file: configFile(text), env: {} });
      assert.deepEqual(c.discovery, { source: 'kubernetes', kubeconfig: undefined });
    });

  it('discovery.file', () => {
    const c = loadDaemonConfig({ file: configFile('discovery:\n  file: /x/c.yaml\n'), env: {} });
    assert.deepEqual(c.discovery, { source: 'file', file: '/x/c.yaml' });
  });

  it('an empty file is all defaults', () => {
    const c = loadDaemonConfig({ file: configFile(''), env: MIN_ENV });
    assert.equal(c.trustDomain, 'cluster.local');
  });

  it('empty sections are allowed', () => {
    const c = loadDaemonConfig({
      file: configFile('unsafeLocalRoot: {}\nidentity: {}\ndiscovery:\n  file: /c.yaml\n'),
      env: {},
    });
    assert.equal(c.unsafeLocalRoot?.generate, false);
    assert.equal(c.identity.svidTtlSeconds, 3600);
  });

  it('a missing file is an error naming it', () => {
    assert.throws(
      () => loadDaemonConfig({ file: join(dir, 'nope.yaml'), env: MIN_ENV }),
      /cannot read config file .*nope\.yaml/,
    );
  });

  it('invalid YAML is an error naming the file', () => {
    const f = configFile('a: [1, 2\n');
    assert.throws(
      () => loadDaemonConfig({ file: f, env: MIN_ENV }),
      (err: unknown) => {
        return err instanceof MeshlessError && err.message.includes(f);
      },
    );
  });

  it('a file that is not a map is an error', () => {
    assert.throws(
      () => loadDaemonConfig({ file: configFile('- a\n- b\n'), env: MIN_ENV }),
      /must hold a map/,
    );
  });
});

describe('loadDaemonConfig: environment overrides', () => {
  const cases: [string, string, (c: DaemonConfig) => unknown, unknown][] = [
    ['MESHLESS_NODE_NAME', 'node-b', (c) => c.nodeName, 'node-b'],
    ['MESHLESS_TRUST_DOMAIN', 'td.example', (c) => c.trustDomain, 'td.example'],
    ['MESHLESS_STATE_DIR', '/srv/m', (c) => c.stateDir, '/srv/m'],
    ['MESHLESS_CNI_SOCKET', '/srv/cni.sock', (c) => c.cniSocket, '/srv/cni.sock'],
    [
      'MESHLESS_ENROLMENT_LABEL',
      'mesh=yes',
      (c) => c.enrolmentLabel,
      { key: 'mesh', value: 'yes' },
    ],
    ['MESHLESS_EXCLUDE_NAMESPACES', 'a,b', (c) => c.excludeNamespaces, ['a', 'b']],
    ['MESHLESS_EXCLUDE_NAMESPACES', ' a , b ', (c) => c.excludeNamespaces, ['a', 'b']],
    [
      'MESHLESS_UNSAFE_LOCAL_ROOT_SECRET',
      'meshless/ca',
      (c) => c.unsafeLocalRoot?.secret,
      'meshless/ca',
    ],
    ['MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE', 'true', (c) => c.unsafeLocalRoot?.generate, true],
    ['MESHLESS_IDENTITY_SVID_TTL_SECONDS', '600', (c) => c.identity.svidTtlSeconds, 600],
    [
      'MESHLESS_IDENTITY_INTERMEDIATE_TTL_SECONDS',
      '7200',
      (c) => c.identity.intermediateTtlSeconds,
      7200,
    ],
    ['MESHLESS_ADMIN_ADDRESS', '[::1]:15999', (c) => c.adminAddress, '[::1]:15999'],
    ['MESHLESS_METRICS_ADDRESS', ':9090', (c) => c.metricsAddress, ':9090'],
    ['MESHLESS_READINESS_ADDRESS', '10.0.0.1:9091', (c) => c.readinessAddress, '10.0.0.1:9091'],
    ['MESHLESS_LOG_LEVEL', 'warn', (c) => c.logLevel, 'warn'],
  ];
  for (const [name, value, pick, want] of cases)
    it(`${name}=${value}`, () => {
      assert.deepEqual(pick(loadDaemonConfig({ env: { ...MIN_ENV, [name]: value } })), want);
    });

  it('MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE and MESHLESS_UNSAFE_LOCAL_ROOT_KEY_FILE', () => {
    const c = loadDaemonConfig({
      env: {
        ...MIN_ENV,
        MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE: '/ca/c.pem',
        MESHLESS_UNSAFE_LOCAL_ROOT_KEY_FILE: '/ca/k.pem',
      },
    });
    assert.equal(c.unsafeLocalRoot?.certFile, '/ca/c.pem');
    assert.equal(c.unsafeLocalRoot?.keyFile, '/ca/k.pem');
  });

  it('MESHLESS_DISCOVERY_FILE', () => {
    assert.deepEqual(loadDaemonConfig({ env: MIN_ENV }).discovery, {
      source: 'file',
      file: '/etc/meshless/cluster.yaml',
    });
  });

  it('MESHLESS_DISCOVERY_KUBERNETES and MESHLESS_DISCOVERY_KUBERNETES_KUBECONFIG', () => {
    assert.deepEqual(
      loadDaemonConfig({ env: { MESHLESS_DISCOVERY_KUBERNETES: 'true' } }).discovery,
      {
        source: 'kubernetes',
        kubeconfig: undefined,
      },
    );
    assert.deepEqual(
      loadDaemonConfig({ env: { MESHLESS_DISCOVERY_KUBERNETES_KUBECONFIG: '/k/config' } })
        .discovery,
      { source: 'kubernetes', kubeconfig: '/k/config' },
    );
  });

  it('the environment wins over the file; unset or empty variables do not', () => {
    const c = loadDaemonConfig({
      file: configFile(FULL_YAML),
      env: {
        MESHLESS_NODE_NAME: 'node-env',
        MESHLESS_LOG_LEVEL: '',
        MESHLESS_TRUST_DOMAIN: undefined,
      },
    });
    assert.equal(c.nodeName, 'node-env');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.trustDomain, 'example.org');
  });

  it('names every key in SCREAMING_SNAKE_CASE', () => {
    assert.equal(envNameOf('unsafeLocalRoot.certFile'), 'MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE');
    assert.equal(envNameOf('discovery.file'), 'MESHLESS_DISCOVERY_FILE');
    assert.equal(
      envNameOf('discovery.kubernetes.kubeconfig'),
      'MESHLESS_DISCOVERY_KUBERNETES_KUBECONFIG',
    );
    assert.equal(envNameOf('excludeNamespaces'), 'MESHLESS_EXCLUDE_NAMESPACES');
    assert.equal(envNameOf('identity.svidTtlSeconds'), 'MESHLESS_IDENTITY_SVID_TTL_SECONDS');
  });
});

describe('loadDaemonConfig: errors name the key', () => {
  const fileCases: [string, string, string][] = [
    ['unknown key', 'discovery:\n  file: /c\nnodename: x\n', 'nodename'],
    [
      'unknown nested key',
      'discovery:\n  file: /c\nunsafeLocalRoot:\n  cert: /x\n',
      'unsafeLocalRoot.cert',
    ],
    ['relative path', 'discovery:\n  file: cluster.yaml\n', 'discovery.file'],
    ['relative stateDir', 'discovery:\n  file: /c\nstateDir: run\n', 'stateDir'],
    ['bad label', 'discovery:\n  file: /c\nenrolmentLabel: "no label"\n', 'enrolmentLabel'],
    [
      'label without value part',
      'discovery:\n  file: /c\nenrolmentLabel: mtls\n',
      'enrolmentLabel',
    ],
    ['both discovery sources', 'discovery:\n  file: /c\n  kubernetes: {}\n', 'discovery'],
    [
      'certFile without keyFile',
      'discovery:\n  file: /c\nunsafeLocalRoot:\n  certFile: /ca.crt\n',
      'unsafeLocalRoot',
    ],
    [
      'keyFile without certFile',
      'discovery:\n  file: /c\nunsafeLocalRoot:\n  keyFile: /ca.key\n',
      'unsafeLocalRoot',
    ],
    ['bad address', 'discovery:\n  file: /c\nadminAddress: localhost\n', 'adminAddress'],
    ['port out of range', 'discovery:\n  file: /c\nmetricsAddress: ":70000"\n', 'metricsAddress'],
    ['unbracketed IPv6', 'discovery:\n  file: /c\nmetricsAddress: "::1:80"\n', 'metricsAddress'],
    ['address a number', 'discovery:\n  file: /c\nmetricsAddress: 15020\n', 'metricsAddress'],
    ['bad log level', 'discovery:\n  file: /c\nlogLevel: loud\n', 'logLevel'],
    [
      'bad boolean',
      'discovery:\n  file: /c\nunsafeLocalRoot:\n  generate: "yes"\n',
      'unsafeLocalRoot.generate',
    ],
    [
      'ttl too short',
      'discovery:\n  file: /c\nidentity:\n  svidTtlSeconds: 59\n',
      'identity.svidTtlSeconds',
    ],
    [
      'ttl fractional',
      'discovery:\n  file: /c\nidentity:\n  svidTtlSeconds: 600.5\n',
      'identity.svidTtlSeconds',
    ],
    [
      'svid outlives the intermediate',
      'discovery:\n  file: /c\nidentity:\n  svidTtlSeconds: 90000\n',
      'identity.svidTtlSeconds',
    ],
    ['uppercase trust domain', 'discovery:\n  file: /c\ntrustDomain: Example.org\n', 'trustDomain'],
    ['empty nodeName', 'discovery:\n  file: /c\nnodeName: ""\n', 'nodeName'],
    [
      'excludeNamespaces not a list',
      'discovery:\n  file: /c\nexcludeNamespaces: a\n',
      'excludeNamespaces',
    ],
    [
      'bad ca.secret',
      'discovery:\n  file: /c\nunsafeLocalRoot:\n  secret: just-a-name\n',
      'unsafeLocalRoot.secret',
    ],
    ['podCidrs entry not a CIDR', 'discovery:\n  file: /c\npodCidrs: [10.0.0.0]\n', 'podCidrs'],
  ];
  for (const [what, text, key] of fileCases)
    it(`file: ${what}`, () => {
      assertConfigError(() => loadDaemonConfig({ file: configFile(text), env: {} }), key);
    });

  const envCases: [string, Record<string, string>, string][] = [
    ['relative path', { MESHLESS_DISCOVERY_FILE: 'c.yaml' }, 'discovery.file'],
    [
      'bad boolean',
      { ...MIN_ENV, MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'yes' },
      'unsafeLocalRoot.generate',
    ],
    [
      'bad seconds',
      { ...MIN_ENV, MESHLESS_IDENTITY_SVID_TTL_SECONDS: 'ten' },
      'identity.svidTtlSeconds',
    ],
    ['empty list entry', { ...MIN_ENV, MESHLESS_EXCLUDE_NAMESPACES: 'a,,b' }, 'excludeNamespaces'],
    ['bad label', { ...MIN_ENV, MESHLESS_ENROLMENT_LABEL: '=x' }, 'enrolmentLabel'],
    ['bad address', { ...MIN_ENV, MESHLESS_ADMIN_ADDRESS: '127.0.0.1' }, 'adminAddress'],
    ['both discovery sources', { ...MIN_ENV, MESHLESS_DISCOVERY_KUBERNETES: 'true' }, 'discovery'],
    [
      'certFile without keyFile',
      { ...MIN_ENV, MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE: '/c.pem' },
      'unsafeLocalRoot',
    ],
  ];
  for (const [what, env, key] of envCases)
    it(`environment: ${what}`, () => {
      assertConfigError(() => loadDaemonConfig({ env }), key);
    });

  it('carries the key in details', () => {
    try {
      loadDaemonConfig({ env: { ...MIN_ENV, MESHLESS_LOG_LEVEL: 'x' } });
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof MeshlessError);
      assert.deepEqual(err.details, { key: 'logLevel' });
    }
  });
});

describe('parseListenAddress', () => {
  const ok: [string, { host: string; port: number }][] = [
    [':15020', { host: '', port: 15020 }],
    ['127.0.0.1:15000', { host: '127.0.0.1', port: 15000 }],
    ['[::1]:15000', { host: '::1', port: 15000 }],
    ['[::]:80', { host: '::', port: 80 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
  ];
  for (const [text, want] of ok)
    it(`parses ${text}`, () => {
      assert.deepEqual(parseListenAddress(text), want);
    });
  for (const text of ['', '15020', ':', ':65536', '::1:80', '[::1]', 'host:port', '[zz]:80'])
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseListenAddress(text, 'k'), /config key "k"/);
    });
});

describe('loadDaemonConfig: policy keys', () => {
  it('rootNamespace must be a namespace name', () => {
    assertConfigError(
      () => loadDaemonConfig({ env: { ...MIN_ENV, MESHLESS_ROOT_NAMESPACE: 'Not_A_Namespace' } }),
      'rootNamespace',
      /RFC 1123/,
    );
  });
  it('enforceNetworkPolicy from the environment', () => {
    const c = loadDaemonConfig({ env: { ...MIN_ENV, MESHLESS_ENFORCE_NETWORK_POLICY: 'false' } });
    assert.equal(c.enforceNetworkPolicy, false);
  });
});

describe('loadDaemonConfig: the cluster signer and the unsafe local root', () => {
  const SIGNER = {
    ...MIN_ENV,
    MESHLESS_SIGNER_ADDRESS: 'meshless-ca.meshless-system.svc:15012',
    MESHLESS_SIGNER_TRUST_BUNDLE_FILE: '/etc/meshless/trust-bundle/ca.crt',
    MESHLESS_SIGNER_TOKEN_FILE: '/var/run/secrets/meshless-ca/token',
  };

  it('reads the signer with its defaults; no local root then', () => {
    const c = loadDaemonConfig({ env: SIGNER });
    assert.deepEqual(c.signer, {
      address: 'meshless-ca.meshless-system.svc:15012',
      serverName: 'meshless-ca',
      trustBundleFile: '/etc/meshless/trust-bundle/ca.crt',
      tokenFile: '/var/run/secrets/meshless-ca/token',
      joinCredentialFile: undefined,
      enrolWaitSeconds: 3,
    });
    assert.equal(c.unsafeLocalRoot, undefined);
  });

  const cases: [string, Record<string, string>, string, RegExp?][] = [
    [
      'signer and unsafeLocalRoot together',
      { ...SIGNER, MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true' },
      'signer',
      /not both/,
    ],
    [
      'no address',
      { ...SIGNER, MESHLESS_SIGNER_ADDRESS: '', MESHLESS_SIGNER_SERVER_NAME: 'x' },
      'signer.address',
    ],
    [
      'an address without a port',
      { ...SIGNER, MESHLESS_SIGNER_ADDRESS: 'meshless-ca' },
      'signer.address',
    ],
    [
      'no trust bundle',
      { ...SIGNER, MESHLESS_SIGNER_TRUST_BUNDLE_FILE: '' },
      'signer.trustBundleFile',
    ],
    [
      'both credentials',
      { ...SIGNER, MESHLESS_SIGNER_JOIN_CREDENTIAL_FILE: '/j.json' },
      'signer',
      /exactly one/,
    ],
    ['no credential', { ...SIGNER, MESHLESS_SIGNER_TOKEN_FILE: '' }, 'signer', /exactly one/],
    [
      'generate with certFile (it would write a different root elsewhere)',
      {
        ...MIN_ENV,
        MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
        MESHLESS_UNSAFE_LOCAL_ROOT_CERT_FILE: '/c.pem',
        MESHLESS_UNSAFE_LOCAL_ROOT_KEY_FILE: '/k.pem',
      },
      'unsafeLocalRoot.generate',
      /silently differ/,
    ],
    [
      'generate with a Secret',
      {
        ...MIN_ENV,
        MESHLESS_UNSAFE_LOCAL_ROOT_GENERATE: 'true',
        MESHLESS_UNSAFE_LOCAL_ROOT_SECRET: 'ns/name',
      },
      'unsafeLocalRoot.generate',
    ],
  ];
  for (const [name, env, key, mentions] of cases)
    it(`refuses ${name}`, () => assertConfigError(() => loadDaemonConfig({ env }), key, mentions));

  it('the old ca.* keys are gone: a file naming them is refused', () => {
    assertConfigError(
      () =>
        loadDaemonConfig({
          file: configFile('discovery:\n  file: /c\nca:\n  generate: true\n'),
          env: {},
        }),
      'ca.generate',
      /not a known key/,
    );
  });
});
