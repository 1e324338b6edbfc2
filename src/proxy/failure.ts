/**
 * The one failure taxonomy of the data plane: every error that ends a
 * proxied connection maps to a record outcome and a stable, low-cardinality
 * reason (the metric label and the `reason` of the record and of the log
 * line). Decided from error codes only, never from message text: messages
 * carry netns paths and addresses (a netns named `...401...` must not make
 * an unreachable host "denied").
 *
 * Order: an {@link HboneError} by its reason; then the first errno found on
 * the error, its `details.errno` (MeshlessError `MESHLESS_E_NETNS`) or its
 * `cause` chain; then the MeshlessError code; else `internal`.
 */
import { MeshlessError } from '../errors.js';
import type { ConnectionOutcome } from '../hbone/connection-record.js';
import { HboneError, type HboneFailureReason } from '../hbone/hbone-error.js';

/** Why a connection ended other than cleanly (a metric label). */
export type FailureReason =
  | HboneFailureReason
  | 'client-reset'
  | 'upstream-reset'
  | 'connect-refused'
  | 'unreachable'
  | 'netns-missing'
  | 'permission'
  | 'fd-exhausted'
  | 'self-call-loop'
  | 'no-ready-endpoint'
  | 'no-service-port'
  | 'not-local-address'
  | 'no-original-destination'
  | 'discovery-timeout'
  | 'closed'
  | 'policy'
  | 'draining'
  | 'internal';

export interface Failure {
  readonly outcome: ConnectionOutcome;
  readonly reason: FailureReason;
}

/** Errno codes a socket operation may fail with, and what each means for a connection. */
export const ERRNO_FAILURES: Readonly<Record<string, Failure>> = {
  ECONNREFUSED: { outcome: 'refused', reason: 'connect-refused' },
  ETIMEDOUT: { outcome: 'timeout', reason: 'connect-timeout' },
  EHOSTUNREACH: { outcome: 'error', reason: 'unreachable' },
  ENETUNREACH: { outcome: 'error', reason: 'unreachable' },
  EHOSTDOWN: { outcome: 'error', reason: 'unreachable' },
  EADDRNOTAVAIL: { outcome: 'error', reason: 'unreachable' },
  ECONNRESET: { outcome: 'reset', reason: 'upstream-reset' },
  EPIPE: { outcome: 'reset', reason: 'upstream-reset' },
  ECONNABORTED: { outcome: 'reset', reason: 'upstream-reset' },
  ENOENT: { outcome: 'error', reason: 'netns-missing' },
  EPERM: { outcome: 'error', reason: 'permission' },
  EACCES: { outcome: 'error', reason: 'permission' },
  EMFILE: { outcome: 'error', reason: 'fd-exhausted' },
  ENFILE: { outcome: 'error', reason: 'fd-exhausted' },
};

/** The outcome of each HBONE failure reason (`http-status-*` apart). */
const HBONE_OUTCOMES: Readonly<
  Record<Exclude<HboneFailureReason, `http-status-${number}`>, ConnectionOutcome>
> = {
  'connect-failed': 'refused',
  'connect-timeout': 'timeout',
  'tls-handshake': 'denied',
  alpn: 'denied',
  'peer-identity': 'denied',
  reset: 'reset',
  'response-timeout': 'timeout',
  'session-closed': 'reset',
  goaway: 'reset',
  'pool-closed': 'error',
};

/** The outcome of a CONNECT answered with `status` (docs/reference/hbone.md). */
function statusOutcome(status: number): ConnectionOutcome {
  if (status === 401 || status === 403) return 'denied';
  if (status === 503) return 'refused';
  return 'error';
}

function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in ERRNO_FAILURES) return code;
    const errno = (e as { details?: { errno?: unknown } }).details?.errno;
    if (typeof errno === 'string' && errno in ERRNO_FAILURES) return errno;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The outcome and reason of an error that ended a connection; see the file comment. */
export function classifyFailure(err: unknown): Failure {
  if (err instanceof HboneError) {
    const reason = err.reason;
    if (reason.startsWith('http-status-'))
      return { outcome: statusOutcome(Number(reason.slice('http-status-'.length))), reason };
    if (reason === 'connect-failed') {
      // A refused or unreachable peer says more than "failed".
      const errno = errnoOf(err.cause);
      if (errno !== undefined) return { ...(ERRNO_FAILURES[errno] as Failure) };
    }
    return {
      outcome: HBONE_OUTCOMES[reason as keyof typeof HBONE_OUTCOMES] ?? 'error',
      reason,
    };
  }
  const errno = errnoOf(err);
  if (errno !== undefined) return ERRNO_FAILURES[errno] as Failure;
  if (err instanceof MeshlessError && err.code === 'MESHLESS_E_NETNS_MISSING')
    return { outcome: 'error', reason: 'netns-missing' };
  return { outcome: 'error', reason: 'internal' };
}
