/**
 * When to rotate a certificate. Pure: time and randomness come in as values.
 *
 * A certificate is renewed at half its lifetime with ±10 % jitter (SPIRE's
 * rule), i.e. somewhere between 45 % and 55 % of the way from issue to
 * expiry, so SVIDs issued together (a node start) do not all renew at the
 * same instant. The lifetime is measured from the issue time, not from the
 * backdated notBefore. A failed renewal is retried with capped exponential
 * backoff, always leaving a try before expiry.
 */

/** Fraction of the lifetime at which a certificate is renewed. */
export const ROTATION_FRACTION = 0.5;
/** Relative jitter around that point: ±10 %. */
export const ROTATION_JITTER = 0.1;
/** Longest delay Node's setTimeout honours (larger ones fire at once). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Source of uniform randomness in [0, 1); injected in tests. */
export type RandomFraction = () => number;

/** The validity that matters for scheduling, ms since the epoch. */
export interface Lifetime {
  readonly issuedAt: number;
  readonly notAfter: number;
}

/**
 * When to renew: `issuedAt + lifetime × 0.5 × (1 + j)`, j uniform in
 * [-0.1, 0.1). Never before `issuedAt`, never after `notAfter`.
 */
export function rotationTime(lifetime: Lifetime, random: RandomFraction): number {
  const span = Math.max(0, lifetime.notAfter - lifetime.issuedAt);
  const r = Math.min(Math.max(random(), 0), 1);
  const jitter = (r * 2 - 1) * ROTATION_JITTER;
  return Math.round(lifetime.issuedAt + span * ROTATION_FRACTION * (1 + jitter));
}

/** The earliest and latest possible {@link rotationTime} (for tests and reports). */
export function rotationWindow(lifetime: Lifetime): { earliest: number; latest: number } {
  const span = Math.max(0, lifetime.notAfter - lifetime.issuedAt);
  return {
    earliest: lifetime.issuedAt + span * ROTATION_FRACTION * (1 - ROTATION_JITTER),
    latest: lifetime.issuedAt + span * ROTATION_FRACTION * (1 + ROTATION_JITTER),
  };
}

/** Backoff bounds for failed renewals. */
export const RETRY_MIN_MS = 1_000;
export const RETRY_MAX_MS = 60_000;

/**
 * Delay before renewal attempt number `attempt` (1 = first retry): 1 s,
 * 2 s, 4 s ... capped at 60 s, and while the certificate is still valid
 * never more than a quarter of its remaining life, so several tries happen
 * before it expires.
 */
export function retryDelay(attempt: number, now: number, notAfter: number): number {
  const exponential = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, attempt - 1));
  const remaining = notAfter - now;
  if (remaining <= 0) return exponential;
  return Math.max(RETRY_MIN_MS, Math.min(exponential, Math.floor(remaining / 4)));
}

/**
 * The setTimeout delay to reach `due` from `now`: never negative, never
 * beyond what a Node timer can hold (a timer that fires early re-arms).
 */
export function timerDelay(due: number, now: number): number {
  return Math.min(MAX_TIMER_DELAY_MS, Math.max(0, due - now));
}
