/**
 * ADD (docs/reference/cni.md, "Verbs"): register the pod with the node daemon; when it
 * says the pod is enrolled, install the redirect rules in the pod's netns;
 * print prevResult. When the daemon cannot be reached, ask the Kubernetes
 * API: an enrolled (or unknown) namespace fails with 11 so the pod never
 * starts unprotected; any other namespace passes through.
 */
import { podRefOf } from '../../src/cni/environment.js';
import { CNI_CODES, CniError } from '../../src/cni/cni-error.js';
import { convertResult, podAddresses } from '../../src/cni/result.js';
import { errorMessage } from '../../src/errors.js';
import { API_VERSION, type AddRequest, type AddResponse } from '../../src/registration/protocol.js';
import type { IpFamily } from '../../src/redirect/constants.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

export async function cmdAdd({ env, config, deps, log }: Invocation): Promise<HandlerResult> {
  const prev = config.prevResult;
  if (prev === undefined)
    throw new CniError(
      CNI_CODES.invalidConfig,
      'meshless-cni is a chained plugin and got no prevResult: list it after the primary plugin in a .conflist',
    );
  const result = convertResult(prev, config.cniVersion);
  const pod = podRefOf(env.args);
  if (pod === undefined) {
    log.info('no K8S_POD_* in CNI_ARGS: not a Kubernetes pod, passing through');
    return result;
  }
  log.bind({ pod: `${pod.namespace}/${pod.name}` });
  if (config.excludeNamespaces.includes(pod.namespace)) {
    log.info('namespace excluded in the plugin config, passing through');
    return result;
  }
  const addresses = podAddresses(prev);
  const families: IpFamily[] = [...new Set(addresses.map((a) => a.family))].sort();
  const request: AddRequest = {
    apiVersion: API_VERSION,
    containerId: env.containerId,
    netns: env.netns,
    ifname: env.ifname,
    network: config.name,
    pod,
    addresses: addresses.map(({ family, ip }) => ({ family, ip })),
  };
  const answered = deps.callDaemon<AddResponse>(
    config.socketPath,
    'POST',
    '/v1/add',
    request,
    config.daemonTimeoutMs,
  );
  // Read the netns's rules while the daemon decides and binds the listeners;
  // write them only once it has answered enrolled (rules never before listeners).
  const rules = deps.redirect.prepareInstall(env.netns, families.length > 0 ? families : [4]);
  const outcome = await answered;

  if (outcome.kind === 'unreachable') {
    const verdict = await deps.namespaceVerdict(
      config.kubeconfig,
      pod.namespace,
      config.enrolmentLabel,
      config.daemonTimeoutMs,
    );
    log.warn('node daemon unreachable, fell back to the Kubernetes API', {
      reason: outcome.reason,
      verdict: verdict.kind,
    });
    if (verdict.kind === 'not-enrolled') return result;
    const why =
      verdict.kind === 'enrolled'
        ? `namespace ${pod.namespace} is enrolled in mTLS`
        : `cannot tell whether namespace ${pod.namespace} is enrolled (${verdict.reason})`;
    throw new CniError(
      CNI_CODES.tryAgainLater,
      `meshless daemon unreachable (${outcome.reason}) and ${why}: the pod must not start unprotected; the runtime will retry`,
    );
  }
  if (outcome.kind === 'error') {
    if (outcome.status === 503)
      throw new CniError(CNI_CODES.tryAgainLater, `meshless daemon not ready: ${outcome.message}`);
    throw new CniError(
      CNI_CODES.daemonRejected,
      `meshless daemon refused the pod: ${outcome.message}`,
      {
        details: outcome.code,
      },
    );
  }

  const answer = outcome.body;
  log.info(answer.enrolled ? 'pod enrolled' : 'pod not enrolled', { reason: answer.reason });
  if (!answer.enrolled) return result;

  try {
    await rules.apply();
  } catch (err) {
    log.error('installing redirect rules failed', { error: errorMessage(err) });
    // Undo the registration so the daemon does not keep a pod that never started.
    await deps.callDaemon(
      config.socketPath,
      'POST',
      '/v1/del',
      {
        apiVersion: API_VERSION,
        containerId: env.containerId,
        ifname: env.ifname,
        netns: env.netns,
      },
      config.daemonTimeoutMs,
    );
    throw new CniError(
      CNI_CODES.redirectFailed,
      `installing the meshless redirect rules in ${env.netns} failed: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  log.info('redirect rules installed', { families });
  return result;
}
