/**
 * The cluster signer of a simulated cluster: dist/meshless-ca.js started
 * with a config file inside a node's netns (it listens on that node's link
 * address, which every node routes to), its output in a log file, ready
 * once it logs "meshless-ca ready". Attached (tests) or detached (the demo).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultBundles } from './bundles.js';
import { startProgram, type ProgramHandle } from './program-process.js';

export interface SignerHandle extends ProgramHandle {
  readonly configFile: string;
  readonly logFile: string;
}

export interface SignerProcessOptions {
  /** Where `meshless-ca.json` and `meshless-ca.log` go. */
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly netns?: string;
  readonly bundle?: string;
  readonly detached?: boolean;
  readonly timeoutMs?: number;
}

function logSays(logFile: string, offset: number, what: string): boolean {
  if (!existsSync(logFile)) return false;
  return readFileSync(logFile, 'utf8').slice(offset).includes(what);
}

/** Writes the config, starts the signer and waits until it is ready. */
export async function startSignerProcess(opts: SignerProcessOptions): Promise<SignerHandle> {
  const configFile = join(opts.dir, 'meshless-ca.json');
  writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
  const logFile = join(opts.dir, 'meshless-ca.log');
  const offset = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const bundle = opts.bundle ?? defaultBundles().signer;
  const node = [process.execPath, bundle, '--config', configFile];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...node] : node;
  const program = await startProgram({
    name: 'meshless-ca',
    argv,
    configFile,
    logFile,
    detached: opts.detached ?? false,
    deadline: Date.now() + (opts.timeoutMs ?? 15_000),
    ready: () => logSays(logFile, offset, 'meshless-ca ready'),
  });
  return { ...program, configFile, logFile };
}
