/**
 * Exponential backoff with jitter for reconnecting to the Kubernetes API:
 * the n-th consecutive failure waits a random time in [base/2, base], with
 * base = min(max, initial * 2^n) ("equal jitter": never less than half the
 * step, so a flapping API server is not hammered, and many daemons that
 * lost the same API server do not come back in lockstep). Pure: the random
 * source is passed in.
 */

/** Bounds of a {@link Backoff}, milliseconds. */
export interface BackoffOptions {
  /** Base delay of the first retry. */
  readonly initialMs: number;
  /** Cap of the base delay. */
  readonly maxMs: number;
}

/** The daemon's default: 200 ms doubling to 30 s. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 30_000 };

/** Consecutive-failure counter that hands out the next delay. */
export class Backoff {
  readonly #options: BackoffOptions;
  readonly #random: () => number;
  #failures = 0;

  constructor(options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random) {
    this.#options = options;
    this.#random = random;
  }

  /** Consecutive failures since the last {@link reset}. */
  get failures(): number {
    return this.#failures;
  }

  /** Records a failure and returns how long to wait before the next try. */
  next(): number {
    const { initialMs, maxMs } = this.#options;
    // 2^31 already exceeds any sane cap; stop doubling there to stay finite.
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 31));
    this.#failures += 1;
    return Math.round(base / 2 + (this.#random() * base) / 2);
  }

  /** Called after a success: the next failure starts from the initial delay. */
  reset(): void {
    this.#failures = 0;
  }
}
