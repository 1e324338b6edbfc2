/**
 * The authorization decision for one connection at its destination,
 * exactly as ztunnel's `assert_rbac` (src/state.rs) with `rbac.rs`
 * matching, plus STRICT PeerAuthentication (which Istio hands ztunnel as a
 * DENY of connections without a principal):
 *
 * 1. the policies that apply: those of the destination's namespace and of
 *    the root namespace without a selector, and those with a selector
 *    matching the destination's labels in either;
 * 2. STRICT mTLS for the destination port and no principal: deny;
 * 3. any matching DENY policy: deny (naming it);
 * 4. no ALLOW policy: allow;
 * 5. any matching ALLOW policy: allow (naming it);
 * 6. otherwise deny.
 * Dry-run policies never decide; those that match are reported.
 *
 * Matching (rbac.rs): a policy with no rules never matches; a rule matches
 * when all its clauses do; a clause when it is empty or any of its
 * non-empty matches does; a match when, for each of its lists, any positive
 * value matches (or there is none) and no negative one does. Principals are
 * compared without `spiffe://`; a connection without a principal has the
 * principal and namespace ''.
 *
 * Pure and cheap: no allocation on the enforcing path unless dry-run
 * policies match; {@link explainAuthorization} records the steps for the CLI.
 */
import {
  stringMatches,
  type AuthorizationAction,
  type AuthorizationPolicy,
  type RbacMatch,
  type StringMatch,
} from './authorization-policy.js';
import { blockContains, type IpAddress, type IpBlock } from './ip-address.js';
import { selectorMatches, type Labels } from './label-selector.js';
import type { MtlsMode, PeerAuthentication } from './peer-authentication.js';
import type { PolicyIndex } from './policy-index.js';

/** One connection as the authorization sees it. */
export interface AuthorizationRequest {
  /** The destination workload: its namespace and labels. */
  readonly destination: { readonly namespace: string; readonly labels: Labels };
  /** The verified peer SPIFFE ID (`spiffe://td/ns/<ns>/sa/<sa>`); undefined for plaintext. */
  readonly principal: string | undefined;
  readonly sourceIp: IpAddress;
  readonly destinationIp: IpAddress;
  /** The port the connection is for (the inner target port of an HBONE stream). */
  readonly destinationPort: number;
}

/** A policy by kind and name (`namespace/name` in records and metrics). */
export interface PolicyRef {
  readonly kind: 'AuthorizationPolicy' | 'PeerAuthentication' | 'NetworkPolicy';
  readonly namespace: string;
  readonly name: string;
}

export type AuthorizationReason =
  | 'no_allow_policies'
  | 'allow_policy_matched'
  | 'deny_policy_matched'
  | 'no_allow_policy_matched'
  | 'strict_mtls';

export interface AuthorizationDecision {
  readonly allowed: boolean;
  readonly reason: AuthorizationReason;
  /** The deciding policy (none for `no_allow_policies` and `no_allow_policy_matched`). */
  readonly policy: PolicyRef | undefined;
  /** Dry-run policies that matched: what they would have done. */
  readonly dryRun: readonly { readonly policy: PolicyRef; readonly action: AuthorizationAction }[];
}

/** How one applicable policy fared, for explanations. */
export interface AuthorizationStep {
  readonly policy: PolicyRef;
  readonly action: AuthorizationAction;
  readonly dryRun: boolean;
  /** Why it applies: namespace-wide, mesh-wide (root namespace) or by selector. */
  readonly scope: 'namespace' | 'root' | 'selector';
  readonly matched: boolean;
  readonly unsupported: string | undefined;
}

export interface AuthorizationExplanation extends AuthorizationDecision {
  /** The effective mTLS mode for the destination port, and the PeerAuthentication that set it. */
  readonly mtls: { readonly mode: 'STRICT' | 'PERMISSIVE'; readonly policy: PolicyRef | undefined };
  readonly steps: readonly AuthorizationStep[];
}

const SPIFFE = 'spiffe://';

/** The namespace of a workload SPIFFE ID (`.../ns/<ns>/sa/...`), '' when it has none. */
export function principalNamespace(principal: string | undefined): string {
  if (principal === undefined || !principal.startsWith(SPIFFE)) return '';
  const at = principal.indexOf('/ns/', SPIFFE.length);
  if (at < 0) return '';
  const end = principal.indexOf('/', at + 4);
  return end < 0 ? principal.slice(at + 4) : principal.slice(at + 4, end);
}

function anyString(list: readonly StringMatch[], check: string): boolean {
  for (const m of list) if (stringMatches(m, check)) return true;
  return false;
}

/** rbac.rs `matches_principal`: the principal without `spiffe://`; none never matches. */
function anyPrincipal(list: readonly StringMatch[], principal: string | undefined): boolean {
  if (principal === undefined || !principal.startsWith(SPIFFE)) return false;
  const bare = principal.slice(SPIFFE.length);
  return anyString(list, bare);
}

function anyBlock(list: readonly IpBlock[], ip: IpAddress): boolean {
  for (const b of list) if (blockContains(b, ip)) return true;
  return false;
}

function anyPort(list: readonly number[], port: number): boolean {
  for (const p of list) if (p === port) return true;
  return false;
}

function isEmptyMatch(m: RbacMatch): boolean {
  return (
    m.namespaces.length === 0 &&
    m.notNamespaces.length === 0 &&
    m.principals.length === 0 &&
    m.notPrincipals.length === 0 &&
    m.sourceIps.length === 0 &&
    m.notSourceIps.length === 0 &&
    m.destinationIps.length === 0 &&
    m.notDestinationIps.length === 0 &&
    m.destinationPorts.length === 0 &&
    m.notDestinationPorts.length === 0
  );
}

function matchHolds(m: RbacMatch, r: AuthorizationRequest, ns: string): boolean {
  return (
    (m.destinationIps.length === 0 || anyBlock(m.destinationIps, r.destinationIp)) &&
    !anyBlock(m.notDestinationIps, r.destinationIp) &&
    (m.sourceIps.length === 0 || anyBlock(m.sourceIps, r.sourceIp)) &&
    !anyBlock(m.notSourceIps, r.sourceIp) &&
    (m.destinationPorts.length === 0 || anyPort(m.destinationPorts, r.destinationPort)) &&
    !anyPort(m.notDestinationPorts, r.destinationPort) &&
    (m.principals.length === 0 || anyPrincipal(m.principals, r.principal)) &&
    !anyPrincipal(m.notPrincipals, r.principal) &&
    (m.namespaces.length === 0 || anyString(m.namespaces, ns)) &&
    !anyString(m.notNamespaces, ns)
  );
}

/** Whether `policy` matches the connection (rbac.rs `Authorization::matches`). */
export function policyMatches(policy: AuthorizationPolicy, r: AuthorizationRequest): boolean {
  const ns = principalNamespace(r.principal);
  for (const rule of policy.rules) {
    let ruleMatch = true;
    for (const clause of rule) {
      if (clause.length === 0) continue;
      let clauseMatch = false;
      for (const m of clause)
        if (!isEmptyMatch(m) && matchHolds(m, r, ns)) {
          clauseMatch = true;
          break;
        }
      if (!clauseMatch) {
        ruleMatch = false;
        break;
      }
    }
    if (ruleMatch) return true;
  }
  return false;
}

const refOf = (p: { namespace: string; name: string }, kind: PolicyRef['kind']): PolicyRef => ({
  kind,
  namespace: p.namespace,
  name: p.name,
});

/** Calls `visit` for each policy that applies to the destination, in evaluation order. */
function forApplicable(
  index: PolicyIndex,
  destination: AuthorizationRequest['destination'],
  visit: (p: AuthorizationPolicy, scope: AuthorizationStep['scope']) => void,
): void {
  const own = index.authorization.get(destination.namespace);
  const root =
    destination.namespace === index.rootNamespace
      ? undefined
      : index.authorization.get(index.rootNamespace);
  for (const list of [own, root]) {
    if (list === undefined) continue;
    for (const p of list) {
      const scope: AuthorizationStep['scope'] =
        p.selector === undefined
          ? p.namespace === index.rootNamespace
            ? 'root'
            : 'namespace'
          : 'selector';
      if (p.selector !== undefined && !selectorMatches(p.selector, destination.labels)) continue;
      visit(p, scope);
    }
  }
}

function pick(
  list: readonly PeerAuthentication[] | undefined,
  keep: (p: PeerAuthentication) => boolean,
): PeerAuthentication | undefined {
  let best: PeerAuthentication | undefined;
  for (const p of list ?? [])
    if (
      keep(p) &&
      (best === undefined ||
        (p.created !== '' && (best.created === '' || p.created < best.created)))
    )
      best = p;
  return best;
}

/** The effective mTLS mode of a destination port (default PERMISSIVE) and the policy that set it. */
export function effectiveMtls(
  index: PolicyIndex,
  destination: AuthorizationRequest['destination'],
  port: number,
): { mode: 'STRICT' | 'PERMISSIVE'; policy: PeerAuthentication | undefined } {
  if (index.peerAuthentication.size === 0) return { mode: 'PERMISSIVE', policy: undefined };
  const own = index.peerAuthentication.get(destination.namespace);
  const workload = pick(
    own,
    (p) => p.selector !== undefined && selectorMatches(p.selector, destination.labels),
  );
  const namespace = pick(own, (p) => p.selector === undefined);
  const mesh = pick(
    index.peerAuthentication.get(index.rootNamespace),
    (p) => p.selector === undefined,
  );
  const decided = (m: MtlsMode | undefined): boolean => m === 'STRICT' || m === 'PERMISSIVE';
  // DISABLE cannot be honoured by a node proxy: ignored, as in Istio ambient.
  const portMode = workload?.portLevelMtls.get(port);
  if (workload !== undefined && decided(portMode))
    return { mode: portMode as 'STRICT' | 'PERMISSIVE', policy: workload };
  for (const p of [workload, namespace, mesh])
    if (p !== undefined && decided(p.mode))
      return { mode: p.mode as 'STRICT' | 'PERMISSIVE', policy: p };
  return { mode: 'PERMISSIVE', policy: undefined };
}

const ALLOW_NO_POLICIES: AuthorizationDecision = {
  allowed: true,
  reason: 'no_allow_policies',
  policy: undefined,
  dryRun: [],
};
const DENY_NO_MATCH: AuthorizationDecision = {
  allowed: false,
  reason: 'no_allow_policy_matched',
  policy: undefined,
  dryRun: [],
};

function evaluate(
  r: AuthorizationRequest,
  index: PolicyIndex,
  steps: AuthorizationStep[] | undefined,
): AuthorizationDecision {
  let dryRun: { policy: PolicyRef; action: AuthorizationAction }[] | undefined;
  const decide = (
    allowed: boolean,
    reason: AuthorizationReason,
    policy: PolicyRef | undefined,
  ): AuthorizationDecision => {
    if (dryRun === undefined && policy === undefined)
      return allowed ? ALLOW_NO_POLICIES : DENY_NO_MATCH;
    return { allowed, reason, policy, dryRun: dryRun ?? [] };
  };
  let strict: AuthorizationDecision | undefined;
  if (r.principal === undefined) {
    const mtls = effectiveMtls(index, r.destination, r.destinationPort);
    if (mtls.mode === 'STRICT' && mtls.policy !== undefined) {
      strict = {
        allowed: false,
        reason: 'strict_mtls',
        policy: refOf(mtls.policy, 'PeerAuthentication'),
        dryRun: [],
      };
      // An explanation still lists the AuthorizationPolicies.
      if (steps === undefined) return strict;
    }
  }
  // DENY policies first (dry-run ones only report), then ALLOW.
  let denied: AuthorizationPolicy | undefined;
  let allowSeen = false;
  let allowed: AuthorizationPolicy | undefined;
  forApplicable(index, r.destination, (p, scope) => {
    if (p.action !== 'DENY') return;
    const matched = policyMatches(p, r);
    steps?.push({
      policy: refOf(p, 'AuthorizationPolicy'),
      action: p.action,
      dryRun: p.dryRun,
      scope,
      matched,
      unsupported: p.unsupported,
    });
    if (!matched) return;
    if (p.dryRun) (dryRun ??= []).push({ policy: refOf(p, 'AuthorizationPolicy'), action: 'DENY' });
    else denied ??= p;
  });
  if (strict !== undefined) return strict;
  if (denied !== undefined)
    return decide(false, 'deny_policy_matched', refOf(denied, 'AuthorizationPolicy'));
  forApplicable(index, r.destination, (p, scope) => {
    if (p.action !== 'ALLOW') return;
    const matched = policyMatches(p, r);
    steps?.push({
      policy: refOf(p, 'AuthorizationPolicy'),
      action: p.action,
      dryRun: p.dryRun,
      scope,
      matched,
      unsupported: p.unsupported,
    });
    if (p.dryRun) {
      if (matched)
        (dryRun ??= []).push({ policy: refOf(p, 'AuthorizationPolicy'), action: 'ALLOW' });
      return;
    }
    allowSeen = true;
    if (matched) allowed ??= p;
  });
  if (!allowSeen) return decide(true, 'no_allow_policies', undefined);
  if (allowed !== undefined)
    return decide(true, 'allow_policy_matched', refOf(allowed, 'AuthorizationPolicy'));
  return decide(false, 'no_allow_policy_matched', undefined);
}

/** The decision for one connection (the data plane's per-connection call). */
export function authorize(
  request: AuthorizationRequest,
  index: PolicyIndex,
): AuthorizationDecision {
  return evaluate(request, index, undefined);
}

/** The decision with every applicable policy and whether it matched (for `meshless policy check`). */
export function explainAuthorization(
  request: AuthorizationRequest,
  index: PolicyIndex,
): AuthorizationExplanation {
  const steps: AuthorizationStep[] = [];
  const decision = evaluate(request, index, steps);
  const mtls = effectiveMtls(index, request.destination, request.destinationPort);
  return {
    ...decision,
    mtls: { mode: mtls.mode, policy: mtls.policy && refOf(mtls.policy, 'PeerAuthentication') },
    steps,
  };
}
