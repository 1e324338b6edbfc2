/**
 * The DaemonSet's pod, as a kubelet would run it on one node, for
 * `podman kube play`: the pod template of deploy/30-daemonset.yaml and the
 * ConfigMap of deploy/20-configmap.yaml, with exactly these changes:
 *  - hostPath volumes of the node's CNI dirs and state dir point at test
 *    directories (the netns dir, /proc and the xtables lock stay the host's);
 *  - what the kubelet and the API server would add: the service-account
 *    token volume (a test token) and KUBERNETES_SERVICE_HOST/PORT on every
 *    container, and spec.nodeName's value for MESHLESS_NODE_NAME (podman has
 *    no scheduler to fill spec.nodeName);
 *  - the config's discovery and signer point at the simulated cluster's file
 *    and signer (mounted read-only at /var/lib/meshless-sim): the node
 *    attests with its join credential instead of the projected token (no
 *    TokenReview without an API server), and trusts the sim's root;
 *  - the two volumes the kubelet would fill from the API (the
 *    `meshless-trust-bundle` ConfigMap the signer publishes and the
 *    projected signer token) are test directories standing for them;
 *  - restartPolicy OnFailure (a DaemonSet's is Always): podman 4.3 applies the
 *    pod's restart policy to init containers too, restarting install-cni
 *    after it succeeded and then failing to remove it.
 * Image, command, args, securityContext, capabilities, read-only root,
 * hostNetwork, mounts and probes are the manifests' own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';

export const DEPLOY_DIR = join(import.meta.dirname, '..', '..', 'deploy');
/** Where the simulated cluster's dir is mounted in the daemon container. */
export const SIM_MOUNT = '/var/lib/meshless-sim';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function docOf(file: string, kind: string): Obj {
  for (const d of parseAllDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8'))) {
    const doc: unknown = d.toJS();
    if (isObj(doc) && doc.kind === kind) return doc;
  }
  throw new Error(`no ${kind} in deploy/${file}`);
}

export interface NodePodOptions {
  /** The pod's name (podman pods are named per host). */
  readonly podName: string;
  readonly nodeName: string;
  /** Host dirs standing for the node's /opt/cni/bin, /etc/cni/net.d, /var/run/meshless. */
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  readonly stateDir: string;
  /** Holds `token`, `ca.crt`, `namespace` (what the kubelet projects). */
  readonly serviceAccountDir: string;
  /** The simulated cluster's dir: cluster.yaml, ca/root.crt, <node>/join.json. */
  readonly simDir: string;
  /** The sim's signer, `host:port`. */
  readonly signerAddress: string;
  /** Host dirs standing for the trust-bundle ConfigMap and the projected signer token. */
  readonly trustBundleDir: string;
  readonly signerTokenDir: string;
  /** The config keys to replace (default: discovery and signer of the sim). */
  readonly configOverrides?: Obj;
}

/** The image every container of the DaemonSet runs. */
export function daemonSetImage(): string {
  const spec = docOf('30-daemonset.yaml', 'DaemonSet');
  const c = (((spec.spec as Obj).template as Obj).spec as Obj).containers as Obj[];
  return String(c[0]?.image);
}

/** The multi-document YAML (ConfigMap, then Pod) for `podman kube play`. */
export function nodePodYaml(o: NodePodOptions): string {
  const ds = docOf('30-daemonset.yaml', 'DaemonSet');
  const cm = structuredClone(docOf('20-configmap.yaml', 'ConfigMap'));
  const template = structuredClone((ds.spec as Obj).template as Obj);
  const spec = template.spec as Obj;

  const hostDirs: Record<string, string> = {
    '/opt/cni/bin': o.cniBinDir,
    '/etc/cni/net.d': o.cniConfDir,
    '/var/run/meshless': o.stateDir,
  };
  const volumes = spec.volumes as Obj[];
  for (const v of volumes) {
    const hp = v.hostPath;
    if (isObj(hp) && typeof hp.path === 'string' && hostDirs[hp.path] !== undefined)
      hp.path = hostDirs[hp.path];
    // What the kubelet fills from the API: test dirs stand for them.
    if (v.name === 'trust-bundle' || v.name === 'signer-token') {
      const path = v.name === 'trust-bundle' ? o.trustBundleDir : o.signerTokenDir;
      delete v.configMap;
      delete v.projected;
      v.hostPath = { path, type: 'Directory' };
    }
  }
  volumes.push(
    { name: 'kube-api-access', hostPath: { path: o.serviceAccountDir, type: 'Directory' } },
    { name: 'meshless-sim', hostPath: { path: o.simDir, type: 'Directory' } },
  );
  const kubeletEnv = [
    { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
    { name: 'KUBERNETES_SERVICE_PORT', value: '6443' },
  ];
  for (const c of [...(spec.initContainers as Obj[]), ...(spec.containers as Obj[])]) {
    const env = ((c.env as Obj[] | undefined) ?? []).map((e) =>
      isObj(e.valueFrom) &&
      isObj(e.valueFrom.fieldRef) &&
      e.valueFrom.fieldRef.fieldPath === 'spec.nodeName'
        ? { name: e.name, value: o.nodeName }
        : e,
    );
    c.env = [...env, ...kubeletEnv];
    const mounts = (c.volumeMounts as Obj[] | undefined) ?? [];
    mounts.push({ name: 'kube-api-access', mountPath: SA_DIR, readOnly: true });
    if (c.name === 'meshlessd')
      mounts.push({ name: 'meshless-sim', mountPath: SIM_MOUNT, readOnly: true });
    c.volumeMounts = mounts;
  }

  const data = cm.data as Obj;
  const config = parse(String(data['config.yaml'])) as Obj;
  Object.assign(
    config,
    o.configOverrides ?? {
      discovery: { file: `${SIM_MOUNT}/cluster.yaml` },
      signer: {
        ...(isObj(config.signer) ? config.signer : {}),
        address: o.signerAddress,
        serverName: 'meshless-ca',
        tokenFile: undefined,
        joinCredentialFile: `${SIM_MOUNT}/${o.nodeName}/join.json`,
      },
    },
  );
  data['config.yaml'] = stringify(config);

  spec.restartPolicy = 'OnFailure';
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.podName, labels: (template.metadata as Obj).labels },
    spec,
  };
  return `${stringify(cm)}---\n${stringify(pod)}`;
}
