/**
 * CHECK (0.4.0+): the pod is known to the daemon and, when enrolled, its
 * redirect rules are intact. A pod enrolled without redirection would send
 * plaintext: that is an error the runtime must see.
 */
import { podRefOf } from '../../src/cni/environment.js';
import { CNI_CODES, CniError } from '../../src/cni/cni-error.js';
import { podAddresses } from '../../src/cni/result.js';
import { supportsCheck } from '../../src/cni/versions.js';
import {
  API_VERSION,
  type CheckRequest,
  type CheckResponse,
} from '../../src/registration/protocol.js';
import type { IpFamily } from '../../src/redirect/constants.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

export async function cmdCheck({ env, config, deps }: Invocation): Promise<HandlerResult> {
  if (!supportsCheck(config.cniVersion))
    throw new CniError(
      CNI_CODES.incompatibleVersion,
      `CHECK needs cniVersion 0.4.0 or later; the network config says ${config.cniVersion}`,
    );
  if (config.prevResult === undefined)
    throw new CniError(CNI_CODES.invalidConfig, 'CHECK needs prevResult in the network config');
  const pod = podRefOf(env.args);
  if (pod === undefined || config.excludeNamespaces.includes(pod.namespace)) return undefined;
  const request: CheckRequest = {
    apiVersion: API_VERSION,
    containerId: env.containerId,
    netns: env.netns,
    ifname: env.ifname,
  };
  const outcome = await deps.callDaemon<CheckResponse>(
    config.socketPath,
    'POST',
    '/v1/check',
    request,
    config.daemonTimeoutMs,
  );
  if (outcome.kind === 'unreachable')
    throw new CniError(CNI_CODES.tryAgainLater, `meshless daemon unreachable: ${outcome.reason}`);
  if (outcome.kind === 'error')
    throw new CniError(
      outcome.status === 503 ? CNI_CODES.tryAgainLater : CNI_CODES.daemonRejected,
      `meshless daemon: ${outcome.message}`,
    );
  if (!outcome.body.registered)
    throw new CniError(
      CNI_CODES.unknownContainer,
      `container ${env.containerId} is not registered with the meshless daemon on this node`,
    );
  if (!outcome.body.enrolled) return undefined;
  const families: IpFamily[] = [...new Set(podAddresses(config.prevResult).map((a) => a.family))];
  const problems = await deps.redirect.verify(env.netns, families.length > 0 ? families : [4]);
  if (problems.length > 0)
    throw new CniError(
      CNI_CODES.redirectMissing,
      `the pod is enrolled but its redirect rules are not intact: ${problems.join('; ')}`,
    );
  return undefined;
}
