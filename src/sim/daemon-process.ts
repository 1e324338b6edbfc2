/**
 * A meshlessd process of a simulated node: the built bundle, started with
 * a config file (optionally inside the node's netns), its output in a log
 * file, ready when the registration socket answers. Attached (tests: the
 * daemon dies with them) or detached (the demo: it outlives the CLI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { callDaemon } from '../registration/client.js';
import { defaultBundles } from './bundles.js';
import { isOurProcess, spawnDetached, stopProcess } from './processes.js';

/** A started daemon. */
export interface DaemonHandle {
  readonly pid: number;
  /** The child process (detached: unref'd, only meaningful while this process lives). */
  readonly child: ChildProcess;
  readonly configFile: string;
  readonly logFile: string;
  readonly socket: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Options of {@link startDaemonProcess}. */
export interface DaemonProcessOptions {
  /** Where `meshlessd.json` and `meshlessd.log` go. */
  readonly dir: string;
  readonly config: Record<string, unknown>;
  /** The node's netns name; absent: this netns. */
  readonly netns?: string;
  readonly timeoutMs?: number;
  /** `dist/meshlessd.js`; default from {@link defaultBundles}. */
  readonly bundle?: string;
  /** Extra `node` flags before the bundle, e.g. `--cpu-prof` (bench/). */
  readonly nodeFlags?: readonly string[];
  /** Start it in its own session, not waited for (it outlives this process). */
  readonly detached?: boolean;
}

async function waitReady(
  socket: string,
  logFile: string,
  deadline: number,
  exited: () => boolean,
  kill: () => void,
): Promise<void> {
  for (;;) {
    if (exited())
      throw new MeshlessError('MESHLESS_E_SIM', `meshlessd exited during start-up; see ${logFile}`);
    if (existsSync(socket)) {
      const r = await callDaemon(socket, 'GET', '/v1/status', undefined, 1000);
      if (r.kind === 'ok') return;
    }
    if (Date.now() > deadline) {
      kill();
      throw new MeshlessError(
        'MESHLESS_E_SIM',
        `meshlessd not ready within the deadline; see ${logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Writes the config, starts the daemon and waits until its CNI socket answers. */
export async function startDaemonProcess(opts: DaemonProcessOptions): Promise<DaemonHandle> {
  const configFile = join(opts.dir, 'meshlessd.json');
  writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
  const logFile = join(opts.dir, 'meshlessd.log');
  const bundle = opts.bundle ?? defaultBundles().daemon;
  // As the image runs it: the daemon's OpenSSL settings beside the bundle (no session tickets).
  const openssl = join(dirname(bundle), 'openssl.cnf');
  const node = [
    process.execPath,
    ...(existsSync(openssl) ? [`--openssl-config=${openssl}`] : []),
    ...(opts.nodeFlags ?? []),
    bundle,
    '--config',
    configFile,
  ];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...node] : node;
  const socket = String(
    opts.config['cniSocket'] ?? join(String(opts.config['stateDir']), 'cni.sock'),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);

  if (opts.detached) {
    // `ip netns exec` execs the command: the pid is the daemon's.
    const { pid, child } = await spawnDetached(argv, logFile);
    const stop = async (): Promise<number | null> => {
      await stopProcess(pid, configFile);
      return null;
    };
    await waitReady(
      socket,
      logFile,
      deadline,
      () => !isOurProcess(pid, configFile),
      () => void stop(),
    );
    return { pid, child, configFile, logFile, socket, stop };
  }

  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(argv[0] ?? '', argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitReady(
    socket,
    logFile,
    deadline,
    () => exited,
    () => child.kill('SIGKILL'),
  );
  return {
    pid: child.pid ?? -1,
    child,
    configFile,
    logFile,
    socket,
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
}
