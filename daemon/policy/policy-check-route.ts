/**
 * `GET /policy/check?from=<pod|ns/sa/name|ip>&to=<ns/pod>:<port>` on the
 * admin endpoint: the pure {@link checkPolicy} on the daemon's current
 * snapshot and policy index (what `meshless policy check` prints).
 */
import type { DaemonConfig } from '../../src/config/daemon-config.js';
import type { DiscoverySource } from '../../src/discovery/discovery-source.js';
import { decideEnrolment, type EnrolmentPolicy } from '../../src/discovery/enrolment.js';
import { MeshlessError } from '../../src/errors.js';
import { checkPolicy } from '../../src/policy/policy-check.js';
import type { AdminRoute } from '../admin/admin-server.js';
import type { PolicyView } from './policy-view.js';

export function policyCheckRoute(
  view: PolicyView,
  discovery: Pick<DiscoverySource, 'snapshot'>,
  config: Pick<DaemonConfig, 'trustDomain' | 'enforceNetworkPolicy'>,
  enrolment: EnrolmentPolicy,
): AdminRoute {
  return (query) => {
    const from = query.get('from');
    const to = query.get('to');
    if (from === null || from === '' || to === null || to === '')
      throw new MeshlessError('MESHLESS_E_ADMIN_REQUEST', 'give both from= and to=');
    const snapshot = discovery.snapshot();
    try {
      return checkPolicy(
        snapshot,
        view.index,
        { from, to },
        {
          trustDomain: config.trustDomain,
          enforceNetworkPolicy: config.enforceNetworkPolicy,
          enrolled: (pod) =>
            decideEnrolment(
              enrolment,
              pod.namespace,
              snapshot.namespaces.get(pod.namespace),
              snapshot.pods.get(`${pod.namespace}/${pod.name}`),
            ).kind === 'enrolled',
        },
      );
    } catch (err) {
      if (err instanceof MeshlessError && err.code === 'MESHLESS_E_POLICY_QUERY')
        throw new MeshlessError('MESHLESS_E_ADMIN_REQUEST', err.message, { cause: err });
      throw err;
    }
  };
}
