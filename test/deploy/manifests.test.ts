/**
 * deploy/ without a cluster: every manifest parses, RBAC is least privilege,
 * the DaemonSet has the host access the design needs and no more, and the
 * manifests agree with each other, with the daemon's config loader, with the
 * installer's defaults and with the Dockerfile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadDaemonConfig, parseListenAddress } from '../../src/config/daemon-config.js';
import { DAEMON_NODE_FLAGS } from '../../src/config/daemon-runtime.js';
import { parseSignerConfig } from '../../src/signer/signer-config.js';
import { DEFAULT_SOCKET_PATH } from '../../src/installer/entry.js';
import { SECURITY_API_VERSION } from '../../src/policy/authorization-policy.js';
import { KUBECONFIG_FILE_NAME } from '../../src/installer/kubeconfig.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = join(REPO, 'deploy');
const NAMESPACE = 'meshless-system';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `v` at a dotted path, asserting every step is an object. */
function at(v: unknown, path: string): unknown {
  let cur = v;
  for (const key of path.split('.')) {
    assert.ok(isObj(cur), `${path}: "${key}" is not inside an object`);
    cur = cur[key];
  }
  return cur;
}
const obj = (v: unknown, path: string): Obj => {
  const r = at(v, path);
  assert.ok(isObj(r), `${path} is not an object`);
  return r;
};
const list = (v: unknown, path: string): unknown[] => {
  const r = at(v, path);
  assert.ok(Array.isArray(r), `${path} is not a list`);
  return r;
};
const str = (v: unknown, path: string): string => {
  const r = at(v, path);
  assert.equal(typeof r, 'string', `${path} is not a string`);
  return r as string;
};
const strings = (v: unknown, path: string): string[] =>
  list(v, path).map((s, i) => {
    assert.equal(typeof s, 'string', `${path}[${i}]`);
    return s as string;
  });

// --- load everything once -------------------------------------------------------

const files = readdirSync(DEPLOY)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();
const docs: { file: string; doc: Obj }[] = [];
for (const file of files) {
  for (const d of parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'))) {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    const doc: unknown = d.toJS();
    if (doc === null) continue;
    assert.ok(isObj(doc), `${file}: a document is not a map`);
    docs.push({ file, doc });
  }
}

function all(kind: string): Obj[] {
  return docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
}
function one(kind: string, name?: string): Obj {
  const found = all(kind).filter((d) => name === undefined || at(d, 'metadata.name') === name);
  assert.equal(found.length, 1, `exactly one ${kind}${name === undefined ? '' : ` ${name}`}`);
  return found[0] as Obj;
}

const ds = one('DaemonSet');
const pod = obj(ds, 'spec.template.spec');
const containers = list(pod, 'containers').map((c) => obj({ c }, 'c'));
const initContainers = list(pod, 'initContainers').map((c) => obj({ c }, 'c'));
function container(name: string): Obj {
  const c = [...containers, ...initContainers].find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
}
const daemon = container('meshlessd');
const installers = [container('install-cni'), container('cni-watch')];
assert.ok(initContainers.includes(container('install-cni')), 'install-cni is an init container');

const configMap = one('ConfigMap', 'meshless-config');
const configText = str({ text: obj(configMap, 'data')['config.yaml'] }, 'text');
const tmp = mkdtempSync(join(tmpdir(), 'meshless-deploy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const configFile = join(tmp, 'config.yaml');
writeFileSync(configFile, configText);
const config = loadDaemonConfig({ file: configFile, env: { MESHLESS_NODE_NAME: 'node-a' } });

const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
};
/** The release scripts/node-lts.mjs pins (the plugin binary's node). */
const NODE_LTS_VERSION =
  /NODE_LTS_VERSION = '([\d.]+)'/.exec(
    readFileSync(join(REPO, 'scripts', 'node-lts.mjs'), 'utf8'),
  )?.[1] ?? 'missing';

/** Dockerfile instructions (continuations joined, comments dropped) per stage. */
function dockerStages(text: string): { instr: string; rest: string }[][] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: { instr: string; rest: string }[][] = [[]];
  for (const line of lines) {
    const [instr = '', ...rest] = line.split(/\s+/);
    if (instr.toUpperCase() === 'FROM') stages.push([]);
    stages.at(-1)?.push({ instr: instr.toUpperCase(), rest: rest.join(' ') });
  }
  return stages;
}
const [preamble = [], buildStage = [], runtimeStage = [], ...extraStages] =
  dockerStages(dockerfile);

// --- tests ------------------------------------------------------------------------

describe('deploy/: every object', () => {
  it('parses, and the expected kinds are there', () => {
    const kinds = new Set(docs.map((d) => d.doc.kind));
    for (const kind of [
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ConfigMap',
      'DaemonSet',
      'CustomResourceDefinition',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
    ])
      assert.ok(kinds.has(kind), `no ${kind} in deploy/`);
    for (const { file, doc } of docs) {
      assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
      assert.equal(typeof at(doc, 'metadata.name'), 'string', `${file}: metadata.name`);
    }
  });

  it('namespaced objects live in meshless-system, and the Namespace comes first', () => {
    const clusterScoped = new Set([
      'Namespace',
      'ClusterRole',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
    ]);
    for (const { file, doc } of docs)
      if (!clusterScoped.has(String(doc.kind)))
        assert.equal(at(doc, 'metadata.namespace'), NAMESPACE, `${file}: ${String(doc.kind)}`);
    assert.equal(docs[0]?.doc.kind, 'Namespace', 'kubectl apply -f deploy/ creates it first');
    assert.equal(at(docs[0]?.doc, 'metadata.name'), NAMESPACE);
  });

  it('carries the meshless.dev labels: part-of=meshless and a known component', () => {
    const components = new Set(['namespace', 'rbac', 'config', 'node', 'policy', 'signer']);
    const labelled = [
      ...docs.map((d) => d.doc),
      obj(ds, 'spec.template'),
      obj(one('Deployment'), 'spec.template'),
    ];
    for (const doc of labelled) {
      const labels = obj(doc, 'metadata.labels');
      const what = `${String(doc.kind ?? 'pod template')} ${String(at(doc, 'metadata.name') ?? '')}`;
      assert.equal(labels['meshless.dev/part-of'], 'meshless', what);
      assert.ok(components.has(String(labels['meshless.dev/component'])), what);
      for (const key of Object.keys(labels).filter((k) => k.startsWith('meshless.dev/')))
        assert.ok(
          ['meshless.dev/part-of', 'meshless.dev/component'].includes(key),
          `${what}: ${key}`,
        );
    }
    const selector = obj(ds, 'spec.selector.matchLabels');
    const podLabels = obj(ds, 'spec.template.metadata.labels');
    assert.deepEqual(Object.keys(selector).sort(), [
      'meshless.dev/component',
      'meshless.dev/part-of',
    ]);
    for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v);
  });
});

describe('deploy/: RBAC is least privilege', () => {
  const sa = one('ServiceAccount', 'meshless-node');
  const clusterRole = one('ClusterRole', 'meshless-node');
  const role = one('Role', 'meshless-node');
  const rules = (r: Obj) => list(r, 'rules').map((x) => obj({ x }, 'x'));

  it('no wildcard and no write verb anywhere', () => {
    for (const r of [...all('ClusterRole'), ...all('Role')])
      for (const rule of rules(r)) {
        for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'])
          if (rule[field] !== undefined)
            assert.ok(!strings(rule, field).includes('*'), `${String(r.kind)}: ${field} has *`);
        // TokenReview `create` asks the API server a question; it stores nothing.
        const review = isDeepStrictEqual(strings(rule, 'resources'), ['tokenreviews']);
        // The signer writes one object: the trust bundle ConfigMap it publishes.
        const bundle =
          at(r, 'metadata.name') === 'meshless-ca' &&
          isDeepStrictEqual(strings(rule, 'resources'), ['configmaps']);
        for (const verb of strings(rule, 'verbs'))
          assert.ok(
            ['get', 'list', 'watch'].includes(verb) ||
              (review && verb === 'create') ||
              (bundle && ['create', 'update'].includes(verb)),
            `${String(r.kind)}: verb ${verb}`,
          );
        if (bundle && strings(rule, 'verbs').includes('update'))
          assert.deepEqual(strings(rule, 'resourceNames'), ['meshless-trust-bundle']);
      }
    const reviewers = all('ClusterRole').filter((r) =>
      rules(r).some((x) => strings(x, 'resources').includes('tokenreviews')),
    );
    assert.deepEqual(
      reviewers.map((r) => at(r, 'metadata.name')),
      ['meshless-ca'],
    );
  });

  it('cluster-wide: get/list/watch on what discovery informs on, nothing else', () => {
    assert.deepEqual(
      rules(clusterRole).map((r) => ({
        apiGroups: strings(r, 'apiGroups'),
        resources: strings(r, 'resources').sort(),
        verbs: strings(r, 'verbs').sort(),
        resourceNames: r.resourceNames,
      })),
      [
        {
          apiGroups: [''],
          resources: ['namespaces', 'nodes', 'pods', 'services'],
          verbs: ['get', 'list', 'watch'],
          resourceNames: undefined,
        },
        {
          apiGroups: ['discovery.k8s.io'],
          resources: ['endpointslices'],
          verbs: ['get', 'list', 'watch'],
          resourceNames: undefined,
        },
        {
          apiGroups: ['networking.k8s.io'],
          resources: ['networkpolicies', 'servicecidrs'],
          verbs: ['get', 'list', 'watch'],
          resourceNames: undefined,
        },
        {
          apiGroups: ['security.meshless.dev'],
          resources: ['authorizationpolicies', 'peerauthentications'],
          verbs: ['get', 'list', 'watch'],
          resourceNames: undefined,
        },
      ],
    );
  });

  it('secrets: no role grants any; the root Secret is mounted by the signer alone', () => {
    for (const r of [...all('ClusterRole'), ...all('Role')])
      for (const rule of rules(r)) assert.ok(!strings(rule, 'resources').includes('secrets'));
    const secretVolumes = (spec: Obj): string[] =>
      list(spec, 'volumes')
        .filter((v) => isObj(v) && isObj(v.secret))
        .map((v) => str(v, 'secret.secretName'));
    assert.deepEqual(secretVolumes(pod), [], 'the DaemonSet mounts no Secret');
    assert.deepEqual(secretVolumes(obj(one('Deployment'), 'spec.template.spec')), ['meshless-ca']);
  });

  it('the only other namespaced right is `get` of our own DaemonSet (uninstall-on-exit)', () => {
    assert.deepEqual(rules(role), [
      {
        apiGroups: ['apps'],
        resources: ['daemonsets'],
        resourceNames: [str(ds, 'metadata.name')],
        verbs: ['get'],
      },
    ]);
  });

  it('the bindings give these roles to the DaemonSet service account, and nothing else', () => {
    assert.equal(pod.serviceAccountName, str(sa, 'metadata.name'));
    for (const [bindingKind, roleObj] of [
      ['ClusterRoleBinding', clusterRole],
      ['RoleBinding', role],
    ] as const) {
      const b = one(bindingKind, str(roleObj, 'metadata.name'));
      assert.deepEqual(obj(b, 'roleRef'), {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: roleObj.kind,
        name: str(roleObj, 'metadata.name'),
      });
      assert.deepEqual(list(b, 'subjects'), [
        { kind: 'ServiceAccount', name: str(sa, 'metadata.name'), namespace: NAMESPACE },
      ]);
    }
  });
});

describe('deploy/: the DaemonSet', () => {
  it('is a host-network, node-critical pod on every node', () => {
    assert.equal(pod.hostNetwork, true);
    assert.notEqual(pod.hostPID, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.ok(
      list(pod, 'tolerations').some((t) => isDeepStrictEqual(t, { operator: 'Exists' })),
      'tolerates every taint',
    );
  });

  it('gives the drain deadline room before SIGKILL', () => {
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.equal(config.drainTimeoutSeconds, 25);
    assert.ok(config.drainTimeoutSeconds < Number(pod.terminationGracePeriodSeconds));
  });

  const volumes = new Map(list(pod, 'volumes').map((v) => [str(v, 'name'), obj({ v }, 'v')]));
  function mount(c: Obj, hostPath: string): Obj {
    const v = [...volumes.values()].find((x) => isObj(x.hostPath) && x.hostPath.path === hostPath);
    assert.ok(v, `a hostPath volume for ${hostPath}`);
    const m = list(c, 'volumeMounts').find((x) => isObj(x) && x.name === v.name);
    assert.ok(isObj(m), `${String(c.name)} mounts ${hostPath}`);
    return { ...m, type: at(v, 'hostPath.type') };
  }

  it('mounts the host paths at the paths the plugin and daemon exchange', () => {
    for (const c of installers) {
      assert.equal(mount(c, '/opt/cni/bin').mountPath, '/opt/cni/bin');
      assert.equal(mount(c, '/etc/cni/net.d').mountPath, '/etc/cni/net.d');
    }
    const netns = mount(daemon, '/var/run/netns');
    assert.equal(netns.mountPath, '/var/run/netns');
    assert.equal(netns.mountPropagation, 'HostToContainer');
    const proc = mount(daemon, '/proc');
    assert.equal(proc.mountPath, '/host/proc');
    assert.equal(proc.readOnly, true);
    const state = mount(daemon, '/var/run/meshless');
    assert.equal(state.mountPath, config.stateDir);
    assert.equal(state.type, 'DirectoryOrCreate');
    assert.equal(mount(daemon, '/run/xtables.lock').mountPath, '/run/xtables.lock');
    // Writable (a container's /proc/sys is read-only): the per-pod tcp_migrate_req.
    const sysNet = mount(daemon, '/proc/sys/net');
    assert.equal(sysNet.mountPath, config.procSysNetPath);
    assert.notEqual(sysNet.readOnly, true);
  });

  it('the plugin entry finds the daemon socket and its kubeconfig on the host', () => {
    // The installers pass no --socket-path: the entry's default must be the config's socket.
    assert.equal(config.cniSocket, DEFAULT_SOCKET_PATH);
    assert.ok(config.cniSocket.startsWith(`${config.stateDir}/`));
    // No --kubeconfig: node mode writes <conf dir>/meshless-kubeconfig, a host path too.
    for (const c of installers) assert.ok(!strings(c, 'args').includes('--kubeconfig'));
    assert.equal(KUBECONFIG_FILE_NAME, 'meshless-kubeconfig');
  });

  it('installs in an init container and watches in a container, with the same entry flags', () => {
    const [init, watch] = installers as [Obj, Obj];
    const watchOnly = [
      '--watch',
      '--uninstall-on-exit',
      '--owner-daemonset',
      `${NAMESPACE}/${str(ds, 'metadata.name')}`,
    ];
    assert.ok(strings(init, 'args').includes('--node'));
    for (const flag of watchOnly) assert.ok(strings(watch, 'args').includes(flag), flag);
    assert.deepEqual(
      strings(watch, 'args').filter((a) => !watchOnly.includes(a)),
      strings(init, 'args'),
    );
    const i = strings(init, 'args').indexOf('--exclude-namespaces');
    assert.deepEqual(strings(init, 'args')[i + 1]?.split(','), [...config.excludeNamespaces]);
  });

  it('the daemon: named capabilities instead of privileged, the node name from the pod spec', () => {
    const sc = obj(daemon, 'securityContext');
    assert.notEqual(sc.privileged, true);
    assert.deepEqual(strings(sc, 'capabilities.drop'), ['ALL']);
    assert.deepEqual(strings(sc, 'capabilities.add').sort(), [
      'NET_ADMIN',
      'NET_RAW',
      'SYS_ADMIN',
      'SYS_PTRACE',
    ]);
    assert.equal(sc.runAsUser, 0);
    assert.deepEqual(
      list(daemon, 'env').find((e) => isObj(e) && e.name === 'MESHLESS_NODE_NAME'),
      { name: 'MESHLESS_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    );
    for (const c of installers) {
      const isc = obj(c, 'securityContext');
      assert.notEqual(isc.privileged, true);
      assert.equal(isc.allowPrivilegeEscalation, false);
    }
    const [init, watch] = installers as [Obj, Obj];
    assert.deepEqual(strings(obj(init, 'securityContext'), 'capabilities.add').sort(), [
      'CHOWN',
      'DAC_OVERRIDE',
    ]);
    // The watcher's uninstall-on-exit also removes the probe SNAT rule (iptables).
    assert.deepEqual(strings(obj(watch, 'securityContext'), 'capabilities.add').sort(), [
      'CHOWN',
      'DAC_OVERRIDE',
      'NET_ADMIN',
      'NET_RAW',
    ]);
    assert.equal(mount(watch, '/run/xtables.lock').mountPath, '/run/xtables.lock');
  });

  it('every container has requests and a memory limit', () => {
    for (const c of [...containers, ...initContainers]) {
      assert.ok(isObj(at(c, 'resources.requests')), String(c.name));
      assert.equal(typeof at(c, 'resources.limits.memory'), 'string', String(c.name));
    }
  });

  it('probes reach the loopback listeners of the config', () => {
    const readiness = parseListenAddress(config.readinessAddress);
    const metrics = parseListenAddress(config.metricsAddress);
    assert.deepEqual([readiness.port, metrics.port], [15021, 15020]);
    assert.deepEqual(obj(daemon, 'readinessProbe.httpGet'), {
      host: readiness.host,
      path: '/healthz/ready',
      port: readiness.port,
    });
    assert.deepEqual(obj(daemon, 'livenessProbe.tcpSocket'), {
      host: readiness.host,
      port: readiness.port,
    });
  });

  it('exposes nothing beyond the node: admin, readiness and metrics on loopback', () => {
    // hostNetwork: an address here is the node's, reachable from every pod.
    for (const key of ['adminAddress', 'readinessAddress', 'metricsAddress'] as const)
      assert.equal(parseListenAddress(config[key]).host, '127.0.0.1', key);
    const annotations = obj(ds, 'spec.template.metadata.annotations');
    assert.equal(annotations['prometheus.io/scrape'], undefined, 'nothing to scrape off-node');
  });

  it('surges on upgrade, and two of its pods fit on one node', () => {
    assert.deepEqual(obj(ds, 'spec.updateStrategy'), {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    // With hostNetwork every declared port is a hostPort: the scheduler would
    // keep the surge pod Pending while the old pod holds it.
    for (const c of [...containers, ...initContainers])
      assert.equal(c.ports, undefined, `${String(c.name)} declares no (host) ports`);
  });
});

describe('deploy/: the ConfigMap', () => {
  it('passes loadDaemonConfig with the values the cluster needs', () => {
    assert.deepEqual(config.discovery, { source: 'kubernetes', kubeconfig: undefined });
    assert.equal(config.unsafeLocalRoot, undefined, 'never the unsafe local root');
    assert.equal(config.signer?.address, `meshless-ca.${NAMESPACE}.svc:15012`);
    assert.equal(config.trustDomain, 'cluster.local');
    assert.equal(config.nodeName, 'node-a', 'from MESHLESS_NODE_NAME');
    assert.ok(config.excludeNamespaces.includes(NAMESPACE));
  });

  it('is mounted where the image ENTRYPOINT reads it', () => {
    const m = list(daemon, 'volumeMounts').find((x) => isObj(x) && x.name === 'config');
    const v = list(pod, 'volumes').find((x) => isObj(x) && x.name === 'config');
    assert.equal(at(v, 'configMap.name'), str(configMap, 'metadata.name'));
    assert.equal(`${str(m, 'mountPath')}/config.yaml`, entrypoint().at(-1));
  });
});

function entrypoint(): string[] {
  const e = runtimeStage.filter((i) => i.instr === 'ENTRYPOINT');
  assert.equal(e.length, 1, 'one ENTRYPOINT in the runtime stage');
  return JSON.parse(e[0]?.rest ?? '') as string[];
}

describe('deploy/Dockerfile', () => {
  const workdir = runtimeStage.findLast((i) => i.instr === 'WORKDIR')?.rest ?? '';

  it('two stages on the Node LTS the plugin binary embeds and engines names', () => {
    assert.equal(extraStages.length, 0);
    assert.ok(
      preamble.some(
        (i) => i.instr === 'ARG' && i.rest === `NODE_IMAGE=node:${NODE_LTS_VERSION}-bookworm-slim`,
      ),
    );
    const major = NODE_LTS_VERSION.split('.')[0] ?? '';
    assert.ok(pkg.engines.node.includes(`^${major}.`), `engines.node names ${major}`);
    assert.equal(buildStage[0]?.rest, '${NODE_IMAGE} AS build');
    assert.equal(runtimeStage[0]?.rest, '${NODE_IMAGE}');
  });

  it('build: compilers for the addon, npm ci, npm run build', () => {
    const runs = buildStage
      .filter((i) => i.instr === 'RUN')
      .map((i) => i.rest)
      .join('\n');
    for (const p of ['python3', 'make', 'g++']) assert.ok(runs.includes(` ${p}`), p);
    assert.match(runs, /npm ci/);
    assert.match(runs, /npm run build/);
  });

  it('runtime: iptables, iproute2, util-linux; dist/ and install.sh; no node_modules', () => {
    const runs = runtimeStage
      .filter((i) => i.instr === 'RUN')
      .map((i) => i.rest)
      .join('\n');
    for (const p of ['iptables', 'iproute2', 'util-linux']) assert.ok(runs.includes(` ${p}`), p);
    const copies = runtimeStage.filter((i) => i.instr === 'COPY').map((i) => i.rest);
    assert.deepEqual(copies, ['--from=build /src/dist/ dist/', 'install.sh ./']);
    assert.ok(!dockerfile.includes('COPY --from=build /src/node_modules'));
  });

  it('ENTRYPOINT runs the daemon bundle with the mounted config; the containers agree', () => {
    assert.equal(workdir, '/opt/meshless');
    assert.deepEqual(entrypoint(), [
      'node',
      '--openssl-config=dist/openssl.cnf',
      ...DAEMON_NODE_FLAGS,
      'dist/meshlessd.js',
      '--config',
      '/etc/meshless/config.yaml',
    ]);
    const build = readFileSync(join(REPO, 'scripts/build.mjs'), 'utf8');
    assert.match(build, /outfile: 'dist\/meshlessd\.js'/);
    assert.match(build, /copyFileSync\('daemon\/openssl\.cnf', 'dist\/openssl\.cnf'\)/);
    assert.equal(daemon.command, undefined, 'the daemon uses the ENTRYPOINT');
    assert.equal(daemon.args, undefined);
    for (const c of installers) assert.deepEqual(c.command, [`${workdir}/install.sh`]);
  });

  it('every container runs the one image, tagged with the package version', () => {
    const images = new Set([...containers, ...initContainers].map((c) => str(c, 'image')));
    assert.deepEqual([...images], [`ghcr.io/meshless/meshless:${pkg.version}`]);
  });

  it('the build context filter lets every COPY source through', () => {
    const ignore = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(ignore[0], '**');
    const allowed = new Set(ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1)));
    const sources = [...buildStage, ...runtimeStage]
      .filter((i) => i.instr === 'COPY' && !i.rest.startsWith('--from'))
      .flatMap((i) => i.rest.split(/\s+/).slice(0, -1));
    for (const s of sources) assert.ok(allowed.has(s), `${s} is excluded from the build context`);
  });
});

describe('deploy/: the policy CRDs', () => {
  const crds = all('CustomResourceDefinition');
  it('serve security.meshless.dev/v1alpha1 AuthorizationPolicy and PeerAuthentication, as the parsers expect', () => {
    assert.deepEqual(
      crds
        .map(
          (c) =>
            `${str(c, 'spec.group')}/${str(list(c, 'spec.versions')[0], 'name')} ${str(c, 'spec.names.kind')} ${str(c, 'spec.names.plural')}`,
        )
        .sort(),
      [
        `${SECURITY_API_VERSION} AuthorizationPolicy authorizationpolicies`,
        `${SECURITY_API_VERSION} PeerAuthentication peerauthentications`,
      ],
    );
    for (const c of crds) {
      assert.equal(
        str(c, 'metadata.name'),
        `${str(c, 'spec.names.plural')}.${str(c, 'spec.group')}`,
      );
      assert.equal(str(c, 'spec.scope'), 'Namespaced');
    }
  });

  it('keep unknown fields at every object level of spec (an L7 field must reach the daemon, not be pruned)', () => {
    const visit = (schema: unknown, path: string): void => {
      if (!isObj(schema)) return;
      if (schema.type === 'object' && isObj(schema.properties))
        assert.equal(schema['x-kubernetes-preserve-unknown-fields'], true, path);
      if (isObj(schema.properties))
        for (const [k, v] of Object.entries(schema.properties)) visit(v, `${path}.${k}`);
      if (isObj(schema.items)) visit(schema.items, `${path}[]`);
      if (isObj(schema.additionalProperties)) visit(schema.additionalProperties, `${path}.*`);
    };
    for (const c of crds)
      visit(
        at(list(c, 'spec.versions')[0], 'schema.openAPIV3Schema.properties.spec'),
        str(c, 'spec.names.kind'),
      );
  });
});

describe('deploy/: the cluster signer', () => {
  const deployment = one('Deployment', 'meshless-ca');
  const spec = obj(deployment, 'spec.template.spec');
  const [ca] = list(spec, 'containers').map((c) => obj({ c }, 'c'));
  assert.ok(ca);
  const signerMap = one('ConfigMap', 'meshless-ca-config');
  const signerConfig = parseSignerConfig(
    str({ t: obj(signerMap, 'data')['config.yaml'] }, 't'),
    'meshless-ca-config',
  );
  const mountOf = (c: Obj, volume: string): Obj => {
    const m = list(c, 'volumeMounts').find((x) => isObj(x) && x.name === volume);
    assert.ok(isObj(m), `${String(c.name)} mounts ${volume}`);
    return m;
  };
  const volumeOf = (p: Obj, name: string): Obj => {
    const v = list(p, 'volumes').find((x) => isObj(x) && x.name === name);
    assert.ok(isObj(v), `volume ${name}`);
    return v;
  };

  it('2 stateless replicas, a PodDisruptionBudget and a Service over the same pods', () => {
    assert.equal(at(deployment, 'spec.replicas'), 2);
    const selector = obj(deployment, 'spec.selector.matchLabels');
    assert.deepEqual(obj(deployment, 'spec.template.metadata.labels'), selector);
    const pdb = one('PodDisruptionBudget', 'meshless-ca');
    assert.deepEqual(obj(pdb, 'spec.selector.matchLabels'), selector);
    assert.equal(at(pdb, 'spec.minAvailable'), 1);
    const svc = one('Service', 'meshless-ca');
    assert.deepEqual(obj(svc, 'spec.selector'), selector);
    const [port] = list(svc, 'spec.ports');
    assert.equal(at(port, 'port'), signerConfig.listenPort);
    assert.equal(at(port, 'targetPort'), 'grpc');
    assert.ok(
      list(ca, 'ports').some(
        (p) => at(p, 'name') === 'grpc' && at(p, 'containerPort') === signerConfig.listenPort,
      ),
    );
  });

  it('runs the signer bundle as non-root with its own service account', () => {
    assert.equal(spec.serviceAccountName, 'meshless-ca');
    assert.deepEqual(ca.command, [
      'node',
      'dist/meshless-ca.js',
      '--config',
      '/etc/meshless-ca/config.yaml',
    ]);
    assert.match(
      readFileSync(join(REPO, 'scripts/build.mjs'), 'utf8'),
      /outfile: 'dist\/meshless-ca\.js'/,
    );
    assert.equal(str(ca, 'image'), `ghcr.io/meshless/meshless:${pkg.version}`);
    assert.equal(at(spec, 'securityContext.runAsNonRoot'), true);
    assert.deepEqual(strings(ca, 'securityContext.capabilities.drop'), ['ALL']);
    assert.equal(
      `${str(mountOf(ca, 'config'), 'mountPath')}/config.yaml`,
      '/etc/meshless-ca/config.yaml',
    );
    const root = str(mountOf(ca, 'root'), 'mountPath');
    assert.equal(signerConfig.rootCertFile, `${root}/ca.crt`);
    assert.equal(signerConfig.rootKeyFile, `${root}/ca.key`);
  });

  it('attests the DaemonSet service account with a projected token of its own audience', () => {
    const k = signerConfig.kubernetesAttestation;
    assert.ok(k);
    assert.deepEqual(k.daemonServiceAccounts, [`${NAMESPACE}/${String(pod.serviceAccountName)}`]);
    const projected = list(volumeOf(pod, 'signer-token'), 'projected.sources');
    const token = obj(projected[0], 'serviceAccountToken');
    assert.equal(token.audience, k.audience);
    assert.ok(Number(token.expirationSeconds) <= 3600, 'short-lived');
    assert.equal(
      config.signer?.tokenFile,
      `${str(mountOf(daemon, 'signer-token'), 'mountPath')}/${String(token.path)}`,
    );
  });

  it('the daemon reaches it by its Service name, which its certificate carries', () => {
    const s = config.signer;
    assert.ok(s);
    assert.equal(s.address, `meshless-ca.${NAMESPACE}.svc:${signerConfig.listenPort}`);
    assert.ok(signerConfig.serverNames.includes(s.serverName));
    assert.equal(signerConfig.trustDomain, config.trustDomain);
    const bundle = volumeOf(pod, 'trust-bundle');
    assert.equal(
      `${NAMESPACE}/${String(at(bundle, 'configMap.name'))}`,
      signerConfig.publishTrustBundle,
      'the daemons mount the ConfigMap the signer publishes',
    );
    assert.equal(s.trustBundleFile, `${str(mountOf(daemon, 'trust-bundle'), 'mountPath')}/ca.crt`);
  });
});
