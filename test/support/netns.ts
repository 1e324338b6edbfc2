/**
 * Network namespaces for end-to-end tests: created with unique names (so
 * test files and parallel sessions never collide), always removed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** A prefix unique to this test process. */
export const RUN_TAG = `mlt${process.pid.toString(36)}`;

export function sh(file: string, args: readonly string[], input?: string): string {
  return execFileSync(file, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs `argv` inside the named netns; returns status and output without throwing. */
export function inNs(
  ns: string,
  argv: readonly string[],
  input?: string,
): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', input });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export class Netns {
  readonly name: string;
  readonly path: string;

  private constructor(name: string) {
    this.name = name;
    this.path = `/var/run/netns/${name}`;
  }

  static create(suffix: string): Netns {
    const ns = new Netns(`${RUN_TAG}-${suffix}`);
    if (existsSync(ns.path)) sh('ip', ['netns', 'del', ns.name]);
    sh('ip', ['netns', 'add', ns.name]);
    sh('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  exec(
    argv: readonly string[],
    input?: string,
  ): { status: number; stdout: string; stderr: string } {
    return inNs(this.name, argv, input);
  }

  destroy(): void {
    if (existsSync(this.path)) spawnSync('ip', ['netns', 'del', this.name]);
  }
}

/** True when this process may create namespaces and run iptables (e2e tier). */
export function canRunE2e(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/lib/cni/bridge');
}

/**
 * A netns's state as a CNI DEL must restore it: iptables and ip6tables rules
 * (tables with only empty builtin chains count as absent: iptables-nft keeps
 * the table once created), policy rules and table 100.
 */
export function netnsSnapshot(ns: Netns): string {
  const out: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const text = ns.exec([save]).stdout;
    let table = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) table = line;
      else if (
        line.startsWith('-') ||
        (line.startsWith(':') &&
          !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT/.test(line))
      )
        out.push(`${save} ${table} ${line.replace(/\[\d+:\d+\]/, '')}`);
    }
  }
  out.push(ns.exec(['ip', '-4', 'rule']).stdout, ns.exec(['ip', '-6', 'rule']).stdout);
  for (const f of ['-4', '-6']) {
    const r = ns.exec(['ip', f, 'route', 'show', 'table', '100']);
    out.push(r.status === 0 ? r.stdout : '');
  }
  return out.join('\n');
}
