/**
 * Watch and repair: keeps our entry in the node's primary CNI config while
 * the primary network plugin rewrites its files (istio-cni's behaviour, after
 * its users' reports: istio/istio #57432, #52761; docs/reference/cni.md).
 *
 * The watcher knows nothing about configs: it calls `repair` (an idempotent
 * install pass, normally installNode) once at start, after every burst of
 * changes in the conf dir (fs.watch on the directory, debounced), every
 * `recheckMs` (fs.watch can miss events, and a rotated service-account token
 * is only noticed this way) and `retryMs` after a failed pass.
 *
 * Invariants:
 * - Passes never overlap; changes during a pass cause exactly one more pass.
 * - It does not loop on its own writes: our atomic rename produces one event,
 *   whose pass finds nothing to do and writes nothing (stats count writes).
 * - Events for names no runtime loads (our hidden temp files, the
 *   kubeconfig) are ignored.
 * - A failed pass (a half-written file, no config yet) is logged once per
 *   distinct error and retried; it never stops the watcher.
 * - stop() waits for a pass in flight, so nothing is written after it resolves.
 */
import { watch, type FSWatcher } from 'node:fs';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { InstallResult } from './install.js';
import { isConfigFileName } from './primary-config.js';

/** How the watcher is driven. */
export interface RepairWatcherOptions {
  /** The CNI conf dir to watch. */
  readonly confDir: string;
  /** One idempotent install pass. */
  readonly repair: () => Promise<InstallResult>;
  readonly log?: Logger | undefined;
  /** Quiet time after the last change before a pass (default 100 ms). */
  readonly debounceMs?: number | undefined;
  /** Period of the unconditional re-check (default 10 s). */
  readonly recheckMs?: number | undefined;
  /** Delay before retrying a failed pass (default 1 s). */
  readonly retryMs?: number | undefined;
}

/** Counters, for tests and the log. */
export interface RepairStats {
  /** Passes run. */
  passes: number;
  /** Passes that wrote or removed at least one file. */
  repairs: number;
  /** Files written or removed, over all passes. */
  writes: number;
  /** Passes that failed. */
  failures: number;
}

/** See the file comment. */
export class RepairWatcher {
  readonly #o: RepairWatcherOptions;
  readonly #log: Logger;
  readonly #stats: RepairStats = { passes: 0, repairs: 0, writes: 0, failures: 0 };
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #recheck: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #lastError: string | undefined;

  constructor(options: RepairWatcherOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
  }

  /** A copy of the counters. */
  get stats(): RepairStats {
    return { ...this.#stats };
  }

  /** Runs the first pass (a failure is logged and retried) and starts watching. */
  async start(): Promise<void> {
    this.#arm();
    this.#recheck = setInterval(() => {
      this.#arm();
      void this.#pass();
    }, this.#o.recheckMs ?? 10_000);
    await this.#pass();
  }

  /** Stops watching; resolves once no pass is running. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearTimeout(this.#retry);
    clearInterval(this.#recheck);
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#running;
  }

  #arm(): void {
    if (this.#watcher !== undefined || this.#stopped) return;
    try {
      const w = watch(this.#o.confDir, { persistent: true }, (_event, name) =>
        this.#onChange(typeof name === 'string' ? name : undefined),
      );
      w.on('error', (err) => {
        // E.g. the conf dir was removed; the periodic re-check re-arms.
        this.#log.warn({ dir: this.#o.confDir, error: errorMessage(err) }, 'conf dir watch failed');
        w.close();
        if (this.#watcher === w) this.#watcher = undefined;
      });
      this.#watcher = w;
    } catch (err) {
      this.#log.warn(
        { dir: this.#o.confDir, error: errorMessage(err) },
        'cannot watch the conf dir yet; re-checking periodically',
      );
    }
  }

  #onChange(name: string | undefined): void {
    if (this.#stopped) return;
    // No name (some platforms): assume it matters.
    if (name !== undefined && !isConfigFileName(name)) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#pass(), this.#o.debounceMs ?? 100);
  }

  #pass(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#runOnce();
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #runOnce(): Promise<void> {
    this.#stats.passes++;
    try {
      const result = await this.#o.repair();
      const touched = result.actions.filter(
        (a) => a.action === 'written' || a.action === 'removed',
      );
      if (touched.length > 0) {
        this.#stats.repairs++;
        this.#stats.writes += touched.length;
        this.#log.info(
          { files: touched.map((a) => `${a.action} ${a.path}`) },
          'repaired the CNI config',
        );
      }
      for (const warning of result.warnings) this.#log.warn({}, warning);
      if (this.#lastError !== undefined) this.#log.info({}, 'the CNI config is in place again');
      this.#lastError = undefined;
    } catch (err) {
      this.#stats.failures++;
      const message = errorMessage(err);
      if (message !== this.#lastError)
        this.#log.warn({ error: message }, 'repair failed; retrying');
      this.#lastError = message;
      if (!this.#stopped) {
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => void this.#pass(), this.#o.retryMs ?? 1000);
      }
    }
  }
}
