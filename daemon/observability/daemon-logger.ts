/**
 * The daemon's logger: pino (JSON lines on stdout) behind the library's
 * Logger contract, with one level shared by every child, so the level can
 * change at run time (POST /logging) for all components at once. pino's own
 * children copy the level when created and do not follow later changes.
 */
import { destination, pino, type Logger as Pino } from 'pino';
import type { LogLevel } from '../../src/config/daemon-config.js';
import type { Logger } from '../../src/logger.js';

const VALUES: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** Bytes of log lines gathered before one write to stdout. */
export const LOG_BATCH_BYTES = 8192;
/** The longest a log line waits in that batch, ms. */
export const LOG_FLUSH_MS = 250;

export interface DaemonLogger {
  readonly logger: Logger;
  level(): LogLevel;
  setLevel(level: LogLevel): void;
}

export function createDaemonLogger(level: LogLevel, base: Record<string, unknown>): DaemonLogger {
  const state = { level, threshold: VALUES[level] };
  const root = pino(
    { level: 'trace', base },
    // One write per 8 KiB of lines, or every 250 ms, instead of one per
    // line: a record per proxied connection would otherwise cost a
    // write() (and a wake-up of whoever reads stdout) per connection.
    // pino flushes what is buffered when the process exits.
    destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS }),
  );
  const wrap = (p: Pino): Logger => ({
    debug: (fields, msg) => {
      if (20 >= state.threshold) p.debug(fields, msg);
    },
    info: (fields, msg) => {
      if (30 >= state.threshold) p.info(fields, msg);
    },
    warn: (fields, msg) => {
      if (40 >= state.threshold) p.warn(fields, msg);
    },
    error: (fields, msg) => {
      if (50 >= state.threshold) p.error(fields, msg);
    },
    child: (bindings) => wrap(p.child(bindings)),
  });
  return {
    logger: wrap(root),
    level: () => state.level,
    setLevel: (l) => {
      state.level = l;
      state.threshold = VALUES[l];
    },
  };
}
