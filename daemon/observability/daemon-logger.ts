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
export const LOG_BATCH_BYTES = 3072;
/** The longest a log line waits in that batch, ms. */
export const LOG_FLUSH_MS = 250;
/**
 * The most one write() carries: PIPE_BUF. The main thread and every
 * data-plane worker each have a logger writing to the same stdout, which
 * is a pipe under a container runtime; a pipe keeps a write of at most
 * PIPE_BUF bytes whole, and may split a longer one and let another
 * thread's write in between. A single line longer than this is written
 * alone and can still be split; the daemon's lines are far shorter, except
 * its start-up line, written before any worker runs.
 */
export const LOG_WRITE_MAX_BYTES = 4096;

/** The options of every daemon logger's stdout destination (sonic-boom). */
export const LOG_DESTINATION = {
  dest: 1,
  sync: false,
  minLength: LOG_BATCH_BYTES,
  maxWrite: LOG_WRITE_MAX_BYTES,
  periodicFlush: LOG_FLUSH_MS,
} as const;

export interface DaemonLogger {
  readonly logger: Logger;
  level(): LogLevel;
  setLevel(level: LogLevel): void;
  /**
   * Writes every buffered line now, synchronously. For a worker thread
   * about to end: pino's exit hook covers the process, not a thread that is
   * terminated.
   */
  flush(): void;
}

export function createDaemonLogger(level: LogLevel, base: Record<string, unknown>): DaemonLogger {
  const state = { level, threshold: VALUES[level] };
  // One write per 3-4 KiB of lines, or every 250 ms, instead of one per
  // line: a record per proxied connection would otherwise cost a
  // write() (and a wake-up of whoever reads stdout) per connection.
  // pino flushes what is buffered when the process exits.
  const stdout = destination(LOG_DESTINATION);
  const root = pino({ level: 'trace', base }, stdout);
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
    flush: () => {
      try {
        stdout.flushSync();
      } catch {
        // Not open yet or already closed: nothing of ours is buffered.
      }
    },
  };
}
