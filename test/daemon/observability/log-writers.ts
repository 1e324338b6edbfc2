/**
 * A child for daemon-logger.test.ts: the main thread and WRITERS worker
 * threads each log LINES connection-sized lines through a pino destination
 * with the daemon's options (LOG_DESTINATION), all to this process's stdout,
 * as the daemon's main thread and data-plane workers do.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { LOG_DESTINATION } from '../../../daemon/observability/daemon-logger.js';

const writers = Number(process.env['WRITERS'] ?? '3');
const lines = Number(process.env['LINES'] ?? '5000');
const pinoPath = createRequire(import.meta.url).resolve('pino');
// Plain JavaScript in the workers (tsx does not reach them); the options
// are the daemon's, handed over as they are.
const body = `
const { workerData } = require('node:worker_threads');
const { pino, destination } = require(workerData.pinoPath);
const stdout = destination(workerData.options);
const log = pino({ base: { worker: workerData.index } }, stdout);
const pad = 'x'.repeat(150 + workerData.index * 37);
for (let i = 0; i < workerData.lines; i++)
  log.info({ connection: { n: i, pad, outcome: 'denied' } }, 'connection');
// As DaemonLogger.flush() does before a data-plane worker ends.
stdout.flushSync();
`;
const done = Array.from(
  { length: writers },
  (_, index) =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(body, {
        eval: true,
        workerData: { index, lines, pinoPath, options: { ...LOG_DESTINATION } },
      });
      w.once('exit', () => resolve());
      w.once('error', reject);
    }),
);
await Promise.all(done);
