/**
 * meshlessd: the node daemon's entry. Parses flags and config once (exit 2
 * when they are invalid), starts the daemon (daemon.ts: exit 1 when that
 * fails), and on SIGTERM/SIGINT drains and stops it. What is bound before
 * the daemon reports ready, and what an upgrading daemon binds later, is
 * daemon.ts's business.
 */
import { errorMessage } from '../src/errors.js';
import { parseConfigFlag } from '../src/config/config-flag.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { startDaemon } from './daemon.js';

const USAGE = `usage: meshlessd [--config FILE]

Runs the meshless node daemon. Every config key can also be set by a
MESHLESS_* environment variable (e.g. MESHLESS_STATE_DIR); see docs/configuration.md.`;

async function main(): Promise<void> {
  let file: string | undefined;
  try {
    const flag = parseConfigFlag(process.argv.slice(2), process.env, 'MESHLESS_CONFIG');
    if (flag.kind === 'help') {
      process.stdout.write(USAGE + '\n');
      return;
    }
    file = flag.file;
  } catch (err) {
    process.stderr.write(`meshlessd: ${errorMessage(err)}\n${USAGE}\n`);
    process.exit(2);
  }
  let config;
  try {
    config = loadDaemonConfig({ file });
  } catch (err) {
    process.stderr.write(`meshlessd: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  const daemon = await startDaemon(config).catch((err: unknown) => {
    process.stderr.write(`meshlessd: start-up failed: ${errorMessage(err)}\n`);
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    daemon.log.info({ signal }, 'shutting down');
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        daemon.log.error({ error: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
