/**
 * The one error class of meshless. Every failure that crosses a module
 * boundary is a MeshlessError with a stable string code, so callers (the CNI
 * dispatcher, the daemon's API, the CLI) can map it by code, not by message;
 * the data plane's outcomes come from codes alone (src/proxy/failure.ts).
 * Two places still read message text, where Node gives nothing better:
 * - the HBONE server labels an HTTP/2 session error `flood` when nghttp2's
 *   message says so (src/hbone/hbone-server.ts; a metric label only);
 * - the daemon's wait for a port a previous daemon holds also accepts
 *   "EADDRINUSE" in an error's text when no errno is attached
 *   (daemon/daemon.ts).
 * Codes are the typed table of error-codes.ts, documented in
 * docs/error-codes.md (a test keeps it complete).
 */
import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export class MeshlessError extends Error {
  /** Stable code, `MESHLESS_E_*`. */
  readonly code: ErrorCode;
  /** Extra machine-readable context (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeshlessError';
    this.code = code;
    this.details = options?.details;
  }
}

/** The message of anything thrown, for logs and error JSON. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** True when `err` is a Node system error with the given errno code. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'string' &&
    codes.includes((err as { code: string }).code)
  );
}
