/**
 * Failures of the HBONE layer. Each carries a stable `reason`, a
 * low-cardinality string fit for a metric label and the access log, beside
 * the error `code`:
 *
 * | code                              | reasons                                      |
 * |-----------------------------------|----------------------------------------------|
 * | `MESHLESS_E_HBONE_CONNECT`        | `connect-failed`, `connect-timeout`          |
 * | `MESHLESS_E_HBONE_TLS`            | `tls-handshake`, `alpn`                      |
 * | `MESHLESS_E_HBONE_PEER_IDENTITY`  | `peer-identity` (`details.svidReason` says why) |
 * | `MESHLESS_E_HBONE_STATUS`         | `http-status-<n>` (`details.status`)         |
 * | `MESHLESS_E_HBONE_STREAM`         | `reset`, `response-timeout`, `session-closed`, `goaway` |
 * | `MESHLESS_E_HBONE_POOL_CLOSED`    | `pool-closed`                                |
 */
import { MeshlessError, type ErrorCode } from '../errors.js';

/** Why an HBONE tunnel could not be opened (a metric label). */
export type HboneFailureReason =
  | 'connect-failed'
  | 'connect-timeout'
  | 'tls-handshake'
  | 'alpn'
  | 'peer-identity'
  | `http-status-${number}`
  | 'reset'
  | 'response-timeout'
  | 'session-closed'
  | 'goaway'
  | 'pool-closed';

const CODES = {
  'connect-failed': 'MESHLESS_E_HBONE_CONNECT',
  'connect-timeout': 'MESHLESS_E_HBONE_CONNECT',
  'tls-handshake': 'MESHLESS_E_HBONE_TLS',
  alpn: 'MESHLESS_E_HBONE_TLS',
  'peer-identity': 'MESHLESS_E_HBONE_PEER_IDENTITY',
  reset: 'MESHLESS_E_HBONE_STREAM',
  'response-timeout': 'MESHLESS_E_HBONE_STREAM',
  'session-closed': 'MESHLESS_E_HBONE_STREAM',
  goaway: 'MESHLESS_E_HBONE_STREAM',
  'pool-closed': 'MESHLESS_E_HBONE_POOL_CLOSED',
} as const;

/** The error code of a reason. */
export function hboneErrorCode(reason: HboneFailureReason): ErrorCode {
  return reason.startsWith('http-status-')
    ? 'MESHLESS_E_HBONE_STATUS'
    : CODES[reason as keyof typeof CODES];
}

/** An HBONE failure with its {@link HboneFailureReason}. */
export class HboneError extends MeshlessError {
  readonly reason: HboneFailureReason;

  constructor(
    reason: HboneFailureReason,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(hboneErrorCode(reason), message, {
      cause: options?.cause,
      details: { reason, ...options?.details },
    });
    this.name = 'HboneError';
    this.reason = reason;
  }
}

/** The reason for an HTTP status other than 200. */
export function statusReason(status: number): HboneFailureReason {
  return `http-status-${status}`;
}
