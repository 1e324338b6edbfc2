/**
 * A meshlessd process of a simulated node: the built bundle, started with
 * a config file (optionally inside the node's netns), its output in a log
 * file, ready when the registration socket answers. Attached (tests: the
 * daemon dies with them) or detached (the demo: it outlives the CLI).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../config/daemon-runtime.js';
import { callDaemon } from '../registration/client.js';
import { defaultBundles } from './bundles.js';
import { startProgram, type ProgramHandle } from './program-process.js';

/** A started daemon. */
export interface DaemonHandle extends ProgramHandle {
  readonly configFile: string;
  readonly logFile: string;
  readonly socket: string;
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
  /** The `node` binary to run it on; default this process's (bench/ compares runtimes). */
  readonly node?: string;
  /** Start it in its own session, not waited for (it outlives this process). */
  readonly detached?: boolean;
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
    opts.node ?? process.execPath,
    ...(existsSync(openssl) ? [`--openssl-config=${openssl}`] : []),
    ...DAEMON_NODE_FLAGS,
    ...(opts.nodeFlags ?? []),
    bundle,
    '--config',
    configFile,
  ];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...node] : node;
  const socket = String(
    opts.config['cniSocket'] ?? join(String(opts.config['stateDir']), 'cni.sock'),
  );
  const program = await startProgram({
    name: 'meshlessd',
    argv,
    configFile,
    logFile,
    detached: opts.detached ?? false,
    deadline: Date.now() + (opts.timeoutMs ?? 15_000),
    ready: async () =>
      existsSync(socket) &&
      (await callDaemon(socket, 'GET', '/v1/status', undefined, 1000)).kind === 'ok',
  });
  return { ...program, configFile, logFile, socket };
}
