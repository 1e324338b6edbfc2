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
import { refOf, type PolicyRef } from './policy-ref.js';

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

export type { PolicyRef } from './policy-ref.js';

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

/** rbac.rs `matches_principal`: the principal without `spiffe://` (compared in place); none never matches. */
function anyPrincipal(list: readonly StringMatch[], principal: string | undefined): boolean {
  if (principal === undefined || !principal.startsWith(SPIFFE)) return false;
  const from = SPIFFE.length;
  for (const m of list) {
    switch (m.kind) {
      case 'exact':
        if (principal.length - from === m.value.length && principal.startsWith(m.value, from))
          return true;
        break;
      case 'prefix':
        if (principal.startsWith(m.value, from)) return true;
        break;
      case 'suffix':
        if (principal.length - from >= m.value.length && principal.endsWith(m.value)) return true;
        break;
      case 'presence':
        if (principal.length > from) return true;
        break;
    }
  }
  return false;
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
  return matchesWithNamespace(policy, r, principalNamespace(r.principal));
}

function matchesWithNamespace(
  policy: AuthorizationPolicy,
  r: AuthorizationRequest,
  ns: string,
): boolean {
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

function scopeOf(p: AuthorizationPolicy, index: PolicyIndex): AuthorizationStep['scope'] {
  if (p.selector !== undefined) return 'selector';
  return p.namespace === index.rootNamespace ? 'root' : 'namespace';
}

/** The oldest policy of `list` with (`withSelector`) a selector matching `labels`, or without one. */
function pick(
  list: readonly PeerAuthentication[] | undefined,
  withSelector: boolean,
  labels: Labels,
): PeerAuthentication | undefined {
  if (list === undefined) return undefined;
  let best: PeerAuthentication | undefined;
  for (const p of list) {
    if (withSelector) {
      if (p.selector === undefined || !selectorMatches(p.selector, labels)) continue;
    } else if (p.selector !== undefined) continue;
    if (
      best === undefined ||
      (p.created !== '' && (best.created === '' || p.created < best.created))
    )
      best = p;
  }
  return best;
}

const decided = (m: MtlsMode | undefined): m is 'STRICT' | 'PERMISSIVE' =>
  m === 'STRICT' || m === 'PERMISSIVE';

/** The effective mTLS mode of a destination port (default PERMISSIVE) and the policy that set it. */
export function effectiveMtls(
  index: PolicyIndex,
  destination: AuthorizationRequest['destination'],
  port: number,
): { mode: 'STRICT' | 'PERMISSIVE'; policy: PeerAuthentication | undefined } {
  if (index.peerAuthentication.size === 0) return PERMISSIVE_DEFAULT;
  const own = index.peerAuthentication.get(destination.namespace);
  // DISABLE cannot be honoured by a node proxy: ignored (inherits), as in Istio ambient.
  const workload = pick(own, true, destination.labels);
  if (workload !== undefined) {
    const portMode = workload.portLevelMtls.get(port);
    if (decided(portMode)) return { mode: portMode, policy: workload };
    if (decided(workload.mode)) return { mode: workload.mode, policy: workload };
  }
  const namespace = pick(own, false, destination.labels);
  if (namespace !== undefined && decided(namespace.mode))
    return { mode: namespace.mode, policy: namespace };
  const mesh = pick(index.peerAuthentication.get(index.rootNamespace), false, destination.labels);
  if (mesh !== undefined && decided(mesh.mode)) return { mode: mesh.mode, policy: mesh };
  return PERMISSIVE_DEFAULT;
}

const PERMISSIVE_DEFAULT = { mode: 'PERMISSIVE', policy: undefined } as const;

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

type DryRunMatch = { policy: PolicyRef; action: AuthorizationAction };

function decision(
  allowed: boolean,
  reason: AuthorizationReason,
  policy: PolicyRef | undefined,
  dryRun: DryRunMatch[] | undefined,
): AuthorizationDecision {
  if (dryRun === undefined && policy === undefined)
    return allowed ? ALLOW_NO_POLICIES : DENY_NO_MATCH;
  return { allowed, reason, policy, dryRun: dryRun ?? [] };
}

function step(
  steps: AuthorizationStep[],
  p: AuthorizationPolicy,
  index: PolicyIndex,
  matched: boolean,
): void {
  steps.push({
    policy: refOf(p, 'AuthorizationPolicy'),
    action: p.action,
    dryRun: p.dryRun,
    scope: scopeOf(p, index),
    matched,
    unsupported: p.unsupported,
  });
}

function evaluate(
  r: AuthorizationRequest,
  index: PolicyIndex,
  steps: AuthorizationStep[] | undefined,
): AuthorizationDecision {
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
  const applicable = index.applicable.get(r.destination.namespace) ?? index.rootApplicable;
  const labels = r.destination.labels;
  const ns = principalNamespace(r.principal);
  let dryRun: DryRunMatch[] | undefined;
  // DENY policies first (dry-run ones only report), then ALLOW.
  let denied: AuthorizationPolicy | undefined;
  for (const p of applicable.deny) {
    if (p.selector !== undefined && !selectorMatches(p.selector, labels)) continue;
    const matched = matchesWithNamespace(p, r, ns);
    if (steps !== undefined) step(steps, p, index, matched);
    if (!matched) continue;
    if (p.dryRun) (dryRun ??= []).push({ policy: refOf(p, 'AuthorizationPolicy'), action: 'DENY' });
    else denied ??= p;
  }
  if (strict !== undefined) return strict;
  if (denied !== undefined)
    return decision(false, 'deny_policy_matched', refOf(denied, 'AuthorizationPolicy'), dryRun);
  let allowSeen = false;
  let allowed: AuthorizationPolicy | undefined;
  for (const p of applicable.allow) {
    if (p.selector !== undefined && !selectorMatches(p.selector, labels)) continue;
    const matched = matchesWithNamespace(p, r, ns);
    if (steps !== undefined) step(steps, p, index, matched);
    if (p.dryRun) {
      if (matched)
        (dryRun ??= []).push({ policy: refOf(p, 'AuthorizationPolicy'), action: 'ALLOW' });
      continue;
    }
    allowSeen = true;
    if (matched) allowed ??= p;
  }
  if (!allowSeen) return decision(true, 'no_allow_policies', undefined, dryRun);
  if (allowed !== undefined)
    return decision(true, 'allow_policy_matched', refOf(allowed, 'AuthorizationPolicy'), dryRun);
  return decision(false, 'no_allow_policy_matched', undefined, dryRun);
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
