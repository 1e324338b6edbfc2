/**
 * Network namespaces of a simulated cluster, by name (`ip netns`): created
 * fresh (a leftover of the same name is removed first), entered with
 * `ip netns exec`, removed idempotently.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MeshlessError, errorMessage } from '../errors.js';

/** Where `ip netns` keeps its namespace files. */
export const NETNS_DIR = '/var/run/netns';

/** What a command run to completion printed. */
export interface CommandOutput {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a system command; returns stdout.
 * @throws MeshlessError `MESHLESS_E_SIM` with the command's stderr when it fails.
 */
export function sh(file: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    throw new MeshlessError(
      'MESHLESS_E_SIM',
      `${file} ${args.join(' ')} failed: ${typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** Runs `argv` inside the named netns; returns status and output without throwing. */
export function inNs(ns: string, argv: readonly string[], input?: string): CommandOutput {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', input });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** True when a netns of that name exists. */
export function netnsExists(name: string): boolean {
  return existsSync(`${NETNS_DIR}/${name}`);
}

/** Removes the named netns when it exists. Idempotent. */
export function deleteNetns(name: string): void {
  if (netnsExists(name)) spawnSync('ip', ['netns', 'del', name]);
}

/**
 * True when this process may simulate a cluster: root, and Debian's CNI
 * plugins installed (the e2e tier and the demo need both).
 */
export function canRunE2e(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/lib/cni/bridge');
}

/** A named network namespace. */
export class Netns {
  readonly name: string;
  /** The netns file, e.g. `/var/run/netns/<name>` (what CNI_NETNS carries). */
  readonly path: string;

  private constructor(name: string) {
    this.name = name;
    this.path = `${NETNS_DIR}/${name}`;
  }

  /** Creates the netns `name` (replacing a leftover) with `lo` up. */
  static create(name: string): Netns {
    const ns = new Netns(name);
    deleteNetns(name);
    sh('ip', ['netns', 'add', ns.name]);
    sh('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A handle on an existing netns (no check). */
  static existing(name: string): Netns {
    return new Netns(name);
  }

  exec(argv: readonly string[], input?: string): CommandOutput {
    return inNs(this.name, argv, input);
  }

  /** Removes it when it exists. Idempotent. */
  destroy(): void {
    deleteNetns(this.name);
  }
}
