/**
 * A meshlessd process for end-to-end tests: the built bundle, started with
 * a config file (optionally inside a simulated node's netns), its log kept,
 * ready when the registration socket answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callDaemon } from '../../src/registration/client.js';

export interface DaemonHandle {
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly socket: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startDaemonProcess(opts: {
  dir: string;
  config: Record<string, unknown>;
  netns?: string;
  timeoutMs?: number;
}): Promise<DaemonHandle> {
  const configFile = join(opts.dir, 'meshlessd.json');
  writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
  const logFile = join(opts.dir, 'meshlessd.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const bundle = join(process.cwd(), 'dist/meshlessd.js');
  const argv = opts.netns
    ? ['ip', 'netns', 'exec', opts.netns, process.execPath, bundle, '--config', configFile]
    : [process.execPath, bundle, '--config', configFile];
  const child = spawn(argv[0] ?? '', argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const socket = String(
    opts.config['cniSocket'] ?? join(String(opts.config['stateDir']), 'cni.sock'),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`meshlessd exited during start-up; see ${logFile}`);
    if (existsSync(socket)) {
      const r = await callDaemon(socket, 'GET', '/v1/status', undefined, 1000);
      if (r.kind === 'ok') break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`meshlessd not ready within the deadline; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
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
