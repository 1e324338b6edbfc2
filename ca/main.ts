/**
 * meshless-ca: the cluster signer's entry. The only program that holds the
 * cluster root key; node daemons send it CSRs (Istio's CA API over gRPC),
 * attested as their node, and it signs SVIDs only for pods scheduled there.
 */
import { pino, type Logger as Pino } from 'pino';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { parseConfigFlag } from '../src/config/config-flag.js';
import { loadSignerConfig } from '../src/signer/signer-config.js';
import { startSigner } from './signer.js';

const USAGE = `usage: meshless-ca --config FILE

Runs the meshless cluster signer (see README "The cluster signer").`;

function wrap(p: Pino): Logger {
  return {
    debug: (f, m) => p.debug(f, m),
    info: (f, m) => p.info(f, m),
    warn: (f, m) => p.warn(f, m),
    error: (f, m) => p.error(f, m),
    child: (b) => wrap(p.child(b)),
  };
}

async function main(): Promise<void> {
  let file: string | undefined;
  try {
    const flag = parseConfigFlag(process.argv.slice(2), process.env, 'MESHLESS_CA_CONFIG');
    if (flag.kind === 'help') {
      process.stdout.write(USAGE + '\n');
      return;
    }
    file = flag.file;
    if (file === undefined) throw new Error('--config is required');
  } catch (err) {
    process.stderr.write(`meshless-ca: ${errorMessage(err)}\n${USAGE}\n`);
    process.exit(2);
  }
  let config;
  try {
    config = loadSignerConfig(file);
  } catch (err) {
    process.stderr.write(`meshless-ca: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  const log = wrap(pino({ level: config.logLevel, base: { component: 'meshless-ca' } }));
  const running = await startSigner(config, log).catch((err: unknown) => {
    process.stderr.write(`meshless-ca: start-up failed: ${errorMessage(err)}\n`);
    process.exit(1);
  });
  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

void main();
