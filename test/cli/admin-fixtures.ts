/**
 * Recorded answers of the daemon's admin routes (test/cli/testdata/admin),
 * shaped exactly as daemon/daemon.ts builds them, and the instant the
 * golden views are rendered at.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The directory of the recorded answers. */
export const ADMIN_TESTDATA = join(import.meta.dirname, 'testdata', 'admin');

/** 2030-01-15T12:00:00Z, the instant the fixtures are viewed at. */
export const NOW = Date.parse('2030-01-15T12:00:00.000Z');

/** The recorded answer `name` (`status`, `workloads`, ...), parsed as JSON but not checked. */
export function adminAnswer(name: string): unknown {
  return JSON.parse(readFileSync(join(ADMIN_TESTDATA, `${name}.json`), 'utf8'));
}
