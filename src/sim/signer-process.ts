/**
 * The cluster signer of a simulated cluster: dist/meshless-ca.js started
 * with a config file inside a node's netns (it listens on that node's link
 * address, which every node routes to), its output in a log file, ready
 * once it logs "meshless-ca ready". Attached (tests) or detached (the demo).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { defaultBundles } from './bundles.js';
import { isOurProcess, spawnDetached, stopProcess } from './processes.js';

export interface SignerHandle {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly configFile: string;
  readonly logFile: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
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
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let handle: SignerHandle;
  let exited: () => boolean;
  if (opts.detached) {
    const { pid, child } = await spawnDetached(argv, logFile);
    exited = () => !isOurProcess(pid, configFile);
    handle = {
      pid,
      child,
      configFile,
      logFile,
      async stop() {
        await stopProcess(pid, configFile);
        return null;
      },
    };
  } else {
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(argv[0] ?? '', argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    let gone = false;
    child.once('exit', () => (gone = true));
    exited = () => gone;
    handle = {
      pid: child.pid ?? -1,
      child,
      configFile,
      logFile,
      stop(signal: NodeJS.Signals = 'SIGTERM') {
        return new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
          child.once('exit', (code) => resolve(code));
          child.kill(signal);
        });
      },
    };
  }
  for (;;) {
    if (logSays(logFile, offset, 'meshless-ca ready')) return handle;
    if (exited())
      throw new MeshlessError(
        'MESHLESS_E_SIM',
        `meshless-ca exited during start-up; see ${logFile}`,
      );
    if (Date.now() > deadline) {
      await handle.stop('SIGKILL');
      throw new MeshlessError('MESHLESS_E_SIM', `meshless-ca not ready in time; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
