/**
 * STATUS (1.1.0): can this plugin set up pods now? Pods of non-enrolled
 * namespaces must keep starting while the daemon is down, so the plugin is
 * available when the daemon answers or the Kubernetes fallback is
 * configured; only with neither is it unavailable (50).
 */
import { CNI_CODES, CniError } from '../../src/cni/cni-error.js';
import { supportsStatusAndGc } from '../../src/cni/versions.js';
import type { StatusResponse } from '../../src/registration/protocol.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

export async function cmdStatus({ config, deps, log }: Invocation): Promise<HandlerResult> {
  if (!supportsStatusAndGc(config.cniVersion))
    throw new CniError(
      CNI_CODES.incompatibleVersion,
      `STATUS needs cniVersion 1.1.0; got ${config.cniVersion}`,
    );
  const outcome = await deps.callDaemon<StatusResponse>(
    config.socketPath,
    'GET',
    '/v1/status',
    undefined,
    config.daemonTimeoutMs,
  );
  if (outcome.kind === 'ok') return undefined;
  const reason = outcome.kind === 'error' ? outcome.message : outcome.reason;
  if (config.kubeconfig !== undefined) {
    log.warn('daemon unavailable; the Kubernetes fallback keeps non-enrolled pods working', {
      reason,
    });
    return undefined;
  }
  throw new CniError(
    CNI_CODES.pluginNotAvailable,
    `meshless daemon unavailable (${reason}) and no kubeconfig is configured for the fallback`,
  );
}
