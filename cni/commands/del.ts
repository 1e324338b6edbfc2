/**
 * DEL: best effort and idempotent. Remove our rules if the netns still
 * exists, tell the daemon to forget the pod, and succeed whatever is
 * already gone (the daemon reconciles with what exists when it starts).
 */
import { errorMessage } from '../../src/errors.js';
import { API_VERSION, type DelRequest } from '../../src/registration/protocol.js';
import type { HandlerResult, Invocation } from '../plugin-context.js';

export async function cmdDel({ env, config, deps, log }: Invocation): Promise<HandlerResult> {
  if (env.netns !== '' && deps.netnsExists(env.netns)) {
    try {
      await deps.redirect.remove(env.netns);
    } catch (err) {
      log.warn('removing redirect rules failed; the netns is going away anyway', {
        error: errorMessage(err),
      });
    }
  }
  const request: DelRequest = {
    apiVersion: API_VERSION,
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns === '' ? undefined : env.netns,
  };
  const outcome = await deps.callDaemon(
    config.socketPath,
    'POST',
    '/v1/del',
    request,
    config.daemonTimeoutMs,
  );
  if (outcome.kind !== 'ok')
    log.warn('the daemon did not take the DEL; it drops the pod when it next reconciles', {
      outcome: outcome.kind === 'error' ? outcome.message : outcome.reason,
    });
  return undefined;
}
