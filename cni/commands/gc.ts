/**
 * GC (1.1.0): the runtime lists the attachments still in use; the daemon
 * forgets every registration of this network that is not among them.
 */
import { CNI_CODES, CniError } from '../../src/cni/cni-error.js';
import { supportsStatusAndGc } from '../../src/cni/versions.js';
import { API_VERSION, type GcRequest, type GcResponse } from '../../src/registration/protocol.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

export async function cmdGc({ config, deps, log }: Invocation): Promise<HandlerResult> {
  if (!supportsStatusAndGc(config.cniVersion))
    throw new CniError(
      CNI_CODES.incompatibleVersion,
      `GC needs cniVersion 1.1.0; got ${config.cniVersion}`,
    );
  if (config.validAttachments === undefined)
    throw new CniError(
      CNI_CODES.invalidConfig,
      'GC needs "cni.dev/valid-attachments" in the network config',
    );
  const request: GcRequest = {
    apiVersion: API_VERSION,
    network: config.name,
    validAttachments: config.validAttachments,
  };
  const outcome = await deps.callDaemon<GcResponse>(
    config.socketPath,
    'POST',
    '/v1/gc',
    request,
    config.daemonTimeoutMs,
  );
  if (outcome.kind === 'unreachable')
    throw new CniError(CNI_CODES.tryAgainLater, `meshless daemon unreachable: ${outcome.reason}`);
  if (outcome.kind === 'error')
    throw new CniError(CNI_CODES.daemonRejected, `meshless daemon: ${outcome.message}`);
  log.info('garbage collected', { removed: outcome.body.removed });
  return undefined;
}
