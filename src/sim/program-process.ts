/**
 * One program of a simulated cluster (a node daemon, the signer), started
 * with its argv, its output in a log file, and waited for until `ready()`
 * says so. Attached (tests: it dies with them) or detached (the demo: it
 * outlives the CLI, found again by its config file on its command line).
 *
 * Invariant: a program that exits or misses the deadline during start-up
 * is an error naming its log; one that misses the deadline is killed first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { MeshlessError } from '../errors.js';
import { isOurProcess, spawnDetached, stopProcess } from './processes.js';

/** A started program. */
export interface ProgramHandle {
  readonly pid: number;
  /** The child process (detached: unref'd, only meaningful while this process lives). */
  readonly child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ProgramOptions {
  /** What the error messages call it, e.g. `meshlessd`. */
  readonly name: string;
  readonly argv: readonly string[];
  /** The config file on its command line (how a detached one is recognised). */
  readonly configFile: string;
  readonly logFile: string;
  readonly detached: boolean;
  /** Start-up deadline, ms since the epoch. */
  readonly deadline: number;
  /** Whether it is ready (polled every 50 ms). */
  ready(): boolean | Promise<boolean>;
}

/** Starts the program and resolves once it is ready. */
export async function startProgram(o: ProgramOptions): Promise<ProgramHandle> {
  let handle: ProgramHandle;
  let exited: () => boolean;
  if (o.detached) {
    // `ip netns exec` execs the command: the pid is the program's.
    const { pid, child } = await spawnDetached(o.argv, o.logFile);
    exited = () => !isOurProcess(pid, o.configFile);
    handle = {
      pid,
      child,
      async stop() {
        await stopProcess(pid, o.configFile);
        return null;
      },
    };
  } else {
    const log = createWriteStream(o.logFile, { flags: 'a' });
    const child = spawn(o.argv[0] ?? '', o.argv.slice(1), {
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
    if (exited())
      throw new MeshlessError(
        'MESHLESS_E_SIM',
        `${o.name} exited during start-up; see ${o.logFile}`,
      );
    if (await o.ready()) return handle;
    if (Date.now() > o.deadline) {
      await handle.stop('SIGKILL');
      throw new MeshlessError(
        'MESHLESS_E_SIM',
        `${o.name} not ready within the deadline; see ${o.logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
