/**
 * What a command handler gets: the checked invocation and the side effects
 * it may use, passed in so handlers run in-process in tests with fakes.
 */
import type { PodRedirect } from '../src/redirect/pod-redirect.js';
import type { CniEnvironment } from '../src/cni/environment.js';
import type { PluginConfig } from '../src/cni/plugin-config.js';
import type { DaemonOutcome } from '../src/registration/client.js';
import type { LabelRequirement } from '../src/config/label.js';
import type { NamespaceVerdict } from './kube-fallback.js';
import type { PluginLog } from './plugin-log.js';

export interface PluginDeps {
  readonly redirect: Pick<PodRedirect, 'prepareInstall' | 'remove' | 'verify'>;
  callDaemon<T>(
    socketPath: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<DaemonOutcome<T>>;
  namespaceVerdict(
    kubeconfig: string | undefined,
    namespace: string,
    label: LabelRequirement,
    timeoutMs: number,
  ): Promise<NamespaceVerdict>;
  netnsExists(path: string): boolean;
}

export interface Invocation {
  readonly env: CniEnvironment;
  readonly config: PluginConfig;
  readonly deps: PluginDeps;
  readonly log: PluginLog;
}

/** What a handler returns: a result object for stdout, or nothing. */
export type HandlerResult = Record<string, unknown> | undefined;
