/**
 * `meshless policy check`: the decision for a hypothetical connection,
 * explained. Resolves `--from` (a pod `namespace/name`, an identity
 * `namespace/sa/serviceaccount`, or an address) and `--to`
 * (`namespace/pod:port`, the port a number or a named container port)
 * against a snapshot, runs {@link explainAuthorization} and, for a
 * connection that would arrive over HBONE, {@link networkPolicyAllows},
 * and answers a JSON-ready report. Pure: the daemon's admin route calls it
 * on its current snapshot and policy index.
 */
import { MeshlessError } from '../errors.js';
import { explainAuthorization, type PolicyRef } from './authorize.js';
import { parseIpAddress } from './ip-address.js';
import { networkPolicyAllows } from './network-policy-check.js';
import type { PolicyIndex, PolicyPod } from './policy-index.js';

export interface PolicyCheckSource {
  readonly pods: ReadonlyMap<string, PolicyPod & { readonly serviceAccount: string }>;
}

export interface PolicyCheckOptions {
  readonly trustDomain: string;
  /** Config `enforceNetworkPolicy`. */
  readonly enforceNetworkPolicy: boolean;
  /** Whether a source pod is enrolled (only an enrolled pod connects over HBONE, with an identity). */
  readonly enrolled: (pod: PolicyPod) => boolean;
}

export interface PolicyCheckReport {
  readonly from: {
    readonly kind: 'pod' | 'identity' | 'address';
    readonly pod: string | null;
    readonly principal: string | null;
    readonly address: string | null;
    /** How the connection would arrive: over HBONE with the principal, or plaintext. */
    readonly transport: 'hbone' | 'plaintext';
  };
  readonly to: { readonly pod: string; readonly address: string; readonly port: number };
  readonly allowed: boolean;
  readonly authorization: {
    readonly allowed: boolean;
    readonly reason: string;
    readonly policy: string | null;
    readonly policyKind: PolicyRef['kind'] | null;
    readonly mtls: { readonly mode: string; readonly policy: string | null };
    readonly dryRun: readonly { readonly policy: string; readonly action: string }[];
    readonly policies: readonly {
      readonly policy: string;
      readonly action: string;
      readonly scope: string;
      readonly dryRun: boolean;
      readonly matched: boolean;
      readonly unsupported: string | null;
    }[];
  };
  readonly networkPolicy: {
    /** Why it was not evaluated, when it was not. */
    readonly skipped: string | null;
    readonly allowed: boolean;
    readonly reason: string;
    readonly policy: string | null;
    readonly selecting: readonly string[];
  };
  /** Problems of the policies involved (fields outside the L4 subset, malformed policies). */
  readonly problems: readonly string[];
}

const bad = (message: string): MeshlessError =>
  new MeshlessError('MESHLESS_E_POLICY_QUERY', message);
const name = (r: { namespace: string; name: string }): string => `${r.namespace}/${r.name}`;
const UNSPECIFIED = parseIpAddress('0.0.0.0');

/** The decision for `from` -> `to`, explained. Throws MESHLESS_E_POLICY_QUERY for an unusable query. */
export function checkPolicy(
  source: PolicyCheckSource,
  index: PolicyIndex,
  query: { readonly from: string; readonly to: string },
  options: PolicyCheckOptions,
): PolicyCheckReport {
  const colon = query.to.lastIndexOf(':');
  if (colon < 0) throw bad(`--to "${query.to}" is not namespace/pod:port`);
  const destKey = query.to.slice(0, colon);
  const dest = source.pods.get(destKey);
  if (dest === undefined) throw bad(`--to: no pod ${destKey} in the daemon's view`);
  const portText = query.to.slice(colon + 1);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : dest.containerPorts[portText];
  if (port === undefined || port < 1 || port > 65535)
    throw bad(`--to: "${portText}" is neither a port nor a named port of ${destKey}`);
  const destIpText = dest.ips[0];
  const destIp = destIpText === undefined ? undefined : parseIpAddress(destIpText);
  if (destIp === undefined || destIpText === undefined)
    throw bad(`--to: pod ${destKey} has no address yet`);

  let from: PolicyCheckReport['from'];
  const asIp = parseIpAddress(query.from);
  const parts = query.from.split('/');
  const workloadId = (ns: string, sa: string): string =>
    `spiffe://${options.trustDomain}/ns/${ns}/sa/${sa}`;
  if (asIp !== undefined) {
    from = {
      kind: 'address',
      pod: null,
      principal: null,
      address: query.from,
      transport: 'plaintext',
    };
  } else if (parts.length === 3 && parts[1] === 'sa' && parts[0] !== '' && parts[2] !== '') {
    const principal = workloadId(parts[0] as string, parts[2] as string);
    from = { kind: 'identity', pod: null, principal, address: null, transport: 'hbone' };
  } else if (parts.length === 2) {
    const pod = source.pods.get(query.from);
    if (pod === undefined) throw bad(`--from: no pod ${query.from} in the daemon's view`);
    const enrolled = options.enrolled(pod);
    from = {
      kind: 'pod',
      pod: query.from,
      principal: enrolled ? workloadId(pod.namespace, pod.serviceAccount) : null,
      address: pod.ips[0] ?? null,
      transport: enrolled ? 'hbone' : 'plaintext',
    };
  } else
    throw bad(
      `--from "${query.from}" is neither namespace/pod, namespace/sa/serviceaccount nor an address`,
    );
  const sourceIp =
    (from.address === null ? undefined : parseIpAddress(from.address)) ?? UNSPECIFIED;
  if (sourceIp === undefined) throw bad('internal: no source address');

  const destination = {
    namespace: dest.namespace,
    labels: dest.labels,
    containerPorts: dest.containerPorts,
  };
  const e = explainAuthorization(
    {
      destination,
      principal: from.principal ?? undefined,
      sourceIp,
      destinationIp: destIp,
      destinationPort: port,
    },
    index,
  );
  const skipped = !options.enforceNetworkPolicy
    ? 'config enforceNetworkPolicy is off'
    : from.transport === 'plaintext'
      ? 'plaintext reaches the pod on its own port, where the CNI enforces NetworkPolicy'
      : null;
  const np =
    skipped === null
      ? networkPolicyAllows(
          { destination, sourceIp, port, principal: from.principal ?? undefined },
          index,
        )
      : undefined;
  const involved = new Set([
    ...e.steps.map((s) => `AuthorizationPolicy ${name(s.policy)}`),
    ...(e.mtls.policy ? [`PeerAuthentication ${name(e.mtls.policy)}`] : []),
    ...(np?.selecting ?? []).map((s) => `NetworkPolicy ${name(s)}`),
  ]);
  return {
    from,
    to: { pod: destKey, address: destIpText, port },
    allowed: e.allowed && (np?.allowed ?? true),
    authorization: {
      allowed: e.allowed,
      reason: e.reason,
      policy: e.policy ? name(e.policy) : null,
      policyKind: e.policy?.kind ?? null,
      mtls: { mode: e.mtls.mode, policy: e.mtls.policy ? name(e.mtls.policy) : null },
      dryRun: e.dryRun.map((d) => ({ policy: name(d.policy), action: d.action })),
      policies: e.steps.map((s) => ({
        policy: name(s.policy),
        action: s.action,
        scope: s.scope,
        dryRun: s.dryRun,
        matched: s.matched,
        unsupported: s.unsupported ?? null,
      })),
    },
    networkPolicy: {
      skipped,
      allowed: np?.allowed ?? true,
      reason: np?.reason ?? 'not_evaluated',
      policy: np?.policy ? name(np.policy) : null,
      selecting: (np?.selecting ?? []).map(name),
    },
    problems: index.problems
      .filter((p) => involved.has(`${p.kind} ${p.namespace}/${p.name}`))
      .map((p) => `${p.kind} ${p.namespace}/${p.name}: ${p.problem}`),
  };
}
