/**
 * Node mode (`install.sh --node`, what the DaemonSet runs): the plugin's
 * kubeconfig from the pod's service account, then the ordinary install,
 * as one idempotent pass the repair watcher can repeat; and the matching
 * uninstall, which also removes the kubeconfig (it holds a token).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../errors.js';
import { removeFile } from '../state/atomic-file.js';
import {
  installCni,
  uninstallCni,
  type CniDirs,
  type InstallOptions,
  type InstallResult,
} from './install.js';
import {
  KUBECONFIG_FILE_NAME,
  readServiceAccount,
  renderKubeconfig,
  writeKubeconfig,
  type InClusterEnv,
} from './kubeconfig.js';
import { buildEntry } from './entry.js';
import { isConfigFileName } from './primary-config.js';

/** Where node mode finds the in-cluster credentials and writes the plugin's kubeconfig. */
export interface NodeCredentialsOptions {
  /** Absolute path of the plugin's kubeconfig (see defaultKubeconfigPath). */
  readonly kubeconfigPath: string;
  /** Dir holding the service account's `token` and `ca.crt`. */
  readonly serviceAccountDir: string;
  /** KUBERNETES_SERVICE_HOST/PORT. */
  readonly env: InClusterEnv;
}

/** install options plus the credentials; `entryOptions.kubeconfig` is set from them. */
export interface NodeInstallOptions extends InstallOptions {
  readonly node: NodeCredentialsOptions;
}

/** `<confDir>/meshless-kubeconfig`: see kubeconfig.ts for why there. */
export function defaultKubeconfigPath(confDir: string): string {
  return join(confDir, KUBECONFIG_FILE_NAME);
}

/**
 * One node-mode pass: (re)writes the kubeconfig when the token or CA changed,
 * then installs. Idempotent: with nothing changed it writes nothing.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL`.
 */
export async function installNode(options: NodeInstallOptions): Promise<InstallResult> {
  const { kubeconfigPath, serviceAccountDir, env } = options.node;
  const text = renderKubeconfig(await readServiceAccount(serviceAccountDir, env));
  const install: InstallOptions = {
    ...options,
    entryOptions: { ...options.entryOptions, kubeconfig: kubeconfigPath },
  };
  buildEntry(install.entryOptions); // validates every flag before the first write
  const written = await writeKubeconfig(kubeconfigPath, text);
  const result = await installCni(install);
  return {
    actions: [
      { path: kubeconfigPath, action: written ? 'written' : 'unchanged' },
      ...result.actions,
    ],
    warnings: result.warnings,
  };
}

/**
 * Uninstalls (see uninstallCni) and removes the kubeconfig. Idempotent.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL`.
 */
export async function uninstallNode(
  dirs: CniDirs,
  kubeconfigPath: string | undefined,
): Promise<InstallResult> {
  const result = await uninstallCni(dirs);
  if (kubeconfigPath === undefined) return result;
  const removed = await removeFile(kubeconfigPath, 'MESHLESS_E_INSTALL');
  return {
    actions: [...result.actions, { path: kubeconfigPath, action: removed ? 'removed' : 'absent' }],
    warnings: result.warnings,
  };
}

/**
 * Resolves once the conf dir holds a network config (on a fresh node the
 * primary CNI often writes it after we start), or when `signal` aborts.
 *
 * @param onWait called once per `reportEveryMs` while waiting.
 * @returns false when aborted.
 */
export async function waitForPrimaryConfig(
  confDir: string,
  {
    signal,
    intervalMs = 1000,
    reportEveryMs = 30_000,
    onWait,
  }: {
    signal?: AbortSignal | undefined;
    intervalMs?: number;
    reportEveryMs?: number;
    onWait?: (() => void) | undefined;
  } = {},
): Promise<boolean> {
  let lastReport = -Infinity;
  for (;;) {
    if (signal?.aborted === true) return false;
    try {
      if ((await readdir(confDir)).some(isConfigFileName)) return true;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) return true; // let the install report it
    }
    if (Date.now() - lastReport >= reportEveryMs) {
      lastReport = Date.now();
      onWait?.();
    }
    await new Promise<void>((resolve) => {
      const onAbort = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, intervalMs);
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
