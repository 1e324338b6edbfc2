/**
 * `AuthorizationPolicy` of `security.meshless.dev/v1alpha1`: the L4 subset
 * of Istio's `security.istio.io/v1` kind, same field names and semantics,
 * parsed into the shape ztunnel evaluates (`src/rbac.rs`: a policy is rules,
 * a rule is clauses that must all match, a clause is matches of which any
 * must match, a match is typed lists, positive and negative).
 *
 * The translation is istiod's for ztunnel: each rule becomes the clauses
 * `from` (one match per source), `to` (one match per operation), and per
 * `when` condition a clause for `values` and one for `notValues`. Strings
 * `*` / `x*` / `*x` are presence / prefix / suffix matches. Principals are
 * compared without `spiffe://`.
 *
 * Invariant (fail safe): a policy that uses any field outside the L4 subset
 * (L7 operations, request principals, `targetRefs`, CUSTOM/AUDIT actions,
 * an unknown `when` key) or a malformed value becomes a DENY that matches
 * every connection to the workloads it selects; `unsupported` names the
 * field so that it is logged and explained.
 */
import { parseIpBlock, type IpBlock } from './ip-address.js';
import { EVERYTHING, parseLabelSelector, type LabelSelector } from './label-selector.js';

export const SECURITY_API_VERSION = 'security.meshless.dev/v1alpha1';

/** Annotations that make a policy dry-run (logged, not enforced); Istio's is honoured too. */
export const DRY_RUN_ANNOTATIONS = ['security.meshless.dev/dry-run', 'istio.io/dry-run'] as const;

export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'suffix'; readonly value: string }
  | { readonly kind: 'presence'; readonly value: '' };

/** One match (ztunnel's RbacMatch): every non-empty list must hold. */
export interface RbacMatch {
  readonly namespaces: readonly StringMatch[];
  readonly notNamespaces: readonly StringMatch[];
  readonly principals: readonly StringMatch[];
  readonly notPrincipals: readonly StringMatch[];
  readonly sourceIps: readonly IpBlock[];
  readonly notSourceIps: readonly IpBlock[];
  readonly destinationIps: readonly IpBlock[];
  readonly notDestinationIps: readonly IpBlock[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
}

/** A clause: any of its matches (an empty clause matches everything). */
export type RbacClause = readonly RbacMatch[];
/** A rule: all of its clauses. */
export type RbacRule = readonly RbacClause[];

export type AuthorizationAction = 'ALLOW' | 'DENY';

export interface AuthorizationPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly action: AuthorizationAction;
  /** `spec.selector`; undefined: every workload of the namespace (or, in the root namespace, of the mesh). */
  readonly selector: LabelSelector | undefined;
  /** Any rule matching makes the policy match; no rules never matches. */
  readonly rules: readonly RbacRule[];
  readonly dryRun: boolean;
  /** The field outside the L4 subset (or malformed) that turned the policy into a DENY-all. */
  readonly unsupported: string | undefined;
}

export const EMPTY_MATCH: RbacMatch = {
  namespaces: [],
  notNamespaces: [],
  principals: [],
  notPrincipals: [],
  sourceIps: [],
  notSourceIps: [],
  destinationIps: [],
  notDestinationIps: [],
  destinationPorts: [],
  notDestinationPorts: [],
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why a field cannot be enforced at L4; thrown inside the parser, caught at its top. */
class Unsupported extends Error {}

const fail = (field: string): never => {
  throw new Unsupported(field);
};

/** Istio's string match: `*` presence, `*x` suffix, `x*` prefix, else exact. */
export function stringMatchOf(text: string): StringMatch {
  if (text === '*') return { kind: 'presence', value: '' };
  if (text.startsWith('*')) return { kind: 'suffix', value: text.slice(1) };
  if (text.endsWith('*')) return { kind: 'prefix', value: text.slice(0, -1) };
  return { kind: 'exact', value: text };
}

export function stringMatches(m: StringMatch, check: string): boolean {
  switch (m.kind) {
    case 'exact':
      return check === m.value;
    case 'prefix':
      return check.startsWith(m.value);
    case 'suffix':
      return check.endsWith(m.value);
    case 'presence':
      return check !== '';
  }
}

function strings(raw: unknown, field: string): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || !raw.every((v): v is string => typeof v === 'string')) fail(field);
  return raw as string[];
}

const blocks = (raw: unknown, field: string): IpBlock[] =>
  strings(raw, field).map((t, i) => parseIpBlock(t) ?? fail(`${field}[${i}]`));

function port(text: string, field: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) return fail(field);
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : fail(field);
}

const ports = (raw: unknown, field: string): number[] =>
  (raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : fail(field)).map(
    (p: unknown, i: number) =>
      typeof p === 'number'
        ? port(String(p), `${field}[${i}]`)
        : typeof p === 'string'
          ? port(p, `${field}[${i}]`)
          : fail(`${field}[${i}]`),
  );

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(`${where}.${k}`);
}

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
];
const OPERATION_FIELDS = ['ports', 'notPorts'];
const WHEN_KEYS = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
];

function sourceMatch(raw: unknown, where: string): RbacMatch {
  if (!isRecord(raw)) return fail(where);
  const s = raw['source'];
  onlyKeys(raw, ['source'], where);
  if (!isRecord(s)) return fail(`${where}.source`);
  const at = `${where}.source`;
  onlyKeys(s, SOURCE_FIELDS, at);
  return {
    ...EMPTY_MATCH,
    principals: strings(s['principals'], `${at}.principals`).map(stringMatchOf),
    notPrincipals: strings(s['notPrincipals'], `${at}.notPrincipals`).map(stringMatchOf),
    namespaces: strings(s['namespaces'], `${at}.namespaces`).map(stringMatchOf),
    notNamespaces: strings(s['notNamespaces'], `${at}.notNamespaces`).map(stringMatchOf),
    sourceIps: blocks(s['ipBlocks'], `${at}.ipBlocks`),
    notSourceIps: blocks(s['notIpBlocks'], `${at}.notIpBlocks`),
  };
}

function operationMatch(raw: unknown, where: string): RbacMatch {
  if (!isRecord(raw)) return fail(where);
  onlyKeys(raw, ['operation'], where);
  const o = raw['operation'];
  if (!isRecord(o)) return fail(`${where}.operation`);
  const at = `${where}.operation`;
  onlyKeys(o, OPERATION_FIELDS, at);
  return {
    ...EMPTY_MATCH,
    destinationPorts: ports(o['ports'], `${at}.ports`),
    notDestinationPorts: ports(o['notPorts'], `${at}.notPorts`),
  };
}

/** A `when` condition's values as a match on its key (positive or negative lists). */
function whenMatch(key: string, values: string[], negative: boolean, where: string): RbacMatch {
  switch (key) {
    case 'source.ip': {
      const b = blocks(values, where);
      return negative ? { ...EMPTY_MATCH, notSourceIps: b } : { ...EMPTY_MATCH, sourceIps: b };
    }
    case 'destination.ip': {
      const b = blocks(values, where);
      return negative
        ? { ...EMPTY_MATCH, notDestinationIps: b }
        : { ...EMPTY_MATCH, destinationIps: b };
    }
    case 'destination.port': {
      const p = ports(values, where);
      return negative
        ? { ...EMPTY_MATCH, notDestinationPorts: p }
        : { ...EMPTY_MATCH, destinationPorts: p };
    }
    case 'source.namespace': {
      const m = values.map(stringMatchOf);
      return negative ? { ...EMPTY_MATCH, notNamespaces: m } : { ...EMPTY_MATCH, namespaces: m };
    }
    default: {
      const m = values.map(stringMatchOf);
      return negative ? { ...EMPTY_MATCH, notPrincipals: m } : { ...EMPTY_MATCH, principals: m };
    }
  }
}

function ruleOf(raw: unknown, where: string): RbacRule {
  if (!isRecord(raw)) return fail(where);
  onlyKeys(raw, ['from', 'to', 'when'], where);
  const list = (v: unknown, field: string): unknown[] =>
    v === undefined || v === null ? [] : Array.isArray(v) ? v : fail(field);
  const from = list(raw['from'], `${where}.from`).map((f, i) =>
    sourceMatch(f, `${where}.from[${i}]`),
  );
  const to = list(raw['to'], `${where}.to`).map((t, i) => operationMatch(t, `${where}.to[${i}]`));
  const clauses: RbacClause[] = [from, to];
  list(raw['when'], `${where}.when`).forEach((w, i) => {
    const at = `${where}.when[${i}]`;
    if (!isRecord(w)) return fail(at);
    onlyKeys(w, ['key', 'values', 'notValues'], at);
    const key = w['key'];
    if (typeof key !== 'string' || !WHEN_KEYS.includes(key))
      return fail(`${at}.key "${String(key)}"`);
    const values = strings(w['values'], `${at}.values`);
    const notValues = strings(w['notValues'], `${at}.notValues`);
    if (values.length === 0 && notValues.length === 0) return fail(`${at}.values`);
    if (values.length > 0) clauses.push([whenMatch(key, values, false, `${at}.values`)]);
    if (notValues.length > 0) clauses.push([whenMatch(key, notValues, true, `${at}.notValues`)]);
  });
  return clauses;
}

/** A rule that matches every connection (one rule of empty clauses). */
const MATCH_ALL: readonly RbacRule[] = [[]];

/**
 * An AuthorizationPolicy object to the model. Throws only when the object
 * has no usable metadata (it cannot be named); every problem in `spec`
 * yields a DENY-all policy naming the field instead.
 */
export function authorizationPolicyFromObject(obj: unknown): AuthorizationPolicy {
  if (!isRecord(obj) || !isRecord(obj['metadata']))
    throw new TypeError('AuthorizationPolicy without metadata');
  const meta = obj['metadata'];
  const name = meta['name'];
  const namespace = meta['namespace'] ?? 'default';
  if (typeof name !== 'string' || name === '')
    throw new TypeError('AuthorizationPolicy without metadata.name');
  if (typeof namespace !== 'string')
    throw new TypeError(`AuthorizationPolicy ${name}: metadata.namespace is not a string`);
  const annotations = isRecord(meta['annotations']) ? meta['annotations'] : {};
  const dryRun = DRY_RUN_ANNOTATIONS.some((a) => annotations[a] === 'true');
  const spec = obj['spec'] ?? {};
  let selector: LabelSelector | undefined;
  if (isRecord(spec) && isRecord(spec['selector'])) {
    // Istio's WorkloadSelector has matchLabels only.
    const sel = spec['selector'];
    const parsed = parseLabelSelector(
      Object.keys(sel).every((k) => k === 'matchLabels') ? sel : {},
      'spec.selector',
    );
    selector = typeof parsed === 'string' ? EVERYTHING : parsed;
  }
  try {
    if (!isRecord(spec)) return fail('spec');
    onlyKeys(spec, ['selector', 'action', 'rules'], 'spec');
    if (spec['selector'] !== undefined && spec['selector'] !== null) {
      if (!isRecord(spec['selector'])) fail('spec.selector');
      const sel = spec['selector'] as Record<string, unknown>;
      onlyKeys(sel, ['matchLabels'], 'spec.selector');
      if (typeof parseLabelSelector(sel, 'spec.selector') === 'string')
        fail('spec.selector.matchLabels');
    }
    const action = spec['action'] ?? 'ALLOW';
    if (action !== 'ALLOW' && action !== 'DENY') return fail(`spec.action "${String(action)}"`);
    const rawRules = spec['rules'] ?? [];
    if (!Array.isArray(rawRules)) return fail('spec.rules');
    const rules = rawRules.map((r, i) => ruleOf(r, `spec.rules[${i}]`));
    return { namespace, name, action, selector, rules, dryRun, unsupported: undefined };
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
    return {
      namespace,
      name,
      action: 'DENY',
      selector,
      rules: MATCH_ALL,
      dryRun,
      unsupported: err.message,
    };
  }
}
