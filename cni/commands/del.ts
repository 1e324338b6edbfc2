/**
 * DEL: best effort and idempotent. Remove our rules (both families: those of
 * prevResult were redirected, the others refused) if the netns still exists
 * and tell the daemon to forget the pod (both at once), and succeed whatever
 * is already gone (the daemon reconciles with what exists when it starts).
 */
import { podAddresses } from '../../src/cni/result.js';
import type { PluginConfig } from '../../src/cni/plugin-config.js';
import { errorMessage } from '../../src/errors.js';
import type { IpFamily } from '../../src/redirect/constants.js';
import { API_VERSION, type DelRequest } from '../../src/registration/protocol.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

/**
 * The families ADD redirected: those of prevResult's addresses (ADD
 * redirects IPv4 for a pod without any), both when DEL has no prevResult.
 * The removal covers both families whatever this says; it only tells which
 * rule set to expect in each, so the common case takes one restore.
 */
function familiesOf(prev: PluginConfig['prevResult']): IpFamily[] {
  const families = new Set<IpFamily>(podAddresses(prev).map((a) => a.family));
  return families.size === 0 ? [4, 6] : [...families].sort();
}

export async function cmdDel({ env, config, deps, log }: Invocation): Promise<HandlerResult> {
  // The rules go while the daemon forgets the pod, in parallel: removing
  // them waits ~20 ms on the kernel. Should the daemon close the listeners
  // first, the pod's redirected connections are refused meanwhile (fail
  // closed, never plaintext), and the pod is being torn down anyway.
  const removed =
    env.netns !== '' && deps.netnsExists(env.netns)
      ? deps.redirect.remove(env.netns, familiesOf(config.prevResult)).catch((err: unknown) => {
          log.warn('removing redirect rules failed; the netns is going away anyway', {
            error: errorMessage(err),
          });
        })
      : Promise.resolve();
  const request: DelRequest = {
    apiVersion: API_VERSION,
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns === '' ? undefined : env.netns,
  };
  const [outcome] = await Promise.all([
    deps.callDaemon(config.socketPath, 'POST', '/v1/del', request, config.daemonTimeoutMs),
    removed,
  ]);
  if (outcome.kind !== 'ok')
    log.warn('the daemon did not take the DEL; it drops the pod when it next reconciles', {
      outcome: outcome.kind === 'error' ? outcome.message : outcome.reason,
    });
  return undefined;
}
