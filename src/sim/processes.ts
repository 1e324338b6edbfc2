/**
 * Processes that outlive their starter (the demo's daemons and pod
 * servers): started detached in their own session with output to a log
 * file, found again by pid, stopped only when their command line is still
 * the one we started (a pid can be reused).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { MeshlessError, errorMessage, isErrno } from '../errors.js';

/**
 * Starts `argv` in a new session (setsid), stdin from /dev/null, stdout and
 * stderr appended to `logFile`, not waited for: it keeps running after this
 * process exits. Resolves once spawned (the child is unref'd).
 */
export async function spawnDetached(
  argv: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
): Promise<{ pid: number; child: ChildProcess }> {
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(argv[0] ?? '', argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env,
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(
          new MeshlessError(
            'MESHLESS_E_SIM',
            `cannot start ${argv[0] ?? '?'}: ${errorMessage(err)}`,
            {
              cause: err,
            },
          ),
        ),
      );
      child.once('spawn', () => resolve(child.pid ?? -1));
    });
    child.unref();
    return { pid, child };
  } finally {
    closeSync(fd);
  }
}

/** The NUL-separated command line of `pid`, joined by spaces; undefined when gone. */
export function processCommandLine(pid: number): string | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined; // a zombie
    return raw.split('\0').filter(Boolean).join(' ');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}

/** True when `pid` runs and its command line contains `mustContain`. */
export function isOurProcess(pid: number, mustContain: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  return processCommandLine(pid)?.includes(mustContain) ?? false;
}

/**
 * Sends SIGTERM to `pid` when it is ours (its command line contains
 * `mustContain`), then SIGKILL after `graceMs`; resolves once it is gone.
 * Returns false when there was nothing of ours to stop. Idempotent.
 */
export async function stopProcess(
  pid: number,
  mustContain: string,
  graceMs = 3000,
): Promise<boolean> {
  if (!isOurProcess(pid, mustContain)) return false;
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(pid, s);
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw err;
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isOurProcess(pid, mustContain)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      if (Date.now() > deadline + 2000) break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}
