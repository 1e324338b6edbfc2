/**
 * CNI errors as the spec defines them (SPEC.md "Error"): a numeric code, a
 * message for the operator and optional details. The plugin's dispatcher is
 * the only place that turns them into stdout JSON and an exit status.
 */

/** The spec's well-known codes, plus ours (100+). */
export const CNI_CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  pluginNotAvailableLimited: 51,
  // Plugin-specific (100+), documented in docs/reference/cni.md.
  daemonRejected: 100,
  redirectFailed: 101,
  redirectMissing: 102,
  internal: 999,
} as const;

export type CniCode = (typeof CNI_CODES)[keyof typeof CNI_CODES];

export class CniError extends Error {
  readonly cniCode: number;
  readonly details: string | undefined;

  constructor(code: number, message: string, options?: { details?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CniError';
    this.cniCode = code;
    this.details = options?.details;
  }

  /** The error object the spec prescribes, for stdout. */
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    const out: { cniVersion: string; code: number; msg: string; details?: string } = {
      cniVersion,
      code: this.cniCode,
      msg: this.message,
    };
    if (this.details !== undefined && this.details !== '') out.details = this.details;
    return out;
  }
}
