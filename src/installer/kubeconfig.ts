/**
 * The kubeconfig of the plugin's Kubernetes fallback (cni/kube-fallback.ts),
 * written by node mode (`install.sh --node`) from the DaemonSet pod's
 * in-cluster service account.
 *
 * Why the token and CA are embedded rather than referenced by path: the
 * plugin runs on the host (kubelet/containerd exec it from /opt/cni/bin),
 * where the pod's projected service-account files do not exist. Projected
 * tokens rotate, so the watch loop re-renders the file and rewrites it when
 * the token changes (istio-cni does the same).
 *
 * Where it goes (default): `<cni conf dir>/meshless-kubeconfig`, mode 0600.
 * The conf dir is already mounted into the DaemonSet; the name has no
 * `.conf`/`.conflist`/`.json` extension, so no runtime loads it and no
 * exclusive-mode primary CNI renames it; and 0600 root keeps the bearer
 * token from anyone but root on the node (who can read the pod's own token
 * under /var/lib/kubelet anyway).
 *
 * renderKubeconfig is pure; readServiceAccount and writeKubeconfig are the
 * I/O around it.
 */
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MeshlessError, errorMessage, isErrno } from '../errors.js';
import { writeFileAtomic } from '../state/atomic-file.js';

/** Base name of the plugin's kubeconfig in the CNI conf dir. */
export const KUBECONFIG_FILE_NAME = 'meshless-kubeconfig';

/** Where Kubernetes mounts a pod's service-account credentials. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What the plugin needs to reach the API server as the DaemonSet's service account. */
export interface ApiCredentials {
  /** `https://host:port` of the API server. */
  readonly server: string;
  /** PEM bundle that verifies the API server's certificate. */
  readonly caPem: string;
  /** Bearer token of the service account. */
  readonly token: string;
}

/** The in-cluster environment variables kubelet sets in every container. */
export interface InClusterEnv {
  readonly KUBERNETES_SERVICE_HOST?: string | undefined;
  readonly KUBERNETES_SERVICE_PORT?: string | undefined;
}

function installError(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_INSTALL', message, cause === undefined ? {} : { cause });
}

/**
 * `https://HOST:PORT` from KUBERNETES_SERVICE_HOST/PORT (IPv6 hosts in brackets).
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the variable at fault.
 */
export function apiServerUrl(env: InClusterEnv): string {
  const host = env.KUBERNETES_SERVICE_HOST?.trim() ?? '';
  const port = env.KUBERNETES_SERVICE_PORT?.trim() ?? '';
  if (host === '')
    throw installError(
      'KUBERNETES_SERVICE_HOST is not set: node mode needs the in-cluster API server ' +
        '(run it inside the DaemonSet pod, or set KUBERNETES_SERVICE_HOST/PORT)',
    );
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw installError(`KUBERNETES_SERVICE_HOST "${host}" is not a host name or IP address`);
  const n = Number(port);
  if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535)
    throw installError(`KUBERNETES_SERVICE_PORT "${port}" is not a port number`);
  return `https://${isIP(host) === 6 ? `[${host}]` : host}:${n}`;
}

/**
 * The kubeconfig text for `creds`: one cluster, one user, one context, the
 * CA and token inline. Deterministic, so an unchanged token renders the same
 * bytes and the watch loop writes nothing.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` when the token or CA is unusable.
 */
export function renderKubeconfig(creds: ApiCredentials): string {
  const token = creds.token.trim();
  if (!/^[!-~]+$/.test(token))
    throw installError(
      'the service-account token is empty or holds characters other than printable ASCII',
    );
  if (!creds.caPem.includes('-----BEGIN CERTIFICATE-----'))
    throw installError('the service-account ca.crt holds no PEM certificate');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'meshless',
        cluster: {
          server: creds.server,
          'certificate-authority-data': Buffer.from(creds.caPem, 'utf8').toString('base64'),
        },
      },
    ],
    users: [{ name: 'meshless-cni', user: { token } }],
    contexts: [{ name: 'meshless-cni', context: { cluster: 'meshless', user: 'meshless-cni' } }],
    'current-context': 'meshless-cni',
  };
  return (
    '# Written by meshless node mode (install.sh --node) for the meshless-cni plugin.\n' +
    '# Rewritten when the service-account token rotates; do not edit.\n' +
    stringify(doc, { lineWidth: 0 })
  );
}

async function readCredentialFile(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw installError(
      isErrno(err, 'ENOENT')
        ? `${path} does not exist: is a service-account token mounted (automountServiceAccountToken)?`
        : `cannot read ${path}: ${errorMessage(err)}`,
      err,
    );
  }
}

/**
 * Reads the in-cluster credentials: `token` and `ca.crt` from `dir`, the API
 * server from `env`.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the missing file or variable.
 */
export async function readServiceAccount(
  dir: string = SERVICE_ACCOUNT_DIR,
  env: InClusterEnv = process.env,
): Promise<ApiCredentials> {
  const server = apiServerUrl(env);
  const [token, caPem] = await Promise.all([
    readCredentialFile(dir, 'token'),
    readCredentialFile(dir, 'ca.crt'),
  ]);
  return { server, caPem, token: token.trim() };
}

/**
 * Writes `text` to `path` (mode 0600) unless it already holds exactly that, mode included.
 *
 * @returns whether the file was written.
 * @throws MeshlessError `MESHLESS_E_INSTALL`.
 */
export async function writeKubeconfig(path: string, text: string): Promise<boolean> {
  try {
    const [current, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (current === text && (st.mode & 0o7777) === 0o600) return false;
  } catch (err) {
    if (!isErrno(err, 'ENOENT'))
      throw installError(`cannot read ${path}: ${errorMessage(err)}`, err);
  }
  await writeFileAtomic(path, text, { mode: 0o600, errorCode: 'MESHLESS_E_INSTALL' });
  return true;
}
