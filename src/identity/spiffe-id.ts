/**
 * SPIFFE IDs, parsed and formatted exactly as spiffe/spiffe
 * `standards/SPIFFE-ID.md` says:
 *
 * - scheme `spiffe`, written in lowercase, followed by `://`;
 * - trust domain (the URI host): not empty, at most 255 bytes, only
 *   `[a-z0-9._-]`, so no uppercase, no percent-encoding, no userinfo (`@`)
 *   and no port (`:`);
 * - path: optional; each segment not empty, not `.` or `..`, only
 *   `[a-zA-Z0-9._-]` (so no percent-encoding), no trailing `/`;
 * - no query (`?`) and no fragment (`#`);
 * - the whole ID at most 2048 bytes.
 *
 * §2.4 calls the scheme and trust domain case-insensitive, but §2.1 requires
 * the trust domain to be lowercase; like go-spiffe, uppercase in either is
 * rejected rather than folded, so one identity has exactly one spelling.
 *
 * Workload IDs are `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 */
import { MeshlessError } from '../errors.js';

/** Longest SPIFFE ID the standard asks implementations to handle, in bytes. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** Longest trust domain name (the RFC 3986 host limit), in bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME_PREFIX = 'spiffe://';
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;

/** Why a string is not a SPIFFE ID; stable, usable as a metric label. */
export type SpiffeIdProblem =
  | 'empty'
  | 'too_long'
  | 'wrong_scheme'
  | 'missing_trust_domain'
  | 'trust_domain_too_long'
  | 'bad_trust_domain_char'
  | 'userinfo'
  | 'port'
  | 'query'
  | 'fragment'
  | 'empty_segment'
  | 'dot_segment'
  | 'bad_path_segment_char'
  | 'trailing_slash';

function invalid(input: string, problem: SpiffeIdProblem, why: string): MeshlessError {
  const shown = input.length > 120 ? `${input.slice(0, 117)}...` : input;
  return new MeshlessError('MESHLESS_E_SPIFFE_ID', `"${shown}" is not a valid SPIFFE ID: ${why}`, {
    details: { problem },
  });
}

/** The problem with a trust domain name, or undefined when it is valid. */
function trustDomainProblem(td: string): [SpiffeIdProblem, string] | undefined {
  if (td === '') return ['missing_trust_domain', 'the trust domain is empty'];
  if (Buffer.byteLength(td) > MAX_TRUST_DOMAIN_BYTES)
    return [
      'trust_domain_too_long',
      `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`,
    ];
  if (td.includes('@')) return ['userinfo', 'userinfo ("user@") is not allowed'];
  if (td.includes(':')) return ['port', 'a port (":port") is not allowed'];
  if (!TRUST_DOMAIN_CHARS.test(td))
    return [
      'bad_trust_domain_char',
      'the trust domain may hold only lowercase letters, digits, ".", "-" and "_"',
    ];
  return undefined;
}

/** The problem with one path segment, or undefined when it is valid. */
function segmentProblem(segment: string): [SpiffeIdProblem, string] | undefined {
  if (segment === '') return ['empty_segment', 'the path has an empty segment ("//")'];
  if (segment === '.' || segment === '..')
    return ['dot_segment', `the path has a "${segment}" segment`];
  if (!SEGMENT_CHARS.test(segment))
    return [
      'bad_path_segment_char',
      `path segment "${segment}" may hold only letters, digits, ".", "-" and "_"`,
    ];
  return undefined;
}

/**
 * A valid SPIFFE ID. Instances only come from {@link parseSpiffeId},
 * {@link spiffeIdFromParts}, {@link workloadSpiffeId} and
 * {@link trustDomainSpiffeId}, so holding one means it passed validation.
 */
export class SpiffeId {
  /** The trust domain name, e.g. `cluster.local`. */
  readonly trustDomain: string;
  /** The path, `''` or starting with `/`, e.g. `/ns/default/sa/web`. */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    Object.freeze(this);
  }

  /** @internal Builds an already validated ID. */
  static fromValidated(trustDomain: string, path: string): SpiffeId {
    return new SpiffeId(trustDomain, path);
  }

  /** The URI form, `spiffe://<trust-domain><path>`. */
  toString(): string {
    return `${SCHEME_PREFIX}${this.trustDomain}${this.path}`;
  }

  /** Same as toString, so IDs serialise as their URI. */
  toJSON(): string {
    return this.toString();
  }

  /** True when both name the same identity (exact, case-sensitive). */
  equals(other: SpiffeId): boolean {
    return this.trustDomain === other.trustDomain && this.path === other.path;
  }

  /** True for an ID with no path: the ID of the trust domain itself. */
  get isTrustDomainId(): boolean {
    return this.path === '';
  }
}

/**
 * Parses a SPIFFE ID. Throws MeshlessError `MESHLESS_E_SPIFFE_ID` whose
 * `details.problem` is a {@link SpiffeIdProblem}.
 */
export function parseSpiffeId(input: string): SpiffeId {
  if (input === '') throw invalid(input, 'empty', 'it is empty');
  if (Buffer.byteLength(input) > MAX_SPIFFE_ID_BYTES)
    throw invalid(input, 'too_long', `it is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!input.startsWith(SCHEME_PREFIX)) {
    const why = input.toLowerCase().startsWith(SCHEME_PREFIX)
      ? 'the scheme must be written "spiffe" in lowercase'
      : 'it must start with "spiffe://"';
    throw invalid(input, 'wrong_scheme', why);
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  const authorityEnd = rest.search(/[/?#]/);
  const trustDomain = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem) throw invalid(input, ...tdProblem);

  const path = authorityEnd === -1 ? '' : rest.slice(authorityEnd);
  if (path.includes('?')) throw invalid(input, 'query', 'a query ("?...") is not allowed');
  if (path.includes('#')) throw invalid(input, 'fragment', 'a fragment ("#...") is not allowed');
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const [i, segment] of segments.entries()) {
      if (segment === '' && i === segments.length - 1)
        throw invalid(input, 'trailing_slash', 'the path must not end with "/"');
      const problem = segmentProblem(segment);
      if (problem) throw invalid(input, ...problem);
    }
  }
  return SpiffeId.fromValidated(trustDomain, path);
}

/** Parses a SPIFFE ID, or returns undefined when it is not valid. */
export function tryParseSpiffeId(input: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(input);
  } catch {
    return undefined;
  }
}

/**
 * Validates a trust domain name (e.g. from configuration). Throws
 * `MESHLESS_E_SPIFFE_ID` naming the rule it breaks.
 */
export function validateTrustDomain(trustDomain: string): string {
  const problem = trustDomainProblem(trustDomain);
  if (problem) throw invalid(`${SCHEME_PREFIX}${trustDomain}`, ...problem);
  return trustDomain;
}

/** Builds an ID from a trust domain and path segments, validating each part. */
export function spiffeIdFromParts(trustDomain: string, segments: readonly string[]): SpiffeId {
  validateTrustDomain(trustDomain);
  const display = `${SCHEME_PREFIX}${trustDomain}/${segments.join('/')}`;
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem) throw invalid(display, ...problem);
  }
  const path = segments.length === 0 ? '' : `/${segments.join('/')}`;
  if (Buffer.byteLength(SCHEME_PREFIX + trustDomain + path) > MAX_SPIFFE_ID_BYTES)
    throw invalid(display, 'too_long', `it is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  return SpiffeId.fromValidated(trustDomain, path);
}

/** The ID of a trust domain itself (no path), carried by signing certificates. */
export function trustDomainSpiffeId(trustDomain: string): SpiffeId {
  return spiffeIdFromParts(trustDomain, []);
}

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>`. */
export function workloadSpiffeId(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): SpiffeId {
  return spiffeIdFromParts(trustDomain, ['ns', namespace, 'sa', serviceAccount]);
}

/** The Kubernetes names behind a workload ID. */
export interface WorkloadName {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** The namespace and service account of a `/ns/<ns>/sa/<sa>` ID, else undefined. */
export function workloadNameOf(id: SpiffeId): WorkloadName | undefined {
  const parts = id.path.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [, , namespace, , serviceAccount] = parts;
  if (namespace === undefined || serviceAccount === undefined) return undefined;
  return { namespace, serviceAccount };
}

/** Accepts an ID or its URI form; throws `MESHLESS_E_SPIFFE_ID` for a bad string. */
export function toSpiffeId(id: SpiffeId | string): SpiffeId {
  return typeof id === 'string' ? parseSpiffeId(id) : id;
}
