/** Bounded polling, for tests that wait on something another process or timer does. */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolves once `check` holds, polling every `intervalMs`; rejects with
 * "timed out waiting for `what`" after `timeoutMs`. A `check` that throws
 * rejects at once (wrap it to treat a failure as "not yet").
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await sleep(intervalMs);
  }
}
