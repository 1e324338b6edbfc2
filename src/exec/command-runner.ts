/**
 * Running system commands (iptables-restore, ip, nsenter). Behind an
 * interface so decisions can be tested with a recording runner and the real
 * one lives in one place.
 */
import { MeshlessError } from '../errors.js';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** Runs argv[0] with the rest as arguments; never throws for a non-zero exit. */
  run(argv: readonly string[], input?: string): Promise<CommandResult>;
}

/** The real runner, on execa (no shell, bounded time, output captured). */
export function execaRunner(timeoutMs = 10_000): CommandRunner {
  return {
    async run(argv, input) {
      const [file, ...args] = argv;
      if (file === undefined) throw new MeshlessError('MESHLESS_E_EXEC', 'empty command');
      const { execa } = await import('execa');
      const r = await execa(file, args, {
        reject: false,
        timeout: timeoutMs,
        stripFinalNewline: false,
        ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        extendEnv: false,
      });
      if (r.failed && r.exitCode === undefined)
        throw new MeshlessError(
          'MESHLESS_E_EXEC',
          `${argv.join(' ')} could not run: ${r.shortMessage}`,
          { cause: r.cause },
        );
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
  };
}

/** Prefixes a command so it runs inside the network namespace at `netnsPath`. */
export function inNetns(netnsPath: string, argv: readonly string[]): string[] {
  return ['nsenter', `--net=${netnsPath}`, '--', ...argv];
}
